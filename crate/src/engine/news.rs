//! Segment news: the one owner of what this viewer tells its peers about its segments
//! (`Downloading`, `Incoming`, `Have`, `Lost`) and of `Download::announced` and
//! `Download::incoming`, the standing announcements that peers may be waiting on. Nothing
//! else sends these messages or writes those flags.

use super::*;

impl Engine {
    /// `Downloading`: we fetch `key` from the CDN and relay its chunks as they arrive.
    pub(super) fn announce_downloading(&mut self, key: SegmentKey, size: u32) {
        if let Some(d) = self.downloads.get_mut(&key) {
            d.announced = true;
        }
        self.broadcast(key.swarm, &Message::Downloading { seq: key.seq, size });
    }

    /// `Incoming`: `key` is on its way here from peers, `hops` away (1: we fetch it from a
    /// holder; more: we wait for a peer's `Incoming`). Told to as many peers that understand
    /// it as our upload budget can serve (`live_edge::incoming_fanout`); they may wait for
    /// our `Have` rather than fetch it from the CDN.
    pub(super) fn announce_incoming(&mut self, key: SegmentKey, hops: u8) {
        let bitrate = self
            .swarms
            .get(&key.swarm)
            .map_or(0, |s| u64::from(s.bitrate));
        let fanout = live_edge::incoming_fanout(self.config.upload_bytes_per_sec, bitrate);
        if fanout == 0 {
            return;
        }
        match self.downloads.get_mut(&key) {
            Some(d) if !d.told_peers() => d.incoming = true,
            _ => return,
        }
        self.broadcast_to(key.swarm, &Message::Incoming { seq: key.seq, hops }, fanout);
    }

    /// `Have`: `key` is in our cache.
    pub(super) fn announce_have(&mut self, key: SegmentKey, size: u32) {
        self.broadcast(key.swarm, &Message::Have { seq: key.seq, size });
    }

    /// `Lost`: a segment we told peers about is gone (evicted, dropped, or found bad).
    pub(super) fn announce_lost(&mut self, key: SegmentKey) {
        self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
    }

    /// Withdraws a standing `Downloading` for `key`: our relay would not continue (the CDN
    /// failed or stalled, or the bytes so far cannot be relayed).
    pub(super) fn withdraw_downloading(&mut self, key: SegmentKey) {
        let stood = self
            .downloads
            .get_mut(&key)
            .is_some_and(|d| std::mem::take(&mut d.announced));
        if stood {
            self.announce_lost(key);
        }
    }

    /// Withdraws a standing `Incoming` for `key` that no transfer backs (the wait it relayed
    /// ended).
    pub(super) fn withdraw_incoming(&mut self, key: SegmentKey) {
        let stood = self
            .downloads
            .get_mut(&key)
            .is_some_and(|d| !d.announced && std::mem::take(&mut d.incoming));
        if stood {
            self.announce_lost(key);
        }
    }

    /// P2P was turned off and every session closed: nothing we said stands.
    pub(super) fn forget_announcements(&mut self) {
        for d in self.downloads.values_mut() {
            d.announced = false;
            d.incoming = false;
        }
    }

    /// Sends news about a segment to the swarm's ready peers that can use it. `Have` and
    /// `Downloading` skip peers that announced holding the whole segment (they will not ask
    /// us for it); `Lost` goes only to peers we told about our copy and that lack it.
    fn broadcast(&mut self, swarm: SwarmId, msg: &Message) {
        self.broadcast_to(swarm, msg, usize::MAX);
    }

    fn broadcast_to(&mut self, swarm: SwarmId, msg: &Message, limit: usize) {
        let mut conns = self.ready_conns(swarm);
        let mut n = 0usize;
        // An `Incoming` is for peers that understand it and are not getting the segment
        // themselves.
        let incoming = matches!(msg, Message::Incoming { .. });
        match *msg {
            Message::Have { seq, .. }
            | Message::Downloading { seq, .. }
            | Message::Incoming { seq, .. } => conns.retain(|c| {
                let Some(s) = self.peers.get_mut(c) else {
                    return false;
                };
                if s.holds_complete(seq) == Some(true)
                    || (incoming
                        && (!s.has_capabilities(wire::CAP_INCOMING)
                            || s.incoming_hops(seq).is_some()
                            || s.holds(seq).is_some()))
                    || n >= limit
                {
                    return false;
                }
                n += 1;
                s.note_told(seq);
                true
            }),
            Message::Lost { seq } => conns.retain(|c| {
                self.peers
                    .get_mut(c)
                    .is_some_and(|s| s.take_told(seq) && s.holds_complete(seq) != Some(true))
            }),
            _ => {}
        }
        if conns.is_empty() {
            return;
        }
        let data = wire::encode(msg);
        for conn in conns {
            self.out.push_back(Output::SendToPeer {
                conn,
                data: data.clone(),
            });
        }
    }
}
