//! A player model close to hls.js: one segment request at a time, the next one as soon as
//! the buffer ahead of the playhead is below a target; playback in real time from the first
//! appended segment; a stall whenever the playhead reaches the end of the buffer.
//!
//! Invariants: the buffer is one contiguous range (a live jump restarts it); playback time
//! advances only while `Playing`; every stall is counted once, with its exact duration.

use shoal::{RequestId, SegmentInfo, Seq, SwarmId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayState {
    /// Joined, nothing appended yet.
    Waiting,
    Playing,
    Stalled {
        since: u64,
    },
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub seq: Seq,
    /// The engine request, or `None` while the player fetches it from the CDN itself.
    pub req: Option<RequestId>,
    pub since: u64,
}

/// One segment handed to the player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: Seq,
    pub at_ms: u64,
    pub http_bytes: u64,
    pub p2p_bytes: u64,
    pub from_cache: bool,
    /// Fetched by the player itself after `FailSegment` or a bad delivery.
    pub direct: bool,
}

pub struct Player {
    pub swarm: SwarmId,
    pub rendition: u32,
    pub live: bool,
    pub target_ahead_ms: u64,
    /// Live: start this many segments from the end of the playlist (hls.js liveSyncDurationCount).
    pub start_behind: u64,
    pub playlist: Vec<SegmentInfo>,
    pub next_seq: Option<Seq>,
    pub pending: Option<Pending>,
    next_req: u32,
    pub buf_start: u64,
    pub buf_end: u64,
    pub pos: u64,
    pub state: PlayState,
    last_advance: u64,
    pub joined_at: u64,
    pub started_at: Option<u64>,
    pub stalls: u32,
    pub stalled_ms: u64,
    pub corrupted: u32,
    pub failed: u32,
    pub skipped: u32,
    pub deliveries: Vec<Delivery>,
    pub last_playhead: Option<u64>,
}

impl Player {
    pub fn new(
        swarm: SwarmId,
        rendition: u32,
        live: bool,
        target_ahead_ms: u64,
        start_behind: u64,
        now: u64,
    ) -> Self {
        Player {
            swarm,
            rendition,
            live,
            target_ahead_ms,
            start_behind,
            playlist: Vec::new(),
            next_seq: None,
            pending: None,
            next_req: 1,
            buf_start: 0,
            buf_end: 0,
            pos: 0,
            state: PlayState::Waiting,
            last_advance: now,
            joined_at: now,
            started_at: None,
            stalls: 0,
            stalled_ms: 0,
            corrupted: 0,
            failed: 0,
            skipped: 0,
            deliveries: Vec::new(),
            last_playhead: None,
        }
    }

    pub fn info(&self, seq: Seq) -> Option<&SegmentInfo> {
        self.playlist.iter().find(|s| s.seq == seq)
    }

    fn last_seq(&self) -> Option<Seq> {
        self.playlist.last().map(|s| s.seq)
    }

    pub fn on_playlist(&mut self, segments: Vec<SegmentInfo>) {
        self.playlist = segments;
        let (Some(first), Some(last)) = (self.playlist.first().map(|s| s.seq), self.last_seq())
        else {
            return;
        };
        match self.next_seq {
            None => {
                let start = if self.live {
                    (last + 1).saturating_sub(self.start_behind).max(first)
                } else {
                    first
                };
                self.next_seq = Some(start);
            }
            // Fell out of the live window: jump to the live start position, like hls.js.
            Some(next) if self.live && next < first && self.pending.is_none() => {
                self.skipped += 1;
                self.next_seq = Some((last + 1).saturating_sub(self.start_behind).max(first));
            }
            _ => {}
        }
    }

    /// Moves the playhead to `now`, entering a stall (or the end) when the buffer runs out.
    pub fn advance(&mut self, now: u64) {
        if self.state == PlayState::Playing {
            let pos = self.pos + now.saturating_sub(self.last_advance);
            if pos >= self.buf_end {
                let hit_at = now - (pos - self.buf_end);
                self.pos = self.buf_end;
                let finished = !self.live
                    && self
                        .next_seq
                        .is_some_and(|n| self.last_seq().is_some_and(|l| n > l));
                if finished {
                    self.state = PlayState::Ended;
                } else {
                    self.stalls += 1;
                    self.state = PlayState::Stalled { since: hit_at };
                }
            } else {
                self.pos = pos;
            }
        }
        self.last_advance = now;
    }

