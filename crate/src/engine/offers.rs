//! When peer connections may be made: the start hold and the swarm-size gate. Both decide,
//! per tracker announce, how many WebRTC offers the host sends (`Announce::offers`) and what
//! it does with the offers others send (`Announce::inbound`); the host only obeys.
//!
//! Invariants:
//! - Until the player's first frame (`Input::PlayerStarted`) or `Config::start_hold_ms`
//!   after `Engine::new`, every announce is quiet (no offers, inbound offers queued); the
//!   hold ends once, and then every swarm not gated is announced again with offers.
//! - A swarm is gated (no offers, inbound offers ignored) until the tracker counts
//!   `Config::min_swarm_size` other viewers in it; once open it stays open until P2P is
//!   turned off or the swarm is left. Opening it re-announces it.
//! - Offers per announce never exceed `Config::max_offers`.

use super::*;

pub(super) struct OfferPolicy {
    /// When the start hold ends; `None` once it ended.
    hold_until: Option<Instant>,
    /// Swarms that reached `min_swarm_size` (only kept while a minimum is set). A few swarms
    /// per viewer: a `Vec` costs the wasm build less code than another `BTreeSet` type.
    open: Vec<SwarmId>,
}

impl OfferPolicy {
    pub(super) fn new(config: &Config, now: Instant) -> Self {
        OfferPolicy {
            hold_until: (config.start_hold_ms > 0).then(|| now + ms(config.start_hold_ms)),
            open: Vec::new(),
        }
    }

    /// The deadline of `Timer::StartHold`.
    pub(super) fn hold_until(&self) -> Option<Instant> {
        self.hold_until
    }

    fn holding(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }
}

impl Engine {
    /// The `Stopped` announce for `swarm`: no offers, offers from others dropped.
    pub(super) fn stopped_output(swarm: SwarmId) -> Output {
        Output::Announce {
            swarm,
            event: AnnounceEvent::Stopped,
            numwant: 0,
            offers: 0,
            inbound: InboundOffers::Ignore,
            queue_max: 0,
            queue_max_age_ms: 0,
        }
    }

    /// Announces `swarm` asking for the configured `announce_numwant` peers (see
    /// `announce_output`).
    pub(super) fn announce(&mut self, now: Instant, swarm: SwarmId, event: AnnounceEvent) {
        let out = self.announce_output(now, swarm, event, self.config.announce_numwant);
        self.out.push_back(out);
    }

    /// The `Announce` output for `swarm`, with the offers and inbound handling the start hold
    /// and the swarm-size gate allow now (`Stopped`: see `stopped_output`).
    pub(super) fn announce_output(
        &self,
        now: Instant,
        swarm: SwarmId,
        event: AnnounceEvent,
        numwant: u32,
    ) -> Output {
        if event == AnnounceEvent::Stopped {
            return Self::stopped_output(swarm);
        }
        let (offers, inbound) = if self.swarm_gated(swarm) {
            (0, InboundOffers::Ignore)
        } else if self.offer_policy.holding(now) {
            (0, InboundOffers::Queue)
        } else {
            (numwant.min(self.config.max_offers), InboundOffers::Answer)
        };
        Output::Announce {
            swarm,
            event,
            numwant,
            offers,
            inbound,
            queue_max: self.config.max_queued_offers,
            queue_max_age_ms: self.config.queued_offer_max_age_ms,
        }
    }

    fn swarm_gated(&self, swarm: SwarmId) -> bool {
        self.config.min_swarm_size > 0 && !self.offer_policy.open.contains(&swarm)
    }

    /// `Input::PlayerStarted` and `Timer::StartHold`: the start hold ends; every swarm that is
    /// not gated is announced again, now with offers, and its queued offers get answered.
    pub(super) fn end_start_hold(&mut self, now: Instant) {
        if self.offer_policy.hold_until.take().is_none() || !self.config.p2p_enabled {
            return;
        }
        let swarms: Vec<SwarmId> = self.swarms.keys().copied().collect();
        for swarm in swarms {
            if !self.swarm_gated(swarm) {
                self.announce(now, swarm, AnnounceEvent::Update);
            }
        }
    }

    /// `Input::SwarmPeers`: a gated swarm whose tracker count reached `min_swarm_size` opens
    /// and is announced again (with offers unless the start hold is on).
    pub(super) fn note_swarm_size(&mut self, now: Instant, swarm: SwarmId, peers: u32) {
        if !self.config.p2p_enabled
            || !self.swarm_gated(swarm)
            || peers < self.config.min_swarm_size
            || !self.swarms.contains_key(&swarm)
        {
            return;
        }
        self.offer_policy.open.push(swarm);
        self.announce(now, swarm, AnnounceEvent::Update);
    }

