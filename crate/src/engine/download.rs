//! A segment being assembled: its chunk slots, who sent each chunk, and the bytes (over the
//! host's shared copy while they match it). Pure data with no outputs; the engine drives it.

use super::*;

pub(super) fn n_chunks(size: u64) -> u32 {
    size.div_ceil(CHUNK).min(u32::MAX as u64) as u32
}

pub(super) fn chunk_bounds(size: u64, chunk: u32) -> (u64, u64) {
    let start = (chunk as u64).saturating_mul(CHUNK).min(size);
    (start, start.saturating_add(CHUNK).min(size))
}

/// Who sent a received chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sender {
    Http,
    /// `Download::contributors[i]`.
    Peer(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Missing,
    Asked(ConnId),
    /// `trusted`: from HTTP or hash-verified.
    Got {
        from: Sender,
        trusted: bool,
    },
}

/// Where a download's size came from, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SizeSrc {
    /// Unknown, or only a peer's `Have`/`Downloading` (which may lie).
    Announced,
    /// The first peer `Data` that carried it.
    Data,
    /// Manifest, playlist byte range or the HTTP response.
    Origin,
}

/// Where received bytes lie in a shared buffer: `(buffer, offset)`.
pub(super) type Src<'a> = (&'a SegmentBytes, usize);

/// A download's bytes. While everything written equals the host's shared copy of the
/// segment (`Engine::set_shared_copies`), that copy stands in for the buffer and nothing is
/// copied; the first differing byte gives the download a buffer of its own.
#[derive(Debug, Default)]
pub(super) struct Assembly {
    /// Set while the shared copy stands in: `shared[..end]` is what was written, `end` the
    /// furthest byte written.
    pub(super) shared: Option<SegmentBytes>,
    pub(super) end: usize,
    /// Otherwise the download's own buffer, grown to the furthest byte written.
    pub(super) own: Vec<u8>,
}

impl Assembly {
    pub(super) fn over(shared: Option<SegmentBytes>) -> Self {
        Assembly {
            shared,
            ..Assembly::default()
        }
    }

    pub(super) fn len(&self) -> usize {
        match self.shared {
            Some(_) => self.end,
            None => self.own.len(),
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        match &self.shared {
            Some(b) => b.get(..self.end).unwrap_or_default(),
            None => &self.own,
        }
    }

    pub(super) fn get(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        self.as_slice().get(range)
    }

    /// Where offset `at` lies in a shared buffer, while the shared copy stands in.
    pub(super) fn src(&self, at: usize) -> Option<Src<'_>> {
        self.shared.as_ref().map(|b| (b, at))
    }

    /// Its own buffer from now on (a copy of what the shared one stood for).
    pub(super) fn own(&mut self) -> &mut Vec<u8> {
        if let Some(b) = self.shared.take() {
            self.own = Vec::with_capacity(b.len());
            self.own
                .extend_from_slice(b.get(..self.end).unwrap_or_default());
        }
        &mut self.own
    }

    /// Writes `bytes` at `at` of a segment of `size` bytes (`at + bytes.len() <= size`),
    /// zero-filling only a gap before `at`: chunks mostly arrive in order, and a
    /// whole-segment zero fill cost as much as the copies. `src`: `bytes` is known to be
    /// `src.0[src.1..]` (a `DataFrame`), so the same slice of the shared copy needs no
    /// comparison.
    pub(super) fn write_at(&mut self, size: usize, at: usize, bytes: &[u8], src: Option<Src<'_>>) {
        let end = at + bytes.len();
        if let Some(b) = &self.shared {
            let same = match src {
                Some((buf, off)) if Rc::ptr_eq(buf, b) && off == at => true,
                _ => b.get(at..end) == Some(bytes),
            };
            if same {
                self.end = self.end.max(end);
                return;
            }
        }
        let data = self.own();
        if data.capacity() < size {
            data.reserve_exact(size - data.len());
        }
        if at > data.len() {
            data.resize(at, 0);
        }
        let overlap = end.min(data.len()).saturating_sub(at);
        let (old, new) = bytes.split_at(overlap);
        if let Some(dst) = data.get_mut(at..at + overlap) {
            dst.copy_from_slice(old);
        }
        data.extend_from_slice(new);
    }

    /// The shared copy, if it stands in for all of its bytes.
    pub(super) fn whole_shared(&self) -> Option<&SegmentBytes> {
        self.shared.as_ref().filter(|b| b.len() == self.end)
    }

    pub(super) fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(self.own())
    }

    /// The bytes written: the shared copy if it stands in for all of them, else a buffer.
    pub(super) fn into_bytes(self) -> SegmentBytes {
        match self.whole_shared() {
            Some(b) => b.clone(),
            None => Rc::new(self.into_vec()),
        }
    }
}

