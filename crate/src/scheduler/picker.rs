//! Chunk assignment: which peer gets which chunk range of a segment.
//!
//! Pure functions: `plan_chunks` returns a plan; the engine applies it (sends `Request`s
//! and marks the chunks as asked). Work is handed out in windows of at most
//! `WINDOW_CHUNKS` chunks, at most `slots` windows per holder at a time, round-robin over
//! the holders best first; the engine plans again whenever a window completes. So a fast
//! peer ends up carrying most of a segment, a slow one only what it can, several holders
//! share one segment, and a `Cancel` never leaves more than a few windows in flight.
//!
//! Near peers first: `rank` puts the holders whose measured RTT is close to the nearest
//! holder's ahead of the others, and while a near holder can take work the far ones get
//! none, so a segment stays inside a network (an ISP, a region) when it can.
//!
//! Invariants: every planned range is non-empty, at most `WINDOW_CHUNKS` long, inside a
//! missing run; no chunk is planned twice; no holder gets more ranges than its `slots`.

use crate::peers::scoring;
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
    /// Measured round-trip time (`None` before the first `Pong`: counted as near, so a new
    /// peer is tried and measured).
    pub rtt_ms: Option<f64>,
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

/// Orders holders near first (`scoring::is_near` against the nearest holder), then best
/// first by score (ties by conn id, for determinism); while a near holder has a slot, far
/// holders get no slots.
pub fn rank(holders: &mut [Holder]) {
    let nearest = holders
        .iter()
        .filter_map(|h| h.rtt_ms)
        .min_by(f64::total_cmp);
    let near = |h: &Holder| scoring::is_near(h.rtt_ms, nearest);
    holders.sort_by(|a, b| {
        near(b)
            .cmp(&near(a))
            .then(b.score.total_cmp(&a.score))
            .then(a.conn.cmp(&b.conn))
    });
    if holders.iter().any(|h| near(h) && h.slots > 0) {
        for h in holders.iter_mut().filter(|h| !near(h)) {
            h.slots = 0;
        }
    }
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
            rtt_ms: None,
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
    fn near_holders_come_first_and_far_ones_wait_while_a_near_one_has_slots() {
        let at = |c: u32, score: f64, rtt: f64| Holder {
            rtt_ms: Some(rtt),
            ..h(c, score, true)
        };
        // 1 is fastest but far (200 ms against a nearest of 40 ms: limit 80 ms).
        let mut hs = vec![
            at(1, 9.0, 200.0),
            at(2, 1.0, 40.0),
            at(3, 2.0, 70.0),
            h(4, 0.5, true),
        ];
        rank(&mut hs);
        let order: Vec<(u32, u32)> = hs.iter().map(|h| (h.conn.0, h.slots)).collect();
        let w = WINDOWS_PER_HOLDER;
        assert_eq!(order, vec![(3, w), (2, w), (4, w), (1, 0)]);
        let plan = plan_chunks(&[(0, 80)], &hs);
        assert!(plan.iter().all(|a| a.conn.0 != 1), "far holder asked");
        // With no near slot left, the far holder is asked.
        let mut busy = vec![
            at(1, 9.0, 200.0),
            Holder {
                slots: 0,
                ..at(2, 1.0, 40.0)
            },
        ];
        rank(&mut busy);
        assert_eq!(busy[1].conn.0, 1);
        assert_eq!(busy[1].slots, w);
        assert_eq!(plan_chunks(&[(0, 8)], &busy)[0].conn.0, 1);
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
