//! Fake CDN: publishes the media of one stream (live sliding window or fixed VOD list) and
//! streams segment bodies to each viewer over a link with its own bandwidth and latency.
//!
//! Invariants: a transfer delivers exactly the published bytes (or the requested range of
//! them), in order, in pieces of at most `PIECE` bytes; concurrent transfers of one viewer
//! share its bandwidth; a cancelled transfer sends nothing more. Every byte handed out is
//! counted against the viewer that received it.

use super::media::Media;
use super::{Ev, Queue};
use shoal::{ByteRange, HttpId, SegmentInfo, Seq};
use std::collections::HashMap;
use std::rc::Rc;

/// Bytes per `HttpProgress` (a fetch body stream yields pieces of this order).
pub const PIECE: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Requests started in the window fail (HTTP 503); transfers running when it begins
    /// fail with a network error.
    Fail,
    /// No bytes flow during the window; transfers resume afterwards.
    Stall,
    /// The viewer's CDN path carries at most this many bytes/s during the window (shared by
    /// its concurrent transfers, like the link).
    Throttle { bytes_per_sec: u64 },
}

#[derive(Clone, Debug)]
pub struct CdnFault {
    /// `None` = every viewer.
    pub viewer: Option<usize>,
    pub from_ms: u64,
    pub until_ms: u64,
    pub kind: FaultKind,
}

#[derive(Clone, Copy, Debug)]
pub struct CdnLink {
    pub bytes_per_sec: u64,
    pub latency_ms: u64,
}

/// Who asked for a transfer: the engine (echo `HttpId`) or the player itself (fallback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Engine(HttpId),
    Player { seq: Seq },
}

struct Transfer {
    viewer: usize,
    owner: Owner,
    body: Rc<[u8]>,
    start: usize,
    end: usize,
    sent: usize,
}

/// What one step of a transfer produced.
pub struct Piece {
    pub viewer: usize,
    pub owner: Owner,
    pub data: Vec<u8>,
    /// Body length, set on the first piece only.
    pub total: Option<u64>,
    pub done: bool,
}

pub struct Cdn {
    pub media: Media,
    /// Live: how many segments the playlist lists. `None` = VOD.
    pub live_window: Option<u64>,
    pub vod_segments: u64,
    pub links: Vec<CdnLink>,
    pub faults: Vec<CdnFault>,
    transfers: HashMap<u64, Transfer>,
    by_http: HashMap<(usize, HttpId), u64>,
    active: Vec<u32>,
    next_tid: u64,
    /// Bytes served to each viewer's engine / player.
    pub served_engine: Vec<u64>,
    pub served_player: Vec<u64>,
    pub requests: Vec<u64>,
    /// Transfers a `Stall` fault held up / a `Fail` fault failed / pieces a `Throttle`
    /// fault slowed, per viewer.
    pub fault_hits: Vec<u64>,
}

impl Cdn {
    pub fn new(
        media: Media,
        live_window: Option<u64>,
        vod_segments: u64,
        links: Vec<CdnLink>,
    ) -> Self {
        let n = links.len();
        Cdn {
            media,
            live_window,
            vod_segments,
            links,
            faults: Vec::new(),
            transfers: HashMap::new(),
            by_http: HashMap::new(),
            active: vec![0; n],
            next_tid: 0,
            served_engine: vec![0; n],
            served_player: vec![0; n],
            requests: vec![0; n],
            fault_hits: vec![0; n],
        }
    }

    /// Newest published sequence number. Live: the window is full at time 0 and one
    /// segment is added every segment duration.
    pub fn edge(&self, now_ms: u64) -> Seq {
        match self.live_window {
            Some(w) => w.saturating_sub(1) + now_ms / self.media.duration_ms,
            None => self.vod_segments.saturating_sub(1),
        }
    }

    pub fn published(&self, seq: Seq, now_ms: u64) -> bool {
        seq <= self.edge(now_ms)
    }

    /// The playlist as fetched at `now_ms`.
    pub fn playlist(&self, rendition: u32, now_ms: u64) -> Vec<SegmentInfo> {
        let edge = self.edge(now_ms);
        let first = match self.live_window {
            Some(w) => (edge + 1).saturating_sub(w),
            None => 0,
        };
        let dur = self.media.duration_ms;
        (first..=edge)
            .map(|seq| SegmentInfo {
                seq,
                start_ms: seq * dur,
                duration_ms: dur as u32,
                url: self.media.segment_url(rendition, seq),
                range: None,
            })
            .collect()
    }

    fn fault(&self, viewer: usize, now_ms: u64, kind: FaultKind) -> Option<&CdnFault> {
        self.faults.iter().find(|f| {
            f.kind == kind
                && f.viewer.is_none_or(|v| v == viewer)
                && f.from_ms <= now_ms
                && now_ms < f.until_ms
        })
    }

    /// The viewer's bandwidth at `now_ms`: its link, or less while a `Throttle` fault holds.
    fn bandwidth(&self, viewer: usize, now_ms: u64) -> (u64, bool) {
        let link = self.links[viewer].bytes_per_sec;
        let throttle = self.faults.iter().find_map(|f| match f.kind {
            FaultKind::Throttle { bytes_per_sec }
                if f.viewer.is_none_or(|v| v == viewer)
                    && f.from_ms <= now_ms
                    && now_ms < f.until_ms =>
            {
                Some(bytes_per_sec)
            }
            _ => None,
        });
        match throttle {
            Some(t) if t < link => (t, true),
            _ => (link, false),
        }
    }

