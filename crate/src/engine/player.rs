//! The player's own limits: how long it waits for a requested segment before loading it over
//! HTTP itself (`SegmentRequested::timeout_ms`, hls.js's fragment load policy, dash.js's
//! request timeout). The engine plans within them.
//!
//! Invariants:
//! - A segment a player request waits for is due, at the latest, when that player gives up:
//!   its deadline (`deadline_ms`) is the earlier of the playhead's and the player's, so it
//!   becomes urgent (HTTP) `urgent_window_ms` before the player would fetch it a second time.
//! - Limits are kept only while their request is pending (pruned when the timers are armed).

use super::*;

#[derive(Default)]
pub(super) struct PlayerLimits {
    /// Pending player requests with a limit: when the player gives up on each. A player has
    /// a few requests pending: a `Vec` costs the wasm build less code than another
    /// `BTreeMap` type.
    give_up: Vec<(RequestId, SegmentKey, Instant)>,
}

impl Engine {
    /// `Input::SegmentRequested`: notes when the player gives up on `req`.
    pub(super) fn note_player_limit(
        &mut self,
        now: Instant,
        req: RequestId,
        key: SegmentKey,
        timeout_ms: Option<u64>,
    ) {
        let limits = &mut self.player_limits.give_up;
        limits.retain(|(r, _, _)| *r != req);
        if let Some(t) = timeout_ms.filter(|t| *t > 0) {
            limits.push((req, key, now + ms(t)));
        }
    }

    /// Milliseconds until the player needs `key` (`None` = unknown: no playhead): the
    /// playhead's deadline, or sooner if a request for it hits the player's own limit first.
    pub(super) fn deadline_ms(&self, now: Instant, key: SegmentKey) -> Option<i64> {
        let playhead = self.playhead_deadline_ms(now, key)?;
        let limits = &self.player_limits.give_up;
        if limits.is_empty() {
            return Some(playhead);
        }
        let player = limits
            .iter()
            .filter(|(r, k, _)| *k == key && self.requests.get(r) == Some(k))
            .map(|(_, _, t)| t.as_millis() as i64 - now.as_millis() as i64)
            .min();
        Some(player.map_or(playhead, |p| p.min(playhead)))
    }

    /// The deadline of `Timer::PlayerLimit`: the next time a pending request's player limit
    /// brings its segment into the urgent window. Forgets the limits of requests that ended.
    pub(super) fn player_limit_wake(&mut self, now: Instant) -> Option<Instant> {
        let requests = &self.requests;
        let limits = &mut self.player_limits.give_up;
        limits.retain(|(r, k, _)| requests.get(r) == Some(k));
        let urgent = ms(self.config.urgent_window_ms);
        earliest(
            limits
                .iter()
                .map(|(_, _, t)| *t - urgent + ms(1))
                .filter(|t| *t > now),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SW: SwarmId = SwarmId([5; 20]);

    fn at(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    fn url(seq: u64) -> String {
        format!("https://cdn.test/p/s{seq}.ts")
    }

    /// A viewer that just joined a live swarm (no peer yet), 4 s buffered at position 0,
    /// asks at `t = 0` for the segment 20 s ahead with the player's limit `timeout_ms`.
    /// Returns when the engine started its HTTP transfer, looked at until `until`.
    fn http_start(timeout_ms: Option<u64>, until: u64) -> Option<u64> {
        let mut e = Engine::new(Config::default(), at(0), 1);
        e.handle_input(
            at(0),
            Input::Playlist {
                swarm: SW,
                live: true,
                container: Container::Ts,
                bitrate: 0,
                segments: (0..12)
                    .map(|seq| SegmentInfo {
                        seq,
                        start_ms: seq * 2_000,
                        duration_ms: 2_000,
                        url: url(seq),
                        range: None,
                    })
                    .collect(),
            },
        );
        e.handle_input(
            at(0),
            Input::Playhead {
                swarm: SW,
                position_ms: 0,
                buffered_ahead_ms: 4_000,
                rate: 1.0,
            },
        );
        e.handle_input(
            at(0),
            Input::SegmentRequested {
                req: RequestId(1),
                swarm: SW,
                seq: 10,
                url: url(10),
                range: None,
                timeout_ms,
            },
        );
        let mut now = 0;
        loop {
            while let Some(o) = e.poll_output() {
                if matches!(o, Output::StartHttp { .. }) {
                    return Some(now);
                }
            }
            now = e.poll_timeout()?.as_millis();
            if now > until {
                return None;
            }
            e.handle_timeout(at(now));
        }
    }

    #[test]
    fn a_request_is_due_when_the_player_gives_up_at_the_latest() {
        // No limit: the segment is 20 s away; the newcomer waits its join window (3 s) for peers.
        assert_eq!(http_start(None, 10_000), Some(3_000));
        // The player gives up in 2.5 s, inside the urgent window: HTTP at once.
        assert_eq!(http_start(Some(2_500), 10_000), Some(0));
        // In 5 s: HTTP when its limit enters the urgent window (3 s before), not after 3 s.
        let t = http_start(Some(5_000), 10_000).expect("an HTTP transfer");
        assert!((2_000..=2_001).contains(&t), "HTTP started at {t} ms");
        // 0 means no limit.
        assert_eq!(http_start(Some(0), 10_000), Some(3_000));
    }

    #[test]
    fn limits_are_forgotten_with_their_request() {
        let mut e = Engine::new(Config::default(), at(0), 1);
        let key = SegmentKey { swarm: SW, seq: 1 };
        e.note_player_limit(at(0), RequestId(4), key, Some(8_000));
        // Never became a pending request (e.g. served from the cache): pruned.
        assert_eq!(e.player_limit_wake(at(0)), None);
        assert!(e.player_limits.give_up.is_empty());
    }
}