    /// The swarm was left, or P2P turned off (`None`): it is gated again.
    pub(super) fn close_swarm_gate(&mut self, swarm: Option<SwarmId>) {
        match swarm {
            Some(s) => self.offer_policy.open.retain(|o| *o != s),
            None => self.offer_policy.open.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SW: SwarmId = SwarmId([3; 20]);

    fn at(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    fn playlist(swarm: SwarmId) -> Input {
        Input::Playlist {
            swarm,
            live: true,
            container: Container::Ts,
            bitrate: 0,
            segments: (0..4)
                .map(|seq| SegmentInfo {
                    seq,
                    start_ms: seq * 2_000,
                    duration_ms: 2_000,
                    url: format!("https://cdn.test/s{seq}.ts"),
                    range: None,
                })
                .collect(),
        }
    }

    /// An engine made with `cfg` at `t` ms that got the playlist of `SW` at once.
    fn joined(cfg: Config, t: u64) -> Engine {
        let mut e = Engine::new(cfg, at(t), 1);
        e.handle_input(at(t), playlist(SW));
        e
    }

    /// The tracker's count of the others in `SW`.
    fn counted(peers: u32) -> Input {
        Input::SwarmPeers { swarm: SW, peers }
    }

    /// The announces drained: (event, numwant, offers, inbound).
    fn announces(e: &mut Engine) -> Vec<(AnnounceEvent, u32, u32, InboundOffers)> {
        std::iter::from_fn(|| e.poll_output())
            .filter_map(|o| match o {
                Output::Announce {
                    event,
                    numwant,
                    offers,
                    inbound,
                    ..
                } => Some((event, numwant, offers, inbound)),
                _ => None,
            })
            .collect()
    }

    use AnnounceEvent::{Started, Stopped, Update};
    use InboundOffers::{Answer, Ignore, Queue};

    #[test]
    fn announces_are_quiet_until_the_first_frame_then_offer() {
        let mut e = Engine::new(Config::default(), at(0), 1);
        e.handle_input(at(0), playlist(SW));
        assert_eq!(announces(&mut e), vec![(Started, 10, 0, Queue)]);
        assert_eq!(e.timers.get(Timer::StartHold), Some(at(3_000)));
        e.handle_input(at(1_200), Input::PlayerStarted);
        assert_eq!(announces(&mut e), vec![(Update, 10, 5, Answer)]);
        assert_eq!(e.timers.get(Timer::StartHold), None);
        // Once only: a second first frame, or the hold's old deadline, changes nothing.
        e.handle_input(at(1_500), Input::PlayerStarted);
        e.handle_timeout(at(3_000));
        assert_eq!(announces(&mut e), vec![]);
        // A swarm joined later offers at once.
        e.handle_input(at(4_000), playlist(SwarmId([4; 20])));
        assert_eq!(announces(&mut e), vec![(Started, 10, 5, Answer)]);
    }

    #[test]
    fn announces_carry_the_configured_queue_limits_and_stopped_clears_them() {
        let limits = |e: &mut Engine| -> Vec<(AnnounceEvent, InboundOffers, u32, u64)> {
            std::iter::from_fn(|| e.poll_output())
                .filter_map(|o| match o {
                    Output::Announce {
                        event,
                        inbound,
                        queue_max,
                        queue_max_age_ms,
                        ..
                    } => Some((event, inbound, queue_max, queue_max_age_ms)),
                    _ => None,
                })
                .collect()
        };
        let mut e = joined(Config::default(), 0);
        assert_eq!(limits(&mut e), vec![(Started, Queue, 16, 10_000)]);
        let cfg = Config {
            max_queued_offers: 4,
            queued_offer_max_age_ms: 2_500,
            ..Config::default()
        };
        let mut e = joined(cfg, 0);
        assert_eq!(limits(&mut e), vec![(Started, Queue, 4, 2_500)]);
        e.handle_input(at(100), Input::PlayerStarted);
        assert_eq!(limits(&mut e), vec![(Update, Answer, 4, 2_500)]);
        e.handle_input(at(200), Input::LeaveSwarm { swarm: SW });
        assert_eq!(limits(&mut e), vec![(Stopped, Ignore, 0, 0)]);
    }

    #[test]
    fn the_hold_ends_by_itself_after_start_hold_ms() {
        let cfg = Config {
            start_hold_ms: 2_500,
            ..Config::default()
        };
        let mut e = joined(cfg, 100);
        assert_eq!(announces(&mut e), vec![(Started, 10, 0, Queue)]);
        assert_eq!(e.poll_timeout(), Some(at(2_600)));
        e.handle_timeout(at(2_599));
        assert_eq!(announces(&mut e), vec![]);
        e.handle_timeout(at(2_600));
        assert_eq!(announces(&mut e), vec![(Update, 10, 5, Answer)]);
        assert_eq!(e.timers.get(Timer::StartHold), None);
    }

    #[test]
    fn without_a_hold_the_first_announce_offers_up_to_max_offers() {
        let cfg = Config {
            start_hold_ms: 0,
            max_offers: 3,
            ..Config::default()
        };
        let mut e = Engine::new(cfg, at(0), 1);
        assert_eq!(e.timers.get(Timer::StartHold), None);
        e.handle_input(at(0), playlist(SW));
        assert_eq!(announces(&mut e), vec![(Started, 10, 3, Answer)]);
        e.handle_input(at(10), Input::LeaveSwarm { swarm: SW });
        assert_eq!(announces(&mut e), vec![(Stopped, 0, 0, Ignore)]);
    }

    #[test]
    fn with_p2p_off_the_end_of_the_hold_announces_nothing() {
        let cfg = Config {
            p2p_enabled: false,
            ..Config::default()
        };
        let mut e = joined(cfg, 0);
        e.handle_input(at(500), Input::PlayerStarted);
        assert_eq!(announces(&mut e), vec![]);
        // Consent given later: announced with offers at once, the hold being over.
        e.handle_input(
            at(600),
            Input::SetPolicy {
                p2p_enabled: true,
                upload_bytes_per_sec: 1_000_000,
            },
        );
        assert_eq!(announces(&mut e), vec![(Started, 10, 5, Answer)]);
    }

    #[test]
    fn a_swarm_below_min_swarm_size_offers_and_answers_nothing_until_the_tracker_counts_enough() {
        let cfg = Config {
            start_hold_ms: 0,
            min_swarm_size: 2,
            ..Config::default()
        };
        let interval = cfg.announce_interval_ms;
        let mut e = joined(cfg, 0);
        assert_eq!(announces(&mut e), vec![(Started, 10, 0, Ignore)]);
        e.handle_input(at(200), counted(1));
        assert_eq!(announces(&mut e), vec![]);
        e.handle_timeout(at(interval));
        assert_eq!(announces(&mut e), vec![(Update, 1, 0, Ignore)]);
        e.handle_input(at(interval + 200), counted(2));
        assert_eq!(announces(&mut e), vec![(Update, 10, 5, Answer)]);
        // Open for good: a smaller count later does not close it.
        e.handle_input(at(interval + 300), counted(0));
        e.handle_input(at(interval + 400), counted(3));
        assert_eq!(announces(&mut e), vec![]);
        e.handle_timeout(at(2 * interval + 200));
        assert_eq!(announces(&mut e), vec![(Update, 3, 3, Answer)]);
        // Left and joined again: gated again.
        e.handle_input(at(2 * interval + 300), Input::LeaveSwarm { swarm: SW });
        e.handle_input(at(2 * interval + 300), playlist(SW));
        assert_eq!(
            announces(&mut e),
            vec![(Stopped, 0, 0, Ignore), (Started, 10, 0, Ignore)]
        );
    }

    #[test]
    fn a_swarm_that_opens_during_the_hold_queues_offers_until_the_first_frame() {
        let cfg = Config {
            min_swarm_size: 1,
            ..Config::default()
        };
        let mut e = joined(cfg, 0);
        assert_eq!(announces(&mut e), vec![(Started, 10, 0, Ignore)]);
        e.handle_input(at(300), counted(1));
        assert_eq!(announces(&mut e), vec![(Update, 10, 0, Queue)]);
        e.handle_input(at(900), Input::PlayerStarted);
        assert_eq!(announces(&mut e), vec![(Update, 10, 5, Answer)]);
        // P2P off closes the gate; on again, the swarm waits for the tracker's count anew.
        let policy = |on| Input::SetPolicy {
            p2p_enabled: on,
            upload_bytes_per_sec: 1_000_000,
        };
        e.handle_input(at(1_000), policy(false));
        e.handle_input(at(1_100), policy(true));
        assert_eq!(
            announces(&mut e),
            vec![(Stopped, 0, 0, Ignore), (Started, 10, 0, Ignore)]
        );
    }
}
