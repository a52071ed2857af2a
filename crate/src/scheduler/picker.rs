//! Chunk assignment: which peer gets which chunk range of a segment.
//!
//! Pure functions: `plan_chunks` returns a plan; the engine applies it (sends `Request`s
//! and marks the chunks as asked). Invariants: every planned range is non-empty, inside
//! a missing run, no chunk is planned twice, and no holder gets more ranges than its
//! free request slots.

use crate::types::ConnId;

/// Segments with at least this many missing chunks are split between two complete holders.
pub const SPLIT_MIN_CHUNKS: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Holder {
    pub conn: ConnId,
    pub score: f64,
    /// Holds the whole segment (`Have`), rather than downloading it (`Downloading`).
    pub complete: bool,
    /// Requests we may still send it.
    pub slots: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub conn: ConnId,
    pub first: u32,
    pub count: u32,
}

/// Orders holders best first: complete copies before in-progress ones at similar scores
/// is not assumed; score decides, ties by conn id for determinism.
pub fn rank(holders: &mut [Holder]) {
    holders.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.conn.cmp(&b.conn)));
}

/// Plans requests for the missing, unrequested chunk runs `runs` (`(first, end)`,
/// end exclusive, ascending, disjoint) among `holders` (ranked best first).
/// Large work is split in two halves between the two best complete holders, so a segment
/// arrives from two peers in parallel; otherwise the best holder gets everything.
pub fn plan_chunks(runs: &[(u32, u32)], holders: &[Holder]) -> Vec<Assignment> {
    let usable: Vec<&Holder> = holders.iter().filter(|h| h.slots > 0).collect();
    let Some(best) = usable.first() else {
        return Vec::new();
    };
    let total: u32 = runs
        .iter()
        .map(|&(a, b)| b.saturating_sub(a))
        .fold(0u32, |x, y| x.saturating_add(y));
    if total == 0 {
        return Vec::new();
    }
    let complete: Vec<&&Holder> = usable.iter().filter(|h| h.complete).collect();
    let mut out = Vec::new();
    let mut budget: Vec<(ConnId, u32)> = usable.iter().map(|h| (h.conn, h.slots)).collect();
    let mut take = |conn: ConnId, first: u32, count: u32, out: &mut Vec<Assignment>| -> bool {
        if count == 0 {
            return true;
        }
        if let Some(b) = budget.iter_mut().find(|b| b.0 == conn) {
            if b.1 > 0 {
                b.1 -= 1;
                out.push(Assignment { conn, first, count });
                return true;
            }
        }
        false
    };
    if total >= SPLIT_MIN_CHUNKS && complete.len() >= 2 {
        let owners = [complete[0].conn, complete[1].conn];
        let half = total / 2;
        let mut done = 0u32;
        for &(a, b) in runs {
            let mut s = a;
            while s < b {
                let owner = if done < half { 0 } else { 1 };
                let limit = if owner == 0 { half - done } else { u32::MAX };
                let n = (b - s).min(limit);
                if !take(owners[owner], s, n, &mut out) {
                    // The other owner may still have a slot.
                    let _ = take(owners[1 - owner], s, n, &mut out);
                }
                s += n;
                done += n;
            }
        }
    } else {
        for &(a, b) in runs {
            if b > a {
                let _ = take(best.conn, a, b - a, &mut out);
            }
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
            slots: 4,
        }
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
    fn small_segment_goes_to_best_holder() {
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
    fn large_segment_split_between_two_complete_holders() {
        let plan = plan_chunks(&[(0, 40)], &[h(2, 3.0, true), h(1, 1.0, true)]);
        assert_eq!(
            plan,
            vec![
                Assignment {
                    conn: ConnId(2),
                    first: 0,
                    count: 20
                },
                Assignment {
                    conn: ConnId(1),
                    first: 20,
                    count: 20
                }
            ]
        );
    }

    #[test]
    fn in_progress_holder_is_not_split_with() {
        let plan = plan_chunks(&[(0, 40)], &[h(2, 3.0, false), h(1, 1.0, true)]);
        assert_eq!(
            plan,
            vec![Assignment {
                conn: ConnId(2),
                first: 0,
                count: 40
            }]
        );
    }

    #[test]
    fn split_across_runs_covers_each_chunk_once() {
        let runs = [(0, 3), (10, 20), (30, 31)];
        let plan = plan_chunks(&runs, &[h(5, 9.0, true), h(6, 8.0, true), h(7, 7.0, true)]);
        let mut covered = Vec::new();
        for a in &plan {
            assert!(a.count > 0);
            for c in a.first..a.first + a.count {
                covered.push(c);
            }
        }
        covered.sort_unstable();
        let expected: Vec<u32> = runs.iter().flat_map(|&(a, b)| a..b).collect();
        assert_eq!(covered, expected);
        assert!(plan
            .iter()
            .all(|a| a.conn == ConnId(5) || a.conn == ConnId(6)));
    }

    #[test]
    fn respects_request_slots() {
        let mut one = h(2, 3.0, true);
        one.slots = 1;
        let plan = plan_chunks(&[(0, 2), (4, 6)], &[one]);
        assert_eq!(plan.len(), 1);
        let none = plan_chunks(&[(0, 2)], &[Holder { slots: 0, ..one }]);
        assert!(none.is_empty());
    }
}