/// A segment being assembled.
pub(super) struct Download {
    pub(super) url: String,
    pub(super) range: Option<ByteRange>,
    pub(super) size: Option<u64>,
    pub(super) size_src: SizeSrc,
    pub(super) data: Assembly,
    /// The host's shared copy of this segment, if it offered one (`Engine::set_shared_copies`).
    pub(super) shared: Option<SegmentBytes>,
    pub(super) slots: Vec<Slot>,
    pub(super) got_chunks: u32,
    pub(super) got_bytes: u64,
    pub(super) contributors: Vec<(ConnId, PeerId)>,
    pub(super) http: Option<HttpId>,
    /// Chunks `[a, b)` the running HTTP transfer will fill.
    pub(super) http_chunks: (u32, u32),
    pub(super) p2p: Vec<(ConnId, u32)>,
    pub(super) reqs: Vec<RequestId>,
    pub(super) wait_until: Option<Instant>,
    /// `Downloading` was announced to peers.
    pub(super) announced: bool,
    /// `Incoming` was announced to peers (we fetch it from peers; `Have` or `Lost` follows).
    pub(super) incoming: bool,
    /// Refetch over HTTP (after peers' bytes failed verification).
    pub(super) force_http: bool,
    /// After the CDN stalled on this segment: take it from peers until then.
    pub(super) avoid_http_until: Option<Instant>,
    pub(super) transfer_start: Option<Instant>,
    pub(super) first_byte: Option<Instant>,
    pub(super) http_bytes: u64,
    pub(super) p2p_bytes: u64,
    /// HTTP transfers of this segment that failed.
    pub(super) http_failures: u32,
}

impl Download {
    /// Whether peers were told this segment is coming (`Downloading` or `Incoming`): they
    /// are owed a `Have` or a `Lost`.
    pub(super) fn told_peers(&self) -> bool {
        self.announced || self.incoming
    }

    pub(super) fn new(
        url: String,
        range: Option<ByteRange>,
        size: Option<u64>,
        shared: Option<SegmentBytes>,
    ) -> Self {
        let mut d = Download {
            url,
            range,
            size: None,
            size_src: SizeSrc::Announced,
            data: Assembly::default(),
            shared,
            slots: Vec::new(),
            got_chunks: 0,
            got_bytes: 0,
            contributors: Vec::new(),
            http: None,
            http_chunks: (0, 0),
            p2p: Vec::new(),
            reqs: Vec::new(),
            wait_until: None,
            announced: false,
            incoming: false,
            force_http: false,
            avoid_http_until: None,
            transfer_start: None,
            first_byte: None,
            http_bytes: 0,
            p2p_bytes: 0,
            http_failures: 0,
        };
        if let Some(s) = size.filter(|&s| s > 0 && s <= MAX_SEGMENT_SIZE as u64) {
            d.set_size(s);
            d.size_src = SizeSrc::Origin;
        }
        d
    }

    /// Callers bound `size` by `MAX_SEGMENT_SIZE`. The buffer is allocated by the first
    /// write (`write_at`), so an announced size alone costs no memory.
    pub(super) fn set_size(&mut self, size: u64) {
        self.size = Some(size);
        self.data = Assembly::over(self.shared.clone().filter(|b| b.len() as u64 == size));
        self.slots = vec![Slot::Missing; n_chunks(size) as usize];
        self.got_chunks = 0;
        self.got_bytes = 0;
    }

    /// Writes `bytes` at segment offset `at` of the assembly (`Assembly::write_at`). False,
    /// writing nothing, if the size is unknown or the range passes its end.
    pub(super) fn write_at(&mut self, at: u64, bytes: &[u8], src: Option<Src<'_>>) -> bool {
        let Some(size) = self.size else {
            return false;
        };
        let end = at.saturating_add(bytes.len() as u64);
        if end > size {
            return false;
        }
        self.data.write_at(size as usize, at as usize, bytes, src);
        true
    }

    pub(super) fn is_complete(&self) -> bool {
        self.size.is_some() && self.got_chunks as usize == self.slots.len()
    }

    /// Runs of chunks nobody is fetching: not received, not asked of a peer, not covered by
    /// the running HTTP transfer. With an unknown size: everything, if nothing is running.
    pub(super) fn missing_runs(&self) -> Vec<(u32, u32)> {
        if self.size.is_none() {
            return if self.p2p.is_empty() && self.http.is_none() {
                vec![(0, MAX_CHUNKS)]
            } else {
                Vec::new()
            };
        }
        let mut runs = Vec::new();
        let mut start: Option<u32> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let i = i as u32;
            let covered = self.http.is_some() && i >= self.http_chunks.0 && i < self.http_chunks.1;
            let free = *slot == Slot::Missing && !covered;
            match (free, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            runs.push((s, self.slots.len() as u32));
        }
        runs
    }

