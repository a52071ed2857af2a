//! Glue to `integrity::spot_check`: offers delivered peer segments for sampling and acts on
//! its verdicts (bans the peers whose bytes differed from the CDN's).

use super::*;

impl Engine {
    /// A segment no manifest vouched for was delivered: maybe sample it for a spot check.
    pub(super) fn spot_offer(&mut self, key: SegmentKey, d: &Download, data: &[u8]) {
        if !self.spot.enabled() {
            return;
        }
        let senders: Vec<Option<PeerId>> = d
            .slots
            .iter()
            .map(|s| match s {
                Slot::Got { from, .. } => d.sender_peer(*from).map(|c| c.1),
                _ => None,
            })
            .collect();
        if d.url.is_empty() {
            // Learned from peers ahead of the playlist: offered once the playlist names it
            // (`spot_offer_named`).
            self.unnamed.insert(key, senders);
            while self.unnamed.len() > MAX_UNNAMED {
                self.unnamed.pop_first();
            }
            return;
        }
        self.spot.offer(key, &d.url, d.range, data, &senders);
    }

    /// The playlist named a segment that was finished before its URL was known.
    pub(super) fn spot_offer_named(
        &mut self,
        key: SegmentKey,
        url: &str,
        range: Option<ByteRange>,
    ) {
        let Some(senders) = self.unnamed.remove(&key) else {
            return;
        };
        if let Some(data) = self.store.get_shared(&key) {
            self.spot.offer(key, url, range, &data, &senders);
        }
    }

    /// Low priority: a spot-check transfer starts only while no transfer for the player runs
    /// and the CDN looks healthy, so it never competes with playback.
    pub(super) fn pump_spot_check(&mut self, now: Instant) {
        if !self.spot.wants_transfer() || !self.http.is_empty() || self.cdn.is_degraded() {
            return;
        }
        let id = self.http.next_id();
        if let Some((url, range)) = self.spot.start(id, now) {
            self.http.take_id();
            self.out.push_back(Output::StartHttp { id, url, range });
        }
    }

    /// The CDN's copy differed: ban the peers that sent the differing chunks (connected or
    /// not), stop sharing the segment, report it.
    pub(super) fn on_spot_verdict(&mut self, verdict: SpotVerdict) {
        let SpotVerdict::Mismatch { sample, liars } = verdict else {
            self.reschedule();
            return;
        };
        let key = sample.key;
        for &peer in &liars {
            let conns: Vec<ConnId> = self
                .peers
                .values()
                .filter(|s| s.peer == peer)
                .map(|s| s.conn)
                .collect();
            // Gone since: banned all the same, so it is refused if it comes back.
            if conns.is_empty() && self.peers.ban(peer) {
                self.tally.peer_banned();
                self.event(Event::PeerBanned {
                    swarm: key.swarm,
                    peer,
                    reason: BanReason::CorruptData,
                });
            }
            for conn in conns {
                self.ban(conn, BanReason::CorruptData);
            }
        }
        if self.store.remove(&key).is_some() && self.sharing() {
            self.announce_lost(key);
        }
        self.event(Event::SpotCheckFailed {
            swarm: key.swarm,
            seq: key.seq,
            peers: liars,
        });
        self.reschedule();
    }
}
