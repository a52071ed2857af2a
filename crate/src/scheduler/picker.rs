//! Chunk assignment: which peer gets which chunk range of a segment.
//!
//! Pure functions: `plan_chunks` returns a plan; the engine applies it (sends `Request`s
//! and marks the chunks as asked). Work is handed out in windows of at most
//! `WINDOW_CHUNKS` chunks, at most `slots` windows per holder at a time, round-robin over
//! the holders best first; the engine plans again whenever a window completes. So a fast
//! peer ends up carrying most of a segment, a slow one only what it can, several holders
//! share one segment, and a `Cancel` never leaves more than a few windows in flight.
//!
//! Invariants: every planned range is non-empty, at most `WINDOW_CHUNKS` long, inside a
//! missing run; no chunk is planned twice; no holder gets more ranges than its `slots`.

use crate::types::ConnId;

/// Chunks per request (8 x 15 KiB = 120 KiB): large enough to amortise a round trip,
/// small enough that slow peers hold little and cancellation wastes little.
pub const WINDOW_CHUNKS: u32 = 8;
/// Windows one peer may have outstanding for one segment (pipelining across the RTT).
pub const WINDOWS_PER_HOLDER: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Holder {
    pub conn: ConnId,
    pub score: f64,
    /// Holds the whole segment (`Have`), rather than downloading it (`Downloading`).
    pub complete: bool,
    /// Windows we may still ask it for.
    pub slots: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub conn: ConnId,
    pub first: u32,
    pub count: u32,
}

/// Orders holders best first by score (ties by conn id, for determinism).
pub fn rank(holders: &mut [Holder]) {
    holders.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.conn.cmp(&b.conn)));
}

/// Plans requests for the missing, unrequested chunk runs `runs` (`(first, end)`, end
/// exclusive, ascending, disjoint) among `holders` (ranked best first): windows in chunk
/// order, dealt round-robin to holders that have slots left.
pub fn plan_chunks(runs: &[(u32, u32)], holders: &[Holder]) -> Vec<Assignment> {
    let mut slots: Vec<(ConnId, u32)> = holders
        .iter()
        .filter(|h| h.slots > 0)
        .map(|h| (h.conn, h.slots))
        .collect();
    let mut out = Vec::new();
    let mut turn = 0usize;
    for &(a, b) in runs {
        let mut s = a;
        while s < b {
            let free = slots.iter().filter(|x| x.1 > 0).count();
            if free == 0 {
                return out;
            }
            // Next holder (in rank order, cycling) with a slot left.
            while slots[turn % slots.len()].1 == 0 {
                turn += 1;
            }
            let i = turn % slots.len();
            turn += 1;
            let n = (b - s).min(WINDOW_CHUNKS);
            slots[i].1 -= 1;
            out.push(Assignment {
                conn: slots[i].0,
                first: s,
                count: n,
            });
            s += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: u32, score: f64, complete: bool) -> Holder {
        Holder {
            conn: ConnId(c),
            score,
            complete,
            slots: WINDOWS_PER_HOLDER,
        }
    }

    fn covered(plan: &[Assignment]) -> Vec<u32> {
        let mut v: Vec<u32> = plan
            .iter()
            .flat_map(|a| a.first..a.first + a.count)
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn rank_orders_by_score() {
        let mut hs = vec![h(1, 1.0, true), h(2, 3.0, true), h(3, 2.0, false)];
        rank(&mut hs);
        assert_eq!(
            hs.iter().map(|h| h.conn.0).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
    }

    #[test]
    fn small_segment_goes_to_best_holder_in_one_window() {
        let plan = plan_chunks(&[(0, 5)], &[h(2, 3.0, true), h(1, 1.0, true)]);
        assert_eq!(
            plan,
            vec![Assignment {
                conn: ConnId(2),
                first: 0,
                count: 5
            }]
        );
    }

    #[test]
    fn windows_are_dealt_round_robin_best_first() {
        let plan = plan_chunks(&[(0, 40)], &[h(2, 3.0, true), h(1, 1.0, true)]);
        let conns: Vec<u32> = plan.iter().map(|a| a.conn.0).collect();
        assert_eq!(conns, vec![2, 1, 2, 1]);
        assert!(plan.iter().all(|a| a.count == WINDOW_CHUNKS));
        assert_eq!(covered(&plan), (0..32).collect::<Vec<_>>());
    }

    #[test]
    fn plan_stops_when_slots_run_out_and_resumes_later() {
        let one = Holder {
            slots: 1,
            ..h(2, 3.0, true)
        };
        let plan = plan_chunks(&[(0, 20)], &[one]);
        assert_eq!(plan.len(), 1);
        let rest = plan_chunks(&[(8, 20)], &[one]);
        assert_eq!(rest[0].first, 8);
        assert!(plan_chunks(&[(0, 2)], &[Holder { slots: 0, ..one }]).is_empty());
    }

    #[test]
    fn runs_are_covered_once_and_windows_stay_inside_runs() {
        let runs = [(0, 3), (10, 29), (30, 31)];
        let hs = [h(5, 9.0, true), h(6, 8.0, true), h(7, 7.0, false)];
        let plan = plan_chunks(&runs, &hs);
        let expected: Vec<u32> = runs.iter().flat_map(|&(a, b)| a..b).collect();
        assert_eq!(covered(&plan), expected);
        for a in &plan {
            assert!(a.count > 0 && a.count <= WINDOW_CHUNKS);
            assert!(runs
                .iter()
                .any(|&(x, y)| a.first >= x && a.first + a.count <= y));
        }
        for c in [5, 6, 7] {
            assert!(plan.iter().filter(|a| a.conn.0 == c).count() <= WINDOWS_PER_HOLDER as usize);
        }
    }
}