    pub fn buffered_ahead(&self) -> u64 {
        match self.state {
            PlayState::Waiting => 0,
            _ => self.buf_end.saturating_sub(self.pos),
        }
    }

    /// The next segment to request, if the player wants one now.
    pub fn want(&self) -> Option<SegmentInfo> {
        if self.pending.is_some()
            || self.state == PlayState::Ended
            || self.buffered_ahead() >= self.target_ahead_ms
        {
            return None;
        }
        self.info(self.next_seq?).cloned()
    }

    pub fn new_request(&mut self, seq: Seq, now: u64) -> RequestId {
        let req = RequestId(self.next_req);
        self.next_req += 1;
        self.pending = Some(Pending {
            seq,
            req: Some(req),
            since: now,
        });
        req
    }

    /// Appends a complete, verified segment.
    pub fn append(&mut self, now: u64, seq: Seq, start_ms: u64, duration_ms: u64, d: Delivery) {
        self.advance(now);
        let first = self.state == PlayState::Waiting;
        match self.state {
            PlayState::Waiting => {
                self.buf_start = start_ms;
                self.pos = start_ms;
                self.started_at = Some(now);
                self.state = PlayState::Playing;
            }
            PlayState::Stalled { since } => {
                self.stalled_ms += now - since;
                self.state = PlayState::Playing;
            }
            _ => {}
        }
        if start_ms != self.buf_end && !first {
            // Discontinuity (live jump): the new range replaces the old one.
            self.buf_start = start_ms;
            self.pos = start_ms;
        }
        self.buf_end = start_ms + duration_ms;
        self.next_seq = Some(seq + 1);
        self.pending = None;
        self.last_advance = now;
        self.deliveries.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: Seq) -> SegmentInfo {
        SegmentInfo {
            seq,
            start_ms: seq * 2_000,
            duration_ms: 2_000,
            url: String::new(),
            range: None,
        }
    }

    fn delivery(seq: Seq, at_ms: u64) -> Delivery {
        Delivery {
            seq,
            at_ms,
            http_bytes: 1,
            p2p_bytes: 0,
            from_cache: false,
            direct: false,
        }
    }

    #[test]
    fn stall_is_counted_once_with_its_exact_length() {
        let mut p = Player::new(SwarmId::default(), 0, true, 6_000, 3, 1_000);
        p.on_playlist((0..6).map(seg).collect());
        assert_eq!(
            p.want().map(|s| s.seq),
            Some(3),
            "live start: 3 segments from the end"
        );
        p.new_request(3, 1_000);
        p.append(1_500, 3, 6_000, 2_000, delivery(3, 1_500));
        assert_eq!(p.started_at, Some(1_500));
        // The playhead reaches the end of the buffer at 3 500; segment 4 arrives at 4 250.
        p.advance(3_000);
        assert_eq!(p.state, PlayState::Playing);
        p.advance(4_000);
        assert_eq!(p.state, PlayState::Stalled { since: 3_500 });
        p.advance(4_100);
        p.new_request(4, 4_100);
        p.append(4_250, 4, 8_000, 2_000, delivery(4, 4_250));
        assert_eq!((p.stalls, p.stalled_ms, p.pos), (1, 750, 8_000));
        assert_eq!(p.buffered_ahead(), 2_000);
    }

    #[test]
    fn vod_end_is_not_a_stall() {
        let mut p = Player::new(SwarmId::default(), 0, false, 30_000, 3, 0);
        p.on_playlist((0..2).map(seg).collect());
        for s in 0..2 {
            p.new_request(s, 0);
            p.append(10, s, s * 2_000, 2_000, delivery(s, 10));
        }
        assert!(p.want().is_none());
        p.advance(10_000);
        assert_eq!((p.state, p.stalls), (PlayState::Ended, 0));
    }
}
