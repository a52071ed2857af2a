//! Segment news: the one owner of what this viewer tells its peers about its segments
//! (`Downloading`, `Have`, `Lost`) and of `Download::announced`, the standing `Downloading`
//! that peers may be waiting on. Nothing else sends these messages or writes that flag.

use super::*;

impl Engine {
    /// `Downloading`: we fetch `key` from the CDN and relay its chunks as they arrive.
    pub(super) fn announce_downloading(&mut self, key: SegmentKey, size: u32) {
        if let Some(d) = self.downloads.get_mut(&key) {
            d.announced = true;
        }
        self.broadcast(key.swarm, &Message::Downloading { seq: key.seq, size });
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

    /// P2P was turned off and every session closed: nothing we said stands.
    pub(super) fn forget_announcements(&mut self) {
        for d in self.downloads.values_mut() {
            d.announced = false;
        }
    }

    /// Sends news about a segment to the swarm's ready peers that can use it. `Have` and
    /// `Downloading` skip peers that announced holding the whole segment (they will not ask
    /// us for it); `Lost` goes only to peers we told about our copy and that lack it.
    fn broadcast(&mut self, swarm: SwarmId, msg: &Message) {
        let mut conns = self.ready_conns(swarm);
        match *msg {
            Message::Have { seq, .. } | Message::Downloading { seq, .. } => conns.retain(|c| {
                let Some(s) = self.peers.get_mut(c) else {
                    return false;
                };
                if s.holds_complete(seq) == Some(true) {
                    return false;
                }
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