    /// Every chunk not yet here is asked of a peer (and no wait is pending): more holders
    /// could take nothing, so planning would change nothing.
    pub(super) fn fully_asked(&self) -> bool {
        self.size.is_some()
            && self.http.is_none()
            && self.wait_until.is_none()
            && !self.p2p.is_empty()
            && !self.slots.contains(&Slot::Missing)
    }

    /// First and one-past-last chunk not yet received.
    pub(super) fn not_got_span(&self) -> Option<(u32, u32)> {
        let first = self
            .slots
            .iter()
            .position(|s| !matches!(s, Slot::Got { .. }))?;
        let last = self
            .slots
            .iter()
            .rposition(|s| !matches!(s, Slot::Got { .. }))?;
        Some((first as u32, last as u32 + 1))
    }

    /// `conn` as a sender of chunks, listed as a contributor. Past `u16::MAX - 1`
    /// contributors, a sender that lists none (its chunks count as a peer's all the same).
    pub(super) fn contributor(&mut self, conn: ConnId, peer: PeerId) -> Sender {
        if let Some(i) = self.contributors.iter().position(|c| c.0 == conn) {
            return Sender::Peer(i as u16);
        }
        if self.contributors.len() >= u16::MAX as usize - 1 {
            return Sender::Peer(u16::MAX);
        }
        self.contributors.push((conn, peer));
        Sender::Peer((self.contributors.len() - 1) as u16)
    }

    /// The peer that sent chunks as `from`, if listed.
    pub(super) fn sender_peer(&self, from: Sender) -> Option<(ConnId, PeerId)> {
        match from {
            Sender::Http => None,
            Sender::Peer(i) => self.contributors.get(usize::from(i)).copied(),
        }
    }

    /// Forgets chunks received from `pred`-matching contributors (by index).
    pub(super) fn discard_from(&mut self, mut pred: impl FnMut(u16) -> bool) -> u64 {
        let size = self.size.unwrap_or(0);
        let mut dropped = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Slot::Got {
                from: Sender::Peer(from),
                ..
            } = *slot
            {
                if pred(from) {
                    let (a, b) = chunk_bounds(size, i as u32);
                    *slot = Slot::Missing;
                    self.got_chunks = self.got_chunks.saturating_sub(1);
                    self.got_bytes = self.got_bytes.saturating_sub(b - a);
                    dropped += b - a;
                }
            }
        }
        dropped
    }
}

/// One of our requests to a peer: chunks `[first, end)` of `key`.
pub(super) struct P2pReq {
    pub(super) key: SegmentKey,
    pub(super) first: u32,
    pub(super) end: u32,
    pub(super) received: u32,
    pub(super) bytes: u64,
    pub(super) started: Instant,
    /// Start, then last `Data`: the stall clock.
    pub(super) last_at: Instant,
}

/// Our outstanding requests to peers, by `(connection, request id)`, and the ids they get.
/// The download each one serves lists it too (`Download::p2p`); the engine keeps both sides
/// in step (`apply_plan`, `release_p2p`).
pub(super) struct PeerRequests {
    open: BTreeMap<(ConnId, u32), P2pReq>,
    next_id: u32,
}

impl Default for PeerRequests {
    fn default() -> Self {
        PeerRequests {
            open: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl PeerRequests {
    /// Records a request for chunks `[first, end)` of `key` to `conn` at `now`; its id.
    pub(super) fn issue(
        &mut self,
        conn: ConnId,
        key: SegmentKey,
        first: u32,
        end: u32,
        now: Instant,
    ) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.open.insert(
            (conn, id),
            P2pReq {
                key,
                first,
                end,
                received: 0,
                bytes: 0,
                started: now,
                last_at: now,
            },
        );
        id
    }

    pub(super) fn get(&self, conn: ConnId, id: u32) -> Option<&P2pReq> {
        self.open.get(&(conn, id))
    }

    pub(super) fn get_mut(&mut self, conn: ConnId, id: u32) -> Option<&mut P2pReq> {
        self.open.get_mut(&(conn, id))
    }

    pub(super) fn remove(&mut self, conn: ConnId, id: u32) -> Option<P2pReq> {
        self.open.remove(&(conn, id))
    }

    /// The ids of our requests to `conn`.
    pub(super) fn of_conn(&self, conn: ConnId) -> Vec<u32> {
        self.open
            .range((conn, 0)..=(conn, u32::MAX))
            .map(|(k, _)| k.1)
            .collect()
    }

    /// Requests with no progress for `stall` at `now`.
    pub(super) fn stalled(&self, now: Instant, stall: std::time::Duration) -> Vec<(ConnId, u32)> {
        self.open
            .iter()
            .filter(|(_, r)| now >= r.last_at + stall)
            .map(|(k, _)| *k)
            .collect()
    }

    /// When the first request would count as stalled (`Timer::PeerStall`).
    pub(super) fn next_stall(&self, stall: std::time::Duration) -> Option<Instant> {
        self.open.values().map(|r| r.last_at + stall).min()
    }
}