    /// Starts a transfer; its pieces (or its failure) arrive as queued events.
    pub fn start(
        &mut self,
        q: &mut Queue,
        now_ms: u64,
        viewer: usize,
        owner: Owner,
        url: &str,
        range: Option<ByteRange>,
    ) {
        self.requests[viewer] += 1;
        let tid = self.next_tid;
        self.next_tid += 1;
        let latency = self.links[viewer].latency_ms;
        if self.fault(viewer, now_ms, FaultKind::Fail).is_some() {
            self.fault_hits[viewer] += 1;
            q.push(
                now_ms + latency,
                Ev::HttpFail {
                    viewer,
                    owner,
                    status: 503,
                },
            );
            return;
        }
        let body = self
            .media
            .parse_url(url)
            .filter(|(_, seq)| self.published(*seq, now_ms))
            .and_then(|(r, seq)| self.media.segment(r, seq));
        let Some(body) = body else {
            q.push(
                now_ms + latency,
                Ev::HttpFail {
                    viewer,
                    owner,
                    status: 404,
                },
            );
            return;
        };
        let (start, end) = match range {
            Some(r) if r.start <= r.end && (r.end as usize) <= body.len() => {
                (r.start as usize, r.end as usize)
            }
            Some(_) => {
                q.push(
                    now_ms + latency,
                    Ev::HttpFail {
                        viewer,
                        owner,
                        status: 416,
                    },
                );
                return;
            }
            None => (0, body.len()),
        };
        self.transfers.insert(
            tid,
            Transfer {
                viewer,
                owner,
                body,
                start,
                end,
                sent: 0,
            },
        );
        if let Owner::Engine(id) = owner {
            self.by_http.insert((viewer, id), tid);
        }
        self.active[viewer] += 1;
        let share = (self.bandwidth(viewer, now_ms).0 / self.active[viewer] as u64).max(1);
        let first = ((end - start).min(PIECE) as u64 * 1000).div_ceil(share);
        q.push(now_ms + latency + first, Ev::HttpPiece { tid });
    }

    pub fn cancel(&mut self, viewer: usize, id: HttpId) -> bool {
        match self.by_http.remove(&(viewer, id)) {
            Some(tid) => {
                self.finish(tid);
                true
            }
            None => false,
        }
    }

    /// Drops every transfer of a viewer that left.
    pub fn drop_viewer(&mut self, viewer: usize) {
        let mut tids: Vec<u64> = self
            .transfers
            .iter()
            .filter(|(_, t)| t.viewer == viewer)
            .map(|(k, _)| *k)
            .collect();
        tids.sort_unstable();
        for tid in tids {
            self.finish(tid);
        }
    }

    fn finish(&mut self, tid: u64) -> Option<Transfer> {
        let t = self.transfers.remove(&tid)?;
        if let Owner::Engine(id) = t.owner {
            self.by_http.remove(&(t.viewer, id));
        }
        self.active[t.viewer] = self.active[t.viewer].saturating_sub(1);
        Some(t)
    }

    /// Sends the next piece of transfer `tid` (if it still runs) and schedules the one after.
    pub fn piece(&mut self, q: &mut Queue, now_ms: u64, tid: u64) -> Option<Piece> {
        let (viewer, owner) = {
            let t = self.transfers.get(&tid)?;
            (t.viewer, t.owner)
        };
        if let Some(f) = self.fault(viewer, now_ms, FaultKind::Stall) {
            let until = f.until_ms;
            self.fault_hits[viewer] += 1;
            q.push(until, Ev::HttpPiece { tid });
            return None;
        }
        if self.fault(viewer, now_ms, FaultKind::Fail).is_some() {
            self.fault_hits[viewer] += 1;
            self.finish(tid);
            q.push(
                now_ms,
                Ev::HttpFail {
                    viewer,
                    owner,
                    status: 0,
                },
            );
            return None;
        }
        let (bw, throttled) = self.bandwidth(viewer, now_ms);
        if throttled {
            self.fault_hits[viewer] += 1;
        }
        let share = (bw / self.active[viewer].max(1) as u64).max(1);
        let t = self.transfers.get_mut(&tid)?;
        let total = if t.sent == 0 {
            Some((t.end - t.start) as u64)
        } else {
            None
        };
        let from = t.start + t.sent;
        let to = (from + PIECE).min(t.end);
        let data = t.body[from..to].to_vec();
        t.sent += data.len();
        let done = t.start + t.sent >= t.end;
        match owner {
            Owner::Engine(_) => self.served_engine[viewer] += data.len() as u64,
            Owner::Player { .. } => self.served_player[viewer] += data.len() as u64,
        }
        if done {
            self.finish(tid);
        } else {
            // Time the *next* piece needs on this viewer's share of the link.
            let next_len = (t.end - t.start - t.sent).min(PIECE) as u64;
            let ms = (next_len * 1000).div_ceil(share).max(1);
            q.push(now_ms + ms, Ev::HttpPiece { tid });
        }
        Some(Piece {
            viewer,
            owner,
            data,
            total,
            done,
        })
    }
}
