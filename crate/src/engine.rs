//! The sans-IO state machine: every delivery decision of a Shoal viewer.
//!
//! The host feeds [`Input`]s with the current time and drains [`Output`]s; the engine never
//! reads a clock, draws entropy other than its seeded ChaCha8, or does I/O.
//!
//! Invariants:
//! - A player request is answered exactly once: `DeliverSegment` (verified bytes) or
//!   `FailSegment` (the host falls back to plain HTTP); `SegmentAborted` ends it silently.
//! - Nothing from a peer reaches the player or another peer before it passed
//!   `integrity::check_chunk` and, for the whole segment, `check_segment` and the manifest
//!   hash when one is known. HTTP bytes are the origin's and are relayed as they arrive.
//! - Untrusted input never panics: malformed or lying peers get strikes, then a ban.
//! - Work per input is bounded by the downloads in flight and the connected peers, never
//!   by the length of a playlist.
//! - All maps that are iterated are ordered (`BTreeMap`), so a run is a pure function of
//!   the seed and the inputs.
//!
//! Source policy (see `scheduler::live_edge` for the CDN-fetch coordination):
//! - urgent (deadline < `urgent_window_ms`, or no playhead known) player requests go over
//!   HTTP at once, unless peers already deliver them on pace for the deadline;
//! - other player requests come from peers that announced them (`Have`/`Downloading`);
//!   if nobody did, the viewer waits the live-edge delay, then fetches over HTTP and
//!   announces `Downloading`; a viewer that just joined and has no peer yet waits for the
//!   ones the tracker counted (`scheduler::live_edge::join_wait`);
//! - a segment's deadline is the time until the playhead reaches it, or, while nothing is
//!   buffered at the playhead (startup, seek, live join), now;
//! - prefetch (ahead of the player's latest request, within `prefetch_window_ms`) only
//!   ever uses peers.
//!
//! Upload policy: with `upload_bytes_per_sec == 0` (or P2P disabled) the engine announces
//! nothing (an empty availability), so peers do not count on it, and answers any
//! `Request` with `Busy{retry_after_ms: 65535}`.

use crate::health;
use crate::integrity::spot_check::{SpotChecker, Verdict as SpotVerdict};
use crate::integrity::{self, Manifest, ManifestEntry};
use crate::peers::session::{MAX_DOWN_REQUESTS, MAX_UP_REQUESTS};
use crate::peers::{Avail, Ewma, PeerState, Session, TokenBucket, UpRequest};
use crate::scheduler::{live_edge, picker};
use crate::stats::Counters;
use crate::store::{SegmentBytes, Store};
use crate::types::*;
use crate::wire::{
    self, Message, CHUNK_SIZE, MAX_BITFIELD_BYTES, MAX_SEGMENT_SIZE, PROTOCOL_VERSION,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

/// A host's source of shared segment bytes (`Engine::set_interner`): given a segment's URL
/// and range, it may return a shared buffer that it believes holds the segment's bytes.
/// The engine only ever uses the bytes it received: the buffer stands in for its own copy
/// as long as every byte received equals it.
pub type Interner = Box<dyn Fn(&str, Option<ByteRange>) -> Option<SegmentBytes>>;

const CHUNK: u64 = CHUNK_SIZE as u64;
/// Chunks in the largest allowed segment: "all chunks" when the size is not known yet.
const MAX_CHUNKS: u32 = MAX_SEGMENT_SIZE.div_ceil(CHUNK_SIZE as u32);
/// RTT probes per session. Only the score uses the RTT (the browser's ICE consent checks
/// keep the connection alive), so a slow probe rate is enough and keeps idle swarms quiet:
/// one at the handshake, then one a minute (at 15 s, Ping/Pong were a third of all messages
/// in a steady live swarm).
const PING_INTERVAL_MS: u64 = 60_000;
/// A Ping still unanswered after this long is replaced; before that a new Ping is not sent,
/// so a Pong queued behind a busy uplink still matches and is never taken for a violation.
const PING_REPLACE_MS: u64 = 60_000;
/// How often an urgent segment that peers are delivering is re-checked for pace.
const PACE_CHECK_MS: u64 = 250;
/// Margin kept between the estimated P2P finish and the deadline.
const PACE_MARGIN_MS: i64 = 300;
const BUSY_RETRY_MS: u16 = 1_000;
/// An HTTP body without Content-Length larger than this is abandoned (fail open).
const MAX_UNSIZED_BODY: usize = 256 * 1024 * 1024;
/// Segments looked at per prefetch pass.
const PREFETCH_SCAN: usize = 64;
/// A segment ending this close past the player's buffered end counts as buffered (buffered
/// ranges and segment times differ by a frame or a rounding).
const BUFFERED_SLACK_MS: u64 = 250;
/// An HTTP transfer without a (first or next) byte for this long marks the CDN degraded.
const CDN_SLOW_MS: u64 = 1_000;
/// HTTP failures of one segment before its request fails open to the host.
const MAX_HTTP_FAILURES: u32 = 3;
/// After a failed HTTP transfer, its segment is taken from peers for this long.
const CDN_RETRY_MS: u64 = 4_000;
/// `Absent` answers for announced segments, with no completed request between, per strike.
const ABSENTS_TO_STRIKE: u32 = 3;
/// What an urgent segment keeps in hand for an HTTP fetch when peers are tried first:
/// this plus twice the last segment's HTTP time (see `http_reserve_ms`).
const HTTP_RESERVE_MIN_MS: i64 = 500;
/// A size probe (one chunk asked of a holder known by its Bitfield) for an urgent segment
/// counts as on pace for this long.
const URGENT_FIRST_BYTE_MS: u64 = 500;

fn n_chunks(size: u64) -> u32 {
    size.div_ceil(CHUNK).min(u32::MAX as u64) as u32
}

fn chunk_bounds(size: u64, chunk: u32) -> (u64, u64) {
    let start = (chunk as u64).saturating_mul(CHUNK).min(size);
    (start, start.saturating_add(CHUNK).min(size))
}

#[derive(Clone, Copy, Debug)]
struct Playhead {
    swarm: SwarmId,
    position_ms: u64,
    buffered_ahead_ms: u64,
    rate: f64,
    at: Instant,
    /// A segment was delivered to the player since this report: an empty buffer in it may
    /// be filled by now.
    filled: bool,
}

impl Playhead {
    fn elapsed_media_ms(&self, now: Instant) -> f64 {
        now.as_millis().saturating_sub(self.at.as_millis()) as f64 * self.rate
    }
    fn position(&self, now: Instant) -> f64 {
        self.position_ms as f64 + self.elapsed_media_ms(now)
    }
}

struct Swarm {
    container: Container,
    /// Sorted by seq, as last listed.
    segments: Vec<SegmentInfo>,
    conns: Vec<ConnId>,
    next_announce: Option<Instant>,
    max_requested: Option<Seq>,
    /// When this viewer last announced `Started` in the swarm (its peers are being connected).
    joined_at: Option<Instant>,
    /// Other viewers in the swarm by the tracker's last count (`None`: not heard yet).
    tracker_peers: Option<u32>,
    /// Nominal bitrate from the playlist, bit/s (0 = unknown).
    bitrate: u32,
}

impl Swarm {
    fn segment(&self, seq: Seq) -> Option<&SegmentInfo> {
        let i = self.segments.partition_point(|s| s.seq < seq);
        self.segments.get(i).filter(|s| s.seq == seq)
    }
    fn seq_at(&self, position_ms: u64) -> Option<Seq> {
        let i = self.segments.partition_point(|s| s.start_ms <= position_ms);
        i.checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map(|s| s.seq)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Missing,
    Asked(ConnId),
    /// `from`: 0 = HTTP, i + 1 = `contributors[i]`. `trusted`: from HTTP or hash-verified.
    Got {
        from: u16,
        trusted: bool,
    },
}

/// Where a download's size came from, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SizeSrc {
    /// Unknown, or only a peer's `Have`/`Downloading` (which may lie).
    Announced,
    /// The first peer `Data` that carried it.
    Data,
    /// Manifest, playlist byte range or the HTTP response.
    Origin,
}

/// Where received bytes lie in a shared buffer: `(buffer, offset)`.
type Src<'a> = (&'a SegmentBytes, usize);

/// A download's bytes. While everything written equals the host's shared copy of the
/// segment (`Engine::set_interner`), that copy stands in for the buffer and nothing is
/// copied; the first differing byte gives the download a buffer of its own.
#[derive(Debug, Default)]
struct Assembly {
    /// Set while the shared copy stands in: `shared[..end]` is what was written, `end` the
    /// furthest byte written.
    shared: Option<SegmentBytes>,
    end: usize,
    /// Otherwise the download's own buffer, grown to the furthest byte written.
    own: Vec<u8>,
}

impl Assembly {
    fn over(shared: Option<SegmentBytes>) -> Self {
        Assembly {
            shared,
            ..Assembly::default()
        }
    }

    fn len(&self) -> usize {
        match self.shared {
            Some(_) => self.end,
            None => self.own.len(),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match &self.shared {
            Some(b) => b.get(..self.end).unwrap_or_default(),
            None => &self.own,
        }
    }

    fn get(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        self.as_slice().get(range)
    }

    /// Where offset `at` lies in a shared buffer, while the shared copy stands in.
    fn src(&self, at: usize) -> Option<Src<'_>> {
        self.shared.as_ref().map(|b| (b, at))
    }

    /// Its own buffer from now on (a copy of what the shared one stood for).
    fn own(&mut self) -> &mut Vec<u8> {
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
    fn write_at(&mut self, size: usize, at: usize, bytes: &[u8], src: Option<Src<'_>>) {
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
    fn whole_shared(&self) -> Option<&SegmentBytes> {
        self.shared.as_ref().filter(|b| b.len() == self.end)
    }

    fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(self.own())
    }

    /// The bytes written: the shared copy if it stands in for all of them, else a buffer.
    fn into_bytes(self) -> SegmentBytes {
        match self.whole_shared() {
            Some(b) => b.clone(),
            None => Rc::new(self.into_vec()),
        }
    }
}

/// A segment being assembled.
struct Download {
    url: String,
    range: Option<ByteRange>,
    size: Option<u64>,
    size_src: SizeSrc,
    data: Assembly,
    /// The host's shared copy of this segment, if it offered one (`Engine::set_interner`).
    shared: Option<SegmentBytes>,
    slots: Vec<Slot>,
    got_chunks: u32,
    got_bytes: u64,
    contributors: Vec<(ConnId, PeerId)>,
    http: Option<HttpId>,
    /// Chunks `[a, b)` the running HTTP transfer will fill.
    http_chunks: (u32, u32),
    p2p: Vec<(ConnId, u32)>,
    reqs: Vec<RequestId>,
    wait_until: Option<Instant>,
    /// `Downloading` was announced to peers.
    announced: bool,
    /// Refetch over HTTP (after peers' bytes failed verification).
    force_http: bool,
    /// After the CDN stalled on this segment: take it from peers until then.
    avoid_http_until: Option<Instant>,
    transfer_start: Option<Instant>,
    first_byte: Option<Instant>,
    http_bytes: u64,
    p2p_bytes: u64,
    /// HTTP transfers of this segment that failed.
    http_failures: u32,
}

impl Download {
    fn new(
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
    fn set_size(&mut self, size: u64) {
        self.size = Some(size);
        self.data = Assembly::over(self.shared.clone().filter(|b| b.len() as u64 == size));
        self.slots = vec![Slot::Missing; n_chunks(size) as usize];
        self.got_chunks = 0;
        self.got_bytes = 0;
    }

    /// Writes `bytes` at segment offset `at` of the assembly (`Assembly::write_at`). False,
    /// writing nothing, if the size is unknown or the range passes its end.
    fn write_at(&mut self, at: u64, bytes: &[u8], src: Option<Src<'_>>) -> bool {
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

    fn is_complete(&self) -> bool {
        self.size.is_some() && self.got_chunks as usize == self.slots.len()
    }

    /// Runs of chunks nobody is fetching: not received, not asked of a peer, not covered by
    /// the running HTTP transfer. With an unknown size: everything, if nothing is running.
    fn missing_runs(&self) -> Vec<(u32, u32)> {
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
    fn fully_asked(&self) -> bool {
        self.size.is_some()
            && self.http.is_none()
            && self.wait_until.is_none()
            && !self.p2p.is_empty()
            && !self.slots.contains(&Slot::Missing)
    }

    /// First and one-past-last chunk not yet received.
    fn not_got_span(&self) -> Option<(u32, u32)> {
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

    fn contributor(&mut self, conn: ConnId, peer: PeerId) -> u16 {
        if let Some(i) = self.contributors.iter().position(|c| c.0 == conn) {
            return (i + 1) as u16;
        }
        if self.contributors.len() >= u16::MAX as usize - 1 {
            return u16::MAX;
        }
        self.contributors.push((conn, peer));
        self.contributors.len() as u16
    }

    /// Forgets chunks received from `pred`-matching contributors.
    fn discard_from(&mut self, mut pred: impl FnMut(u16) -> bool) -> u64 {
        let size = self.size.unwrap_or(0);
        let mut dropped = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Slot::Got { from, .. } = *slot {
                if from != 0 && pred(from) {
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

struct HttpXfer {
    key: SegmentKey,
    /// Byte offset inside the segment where the body starts.
    offset: u64,
    /// Whole segment (size learned from the body).
    full: bool,
    received: u64,
    /// Start, then last progress: the stall clock.
    last_at: Instant,
    /// Already reported to the CDN health check (once per transfer).
    flagged: bool,
    started: Instant,
    /// First body piece (its bytes measure latency, not rate).
    first_at: Option<Instant>,
    /// Body time and bytes after the first piece, silences capped (`health::GAP_MS`).
    flow_ms: u64,
    flow_bytes: u64,
}

struct P2pReq {
    key: SegmentKey,
    first: u32,
    end: u32,
    received: u32,
    bytes: u64,
    started: Instant,
    last_at: Instant,
}

/// Where the next chunk of an upload comes from.
enum ChunkSource<'a> {
    /// The chunk, the segment's size, and the shared buffer holding the chunk if any.
    Ready(&'a [u8], u64, Option<Src<'a>>),
    NotYet,
    Gone,
}

/// CDN path health (see `note_cdn_trouble`).
#[derive(Default)]
struct CdnHealth {
    /// Degraded since (`CdnDegraded` was emitted).
    degraded: Option<Instant>,
    /// While degraded, urgent segments go to peers first until this; the next HTTP
    /// transfer started after it is the recovery probe.
    probe_at: Option<Instant>,
    /// How long the last segment fetched over HTTP took, request to last byte.
    last_transfer_ms: Option<u64>,
}

pub struct Engine {
    config: Config,
    rng: ChaCha8Rng,
    our_id: PeerId,
    swarms: BTreeMap<SwarmId, Swarm>,
    playhead: Option<Playhead>,
    store: Store,
    pins: BTreeMap<SegmentKey, u32>,
    timings: BTreeMap<SegmentKey, DeliveryTiming>,
    downloads: BTreeMap<SegmentKey, Download>,
    http: BTreeMap<HttpId, HttpXfer>,
    next_http: u32,
    requests: BTreeMap<RequestId, SegmentKey>,
    sessions: BTreeMap<ConnId, Session>,
    banned: BTreeSet<PeerId>,
    p2p_reqs: BTreeMap<(ConnId, u32), P2pReq>,
    next_req_id: u32,
    next_nonce: u32,
    bucket: TokenBucket,
    upload_wake: Option<Instant>,
    uploaders: VecDeque<ConnId>,
    manifest: Option<Manifest>,
    /// Re-fetches a sample of peer-delivered segments from the CDN (no manifest needed).
    spot: SpotChecker,
    counters: Counters,
    http_ttfb: Ewma,
    p2p_ttfb: Ewma,
    cdn: CdnHealth,
    goodput: health::Goodput,
    out: VecDeque<Output>,
    next_wake: Option<Instant>,
    /// No Ready session is due for a Ping before this (a lower bound, tightened in
    /// `handle_timeout`), so `recompute_wake` need not walk the sessions after every input.
    ping_at: Option<Instant>,
    interner: Option<Interner>,
    /// `Data` goes out as `Output::SendData` when its payload lies in a shared buffer.
    share_uploads: bool,
}

impl Engine {
    pub fn new(config: Config, now: Instant, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // WebTorrent-style peer id: client prefix, then random bytes.
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-SH0001-");
        for chunk in id[8..].chunks_mut(8) {
            let r = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        let burst = (config.upload_bytes_per_sec / 5).max(4 * CHUNK);
        Engine {
            bucket: TokenBucket::new(config.upload_bytes_per_sec, burst, now),
            store: Store::new(config.cache_bytes),
            spot: SpotChecker::new(config.spot_check_ratio, seed),
            config,
            rng,
            our_id: PeerId(id),
            swarms: BTreeMap::new(),
            playhead: None,
            pins: BTreeMap::new(),
            timings: BTreeMap::new(),
            downloads: BTreeMap::new(),
            http: BTreeMap::new(),
            next_http: 1,
            requests: BTreeMap::new(),
            sessions: BTreeMap::new(),
            banned: BTreeSet::new(),
            p2p_reqs: BTreeMap::new(),
            next_req_id: 1,
            next_nonce: 1,
            upload_wake: None,
            uploaders: VecDeque::new(),
            manifest: None,
            counters: Counters::default(),
            http_ttfb: Ewma::default(),
            p2p_ttfb: Ewma::default(),
            cdn: CdnHealth::default(),
            goodput: health::Goodput::default(),
            out: VecDeque::new(),
            next_wake: None,
            ping_at: None,
            interner: None,
            share_uploads: false,
        }
    }

    /// Lets the host supply shared copies of segments the engine keeps in its cache (a
    /// process running many engines, e.g. the simulator, then holds identical bytes once).
    /// A returned buffer is used only if its bytes equal the engine's own; nothing else
    /// changes. Browsers do not set one.
    pub fn set_interner(&mut self, interner: Interner) {
        self.interner = Some(interner);
    }

    /// For hosts that run engines in one process and pass messages between them (the
    /// simulator): `Data` whose payload lies in a shared buffer (a cached segment) goes out
    /// as `Output::SendData`, a header and a slice of that buffer, and the host delivers
    /// it to the receiving engine as `Input::PeerData`. The bytes are those of
    /// `SendToPeer`; nothing is copied, and a receiver assembling over the same buffer
    /// (`set_interner`) needs no comparison. Off by default: browser hosts need bytes.
    pub fn share_upload_buffers(&mut self, on: bool) {
        self.share_uploads = on;
    }

    /// Our peer id (derived from the seed).
    pub fn peer_id(&self) -> PeerId {
        self.our_id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_wake
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.note_http_flow(now);
        match input {
            Input::Playlist {
                swarm,
                live,
                container,
                bitrate,
                segments,
            } => {
                self.on_playlist(now, swarm, live, container, segments);
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.bitrate = bitrate;
                }
            }
            Input::Playhead {
                swarm,
                position_ms,
                buffered_ahead_ms,
                rate,
            } => {
                let rate = if rate.is_finite() {
                    (rate as f64).clamp(0.0, 16.0)
                } else {
                    1.0
                };
                self.playhead = Some(Playhead {
                    swarm,
                    position_ms,
                    buffered_ahead_ms,
                    rate,
                    at: now,
                    filled: false,
                });
                if let Some(seq) = self.swarms.get(&swarm).and_then(|s| s.seq_at(position_ms)) {
                    self.store.set_playhead(swarm, seq);
                }
                self.schedule_all(now);
            }
            Input::SegmentRequested {
                req,
                swarm,
                seq,
                url,
                range,
            } => self.on_request(now, req, swarm, seq, url, range),
            Input::SegmentAborted { req } => self.on_abort(now, req),
            Input::PeerCandidate {
                conn,
                swarm,
                peer,
                inbound,
            } => self.on_candidate(now, conn, swarm, peer, inbound),
            Input::PeerConnected { conn } => self.on_connected(now, conn),
            Input::PeerMessage { conn, data } => self.on_peer_message(now, conn, &data),
            Input::PeerData { conn, frame } => self.on_peer_data(now, conn, &frame),
            Input::PeerClosed { conn } => {
                if self.sessions.contains_key(&conn) {
                    self.remove_session(conn);
                    self.schedule_all(now);
                }
            }
            Input::HttpProgress { id, data, total } => self.on_http_progress(now, id, &data, total),
            Input::HttpDone { id } => self.on_http_done(now, id),
            Input::HttpFailed { id, status, reason } => {
                self.on_http_failed(now, id, status, &reason)
            }
            Input::IntegrityManifest { data } => {
                let parsed = match self.config.integrity_public_key.as_deref() {
                    Some(key) => integrity::parse_public_key(key)
                        .and_then(|k| Manifest::parse_signed(&data, &k)),
                    None => Manifest::parse(&data),
                };
                match parsed {
                    Ok(m) => {
                        self.manifest = Some(m);
                        self.schedule_all(now);
                    }
                    Err(e) => self.event(Event::ManifestRejected {
                        detail: format!("{e:?}"),
                    }),
                }
            }
            Input::SetPolicy {
                p2p_enabled,
                upload_bytes_per_sec,
            } => self.set_policy(now, p2p_enabled, upload_bytes_per_sec),
            Input::SwarmPeers { swarm, peers } => {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.tracker_peers = Some(peers);
                }
                if peers == 0 && self.ready_conns(swarm).is_empty() {
                    // Nobody is coming: a join wait for this swarm's segments has no reason.
                    for (k, d) in self.downloads.iter_mut() {
                        if k.swarm == swarm && d.http.is_none() && d.p2p.is_empty() {
                            d.wait_until = None;
                        }
                    }
                }
                self.schedule_all(now);
            }
            Input::HttpSample { bytes, ms } => {
                if bytes > 0 {
                    self.cdn.last_transfer_ms = Some(ms);
                }
            }
            Input::LeaveSwarm { swarm } => self.leave_swarm(now, swarm),
        }
        self.recompute_wake(now);
    }

    /// Forgets a swarm the host no longer needs: `Stopped` to the tracker, its connections
    /// closed (pending ones too), its downloads dropped (player requests fail open). The
    /// segments it cached stay until evicted, so the player can still be served from them.
    fn leave_swarm(&mut self, now: Instant, swarm: SwarmId) {
        if !self.swarms.contains_key(&swarm) {
            return;
        }
        // Downloads first, while the sessions exist: peers get `Cancel` / `Lost`.
        let keys: Vec<SegmentKey> = self
            .downloads
            .range(
                SegmentKey { swarm, seq: 0 }..=SegmentKey {
                    swarm,
                    seq: Seq::MAX,
                },
            )
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.drop_download(key);
        }
        let conns: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| s.swarm == swarm)
            .map(|s| s.conn)
            .collect();
        for conn in conns {
            self.out.push_back(Output::ClosePeer {
                conn,
                reason: CloseReason::SwarmLeft,
            });
            self.remove_session(conn);
        }
        self.swarms.remove(&swarm);
        if self.config.p2p_enabled {
            self.out.push_back(Output::Announce {
                swarm,
                event: AnnounceEvent::Stopped,
                numwant: 0,
            });
        }
        self.schedule_all(now);
    }

    fn set_policy(&mut self, now: Instant, p2p: bool, upload: u64) {
        let was = self.config.p2p_enabled;
        self.config.p2p_enabled = p2p;
        if upload != self.config.upload_bytes_per_sec {
            self.config.upload_bytes_per_sec = upload;
            let burst = (upload / 5).max(4 * CHUNK);
            self.bucket = TokenBucket::new(upload, burst, now);
        }
        if was && !p2p {
            let conns: Vec<ConnId> = self.sessions.keys().copied().collect();
            for conn in conns {
                self.out.push_back(Output::ClosePeer {
                    conn,
                    reason: CloseReason::P2pDisabled,
                });
                self.remove_session(conn);
            }
            let swarms: Vec<SwarmId> = self.swarms.keys().copied().collect();
            for swarm in swarms {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.next_announce = None;
                }
                self.out.push_back(Output::Announce {
                    swarm,
                    event: AnnounceEvent::Stopped,
                    numwant: 0,
                });
            }
            for d in self.downloads.values_mut() {
                d.announced = false;
            }
        } else if !was && p2p {
            let interval = ms(self.config.announce_interval_ms.max(1_000));
            let swarms: Vec<SwarmId> = self.swarms.keys().copied().collect();
            for swarm in swarms {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.next_announce = Some(now + interval);
                    s.joined_at = Some(now);
                }
                self.out.push_back(Output::Announce {
                    swarm,
                    event: AnnounceEvent::Started,
                    numwant: self.config.announce_numwant,
                });
            }
        }
        if !self.sharing() {
            // Stop serving: every queued upload is answered Busy.
            let mut ended = Vec::new();
            for s in self.sessions.values_mut() {
                for u in std::mem::take(&mut s.up) {
                    ended.push((s.conn, u));
                }
            }
            self.uploaders.clear();
            for (conn, u) in ended {
                if u.pinned {
                    self.unpin(u.key);
                }
                self.send(
                    conn,
                    &Message::Busy {
                        id: u.id,
                        retry_after_ms: u16::MAX,
                    },
                );
            }
        }
        self.schedule_all(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(id) = self.spot.stalled(now) {
            self.out.push_back(Output::CancelHttp { id });
        }
        self.note_http_flow(now);
        let stalled: Vec<(ConnId, u32)> = self
            .p2p_reqs
            .iter()
            .filter(|(_, r)| now >= r.last_at + ms(self.config.peer_stall_timeout_ms))
            .map(|(k, _)| *k)
            .collect();
        for (conn, id) in stalled {
            self.abandon_p2p(now, conn, id, true);
        }
        let slow: Vec<HttpId> = self
            .http
            .iter()
            .filter(|(_, x)| !x.flagged && now >= x.last_at + ms(CDN_SLOW_MS))
            .map(|(id, _)| *id)
            .collect();
        for id in slow {
            let first = match self.http.get_mut(&id) {
                Some(x) => {
                    x.flagged = true;
                    x.received == 0
                }
                None => continue,
            };
            self.cdn_trouble(
                now,
                if first {
                    format!("no first byte within {CDN_SLOW_MS} ms")
                } else {
                    format!("transfer stalled for {CDN_SLOW_MS} ms")
                },
            );
        }
        if self.config.p2p_enabled {
            let stall = ms(self.config.peer_stall_timeout_ms);
            let http_stalled: Vec<HttpId> = self
                .http
                .iter()
                .filter(|(_, x)| now >= x.last_at + stall)
                .map(|(id, _)| *id)
                .collect();
            for id in http_stalled {
                self.on_http_stall(now, id);
            }
        }
        if self.config.p2p_enabled {
            let interval = ms(self.config.announce_interval_ms.max(1_000));
            let mut announces = Vec::new();
            for (id, s) in self.swarms.iter_mut() {
                if let Some(t) = s.next_announce {
                    if now >= t {
                        s.next_announce = Some(now + interval);
                        if s.conns.len() < self.config.max_peers {
                            // Each wanted peer costs the host an offer (a peer connection
                            // and its ICE gathering): ask only for viewers the tracker
                            // counted that we are not connected to. Newcomers offer to us.
                            let unmet = s.tracker_peers.map_or(u32::MAX, |n| {
                                n.saturating_sub(s.conns.len().min(u32::MAX as usize) as u32)
                            });
                            announces.push((*id, self.config.announce_numwant.min(unmet)));
                        }
                    }
                }
            }
            for (swarm, numwant) in announces {
                self.out.push_back(Output::Announce {
                    swarm,
                    event: AnnounceEvent::Update,
                    numwant,
                });
            }
            let mut pings = Vec::new();
            if self.ping_at.is_some_and(|t| now >= t) {
                // Once one probe is due, every session due within half an interval is
                // probed too: N peers cost one wake per half interval, not N.
                let horizon = now + ms(PING_INTERVAL_MS / 2);
                let mut next: Option<Instant> = None;
                for s in self.sessions.values_mut() {
                    if s.state != PeerState::Ready {
                        continue;
                    }
                    if s.next_ping <= horizon {
                        s.next_ping = now + ms(PING_INTERVAL_MS);
                        let waiting = s
                            .ping
                            .is_some_and(|(_, sent)| now < sent + ms(PING_REPLACE_MS));
                        if !waiting {
                            let nonce = self.next_nonce;
                            self.next_nonce = self.next_nonce.wrapping_add(1);
                            s.ping = Some((nonce, now));
                            pings.push((s.conn, nonce));
                        }
                    }
                    next = Some(next.map_or(s.next_ping, |t| t.min(s.next_ping)));
                }
                self.ping_at = next;
            }
            for (conn, nonce) in pings {
                self.send(conn, &Message::Ping { nonce });
            }
        }
        self.schedule_all(now);
        self.recompute_wake(now);
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            http_down: c.http_down,
            p2p_down: c.p2p_down,
            p2p_up: c.p2p_up,
            p2p_discarded: c.p2p_discarded,
            segments_http: c.segments_http,
            segments_p2p: c.segments_p2p,
            peers: self
                .sessions
                .values()
                .filter(|s| s.state == PeerState::Ready)
                .count() as u32,
            peers_banned: c.peers_banned,
            cache_bytes: self.store.used_bytes(),
            per_peer: self
                .sessions
                .values()
                .filter(|s| s.state == PeerState::Ready)
                .map(|s| PeerStats {
                    peer: s.peer,
                    swarm: s.swarm,
                    down_bytes: s.down_bytes,
                    up_bytes: s.up_bytes,
                    throughput: s.throughput.get().unwrap_or(0.0),
                    rtt_ms: s.rtt.get().unwrap_or(0.0),
                    strikes: s.strikes,
                    score: s.score(),
                    stalls: s.stalls,
                })
                .collect(),
            cdn_degraded: self.cdn.degraded.is_some(),
            http_ttfb_ms: self.http_ttfb.get_or(0.0),
            p2p_ttfb_ms: self.p2p_ttfb.get_or(0.0),
        }
    }

    // ---------------------------------------------------------------- helpers

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn warn(&mut self, detail: String) {
        self.event(Event::Warning { detail });
    }

    fn send(&mut self, conn: ConnId, msg: &Message) {
        self.out.push_back(Output::SendToPeer {
            conn,
            data: wire::encode(msg),
        });
    }

    fn sharing(&self) -> bool {
        self.config.p2p_enabled && self.config.upload_bytes_per_sec > 0
    }

    fn ready_conns(&self, swarm: SwarmId) -> Vec<ConnId> {
        self.swarms
            .get(&swarm)
            .map(|s| {
                s.conns
                    .iter()
                    .copied()
                    .filter(|c| {
                        self.sessions
                            .get(c)
                            .is_some_and(|s| s.state == PeerState::Ready)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends news about a segment to the swarm's ready peers that can use it. `Have` and
    /// `Downloading` skip peers that announced holding the whole segment (they will not ask
    /// us for it); `Lost` goes only to peers we told about our copy and that lack it.
    fn broadcast(&mut self, swarm: SwarmId, msg: &Message) {
        let mut conns = self.ready_conns(swarm);
        match *msg {
            Message::Have { seq, .. } | Message::Downloading { seq, .. } => conns.retain(|c| {
                let Some(s) = self.sessions.get_mut(c) else {
                    return false;
                };
                if s.holds_complete(seq) == Some(true) {
                    return false;
                }
                s.note_told(seq);
                true
            }),
            Message::Lost { seq } => conns.retain(|c| {
                self.sessions
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

    fn manifest_entry(&self, url: &str, range: Option<ByteRange>) -> Option<&ManifestEntry> {
        self.manifest.as_ref().and_then(|m| m.lookup(url, range))
    }

    /// Milliseconds of media before the playhead reaches the segment (`None` = unknown).
    /// Time until the player needs `key`: when the playhead reaches its start; but with
    /// nothing buffered at the playhead (startup, seek, live join) a segment further than
    /// one segment away is the one the player waits for to start: due now. Only an empty
    /// buffer that no delivery has filled since the report counts as a gap: a report taken
    /// while the player fills its buffer in a burst is soon stale, and would make every
    /// later segment look late. Both forms shrink at the playback rate, and which one
    /// applies changes only on a report or a delivery.
    fn deadline_ms(&self, now: Instant, key: SegmentKey) -> Option<i64> {
        let ph = self.playhead?;
        let buffer_left = ph.buffered_ahead_ms as f64 - ph.elapsed_media_ms(now);
        match self.swarms.get(&key.swarm).and_then(|s| s.segment(key.seq)) {
            Some(seg) => {
                let to_start = seg.start_ms as f64 - ph.position(now);
                let past_gap = ph.buffered_ahead_ms == 0
                    && !ph.filled
                    && to_start > buffer_left + seg.duration_ms as f64;
                Some(if past_gap { buffer_left } else { to_start } as i64)
            }
            None => Some(buffer_left as i64),
        }
    }

    fn is_urgent(&self, deadline: Option<i64>) -> bool {
        deadline.is_none_or(|d| d < self.config.urgent_window_ms.min(i64::MAX as u64) as i64)
    }

    fn p2p_active(&self) -> usize {
        self.downloads
            .values()
            .filter(|d| !d.p2p.is_empty())
            .count()
    }

    fn pin(&mut self, key: SegmentKey) {
        let n = self.pins.entry(key).or_insert(0);
        if *n == 0 {
            self.store.pin(key);
        }
        *n += 1;
    }

    fn unpin(&mut self, key: SegmentKey) {
        if let Some(n) = self.pins.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pins.remove(&key);
                self.store.unpin(&key);
            }
        }
    }

    // ---------------------------------------------------------------- playlists, requests

    fn on_playlist(
        &mut self,
        now: Instant,
        swarm: SwarmId,
        live: bool,
        container: Container,
        mut segments: Vec<SegmentInfo>,
    ) {
        segments.sort_by_key(|s| s.seq);
        segments.dedup_by_key(|s| s.seq);
        let is_new = !self.swarms.contains_key(&swarm);
        if is_new {
            let next_announce = self
                .config
                .p2p_enabled
                .then(|| now + ms(self.config.announce_interval_ms.max(1_000)));
            self.swarms.insert(
                swarm,
                Swarm {
                    container,
                    segments: Vec::new(),
                    conns: Vec::new(),
                    next_announce,
                    max_requested: None,
                    joined_at: self.config.p2p_enabled.then_some(now),
                    tracker_peers: None,
                    bitrate: 0,
                },
            );
            if self.config.p2p_enabled {
                self.out.push_back(Output::Announce {
                    swarm,
                    event: AnnounceEvent::Started,
                    numwant: self.config.announce_numwant,
                });
            }
        }
        let min_seq = segments.first().map(|s| s.seq);
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.container = container;
            s.segments = segments;
        }
        if live {
            if let Some(min_seq) = min_seq {
                self.store.set_window_start(swarm, min_seq);
                // What peers announced below the window is of no use any more (and with
                // `Lost` sent only where needed, would otherwise pile up to the cap).
                for s in self.sessions.values_mut().filter(|s| s.swarm == swarm) {
                    s.forget_below(min_seq);
                }
                let stale: Vec<SegmentKey> = self
                    .downloads
                    .range(
                        SegmentKey { swarm, seq: 0 }..SegmentKey {
                            swarm,
                            seq: min_seq,
                        },
                    )
                    .filter(|(_, d)| d.reqs.is_empty())
                    .map(|(k, _)| *k)
                    .collect();
                for key in stale {
                    self.drop_download(key);
                }
            }
        }
        self.schedule_all(now);
    }

    fn on_request(
        &mut self,
        now: Instant,
        req: RequestId,
        swarm: SwarmId,
        seq: Seq,
        url: String,
        range: Option<ByteRange>,
    ) {
        let key = SegmentKey { swarm, seq };
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.max_requested = Some(s.max_requested.map_or(seq, |m| m.max(seq)));
        }
        if let Some(data) = self.store.get_shared(&key) {
            let mut timing = self.timings.get(&key).cloned().unwrap_or(DeliveryTiming {
                transfer_start: now,
                first_byte: now,
                transfer_end: now,
                ..Default::default()
            });
            timing.from_cache = true;
            self.counters.delivered(&timing);
            self.mark_filled();
            self.out
                .push_back(Output::DeliverSegment { req, data, timing });
            return;
        }
        self.requests.insert(req, key);
        if !self.downloads.contains_key(&key) {
            let d = self.new_download(key, url, range);
            self.downloads.insert(key, d);
        }
        let mut progress = None;
        if let Some(d) = self.downloads.get_mut(&key) {
            d.reqs.push(req);
            if d.got_bytes > 0 {
                progress = Some((d.got_bytes, d.size));
            }
        }
        if let Some((loaded, total)) = progress {
            self.out
                .push_back(Output::SegmentProgress { req, loaded, total });
        }
        self.schedule_all(now);
    }

    fn new_download(&self, key: SegmentKey, url: String, range: Option<ByteRange>) -> Download {
        let (url, range) = match self.swarms.get(&key.swarm).and_then(|s| s.segment(key.seq)) {
            Some(seg) => (seg.url.clone(), seg.range),
            None => (url, range),
        };
        let size = self
            .manifest_entry(&url, range)
            .map(|e| e.size)
            .or(range.map(|r| r.len()));
        let shared = self.interner.as_ref().and_then(|f| f(&url, range));
        Download::new(url, range, size, shared)
    }

    fn on_abort(&mut self, now: Instant, req: RequestId) {
        let Some(key) = self.requests.remove(&req) else {
            return;
        };
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        d.reqs.retain(|r| *r != req);
        if !d.reqs.is_empty() {
            return;
        }
        // Nobody wants it any more (a seek or level switch): stop its transfers, unless
        // peers are reading our HTTP relay of it, which then completes for them. Peers that
        // only saw it announced are told it is lost (`drop_download`). The player's position
        // is no guide here: the abort often arrives before the playhead of the seek.
        let relayed = d.http.is_some()
            && self
                .sessions
                .values()
                .any(|s| s.up.iter().any(|u| u.key == key));
        if !relayed {
            self.drop_download(key);
        }
        self.schedule_all(now);
    }

    /// Forgets a download: cancels its transfers, tells peers it is gone.
    fn drop_download(&mut self, key: SegmentKey) {
        let Some(d) = self.downloads.remove(&key) else {
            return;
        };
        if let Some(id) = d.http {
            self.http.remove(&id);
            self.out.push_back(Output::CancelHttp { id });
        }
        for (conn, id) in d.p2p {
            if self.p2p_reqs.remove(&(conn, id)).is_some() {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.down_reqs = s.down_reqs.saturating_sub(1);
                    s.note_released(id);
                }
                self.send(conn, &Message::Cancel { id });
            }
        }
        for req in d.reqs {
            self.requests.remove(&req);
            self.out.push_back(Output::FailSegment {
                req,
                reason: "download abandoned".into(),
            });
        }
        if d.announced {
            self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
        }
    }

    // ---------------------------------------------------------------- scheduling

    fn schedule_all(&mut self, now: Instant) {
        let keys: Vec<SegmentKey> = self.downloads.keys().copied().collect();
        for key in keys {
            self.drive(now, key);
        }
        self.prefetch(now);
        self.pump_uploads(now);
        self.pump_spot_check(now);
    }

    /// Peers that can serve `key` now, best first, with the request windows each may
    /// still take for it.
    fn holders(&self, now: Instant, key: SegmentKey) -> Vec<picker::Holder> {
        let mut out: Vec<picker::Holder> = self.unranked_holders(now, key).collect();
        picker::rank(&mut out);
        out
    }

    /// Whether any peer can serve `key` now (`holders` non-empty, without ranking them).
    fn has_holder(&self, now: Instant, key: SegmentKey) -> bool {
        self.unranked_holders(now, key).next().is_some()
    }

    fn unranked_holders(
        &self,
        now: Instant,
        key: SegmentKey,
    ) -> impl Iterator<Item = picker::Holder> + '_ {
        let known = self.swarms.contains_key(&key.swarm);
        let d = self.downloads.get(&key);
        // The swarm's sessions are its `conns`; one pass over the map beats a lookup each.
        self.sessions
            .values()
            .filter(move |s| known && s.swarm == key.swarm && s.can_request(now))
            .filter_map(move |s| {
                let complete = s.holds_complete(key.seq)?;
                let busy =
                    d.map_or(0, |d| d.p2p.iter().filter(|(c, _)| *c == s.conn).count()) as u32;
                let slots = MAX_DOWN_REQUESTS
                    .saturating_sub(s.down_reqs)
                    .min(picker::WINDOWS_PER_HOLDER.saturating_sub(busy));
                (slots > 0).then(|| picker::Holder {
                    conn: s.conn,
                    score: s.score(),
                    complete,
                    slots,
                })
            })
    }

    /// Hands missing chunks to `holders` (one probe chunk to the best one while the size is
    /// unknown). Returns whether anything was requested.
    fn assign(&mut self, now: Instant, key: SegmentKey, holders: &[picker::Holder]) -> bool {
        if holders.is_empty() {
            return false;
        }
        if let Some(size) = holders.iter().find_map(|h| self.holder_size(key, h.conn)) {
            if let Some(d) = self.downloads.get_mut(&key).filter(|d| d.size.is_none()) {
                d.set_size(size);
            }
        }
        let Some(d) = self.downloads.get(&key) else {
            return false;
        };
        let plan = if d.size.is_none() {
            // Only a Bitfield told us it is there: one chunk tells us its size.
            if d.p2p.is_empty() {
                vec![picker::Assignment {
                    conn: holders[0].conn,
                    first: 0,
                    count: 1,
                }]
            } else {
                Vec::new()
            }
        } else {
            picker::plan_chunks(&d.missing_runs(), holders)
        };
        self.apply_plan(now, key, &plan);
        if let Some(d) = self.downloads.get_mut(&key) {
            d.wait_until = None;
        }
        !plan.is_empty()
    }

    fn holder_size(&self, key: SegmentKey, conn: ConnId) -> Option<u64> {
        self.sessions
            .get(&conn)?
            .holds(key.seq)?
            .size
            .map(u64::from)
    }

    /// Decides the next step for one download. Pure reads, then explicit state changes.
    fn drive(&mut self, now: Instant, key: SegmentKey) {
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        if d.is_complete() {
            return;
        }
        if d.http.is_some() {
            self.race_http(now, key);
            return;
        }
        let wanted = !d.reqs.is_empty();
        // With a signing key, only segments the verified manifest lists may come from peers.
        let vouched = self.config.integrity_public_key.is_none()
            || self.manifest_entry(&d.url, d.range).is_some();
        let p2p = self.config.p2p_enabled && self.swarms.contains_key(&key.swarm) && vouched;
        if !p2p || d.force_http {
            if wanted {
                self.cancel_p2p(key);
                self.start_http(now, key);
            } else if d.p2p.is_empty() {
                self.drop_download(key);
            }
            return;
        }
        let deadline = self.deadline_ms(now, key);
        let backing_off = d.avoid_http_until.is_some_and(|t| now < t);
        let degraded = self.cdn.degraded.is_some() && self.cdn.probe_at.is_none_or(|t| now < t);
        let avoid_http = backing_off || degraded;
        if wanted && self.is_urgent(deadline) && avoid_http && self.p2p_rescue(now, key) {
            return;
        }
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        if wanted && d.http_failures > 0 && backing_off && d.p2p.is_empty() {
            // Its HTTP transfer failed: wait for a holder (or the back-off) rather than
            // hammer the CDN.
            return;
        }
        if wanted && self.is_urgent(deadline) {
            if !d.p2p.is_empty() && self.on_pace(now, key, deadline) {
                // Peers will make it: keep them busy with the rest.
                if self.downloads.get(&key).is_some_and(Download::fully_asked) {
                    return;
                }
                let holders = self.holders(now, key);
                self.assign(now, key, &holders);
                return;
            }
            if d.p2p.is_empty() && d.http_failures == 0 && !avoid_http {
                if self.urgent_from_peers(now, key, deadline) {
                    return;
                }
                let wait = self.urgent_join_wait(now, key, deadline);
                if wait > 0 {
                    if let Some(d) = self.downloads.get_mut(&key) {
                        d.wait_until = Some(now + ms(wait));
                    }
                    return;
                }
            }
            self.cancel_p2p(key);
            self.start_http(now, key);
            return;
        }
        if d.fully_asked() {
            // Peers are fetching every chunk left: nothing to plan.
            return;
        }
        let holders = self.holders(now, key);
        if !holders.is_empty() {
            if d.p2p.is_empty() && self.p2p_active() >= self.config.max_p2p {
                return;
            }
            self.assign(now, key, &holders);
            return;
        }
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        if !d.p2p.is_empty() {
            return;
        }
        if !wanted {
            self.drop_download(key);
            return;
        }
        match d.wait_until {
            None => {
                let candidates = self.ready_conns(key.swarm).len();
                let delay = if avoid_http {
                    // Our CDN path is degraded: leave the fetch to peers with a healthy one
                    // as long as the deadline allows (then `p2p_rescue` or HTTP).
                    live_edge::delay_cap(
                        u64::MAX,
                        self.config.urgent_window_ms,
                        deadline,
                        candidates,
                    )
                } else if candidates == 0 {
                    // Wait only if peers are coming: being connected, or counted by the
                    // tracker (unknown until it answers). The first viewer of a swarm hears
                    // 0 and must not hold back its own buffer.
                    let expected = self.swarms.get(&key.swarm).is_some_and(|s| {
                        s.tracker_peers.is_none_or(|n| n > 0)
                            || s.conns.iter().any(|c| {
                                self.sessions
                                    .get(c)
                                    .is_some_and(|x| x.state != PeerState::Ready)
                            })
                    });
                    let since_join = self
                        .swarms
                        .get(&key.swarm)
                        .and_then(|s| s.joined_at)
                        .filter(|_| expected)
                        .map(|t| now.as_millis().saturating_sub(t.as_millis()));
                    live_edge::join_wait(
                        since_join,
                        live_edge::JOIN_WAIT_MS,
                        self.config.urgent_window_ms,
                        deadline,
                    )
                } else {
                    let cap = live_edge::delay_cap(
                        self.config.live_edge_delay_max_ms,
                        self.config.urgent_window_ms,
                        deadline,
                        candidates,
                    );
                    live_edge::draw(cap, self.rng.next_u64())
                };
                if delay == 0 {
                    self.start_http(now, key);
                } else if let Some(d) = self.downloads.get_mut(&key) {
                    d.wait_until = Some(now + ms(delay));
                }
            }
            Some(t) if now >= t && self.http.len() < self.config.max_http => {
                self.start_http(now, key)
            }
            Some(_) => {}
        }
    }

    /// Time an urgent segment keeps in hand for HTTP when peers are tried first; `None`
    /// until a segment came over HTTP (then urgent segments go to HTTP at once).
    fn http_reserve_ms(&self) -> Option<i64> {
        Some(HTTP_RESERVE_MIN_MS.saturating_add(self.http_takeover_ms()?))
    }

    /// What HTTP would need to take a segment over: twice the last segment's HTTP time.
    fn http_takeover_ms(&self) -> Option<i64> {
        let last = self.cdn.last_transfer_ms?;
        Some((last.min(i64::MAX as u64 / 4) as i64) * 2)
    }

    /// The segment's size as known (from its transfer, else from `holder`'s announcement),
    /// else at the playlist's nominal bitrate.
    fn size_estimate(&self, key: SegmentKey, holder: Option<ConnId>) -> Option<u64> {
        self.downloads
            .get(&key)
            .and_then(|d| d.size)
            .or_else(|| holder.and_then(|c| self.holder_size(key, c)))
            .or_else(|| self.nominal_size(key))
    }

    /// An urgent segment that complete holders can deliver with the HTTP reserve to spare
    /// is asked of them (the pace check hands it to HTTP if they fall behind).
    fn urgent_from_peers(&mut self, now: Instant, key: SegmentKey, deadline: Option<i64>) -> bool {
        let (Some(deadline), Some(reserve)) = (deadline, self.http_reserve_ms()) else {
            return false;
        };
        let holders: Vec<picker::Holder> = self
            .holders(now, key)
            .into_iter()
            .filter(|h| h.complete)
            .collect();
        let Some(best) = holders.first() else {
            return false;
        };
        // A Bitfield does not say sizes: then the playlist's bitrate tells roughly.
        let Some(size) = self.size_estimate(key, Some(best.conn)) else {
            return false;
        };
        let rate = self.sessions.get(&best.conn).map_or(0.0, |s| {
            s.throughput.get_or(crate::peers::scoring::THROUGHPUT_PRIOR)
        });
        if rate <= 0.0 {
            return false;
        }
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        let eta_ms = (size as f64 * 1000.0 / rate * playback) as i64;
        if eta_ms.saturating_add(reserve) > deadline {
            return false;
        }
        self.assign(now, key, &holders)
    }

    /// The segment's size at the playlist's nominal bitrate, if both are known.
    fn nominal_size(&self, key: SegmentKey) -> Option<u64> {
        let swarm = self.swarms.get(&key.swarm)?;
        let dur = swarm.segment(key.seq)?.duration_ms as u64;
        (swarm.bitrate > 0 && dur > 0).then(|| swarm.bitrate as u64 * dur / 8_000)
    }

    /// How long a joining viewer may hold an urgent segment for the peers it expects (the
    /// tracker counted some or did not answer yet, or sessions are connecting): while its
    /// join window is open and a peer could still deliver with the HTTP reserve to spare.
    /// 0: fetch it now.
    fn urgent_join_wait(&self, now: Instant, key: SegmentKey, deadline: Option<i64>) -> u64 {
        let (Some(deadline), Some(reserve)) = (deadline, self.http_reserve_ms()) else {
            return 0;
        };
        let Some(swarm) = self.swarms.get(&key.swarm) else {
            return 0;
        };
        // Peers still to come: connecting, or ready but not yet told us what they hold
        // (their Bitfield follows the handshake).
        let connecting = swarm.conns.iter().any(|c| {
            self.sessions
                .get(c)
                .is_some_and(|x| x.state != PeerState::Ready || !x.announced_any())
        });
        let heard = swarm
            .conns
            .iter()
            .filter(|c| {
                self.sessions
                    .get(c)
                    .is_some_and(|x| x.state == PeerState::Ready && x.announced_any())
            })
            .count();
        // Not heard from the tracker yet (a rendition the player just switched to): its
        // answer comes within a round trip, and a count of 0 ends the wait.
        let counted = swarm.tracker_peers.is_none_or(|n| n as usize > heard);
        if !(connecting || counted) {
            return 0;
        }
        let Some(joined) = swarm.joined_at else {
            return 0;
        };
        let since = now.as_millis().saturating_sub(joined.as_millis());
        // Leave a peer time to deliver: what the segment takes at the throughput prior.
        let size = self.size_estimate(key, None).unwrap_or(CHUNK * 32);
        let fetch_ms = (size as f64 * 1000.0 / crate::peers::scoring::THROUGHPUT_PRIOR) as i64;
        let slack = deadline.saturating_sub(reserve).saturating_sub(fetch_ms);
        if slack <= 0 {
            return 0;
        }
        live_edge::JOIN_WAIT_MS
            .saturating_sub(since)
            .min(slack as u64)
    }

    /// The CDN stalled on an urgent segment: ask every free holder for the missing chunks,
    /// whatever the P2P download limit. False if no peer is (or can be) fetching it.
    fn p2p_rescue(&mut self, now: Instant, key: SegmentKey) -> bool {
        let holders = self.holders(now, key);
        self.assign(now, key, &holders);
        self.downloads.get(&key).is_some_and(|d| !d.p2p.is_empty())
    }

    /// No HTTP bytes for `peer_stall_timeout_ms`: if peers hold the segment, drop the
    /// transfer and take the rest from them (the chunks already here are kept). Without
    /// holders the transfer is left running and checked again one period later.
    fn on_http_stall(&mut self, now: Instant, id: HttpId) {
        let Some(key) = self.http.get(&id).map(|x| x.key) else {
            return;
        };
        let usable = self
            .downloads
            .get(&key)
            .is_some_and(|d| !d.reqs.is_empty() && !d.force_http);
        if !usable || !self.has_holder(now, key) {
            if let Some(x) = self.http.get_mut(&id) {
                x.last_at = now;
            }
            return;
        }
        self.http.remove(&id);
        self.out.push_back(Output::CancelHttp { id });
        let avoid = now
            + ms(self
                .config
                .peer_stall_timeout_ms
                .saturating_mul(4)
                .max(2_000));
        let mut lost = false;
        if let Some(d) = self.downloads.get_mut(&key) {
            d.http = None;
            d.http_chunks = (0, 0);
            d.avoid_http_until = Some(avoid);
            // Our relays cannot continue from untrusted peer bytes: withdraw the announce.
            lost = std::mem::take(&mut d.announced);
        }
        if lost {
            self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
        }
        if !self.p2p_rescue(now, key) {
            self.drive(now, key);
        }
    }

    /// Whether the peers delivering `key` will finish before its deadline.
    fn on_pace(&self, now: Instant, key: SegmentKey, deadline: Option<i64>) -> bool {
        let (Some(d), Some(deadline)) = (self.downloads.get(&key), deadline) else {
            return false;
        };
        let Some(size) = d.size else {
            // A probe for the size (the holder announced it in a Bitfield): on pace while
            // it is young enough to answer.
            return d.p2p.iter().any(|(c, id)| {
                self.p2p_reqs.get(&(*c, *id)).is_some_and(|r| {
                    now.as_millis().saturating_sub(r.started.as_millis()) <= URGENT_FIRST_BYTE_MS
                })
            });
        };
        let remaining = size.saturating_sub(d.got_bytes) as f64;
        let mut rate = 0.0;
        for (conn, id) in &d.p2p {
            let Some(r) = self.p2p_reqs.get(&(*conn, *id)) else {
                continue;
            };
            let elapsed = now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
            rate += if r.bytes > 0 {
                r.bytes as f64 * 1000.0 / elapsed
            } else {
                self.sessions.get(conn).map_or(0.0, |s| {
                    s.throughput.get_or(crate::peers::scoring::THROUGHPUT_PRIOR)
                })
            };
        }
        if rate <= 0.0 {
            return false;
        }
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        let eta_ms = remaining * 1000.0 / rate * playback;
        // Keep in hand what HTTP would need to take over.
        let takeover = self.http_takeover_ms().unwrap_or(0);
        (eta_ms as i64).saturating_add(PACE_MARGIN_MS.max(takeover)) <= deadline
    }

    fn apply_plan(&mut self, now: Instant, key: SegmentKey, plan: &[picker::Assignment]) {
        for a in plan {
            let id = self.next_req_id;
            self.next_req_id = self.next_req_id.wrapping_add(1).max(1);
            self.send(
                a.conn,
                &Message::Request {
                    id,
                    seq: key.seq,
                    first_chunk: a.first,
                    count: a.count,
                },
            );
            if let Some(s) = self.sessions.get_mut(&a.conn) {
                s.down_reqs = s.down_reqs.saturating_add(1);
            }
            let end = a.first.saturating_add(a.count);
            self.p2p_reqs.insert(
                (a.conn, id),
                P2pReq {
                    key,
                    first: a.first,
                    end,
                    received: 0,
                    bytes: 0,
                    started: now,
                    last_at: now,
                },
            );
            if let Some(d) = self.downloads.get_mut(&key) {
                d.p2p.push((a.conn, id));
                d.transfer_start.get_or_insert(now);
                let hi = (end as usize).min(d.slots.len());
                for slot in d.slots.iter_mut().take(hi).skip(a.first as usize) {
                    if *slot == Slot::Missing {
                        *slot = Slot::Asked(a.conn);
                    }
                }
            }
        }
    }

    /// Cancels every P2P request of a download (no strike: we chose to stop).
    fn cancel_p2p(&mut self, key: SegmentKey) {
        let reqs = match self.downloads.get_mut(&key) {
            Some(d) => std::mem::take(&mut d.p2p),
            None => return,
        };
        for (conn, id) in reqs {
            self.release_p2p(conn, id);
            self.send(conn, &Message::Cancel { id });
        }
    }

    /// Forgets one outgoing request: its asked chunks become missing.
    fn release_p2p(&mut self, conn: ConnId, id: u32) -> Option<P2pReq> {
        let r = self.p2p_reqs.remove(&(conn, id))?;
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.down_reqs = s.down_reqs.saturating_sub(1);
            s.note_released(id);
        }
        if let Some(d) = self.downloads.get_mut(&r.key) {
            d.p2p.retain(|x| *x != (conn, id));
            let hi = (r.end as usize).min(d.slots.len());
            for slot in d.slots.iter_mut().take(hi).skip(r.first as usize) {
                if *slot == Slot::Asked(conn) {
                    *slot = Slot::Missing;
                }
            }
        }
        Some(r)
    }

    /// Gives up on a peer's request (stall or slow): cancel and back off. A peer that sent
    /// nothing at all for the whole period (`stalled`) also gets a stall mark (lower score,
    /// longer back-off); slowness never strikes (see `peers` module header).
    fn abandon_p2p(&mut self, now: Instant, conn: ConnId, id: u32, stalled: bool) {
        let Some(r) = self.release_p2p(conn, id) else {
            return;
        };
        self.send(conn, &Message::Cancel { id });
        let stall = self.config.peer_stall_timeout_ms;
        if let Some(s) = self.sessions.get_mut(&conn) {
            let elapsed = now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
            s.throughput.sample(r.bytes as f64 * 1000.0 / elapsed);
            if stalled && now >= s.last_data_at + ms(stall) {
                s.slow = s.slow.saturating_add(1);
                s.stalls = s.stalls.saturating_add(1);
            }
            let factor = 1u64 << s.slow.min(4);
            s.backoff_until = now + ms(stall.saturating_mul(2).saturating_mul(factor));
        }
    }

    fn start_http(&mut self, now: Instant, key: SegmentKey) {
        // A viewer with a degraded CDN path would be a slow relay: it keeps its fetches to
        // itself (peers then fetch from their own CDN) and shares the finished segment.
        let sharing =
            self.sharing() && self.swarms.contains_key(&key.swarm) && self.cdn.degraded.is_none();
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        if d.http.is_some() || d.is_complete() {
            return;
        }
        let (offset, end, chunks) = match d.size {
            None => (0, None, (0, MAX_CHUNKS)),
            Some(size) => {
                let Some((a, b)) = d.not_got_span() else {
                    return;
                };
                let start = chunk_bounds(size, a).0;
                let stop = chunk_bounds(size, b.saturating_sub(1)).1;
                (
                    start,
                    if start == 0 && stop == size {
                        None
                    } else {
                        Some(stop)
                    },
                    (a, b),
                )
            }
        };
        let range = match (d.range, end) {
            (Some(r), end) => Some(ByteRange {
                start: r.start.saturating_add(offset),
                end: r.start.saturating_add(end.unwrap_or(r.len())),
            }),
            (None, Some(e)) => Some(ByteRange {
                start: offset,
                end: e,
            }),
            (None, None) => None,
        };
        let id = HttpId(self.next_http);
        self.next_http = self.next_http.wrapping_add(1).max(1);
        if self.cdn.degraded.is_some() {
            self.cdn.probe_at = Some(now + ms(CDN_RETRY_MS));
        }
        d.http = Some(id);
        d.http_chunks = chunks;
        d.wait_until = None;
        d.transfer_start.get_or_insert(now);
        let full = offset == 0 && end.is_none();
        let url = d.url.clone();
        let announce =
            full && sharing && !d.announced && d.size.is_some_and(|s| s <= MAX_SEGMENT_SIZE as u64);
        if announce {
            d.announced = true;
        }
        let size = d.size;
        self.http.insert(
            id,
            HttpXfer {
                key,
                offset,
                full,
                received: 0,
                last_at: now,
                flagged: false,
                started: now,
                first_at: None,
                flow_ms: 0,
                flow_bytes: 0,
            },
        );
        self.out.push_back(Output::StartHttp { id, url, range });
        if let (true, Some(size)) = (announce, size) {
            self.broadcast(
                key.swarm,
                &Message::Downloading {
                    seq: key.seq,
                    size: size as u32,
                },
            );
        }
    }

    /// Fetches segments ahead of the player's latest request from peers only.
    fn prefetch(&mut self, now: Instant) {
        if !self.config.p2p_enabled {
            return;
        }
        let Some(ph) = self.playhead else {
            return;
        };
        let mut budget = self.config.max_p2p.saturating_sub(self.p2p_active());
        if budget == 0 {
            return;
        }
        // The player waits for an urgent segment: peers' uplinks are for that one first.
        if self.downloads.iter().any(|(k, d)| {
            !d.reqs.is_empty() && !d.is_complete() && self.is_urgent(self.deadline_ms(now, *k))
        }) {
            return;
        }
        let Some(swarm) = self.swarms.get(&ph.swarm) else {
            return;
        };
        if swarm.conns.is_empty() {
            return;
        }
        let pos = ph.position(now).max(0.0) as u64;
        let horizon = pos.saturating_add(self.config.prefetch_window_ms);
        let from = match swarm.max_requested {
            Some(m) => swarm.segments.partition_point(|s| s.seq <= m),
            None => swarm
                .segments
                .partition_point(|s| s.start_ms.saturating_add(s.duration_ms as u64) <= pos),
        };
        // Segments the player holds already (in another rendition, after a switch: this
        // swarm's own requests lag behind) are not fetched again.
        let buffered_end = ph
            .position_ms
            .saturating_add(ph.buffered_ahead_ms)
            .saturating_add(BUFFERED_SLACK_MS);
        let held = swarm
            .segments
            .partition_point(|s| s.start_ms.saturating_add(s.duration_ms as u64) <= buffered_end);
        let from = if ph.buffered_ahead_ms > 0 {
            from.max(held)
        } else {
            from
        };
        let mut picks = Vec::new();
        for seg in swarm.segments.iter().skip(from).take(PREFETCH_SCAN) {
            if seg.start_ms > horizon || budget == 0 {
                break;
            }
            let key = SegmentKey {
                swarm: ph.swarm,
                seq: seg.seq,
            };
            if self.downloads.contains_key(&key) || self.store.contains(&key) {
                continue;
            }
            if !self.has_holder(now, key) {
                continue;
            }
            picks.push((key, seg.url.clone(), seg.range));
            budget -= 1;
        }
        for (key, url, range) in picks {
            let d = self.new_download(key, url, range);
            self.downloads.insert(key, d);
            self.drive(now, key);
        }
    }

    // ---------------------------------------------------------------- HTTP

    fn on_http_progress(&mut self, now: Instant, id: HttpId, bytes: &[u8], total: Option<u64>) {
        if self.spot.owns(id) {
            self.counters.http_down = self.counters.http_down.saturating_add(bytes.len() as u64);
            self.spot.progress(id, bytes, total, now);
            return;
        }
        let Some(x) = self.http.get_mut(&id) else {
            self.warn(format!("progress for unknown http {}", id.0));
            return;
        };
        let key = x.key;
        let offset = x.offset;
        let pos = x.received;
        let full = x.full;
        if pos == 0 && !bytes.is_empty() {
            let ttfb = now.as_millis().saturating_sub(x.last_at.as_millis());
            self.http_ttfb.sample(ttfb as f64);
        }
        let first_piece = !bytes.is_empty() && x.first_at.is_none();
        if first_piece {
            x.first_at = Some(now);
        } else if !bytes.is_empty() {
            let gap = now.as_millis().saturating_sub(x.last_at.as_millis());
            x.flow_ms = x.flow_ms.saturating_add(gap.min(health::GAP_MS));
            x.flow_bytes = x.flow_bytes.saturating_add(bytes.len() as u64);
        }
        x.received = x.received.saturating_add(bytes.len() as u64);
        x.last_at = now;
        if first_piece {
            self.goodput.first_byte(now);
        } else if !bytes.is_empty() {
            self.goodput.bytes(now, bytes.len() as u64);
            self.check_goodput(now);
        }
        // A viewer with a degraded CDN path would be a slow relay: it keeps its fetches to
        // itself (peers then fetch from their own CDN) and shares the finished segment.
        let sharing =
            self.sharing() && self.swarms.contains_key(&key.swarm) && self.cdn.degraded.is_none();
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        self.counters.http_down = self.counters.http_down.saturating_add(bytes.len() as u64);
        d.http_bytes = d.http_bytes.saturating_add(bytes.len() as u64);
        d.first_byte.get_or_insert(now);
        let mut announce = None;
        let mut unsized_restart = false;
        if full {
            match (d.size, total) {
                (_, Some(t)) if t > MAX_SEGMENT_SIZE as u64 && pos == 0 => {
                    // No segment is that large: a broken or hostile origin. Fail open.
                    self.http.remove(&id);
                    self.out.push_back(Output::CancelHttp { id });
                    if let Some(d) = self.downloads.get_mut(&key) {
                        d.http = None;
                    }
                    self.fail_download(key, "http content-length too large");
                    return;
                }
                (None, Some(t)) if t > 0 && pos == 0 => {
                    d.set_size(t);
                    d.size_src = SizeSrc::Origin;
                    d.http_chunks = (0, n_chunks(t));
                    if sharing && !d.announced && t <= MAX_SEGMENT_SIZE as u64 {
                        d.announced = true;
                        announce = Some(t as u32);
                    }
                }
                (Some(s), Some(t)) if s != t && pos == 0 => {
                    // The origin is authoritative: restart assembly with its size.
                    let had_peer_bytes = d.contributors.len();
                    d.set_size(t);
                    d.size_src = SizeSrc::Origin;
                    d.http_chunks = (0, n_chunks(t));
                    if had_peer_bytes > 0 {
                        d.contributors.clear();
                    }
                }
                (Some(_), None) if pos == 0 && d.size_src != SizeSrc::Origin => {
                    // Only a peer vouched for that size and the origin sends none: the
                    // body's own length decides (`on_http_done`). Chunks sized by the claim
                    // are dropped, and the requests for them cancelled below.
                    d.size = None;
                    d.size_src = SizeSrc::Announced;
                    d.data = Assembly::default();
                    d.slots = Vec::new();
                    d.got_chunks = 0;
                    d.got_bytes = 0;
                    d.p2p_bytes = 0;
                    d.contributors.clear();
                    d.http_chunks = (0, MAX_CHUNKS);
                    unsized_restart = true;
                }
                _ => {}
            }
        }
        match d.size {
            None => {
                if d.data.len().saturating_add(bytes.len()) > MAX_UNSIZED_BODY {
                    self.fail_download(key, "http body too large");
                    return;
                }
                d.data.own().extend_from_slice(bytes);
            }
            Some(size) => write_http(d, size, offset.saturating_add(pos), bytes),
        }
        if unsized_restart {
            self.cancel_p2p(key);
            let lost = self
                .downloads
                .get_mut(&key)
                .is_some_and(|d| std::mem::take(&mut d.announced));
            if lost {
                self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
            }
        }
        if let Some(size) = announce {
            self.broadcast(key.swarm, &Message::Downloading { seq: key.seq, size });
        }
        self.progress(key);
        if self.downloads.get(&key).is_some_and(|d| d.announced) {
            self.pump_uploads(now);
        }
        if self
            .downloads
            .get(&key)
            .is_some_and(|d| d.is_complete() && d.p2p_bytes > 0)
        {
            // HTTP caught up with peers that raced it (`race_http`): done before its end.
            self.finalize(now, key);
            self.schedule_all(now);
            return;
        }
        self.race_http(now, key);
    }

    fn on_http_done(&mut self, now: Instant, id: HttpId) {
        if self.spot.owns(id) {
            if let Some(verdict) = self.spot.done(id) {
                self.on_spot_verdict(now, verdict);
            } else {
                self.schedule_all(now);
            }
            return;
        }
        let Some(x) = self.http.remove(&id) else {
            return;
        };
        let Some(d) = self.downloads.get_mut(&x.key) else {
            return;
        };
        d.http = None;
        if d.size.is_none() {
            let size = d.data.len() as u64;
            if size == 0 {
                self.fail_download(x.key, "empty http body");
                self.schedule_all(now);
                return;
            }
            let data = std::mem::take(&mut d.data);
            d.set_size(size);
            d.size_src = SizeSrc::Origin;
            d.data = data;
            d.slots.fill(Slot::Got {
                from: 0,
                trusted: true,
            });
            d.got_chunks = d.slots.len() as u32;
            d.got_bytes = size;
        } else if !d.is_complete() && d.p2p.is_empty() {
            self.fail_download(x.key, "http body shorter than expected");
            self.schedule_all(now);
            return;
        }
        // A transfer that merely finished, slower than the media plays, is no recovery.
        let total_ms = now.as_millis().saturating_sub(x.started.as_millis());
        if x.received > 0 {
            self.cdn.last_transfer_ms = Some(total_ms);
        }
        let flows = ((x.flow_ms, x.flow_bytes), (total_ms, x.received));
        if health::transfer_healthy(flows.0, flows.1, self.play_rate_bps(x.key)) {
            self.cdn_ok();
        }
        if self.downloads.get(&x.key).is_some_and(|d| d.is_complete()) {
            self.finalize(now, x.key);
        }
        self.schedule_all(now);
    }

    fn on_http_failed(&mut self, now: Instant, id: HttpId, status: u16, reason: &str) {
        if self.spot.failed(id) {
            self.schedule_all(now);
            return;
        }
        let Some(x) = self.http.remove(&id) else {
            return;
        };
        let detail = format!("http {status}: {reason}");
        self.cdn_trouble(now, detail.clone());
        // Without a connected peer nobody could rescue it: fail open at once.
        let mut usable = !self.ready_conns(x.key.swarm).is_empty();
        let mut lost = false;
        if let Some(d) = self.downloads.get_mut(&x.key) {
            d.http = None;
            d.http_chunks = (0, 0);
            d.http_failures = d.http_failures.saturating_add(1);
            usable = usable
                && !d.reqs.is_empty()
                && !d.force_http
                && self.config.p2p_enabled
                && d.http_failures < MAX_HTTP_FAILURES;
            if usable {
                d.avoid_http_until = Some(now + ms(CDN_RETRY_MS));
                lost = std::mem::take(&mut d.announced);
            }
        }
        if lost {
            self.broadcast(x.key.swarm, &Message::Lost { seq: x.key.seq });
        }
        // Peers holding it (now, or once they announce it) beat failing the player over
        // to the same broken CDN; `drive` retries HTTP after the back-off.
        if usable {
            self.p2p_rescue(now, x.key);
        } else {
            self.fail_download(x.key, &detail);
        }
        self.schedule_all(now);
    }

    /// The CDN path failed or stalled: report it once, and from now on take urgent
    /// segments from peers first (`drive`) until an HTTP transfer completes again.
    fn cdn_trouble(&mut self, now: Instant, reason: String) {
        if self.cdn.degraded.is_none() {
            self.cdn.degraded = Some(now);
            // Even a viewer that peers serve entirely probes the CDN now and then: without
            // an HTTP transfer it could never see the path recover.
            self.cdn.probe_at = Some(now + ms(CDN_RETRY_MS));
            self.event(Event::CdnDegraded { reason });
            // Peers waiting on our relay of a CDN fetch would wait on a bad path: withdraw
            // those announcements so they fetch elsewhere (running relays continue).
            let withdrawn: Vec<SegmentKey> = self
                .downloads
                .iter_mut()
                .filter(|(_, d)| d.announced && d.http.is_some())
                .map(|(k, d)| {
                    d.announced = false;
                    *k
                })
                .collect();
            for key in withdrawn {
                self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
            }
        }
    }

    fn cdn_ok(&mut self) {
        self.cdn.probe_at = None;
        self.goodput.reset();
        if self.cdn.degraded.take().is_some() {
            self.event(Event::CdnRecovered {});
        }
    }

    /// Rate at which `key` plays, bit/s: its origin-known size over its duration, else the
    /// playlist's nominal bitrate. `None` when neither is known.
    fn play_rate_bps(&self, key: SegmentKey) -> Option<f64> {
        let swarm = self.swarms.get(&key.swarm)?;
        let dur = swarm.segment(key.seq).map_or(0, |s| s.duration_ms);
        let size = self
            .downloads
            .get(&key)
            .filter(|d| d.size_src == SizeSrc::Origin)
            .and_then(|d| d.size);
        match size {
            Some(size) if dur > 0 => Some(size as f64 * 8_000.0 / dur as f64),
            _ => (swarm.bitrate > 0).then_some(swarm.bitrate as f64),
        }
    }

    /// Tells the goodput window how long HTTP bodies flowed since the last input, and for
    /// which play rate (state is constant between inputs, so this is exact).
    fn note_http_flow(&mut self, now: Instant) {
        let need = self
            .http
            .values()
            .filter(|x| x.first_at.is_some())
            .filter_map(|x| self.play_rate_bps(x.key))
            .reduce(f64::max);
        self.goodput.advance(now, need);
    }

    /// HTTP bodies arrive slower than the media plays: the CDN path is degraded even though
    /// every transfer is moving.
    fn check_goodput(&mut self, now: Instant) {
        if self.cdn.degraded.is_some() {
            return;
        }
        if let Some(slow) = self.goodput.verdict(now) {
            self.cdn_trouble(
                now,
                format!(
                    "throughput {:.2} Mbit/s below the {:.2} Mbit/s the media plays at",
                    slow.goodput_bps / 1e6,
                    slow.need_bps / 1e6
                ),
            );
        }
    }

    /// While the CDN is degraded, an urgent segment still arriving over a slow HTTP transfer
    /// is raced: peers holding it take the chunks the transfer will not reach before the
    /// deadline (at its measured rate), HTTP keeps the front; the first copy of each chunk
    /// wins and `finalize` cancels whatever still runs.
    fn race_http(&mut self, now: Instant, key: SegmentKey) {
        if self.cdn.degraded.is_none() || !self.config.p2p_enabled {
            return;
        }
        let deadline = self.deadline_ms(now, key);
        if !self.is_urgent(deadline) {
            return;
        }
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        let vouched = self.config.integrity_public_key.is_none()
            || self.manifest_entry(&d.url, d.range).is_some();
        if d.reqs.is_empty() || d.force_http || !vouched {
            return;
        }
        let (Some(size), Some(x)) = (d.size, d.http.and_then(|id| self.http.get(&id))) else {
            return;
        };
        let pos = x.offset.saturating_add(x.received).min(size);
        let rate = x.flow_bytes as f64 * 1_000.0 / x.flow_ms.max(1) as f64;
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        let budget_ms = (deadline.unwrap_or(0).saturating_sub(PACE_MARGIN_MS)).max(0) as f64;
        let reach = pos.saturating_add((rate * budget_ms / 1_000.0 / playback) as u64);
        let reach_chunk = n_chunks(reach.min(size)).max(n_chunks(pos.saturating_add(1)));
        let (a, b) = d.http_chunks;
        if reach_chunk < b {
            if let Some(d) = self.downloads.get_mut(&key) {
                d.http_chunks = (a, reach_chunk.max(a));
            }
        }
        // Also hands chunks given up earlier to holders that were busy then.
        let holders = self.holders(now, key);
        self.assign(now, key, &holders);
    }

    /// The engine cannot serve this segment: requests fail over to the host's own HTTP.
    fn fail_download(&mut self, key: SegmentKey, reason: &str) {
        if let Some(d) = self.downloads.get_mut(&key) {
            for req in std::mem::take(&mut d.reqs) {
                self.requests.remove(&req);
                self.out.push_back(Output::FailSegment {
                    req,
                    reason: reason.to_string(),
                });
            }
        }
        self.drop_download(key);
    }

    fn progress(&mut self, key: SegmentKey) {
        if let Some(d) = self.downloads.get(&key) {
            let loaded = if d.size.is_some() {
                d.got_bytes
            } else {
                d.data.len() as u64
            };
            for &req in &d.reqs {
                self.out.push_back(Output::SegmentProgress {
                    req,
                    loaded,
                    total: d.size,
                });
            }
        }
    }

    // ---------------------------------------------------------------- completion

    fn finalize(&mut self, now: Instant, key: SegmentKey) {
        let container = self
            .swarms
            .get(&key.swarm)
            .map_or(Container::Unknown, |s| s.container);
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        let mut verdict =
            integrity::check_segment(container, d.data.as_slice()).map_err(|e| format!("{e:?}"));
        let vouched = self.manifest_entry(&d.url, d.range).is_some();
        if verdict.is_ok() {
            if let Some(entry) = self.manifest_entry(&d.url, d.range) {
                verdict = verify_whole(entry, d.data.as_slice());
            }
        }
        let peer_chunks = d
            .slots
            .iter()
            .any(|s| matches!(s, Slot::Got { from, .. } if *from != 0));
        if let Err(detail) = verdict {
            if peer_chunks {
                self.reject_peer_bytes(now, key, &detail);
                return;
            }
            // Origin bytes: the player would have received exactly these without us.
            // Deliver them, but never keep or share them.
            self.warn(format!(
                "segment {} from origin failed checks: {detail}",
                key.seq
            ));
            let Some(d) = self.downloads.remove(&key) else {
                return;
            };
            let timing = timing_of(&d, now);
            if d.announced {
                self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
            }
            self.deliver_all(&d.reqs, &d.data.into_bytes(), &timing);
            return;
        }
        let Some(mut d) = self.downloads.remove(&key) else {
            return;
        };
        if let Some(id) = d.http {
            // Peers won a race with a slow transfer (`race_http`): stop it.
            self.http.remove(&id);
            self.out.push_back(Output::CancelHttp { id });
        }
        let timing = timing_of(&d, now);
        self.counters.p2p_down = self.counters.p2p_down.saturating_add(d.p2p_bytes);
        for (conn, id) in &d.p2p {
            self.release_p2p(*conn, *id);
            self.send(*conn, &Message::Cancel { id: *id });
        }
        self.event(Event::SegmentLoaded {
            swarm: key.swarm,
            seq: key.seq,
            http_bytes: d.http_bytes,
            p2p_bytes: d.p2p_bytes,
        });
        // One buffer for the player and the cache: the host's shared copy of these bytes
        // (`set_interner`) if they are equal, else this download's own.
        let data = std::mem::take(&mut d.data);
        let bytes = match data.whole_shared() {
            Some(shared) => shared.clone(),
            None => {
                // The offer was looked up when the download began (`new_download`).
                let own = data.into_vec();
                d.shared
                    .take()
                    .filter(|b| b.as_slice() == own.as_slice())
                    .unwrap_or_else(|| Rc::new(own))
            }
        };
        self.deliver_all(&d.reqs, &bytes, &timing);
        if !vouched {
            self.spot_offer(key, &d, &bytes);
        }
        let size = bytes.len() as u64;
        let evicted = self.store.insert_shared(key, bytes);
        let kept = !evicted.contains(&key);
        if kept {
            self.timings.insert(key, timing);
            // Requests being relayed keep reading it from the store.
            let relays: usize = self
                .sessions
                .values()
                .map(|s| s.up.iter().filter(|u| u.key == key).count())
                .sum();
            for s in self.sessions.values_mut() {
                for u in s.up.iter_mut().filter(|u| u.key == key) {
                    u.pinned = true;
                }
            }
            for _ in 0..relays {
                self.pin(key);
            }
        }
        for ev in evicted {
            self.timings.remove(&ev);
            if self.sharing() && (ev != key || d.announced) {
                self.broadcast(ev.swarm, &Message::Lost { seq: ev.seq });
            }
        }
        if kept && self.sharing() && size <= MAX_SEGMENT_SIZE as u64 {
            self.broadcast(
                key.swarm,
                &Message::Have {
                    seq: key.seq,
                    size: size as u32,
                },
            );
        }
        self.pump_uploads(now);
    }

    fn mark_filled(&mut self) {
        if let Some(p) = self.playhead.as_mut() {
            p.filled = true;
        }
    }

    fn deliver_all(&mut self, reqs: &[RequestId], data: &SegmentBytes, timing: &DeliveryTiming) {
        if !reqs.is_empty() {
            self.mark_filled();
        }
        for &req in reqs {
            self.requests.remove(&req);
            self.counters.delivered(timing);
            self.out.push_back(Output::DeliverSegment {
                req,
                data: Rc::clone(data),
                timing: timing.clone(),
            });
        }
    }

    /// The assembled segment failed a whole-segment check and peers contributed: discard
    /// their bytes, strike them (ban a sole contributor), refetch over HTTP.
    fn reject_peer_bytes(&mut self, now: Instant, key: SegmentKey, detail: &str) {
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let mut from_set: Vec<u16> = d
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Got { from, .. } if *from != 0 => Some(*from),
                _ => None,
            })
            .collect();
        from_set.sort_unstable();
        from_set.dedup();
        let culprits: Vec<(ConnId, PeerId)> = from_set
            .iter()
            .filter_map(|f| d.contributors.get(*f as usize - 1).copied())
            .collect();
        let dropped = d.discard_from(|_| true);
        d.p2p_bytes = 0;
        d.force_http = true;
        self.counters.p2p_discarded = self.counters.p2p_discarded.saturating_add(dropped);
        let sole = culprits.len() == 1;
        for (conn, peer) in culprits {
            self.event(Event::VerificationFailed {
                swarm: key.swarm,
                seq: key.seq,
                peer,
                detail: detail.to_string(),
            });
            if sole {
                self.ban(conn, BanReason::CorruptData);
            } else {
                self.strike(conn);
            }
        }
        if self.downloads.get(&key).is_some_and(|d| d.reqs.is_empty()) {
            self.drop_download(key);
        } else {
            self.drive(now, key);
        }
    }

    // ---------------------------------------------------------------- peers

    fn on_candidate(
        &mut self,
        now: Instant,
        conn: ConnId,
        swarm: SwarmId,
        peer: PeerId,
        inbound: bool,
    ) {
        let reason = if !self.config.p2p_enabled {
            Some(CloseReason::P2pDisabled)
        } else if self.sessions.contains_key(&conn) {
            Some(CloseReason::Duplicate)
        } else if self.banned.contains(&peer) {
            Some(CloseReason::Banned)
        } else if peer == self.our_id {
            Some(CloseReason::Rejected)
        } else {
            match self.swarms.get(&swarm) {
                None => Some(CloseReason::Rejected),
                Some(s)
                    if s.conns
                        .iter()
                        .any(|c| self.sessions.get(c).is_some_and(|x| x.peer == peer)) =>
                {
                    Some(CloseReason::Duplicate)
                }
                Some(s) if s.conns.len() >= self.config.max_peers => {
                    Some(CloseReason::TooManyPeers)
                }
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            self.out.push_back(Output::ClosePeer { conn, reason });
            return;
        }
        self.sessions
            .insert(conn, Session::new(conn, swarm, peer, inbound, now));
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.conns.push(conn);
        }
        self.out.push_back(Output::ConnectPeer { conn });
    }

    fn on_connected(&mut self, _now: Instant, conn: ConnId) {
        let Some(s) = self.sessions.get_mut(&conn) else {
            self.warn(format!("connected for unknown conn {}", conn.0));
            return;
        };
        if s.state != PeerState::Connecting {
            return;
        }
        s.state = PeerState::Open;
        let swarm = s.swarm;
        let capabilities = if self.sharing() {
            wire::CAP_UPLOAD | wire::CAP_PARTIAL
        } else {
            0
        };
        let hs = Message::Handshake {
            version: PROTOCOL_VERSION,
            swarm,
            peer: self.our_id,
            capabilities,
        };
        self.send(conn, &hs);
        if self.sharing() {
            let (base, bits) = self.store.bitfield(swarm, MAX_BITFIELD_BYTES);
            if bits.iter().any(|b| *b != 0) {
                let told = self.store.seqs(swarm);
                if let Some(s) = self.sessions.get_mut(&conn) {
                    for seq in told.into_iter().filter(|q| *q >= base) {
                        s.note_told(seq);
                    }
                }
                self.send(conn, &Message::Bitfield { base, bits });
            }
            let downloading: Vec<(Seq, u32)> = self
                .downloads
                .range(
                    SegmentKey { swarm, seq: 0 }..=SegmentKey {
                        swarm,
                        seq: Seq::MAX,
                    },
                )
                .filter(|(_, d)| d.announced)
                .filter_map(|(k, d)| d.size.map(|s| (k.seq, s as u32)))
                .collect();
            for (seq, size) in downloading {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.note_told(seq);
                }
                self.send(conn, &Message::Downloading { seq, size });
            }
        }
    }

    /// Counts a message against the peer's rate limit: its session's state, or `None` if
    /// there is no session or the peer was just banned for exceeding the limit.
    fn admit_message(&mut self, now: Instant, conn: ConnId) -> Option<PeerState> {
        let s = self.sessions.get_mut(&conn)?;
        if !s.count_message(now) {
            self.ban(conn, BanReason::LimitExceeded);
            self.schedule_all(now);
            return None;
        }
        Some(s.state)
    }

    fn on_data_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        state: PeerState,
        d: wire::DataRef<'_>,
        src: Option<Src<'_>>,
    ) {
        if state == PeerState::Ready {
            self.on_data(now, conn, d, src);
        } else {
            self.violation(now, conn);
        }
    }

    /// `Input::PeerData`: exactly `on_peer_message` of the frame's bytes, without joining
    /// them.
    fn on_peer_data(&mut self, now: Instant, conn: ConnId, f: &DataFrame) {
        match wire::decode_data_parts(&f.head, f.payload()) {
            Some(Ok(d)) => {
                if let Some(state) = self.admit_message(now, conn) {
                    self.on_data_message(now, conn, state, d, Some((&f.data, f.start)));
                }
            }
            _ => self.on_peer_message(now, conn, &f.to_vec()),
        }
    }

    fn on_peer_message(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(mut state) = self.admit_message(now, conn) else {
            return;
        };
        // `Data`, the bulk of the traffic, is read in place rather than copied out.
        let decoded = match wire::decode_data(bytes) {
            Some(Ok(d)) => {
                self.on_data_message(now, conn, state, d, None);
                return;
            }
            Some(Err(e)) => Err(e),
            None => wire::decode(bytes),
        };
        let msg = match decoded {
            Ok(m) => m,
            Err(_) => {
                // A correct implementation never emits a malformed message.
                self.ban(conn, BanReason::ProtocolViolation);
                self.schedule_all(now);
                return;
            }
        };
        if state == PeerState::Connecting && matches!(msg, Message::Handshake { .. }) {
            // The remote's first message can beat our channel-open event.
            self.on_connected(now, conn);
            state = PeerState::Open;
        }
        match (state, msg) {
            (
                PeerState::Open,
                Message::Handshake {
                    version,
                    swarm,
                    peer,
                    ..
                },
            ) => {
                let ok = self
                    .sessions
                    .get(&conn)
                    .is_some_and(|s| s.swarm == swarm && s.peer == peer);
                // Version negotiation: v1 speaks v1 to any peer announcing >= 1.
                if version < PROTOCOL_VERSION || !ok {
                    self.out.push_back(Output::ClosePeer {
                        conn,
                        reason: CloseReason::Rejected,
                    });
                    self.remove_session(conn);
                    return;
                }
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.state = PeerState::Ready;
                    s.next_ping = now;
                    self.ping_at = Some(self.ping_at.map_or(now, |t| t.min(now)));
                    let (swarm, peer) = (s.swarm, s.peer);
                    self.event(Event::PeerJoined { swarm, peer });
                }
                self.schedule_all(now);
            }
            (PeerState::Ready, Message::Bitfield { base, bits }) => {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.announce_bits(base, &bits);
                }
                self.schedule_all(now);
            }
            (PeerState::Ready, Message::Have { seq, size }) => {
                self.on_announce(now, conn, seq, size, true)
            }
            (PeerState::Ready, Message::Downloading { seq, size }) => {
                self.on_announce(now, conn, seq, size, false)
            }
            (PeerState::Ready, Message::Lost { seq }) => {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    s.forget(seq);
                }
            }
            (
                PeerState::Ready,
                Message::Request {
                    id,
                    seq,
                    first_chunk,
                    count,
                },
            ) => self.on_up_request(now, conn, id, seq, first_chunk, count),
            (PeerState::Ready, Message::Cancel { id }) => {
                let mut unpin = None;
                if let Some(s) = self.sessions.get_mut(&conn) {
                    if let Some(i) = s.up.iter().position(|u| u.id == id) {
                        let u = s.up.remove(i);
                        if u.pinned {
                            unpin = Some(u.key);
                        }
                    }
                }
                if let Some(k) = unpin {
                    self.unpin(k);
                }
            }
            (
                PeerState::Ready,
                Message::Data {
                    id,
                    chunk,
                    total_size,
                    payload,
                },
            ) => self.on_data(
                now,
                conn,
                wire::DataRef {
                    id,
                    chunk,
                    total_size,
                    payload: &payload,
                },
                None,
            ),
            (PeerState::Ready, Message::Absent { id }) => {
                let key = self.p2p_reqs.get(&(conn, id)).map(|r| r.key);
                if let Some(key) = key {
                    self.release_p2p(conn, id);
                    let announced = self
                        .sessions
                        .get_mut(&conn)
                        .is_some_and(|s| s.forget(key.seq));
                    // An honest peer may evict between its announce and our request; only
                    // a run of them (no completed request in between) looks like lying.
                    let lying = announced
                        && self.sessions.get_mut(&conn).is_some_and(|s| {
                            s.absents = s.absents.saturating_add(1);
                            s.absents >= ABSENTS_TO_STRIKE
                        });
                    if lying {
                        if let Some(s) = self.sessions.get_mut(&conn) {
                            s.absents = 0;
                        }
                        self.strike(conn);
                    }
                    self.schedule_all(now);
                }
            }
            (PeerState::Ready, Message::Busy { id, retry_after_ms }) => {
                if self.release_p2p(conn, id).is_some() {
                    if let Some(s) = self.sessions.get_mut(&conn) {
                        s.backoff_until = now + ms(u64::from(retry_after_ms).max(100));
                    }
                    self.schedule_all(now);
                }
            }
            (_, Message::Ping { nonce }) => self.send(conn, &Message::Pong { nonce }),
            (_, Message::Pong { nonce }) => {
                let mut asked = false;
                if let Some(s) = self.sessions.get_mut(&conn) {
                    if let Some((n, sent)) = s.ping {
                        if n == nonce {
                            s.rtt
                                .sample(now.as_millis().saturating_sub(sent.as_millis()) as f64);
                            s.ping = None;
                            asked = true;
                        }
                    }
                }
                if !asked {
                    self.violation(now, conn);
                }
            }
            _ => self.violation(now, conn),
        }
    }

    fn on_announce(&mut self, now: Instant, conn: ConnId, seq: Seq, size: u32, complete: bool) {
        if size == 0 || size > MAX_SEGMENT_SIZE {
            self.violation(now, conn);
            return;
        }
        let Some(s) = self.sessions.get_mut(&conn) else {
            return;
        };
        s.announce(
            seq,
            Avail {
                size: Some(size),
                complete,
            },
        );
        let key = SegmentKey {
            swarm: s.swarm,
            seq,
        };
        self.yield_untouched_http(now, key);
        self.schedule_all(now);
    }

    /// Live-edge collision: we started fetching `key` from the CDN, but a peer announced it
    /// before our first byte arrived (so before we announced it ourselves). Nobody can be
    /// relying on our copy yet: cancel the transfer and take the peer's, saving the CDN
    /// the whole body. Urgent segments keep their HTTP transfer.
    fn yield_untouched_http(&mut self, now: Instant, key: SegmentKey) {
        if self.downloads.get(&key).is_none_or(|d| d.http.is_none())
            || self.is_urgent(self.deadline_ms(now, key))
        {
            return;
        }
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let Some(id) = d.http else {
            return;
        };
        let untouched = self
            .http
            .get(&id)
            .is_some_and(|x| x.full && x.received == 0);
        if !untouched || d.announced || d.got_bytes > 0 || d.force_http {
            return;
        }
        d.http = None;
        d.http_chunks = (0, 0);
        self.http.remove(&id);
        self.out.push_back(Output::CancelHttp { id });
    }

    fn violation(&mut self, now: Instant, conn: ConnId) {
        if self.strike(conn) {
            self.schedule_all(now);
        }
    }

    /// Adds a strike; bans at `strikes_to_ban`. Returns true if the peer was banned.
    fn strike(&mut self, conn: ConnId) -> bool {
        let limit = self.config.strikes_to_ban.max(1);
        let Some(s) = self.sessions.get_mut(&conn) else {
            return false;
        };
        s.strikes = s.strikes.saturating_add(1);
        if s.strikes >= limit {
            self.ban(conn, BanReason::TooManyStrikes);
            return true;
        }
        false
    }

    fn ban(&mut self, conn: ConnId, reason: BanReason) {
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        let (swarm, peer) = (s.swarm, s.peer);
        if self.banned.insert(peer) {
            self.counters.peers_banned = self.counters.peers_banned.saturating_add(1);
        }
        self.event(Event::PeerBanned {
            swarm,
            peer,
            reason,
        });
        self.out.push_back(Output::ClosePeer {
            conn,
            reason: CloseReason::Banned,
        });
        self.remove_session(conn);
    }

    fn remove_session(&mut self, conn: ConnId) {
        let Some(s) = self.sessions.remove(&conn) else {
            return;
        };
        if let Some(sw) = self.swarms.get_mut(&s.swarm) {
            sw.conns.retain(|c| *c != conn);
        }
        let ids: Vec<u32> = self
            .p2p_reqs
            .range((conn, 0)..=(conn, u32::MAX))
            .map(|(k, _)| k.1)
            .collect();
        for id in ids {
            self.release_p2p(conn, id);
        }
        for u in &s.up {
            if u.pinned {
                self.unpin(u.key);
            }
        }
        self.uploaders.retain(|c| *c != conn);
        if s.state == PeerState::Ready {
            self.event(Event::PeerLeft {
                swarm: s.swarm,
                peer: s.peer,
            });
        }
    }

    /// `origin`: where `payload` lies in a shared buffer (`Input::PeerData`).
    fn on_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        d: wire::DataRef<'_>,
        origin: Option<Src<'_>>,
    ) {
        let wire::DataRef {
            id,
            chunk,
            total_size,
            payload,
        } = d;
        let Some(r) = self.p2p_reqs.get(&(conn, id)) else {
            // Late data for one of our ended requests to this peer is normal and simply not
            // used; data for any other id was never asked for: a violation (unrequested
            // chunks would otherwise fill the link for free).
            let late = self.sessions.get(&conn).is_some_and(|s| s.was_released(id));
            if !late {
                self.violation(now, conn);
            }
            return;
        };
        let key = r.key;
        let (first, end) = (r.first, r.end);
        let container = self
            .swarms
            .get(&key.swarm)
            .map_or(Container::Unknown, |s| s.container);
        let Some(peer) = self.sessions.get(&conn).map(|s| s.peer) else {
            return;
        };
        if total_size == 0 || total_size > MAX_SEGMENT_SIZE || chunk < first || chunk >= end {
            self.violation(now, conn);
            return;
        }
        // Only contradicting its own announcement proves a peer wrong (PROTOCOL.md).
        let own = self
            .sessions
            .get(&conn)
            .and_then(|s| s.holds(key.seq))
            .and_then(|a| a.size);
        if own.is_some_and(|o| o != total_size) {
            self.violation(now, conn);
            return;
        }
        let Some((size, src)) = self.downloads.get(&key).map(|d| (d.size, d.size_src)) else {
            return;
        };
        let adopt = match (size, src) {
            (None, _) => true,
            (Some(s), _) if s == total_size as u64 => false,
            (Some(_), SizeSrc::Announced) => {
                // Another peer's `Have` (maybe a lie) set the size; the bytes win. Requests
                // planned with the old size are withdrawn without blame.
                let others: Vec<(ConnId, u32)> = self
                    .downloads
                    .get(&key)
                    .map(|d| d.p2p.iter().copied().filter(|x| *x != (conn, id)).collect())
                    .unwrap_or_default();
                for (c, i) in others {
                    self.release_p2p(c, i);
                    self.send(c, &Message::Cancel { id: i });
                }
                true
            }
            (Some(_), _) => {
                let in_manifest = self
                    .downloads
                    .get(&key)
                    .and_then(|d| self.manifest_entry(&d.url, d.range))
                    .is_some();
                if in_manifest {
                    self.corrupt(now, key, conn, peer, "size differs from the manifest");
                } else {
                    // Disagrees with the origin or with the first peer's bytes: without a
                    // manifest there is no proof who is wrong, so only stop asking it.
                    self.abandon_p2p(now, conn, id, false);
                }
                return;
            }
        };
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        if adopt {
            d.set_size(total_size as u64);
            d.size_src = SizeSrc::Data;
            let n = d.slots.len() as u32;
            for slot in d.slots.iter_mut() {
                *slot = Slot::Missing;
            }
            for slot in d
                .slots
                .iter_mut()
                .take(end.min(n) as usize)
                .skip(first as usize)
            {
                *slot = Slot::Asked(conn);
            }
            if let Some(r) = self.p2p_reqs.get_mut(&(conn, id)) {
                r.end = r.end.min(n);
            }
        } else if d.size_src == SizeSrc::Announced {
            d.size_src = SizeSrc::Data;
        }
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let size = total_size as u64;
        let (a, b) = chunk_bounds(size, chunk);
        if chunk as usize >= d.slots.len() || payload.len() as u64 != b - a {
            self.violation(now, conn);
            return;
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.down_bytes = s.down_bytes.saturating_add(payload.len() as u64);
            s.last_data_at = now;
        }
        if let Some(r) = self.p2p_reqs.get_mut(&(conn, id)) {
            if r.received == 0 {
                let ttfb = now.as_millis().saturating_sub(r.started.as_millis());
                self.p2p_ttfb.sample(ttfb as f64);
            }
            r.received = r.received.saturating_add(1);
            r.bytes = r.bytes.saturating_add(payload.len() as u64);
            r.last_at = now;
        }
        let already = matches!(d.slots.get(chunk as usize), Some(Slot::Got { .. }));
        if !already {
            let mut check =
                integrity::check_chunk(container, a, payload).map_err(|e| format!("{e:?}"));
            let mut trusted = false;
            if check.is_ok() {
                if let Some(m) = self.manifest.as_ref() {
                    if let Some(entry) = m.lookup(&d.url, d.range) {
                        if entry.size != size {
                            check = Err(format!("size {size} != manifest {}", entry.size));
                        } else if !entry.chunk_hashes.is_empty()
                            && m.chunk_size as usize == CHUNK_SIZE
                        {
                            match verify_one_chunk(entry, chunk, payload) {
                                Ok(v) => trusted = v,
                                Err(e) => check = Err(e),
                            }
                        }
                    }
                }
            }
            if let Err(detail) = check {
                self.counters.p2p_discarded = self
                    .counters
                    .p2p_discarded
                    .saturating_add(payload.len() as u64);
                self.corrupt(now, key, conn, peer, &detail);
                return;
            }
            let from = d.contributor(conn, peer);
            let fits = payload.len() as u64 == b.saturating_sub(a)
                && (chunk as usize) < d.slots.len()
                && d.write_at(a, payload, origin);
            if let Some(slot) = d.slots.get_mut(chunk as usize).filter(|_| fits) {
                *slot = Slot::Got { from, trusted };
                d.got_chunks = d.got_chunks.saturating_add(1);
                d.got_bytes = d.got_bytes.saturating_add(b - a);
                d.p2p_bytes = d.p2p_bytes.saturating_add(b - a);
                d.first_byte.get_or_insert(now);
            }
        }
        // Request finished when every chunk of its range is here.
        let done = self.downloads.get(&key).is_some_and(|d| {
            let hi = (end as usize).min(d.slots.len());
            d.slots
                .iter()
                .take(hi)
                .skip(first as usize)
                .all(|s| matches!(s, Slot::Got { .. }))
        });
        if done {
            if let Some(r) = self.release_p2p(conn, id) {
                if let Some(s) = self.sessions.get_mut(&conn) {
                    let elapsed =
                        now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
                    s.throughput.sample(r.bytes as f64 * 1000.0 / elapsed);
                    s.completed_request();
                }
            }
        }
        self.progress(key);
        if self.downloads.get(&key).is_some_and(|d| d.is_complete()) {
            self.finalize(now, key);
            self.schedule_all(now);
        } else if done {
            self.schedule_all(now);
        }
    }

    /// A chunk from `conn` failed its check: ban it, drop everything it sent for this
    /// segment, refetch over HTTP if the player wants the segment.
    fn corrupt(&mut self, now: Instant, key: SegmentKey, conn: ConnId, peer: PeerId, detail: &str) {
        self.event(Event::VerificationFailed {
            swarm: key.swarm,
            seq: key.seq,
            peer,
            detail: detail.to_string(),
        });
        self.ban(conn, BanReason::CorruptData);
        if let Some(d) = self.downloads.get_mut(&key) {
            let idx = d
                .contributors
                .iter()
                .position(|c| c.0 == conn)
                .map(|i| (i + 1) as u16);
            if let Some(idx) = idx {
                let dropped = d.discard_from(|f| f == idx);
                d.p2p_bytes = d.p2p_bytes.saturating_sub(dropped);
                self.counters.p2p_discarded = self.counters.p2p_discarded.saturating_add(dropped);
            }
            if !d.reqs.is_empty() {
                d.force_http = true;
            }
        }
        self.schedule_all(now);
    }

    // ---------------------------------------------------------------- upload

    fn on_up_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: u32,
        seq: Seq,
        first: u32,
        count: u32,
    ) {
        if !self.sharing() {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: u16::MAX,
                },
            );
            return;
        }
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        if count == 0 || s.up.iter().any(|u| u.id == id) {
            self.violation(now, conn);
            return;
        }
        if s.up.len() >= MAX_UP_REQUESTS {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: BUSY_RETRY_MS,
                },
            );
            self.violation(now, conn);
            return;
        }
        let key = SegmentKey {
            swarm: s.swarm,
            seq,
        };
        let new_uploader = s.up.is_empty();
        let size = match self.store.get(&key) {
            Some(data) => Some((data.len() as u64, true)),
            None => self
                .downloads
                .get(&key)
                .filter(|d| d.announced)
                .and_then(|d| d.size)
                .map(|s| (s, false)),
        };
        let Some((size, stored)) = size else {
            self.send(conn, &Message::Absent { id });
            return;
        };
        let n = n_chunks(size);
        if first >= n {
            self.send(conn, &Message::Absent { id });
            return;
        }
        if new_uploader && self.uploaders.len() >= self.config.upload_slots {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: BUSY_RETRY_MS,
                },
            );
            return;
        }
        let end = first.saturating_add(count).min(n);
        if stored {
            self.pin(key);
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.up.push(UpRequest {
                id,
                key,
                next_chunk: first,
                end_chunk: end,
                pinned: stored,
            });
        }
        if !self.uploaders.contains(&conn) {
            self.uploaders.push_back(conn);
        }
        self.pump_uploads(now);
    }

    /// Sends chunks round-robin over the peers we serve, within the byte-rate budget.
    fn pump_uploads(&mut self, now: Instant) {
        self.upload_wake = None;
        if self.uploaders.is_empty() {
            return;
        }
        self.bucket.refill(now);
        let mut idle = 0usize;
        while idle < self.uploaders.len() {
            let Some(conn) = self.uploaders.pop_front() else {
                break;
            };
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let mut sent = false;
            let mut blocked = None;
            let mut unpins = Vec::new();
            let mut absents = Vec::new();
            let mut i = 0;
            while i < s.up.len() {
                let u = &s.up[i];
                if u.next_chunk >= u.end_chunk {
                    let u = s.up.remove(i);
                    if u.pinned {
                        unpins.push(u.key);
                    }
                    continue;
                }
                match chunk_source(&self.store, &self.downloads, u.key, u.next_chunk) {
                    ChunkSource::Gone => {
                        let u = s.up.remove(i);
                        absents.push(u.id);
                        if u.pinned {
                            unpins.push(u.key);
                        }
                    }
                    ChunkSource::NotYet => i += 1,
                    ChunkSource::Ready(bytes, total, src) => {
                        if !self.bucket.try_take(bytes.len() as u64) {
                            blocked = self.bucket.ready_at(now, bytes.len() as u64);
                            break;
                        }
                        let msg = wire::DataRef {
                            id: u.id,
                            chunk: u.next_chunk,
                            total_size: total as u32,
                            payload: bytes,
                        };
                        let out = match src.filter(|_| self.share_uploads) {
                            Some((buf, start)) => Output::SendData {
                                conn,
                                frame: DataFrame {
                                    head: msg.header(),
                                    data: buf.clone(),
                                    start,
                                    end: start + bytes.len(),
                                },
                            },
                            None => Output::SendToPeer {
                                conn,
                                data: msg.encode(),
                            },
                        };
                        let len = bytes.len() as u64;
                        s.up[i].next_chunk += 1;
                        s.up_bytes = s.up_bytes.saturating_add(len);
                        self.counters.p2p_up = self.counters.p2p_up.saturating_add(len);
                        self.out.push_back(out);
                        sent = true;
                        break;
                    }
                }
            }
            let keep = !s.up.is_empty();
            for id in absents {
                self.send(conn, &Message::Absent { id });
            }
            for k in unpins {
                self.unpin(k);
            }
            if keep {
                self.uploaders.push_back(conn);
            }
            if let Some(at) = blocked {
                self.upload_wake = Some(at);
                break;
            }
            if sent {
                idle = 0;
            } else {
                idle += 1;
            }
        }
    }

    // ---------------------------------------------------------------- spot checks

    /// A segment no manifest vouched for was delivered: maybe sample it for a spot check.
    fn spot_offer(&mut self, key: SegmentKey, d: &Download, data: &[u8]) {
        if !self.spot.enabled() {
            return;
        }
        let senders: Vec<Option<PeerId>> = d
            .slots
            .iter()
            .map(|s| match s {
                Slot::Got { from, .. } => usize::from(*from)
                    .checked_sub(1)
                    .and_then(|i| d.contributors.get(i))
                    .map(|c| c.1),
                _ => None,
            })
            .collect();
        self.spot.offer(key, &d.url, d.range, data, &senders);
    }

    /// Low priority: a spot-check transfer starts only while no transfer for the player runs
    /// and the CDN looks healthy, so it never competes with playback.
    fn pump_spot_check(&mut self, now: Instant) {
        if !self.spot.wants_transfer() || !self.http.is_empty() || self.cdn.degraded.is_some() {
            return;
        }
        let id = HttpId(self.next_http);
        if let Some((url, range)) = self.spot.start(id, now) {
            self.next_http = self.next_http.wrapping_add(1).max(1);
            self.out.push_back(Output::StartHttp { id, url, range });
        }
    }

    /// The CDN's copy differed: ban the peers that sent the differing chunks (connected or
    /// not), stop sharing the segment, report it.
    fn on_spot_verdict(&mut self, now: Instant, verdict: SpotVerdict) {
        let SpotVerdict::Mismatch { sample, liars } = verdict else {
            self.schedule_all(now);
            return;
        };
        let key = sample.key;
        for &peer in &liars {
            let conns: Vec<ConnId> = self
                .sessions
                .values()
                .filter(|s| s.peer == peer)
                .map(|s| s.conn)
                .collect();
            // Gone since: banned all the same, so it is refused if it comes back.
            if conns.is_empty() && self.banned.insert(peer) {
                self.counters.peers_banned = self.counters.peers_banned.saturating_add(1);
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
        if self.store.remove(&key).is_some() {
            self.timings.remove(&key);
            if self.sharing() {
                self.broadcast(key.swarm, &Message::Lost { seq: key.seq });
            }
        }
        self.event(Event::SpotCheckFailed {
            swarm: key.swarm,
            seq: key.seq,
            peers: liars,
        });
        self.schedule_all(now);
    }

    // ---------------------------------------------------------------- timers

    fn recompute_wake(&mut self, now: Instant) {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if let Some(t) = self.upload_wake {
            at(t);
        }
        for s in self.swarms.values() {
            if let Some(t) = s.next_announce {
                at(t);
            }
        }
        if self.config.p2p_enabled {
            if let Some(t) = self.ping_at {
                at(t);
            }
        }
        let stall = ms(self.config.peer_stall_timeout_ms);
        for r in self.p2p_reqs.values() {
            at(r.last_at + stall);
        }
        for x in self.http.values() {
            if self.config.p2p_enabled {
                at(x.last_at + stall);
            }
            if !x.flagged {
                at(x.last_at + ms(CDN_SLOW_MS));
            }
        }
        let urgent = self.config.urgent_window_ms.min(i64::MAX as u64) as i64;
        let rate = self.playhead.map_or(1.0, |p| p.rate);
        // Deadlines only shrink once `now` passes the playhead report's time (a host clock
        // that stepped back freezes them), so count the wait from whichever is later:
        // otherwise the engine would wake every millisecond and find nothing urgent.
        let base = self.playhead.map_or(now, |p| p.at.max(now));
        for (key, d) in &self.downloads {
            // A wait that is over but still set found every HTTP slot busy: the transfer
            // that frees one reschedules (`on_http_done`/`failed`/stall), so waking now
            // would only spin.
            if let Some(t) = d.wait_until.filter(|t| *t > now) {
                at(t);
            }
            if let Some(t) = d.avoid_http_until.filter(|t| *t > now) {
                at(t);
            }
            if d.reqs.is_empty() || d.http.is_some() {
                continue;
            }
            match self.deadline_ms(now, *key) {
                Some(dl) if dl >= urgent && rate > 0.0 => {
                    let wall = ((dl - urgent) as f64 / rate).ceil() as u64 + 1;
                    at(base + ms(wall));
                }
                Some(dl) if dl >= urgent => {}
                _ if !d.p2p.is_empty() => at(now + ms(PACE_CHECK_MS)),
                _ => {}
            }
        }
        self.next_wake = wake;
    }
}

fn ms(v: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v)
}

/// Copies an HTTP body piece at segment offset `at` into the chunks not yet received and
/// marks the chunks the HTTP body now fully covers.
fn write_http(d: &mut Download, size: u64, at: u64, bytes: &[u8]) {
    let end = at.saturating_add(bytes.len() as u64).min(size);
    if at >= end {
        return;
    }
    let first = (at / CHUNK) as u32;
    let last = ((end - 1) / CHUNK) as u32;
    for c in first..=last {
        let (cs, ce) = chunk_bounds(size, c);
        let got = matches!(d.slots.get(c as usize), Some(Slot::Got { .. }) | None);
        if got {
            continue;
        }
        let s = cs.max(at);
        let e = ce.min(end);
        if let Some(src) = bytes.get((s - at) as usize..(e - at) as usize) {
            d.write_at(s, src, None);
        }
        // The HTTP body is contiguous from its start (a chunk boundary), so reaching the
        // chunk's end means all of it came over HTTP.
        let starts_in_body = cs >= at || d.http_chunks.0 <= c;
        if e == ce && starts_in_body {
            if let Some(slot) = d.slots.get_mut(c as usize) {
                *slot = Slot::Got {
                    from: 0,
                    trusted: true,
                };
                d.got_chunks = d.got_chunks.saturating_add(1);
                d.got_bytes = d.got_bytes.saturating_add(ce - cs);
            }
        }
    }
}

fn chunk_source<'a>(
    store: &'a Store,
    downloads: &'a BTreeMap<SegmentKey, Download>,
    key: SegmentKey,
    chunk: u32,
) -> ChunkSource<'a> {
    if let Some(buf) = store.get_buffer(&key) {
        let size = buf.len() as u64;
        let (a, b) = chunk_bounds(size, chunk);
        return match buf.get(a as usize..b as usize) {
            Some(bytes) if b > a => ChunkSource::Ready(bytes, size, Some((buf, a as usize))),
            _ => ChunkSource::Gone,
        };
    }
    let Some(d) = downloads.get(&key).filter(|d| d.announced) else {
        return ChunkSource::Gone;
    };
    let Some(size) = d.size else {
        return ChunkSource::NotYet;
    };
    match d.slots.get(chunk as usize) {
        Some(Slot::Got { trusted: true, .. }) => {
            let (a, b) = chunk_bounds(size, chunk);
            match d.data.get(a as usize..b as usize) {
                Some(bytes) => ChunkSource::Ready(bytes, size, d.data.src(a as usize)),
                None => ChunkSource::Gone,
            }
        }
        Some(_) => ChunkSource::NotYet,
        None => ChunkSource::Gone,
    }
}

fn timing_of(d: &Download, now: Instant) -> DeliveryTiming {
    let start = d.transfer_start.unwrap_or(now);
    DeliveryTiming {
        http_bytes: d.http_bytes.min(d.data.len() as u64),
        p2p_bytes: d.p2p_bytes,
        transfer_start: start,
        first_byte: d.first_byte.unwrap_or(start),
        transfer_end: now,
        from_cache: false,
    }
}

fn verify_whole(entry: &ManifestEntry, data: &[u8]) -> Result<(), String> {
    integrity::verify_against(entry, data).map_err(|e| format!("{e:?}"))
}

/// `Ok(true)`: matched the chunk hash; `Ok(false)`: no chunk hash to check against.
fn verify_one_chunk(entry: &ManifestEntry, chunk: u32, payload: &[u8]) -> Result<bool, String> {
    match integrity::verify_chunk(entry, CHUNK_SIZE as u32, chunk, payload) {
        Some(true) => Ok(true),
        Some(false) => Err(format!("chunk {chunk} sha256 mismatch")),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Pieces written in any order, overlapping or not, assemble the same bytes as one
        /// pass, whether the host offered no shared copy (mode 0), an equal one (1: used,
        /// never copied), one differing in a byte (2) or one of another size (3); writes
        /// past the end are refused whole.
        #[test]
        fn assembly_buffer_takes_pieces_in_any_order(
            size in 1u64..5_000,
            cuts in proptest::collection::vec(0u64..5_000, 0..12),
            order in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..12),
            mode in 0u8..4,
            flip in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let truth: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            let mut bounds: Vec<u64> = cuts.into_iter().map(|c| c % size).collect();
            bounds.extend([0, size]);
            bounds.sort_unstable();
            bounds.dedup();
            let mut pieces: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
            for ix in order {
                let n = pieces.len();
                pieces.swap(0, ix.index(n));
                // An overlapping rewrite of a neighbour's bytes, as HTTP and peers may do.
                let (a, b) = pieces[0];
                pieces.push((a.saturating_sub(3), b));
            }
            let shared: Option<SegmentBytes> = match mode {
                0 => None,
                1 => Some(Rc::new(truth.clone())),
                2 => {
                    let mut other = truth.clone();
                    other[flip.index(truth.len())] ^= 0x10;
                    Some(Rc::new(other))
                }
                _ => Some(Rc::new(vec![0; size as usize + 1])),
            };
            let mut d = Download::new(String::new(), None, Some(size), shared.clone());
            let mut furthest = 0;
            for (a, b) in pieces {
                proptest::prop_assert!(d.write_at(a, &truth[a as usize..b as usize], None));
                // Whatever was written reads back (relays serve chunks mid-download).
                furthest = furthest.max(b as usize);
                proptest::prop_assert_eq!(d.data.len(), furthest);
                proptest::prop_assert_eq!(d.data.get(a as usize..b as usize), Some(&truth[a as usize..b as usize]));
            }
            proptest::prop_assert!(!d.write_at(size, &[1], None));
            proptest::prop_assert!(!d.write_at(size - 1, &[1, 2], None));
            proptest::prop_assert_eq!(d.data.as_slice(), &truth[..]);
            let bytes = std::mem::take(&mut d.data).into_bytes();
            proptest::prop_assert_eq!(&bytes[..], &truth[..]);
            let used_shared = shared.as_ref().is_some_and(|s| Rc::ptr_eq(s, &bytes));
            proptest::prop_assert_eq!(used_shared, mode == 1);
        }
    }

    const SW: SwarmId = SwarmId([7; 20]);
    const SEG_MS: u32 = 2_000;

    fn ts_segment(seq: u64, packets: usize) -> Vec<u8> {
        (0..packets * 188)
            .map(|i| {
                if i % 188 == 0 {
                    0x47
                } else {
                    (i as u64 ^ seq.wrapping_mul(131)) as u8
                }
            })
            .collect()
    }

    fn url(seq: u64) -> String {
        format!("https://cdn.test/live/s{seq}.ts")
    }

    fn playlist(n: u64) -> Input {
        Input::Playlist {
            swarm: SW,
            live: true,
            container: Container::Ts,
            bitrate: 0,
            segments: (0..n)
                .map(|i| SegmentInfo {
                    seq: i,
                    start_ms: i * SEG_MS as u64,
                    duration_ms: SEG_MS,
                    url: url(i),
                    range: None,
                })
                .collect(),
        }
    }

    /// A playing player at `pos` whose buffer reaches far ahead (no gap before any segment,
    /// so a segment's deadline is the time until its start).
    fn playhead(pos: u64) -> Input {
        Input::Playhead {
            swarm: SW,
            position_ms: pos,
            buffered_ahead_ms: NO_GAP_MS,
            rate: 1.0,
        }
    }

    const NO_GAP_MS: u64 = 600_000;

    fn request(req: u32, seq: u64) -> Input {
        Input::SegmentRequested {
            req: RequestId(req),
            swarm: SW,
            seq,
            url: url(seq),
            range: None,
        }
    }

    type Tamper = Box<dyn FnMut(usize, &Message) -> Option<Message>>;

    /// Engines wired back to back with zero latency, a CDN, and a clock.
    struct Mesh {
        engines: Vec<Engine>,
        links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
        now: Instant,
        cdn: BTreeMap<String, Vec<u8>>,
        /// Serve HTTP at once (whole body) instead of leaving it pending.
        auto_http: bool,
        pending_http: Vec<(usize, HttpId, String, Option<ByteRange>)>,
        started_http: Vec<(usize, String, Option<ByteRange>)>,
        delivered: Vec<(usize, RequestId, Vec<u8>, DeliveryTiming, Instant)>,
        failed: Vec<(usize, RequestId)>,
        events: Vec<(usize, Event)>,
        closes: Vec<(usize, ConnId, CloseReason)>,
        cancelled: Vec<(usize, HttpId)>,
        sent: Vec<(usize, Message)>,
        /// Rewrites (or drops, with `None`) messages sent by engine `usize`.
        tamper: Option<Tamper>,
        /// `Output::SendData` frames passed on (`share`).
        frames: usize,
    }

    impl Mesh {
        fn new(configs: Vec<Config>) -> Self {
            let now = Instant::from_millis(1_000);
            Mesh {
                engines: configs
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| Engine::new(c, now, 42 + i as u64))
                    .collect(),
                links: BTreeMap::new(),
                now,
                cdn: BTreeMap::new(),
                auto_http: true,
                pending_http: Vec::new(),
                started_http: Vec::new(),
                delivered: Vec::new(),
                failed: Vec::new(),
                events: Vec::new(),
                closes: Vec::new(),
                cancelled: Vec::new(),
                sent: Vec::new(),
                tamper: None,
                frames: 0,
            }
        }

        /// Engine `i` sends `Data` as shared-buffer frames and assembles over `offered`
        /// (its interner's copies, by URL).
        fn share(&mut self, i: usize, offered: BTreeMap<String, SegmentBytes>) {
            self.engines[i].share_upload_buffers(true);
            self.engines[i].set_interner(Box::new(move |u, range| {
                range.is_none().then(|| offered.get(u).cloned()).flatten()
            }));
        }

        fn with_cdn(mut self, n: u64, packets: usize) -> Self {
            for i in 0..n {
                self.cdn.insert(url(i), ts_segment(i, packets));
            }
            self
        }

        fn input(&mut self, i: usize, input: Input) {
            let mut queue = VecDeque::from([(i, input)]);
            while let Some((i, input)) = queue.pop_front() {
                self.engines[i].handle_input(self.now, input);
                self.drain(i, &mut queue);
            }
        }

        fn drain(&mut self, i: usize, queue: &mut VecDeque<(usize, Input)>) {
            while let Some(out) = self.engines[i].poll_output() {
                match out {
                    Output::SendToPeer { conn, data } => {
                        let Ok(msg) = wire::decode(&data) else {
                            panic!("engine {i} sent undecodable bytes");
                        };
                        self.sent.push((i, msg.clone()));
                        let msg = match self.tamper.as_mut() {
                            Some(t) => t(i, &msg),
                            None => Some(msg),
                        };
                        if let (Some(msg), Some(&(j, c))) = (msg, self.links.get(&(i, conn))) {
                            queue.push_back((
                                j,
                                Input::PeerMessage {
                                    conn: c,
                                    data: wire::encode(&msg),
                                },
                            ));
                        }
                    }
                    Output::SendData { conn, frame } => {
                        self.frames += 1;
                        let Ok(msg) = wire::decode(&frame.to_vec()) else {
                            panic!("engine {i} sent an undecodable frame");
                        };
                        self.sent.push((i, msg.clone()));
                        // Untouched, the frame goes on as it is; a rewrite goes as bytes.
                        let tampered = self.tamper.as_mut().map(|t| t(i, &msg));
                        if let Some(&(j, c)) = self.links.get(&(i, conn)) {
                            let input = match tampered {
                                None => Some(Input::PeerData { conn: c, frame }),
                                Some(m) => m.map(|m| Input::PeerMessage {
                                    conn: c,
                                    data: wire::encode(&m),
                                }),
                            };
                            queue.extend(input.map(|input| (j, input)));
                        }
                    }
                    Output::StartHttp { id, url, range } => {
                        self.started_http.push((i, url.clone(), range));
                        if self.auto_http {
                            self.http_body(i, id, &url, range, queue);
                        } else {
                            self.pending_http.push((i, id, url, range));
                        }
                    }
                    Output::DeliverSegment { req, data, timing } => {
                        self.delivered
                            .push((i, req, data.to_vec(), timing, self.now))
                    }
                    Output::FailSegment { req, .. } => self.failed.push((i, req)),
                    Output::CancelHttp { id } => self.cancelled.push((i, id)),
                    Output::Event(e) => self.events.push((i, e)),
                    Output::ClosePeer { conn, reason } => {
                        self.closes.push((i, conn, reason));
                        if let Some((j, c)) = self.links.remove(&(i, conn)) {
                            self.links.remove(&(j, c));
                            queue.push_back((j, Input::PeerClosed { conn: c }));
                        }
                    }
                    _ => {}
                }
            }
        }

        fn http_body(
            &mut self,
            i: usize,
            id: HttpId,
            url: &str,
            range: Option<ByteRange>,
            queue: &mut VecDeque<(usize, Input)>,
        ) {
            let Some(body) = self.cdn.get(url) else {
                queue.push_back((
                    i,
                    Input::HttpFailed {
                        id,
                        status: 404,
                        reason: "not found".into(),
                    },
                ));
                return;
            };
            let body = match range {
                Some(r) => body[r.start as usize..r.end as usize].to_vec(),
                None => body.clone(),
            };
            let total = Some(body.len() as u64);
            queue.push_back((
                i,
                Input::HttpProgress {
                    id,
                    data: body,
                    total,
                },
            ));
            queue.push_back((i, Input::HttpDone { id }));
        }

        /// Serves `bytes` more of a pending transfer (all of it with `usize::MAX`).
        fn serve_pending(&mut self, k: usize, from: usize, bytes: usize) {
            let (i, id, url, range) = self.pending_http[k].clone();
            let body = self.cdn[&url].clone();
            let body = match range {
                Some(r) => body[r.start as usize..r.end as usize].to_vec(),
                None => body,
            };
            let to = from.saturating_add(bytes).min(body.len());
            let total = (from == 0).then_some(body.len() as u64);
            self.input(
                i,
                Input::HttpProgress {
                    id,
                    data: body[from..to].to_vec(),
                    total,
                },
            );
            if to == body.len() {
                self.input(i, Input::HttpDone { id });
            }
        }

        fn connect(&mut self, a: usize, b: usize) {
            let (ca, cb) = (ConnId(100 + b as u32), ConnId(100 + a as u32));
            self.links.insert((a, ca), (b, cb));
            self.links.insert((b, cb), (a, ca));
            let (pa, pb) = (self.engines[a].peer_id(), self.engines[b].peer_id());
            self.input(
                a,
                Input::PeerCandidate {
                    conn: ca,
                    swarm: SW,
                    peer: pb,
                    inbound: false,
                },
            );
            self.input(
                b,
                Input::PeerCandidate {
                    conn: cb,
                    swarm: SW,
                    peer: pa,
                    inbound: true,
                },
            );
            self.input(a, Input::PeerConnected { conn: ca });
            self.input(b, Input::PeerConnected { conn: cb });
        }

        /// Runs timers up to `to`.
        fn advance(&mut self, to: u64) {
            let to = Instant::from_millis(to);
            loop {
                let next = self.engines.iter().filter_map(|e| e.poll_timeout()).min();
                match next {
                    Some(t) if t <= to => {
                        self.now = self.now.max(t);
                        for i in 0..self.engines.len() {
                            if self.engines[i]
                                .poll_timeout()
                                .is_some_and(|t| t <= self.now)
                            {
                                self.engines[i].handle_timeout(self.now);
                                let mut q = VecDeque::new();
                                self.drain(i, &mut q);
                                while let Some((j, input)) = q.pop_front() {
                                    self.engines[j].handle_input(self.now, input);
                                    self.drain(j, &mut q);
                                }
                            }
                        }
                    }
                    _ => break,
                }
            }
            self.now = self.now.max(to);
        }

        fn banned(&self, i: usize) -> Vec<BanReason> {
            self.events
                .iter()
                .filter(|(j, _)| *j == i)
                .filter_map(|(_, e)| match e {
                    Event::PeerBanned { reason, .. } => Some(*reason),
                    _ => None,
                })
                .collect()
        }

        fn http_urls(&self, i: usize) -> Vec<String> {
            self.started_http
                .iter()
                .filter(|(j, ..)| *j == i)
                .map(|(_, u, _)| u.clone())
                .collect()
        }
    }

    /// Prefetch off, so a test controls exactly what each viewer asks for.
    fn quiet() -> Config {
        Config {
            prefetch_window_ms: 0,
            ..Config::default()
        }
    }

    fn two(cfg: Config) -> Mesh {
        let mut m = Mesh::new(vec![cfg.clone(), cfg]).with_cdn(20, 500);
        let t = m.now.as_millis();
        for i in 0..2 {
            m.input(i, playlist(20));
            // Paused at 0 with no gap: deadlines stay the time until each segment's start.
            m.input(
                i,
                Input::Playhead {
                    swarm: SW,
                    position_ms: 0,
                    buffered_ahead_ms: NO_GAP_MS,
                    rate: 0.0,
                },
            );
        }
        m.connect(0, 1);
        assert_eq!(m.now.as_millis(), t);
        m
    }

    #[test]
    fn without_peers_everything_comes_over_http_and_is_cached() {
        let mut m = Mesh::new(vec![Config::default()]).with_cdn(10, 500);
        m.input(0, playlist(10));
        m.input(0, playhead(0));
        // Past the join window nobody is being connected: no wait.
        m.advance(m.now.as_millis() + live_edge::JOIN_WAIT_MS);
        m.input(0, request(1, 4));
        assert_eq!(m.http_urls(0), vec![url(4)], "no peers: no live-edge wait");
        let (_, req, data, timing, _) = m.delivered[0].clone();
        assert_eq!(req, RequestId(1));
        assert_eq!(data, m.cdn[&url(4)]);
        assert_eq!(timing.http_bytes, data.len() as u64);
        assert_eq!(timing.p2p_bytes, 0);
        assert!(!timing.from_cache);
        let s = m.engines[0].stats();
        assert_eq!(
            (s.http_down, s.p2p_down, s.segments_http),
            (data.len() as u64, 0, 1)
        );
        assert_eq!(s.cache_bytes, data.len() as u64);

        m.now = Instant::from_millis(5_000);
        m.input(0, request(2, 4));
        let (_, req, again, t2, _) = m.delivered[1].clone();
        assert_eq!((req, again), (RequestId(2), data));
        assert!(t2.from_cache);
        assert_eq!(t2.transfer_start, timing.transfer_start);
        assert_eq!(m.http_urls(0).len(), 1);
        assert!(m
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::SegmentLoaded { seq: 4, .. })));
    }

    #[test]
    fn p2p_disabled_never_announces_or_connects() {
        let cfg = Config {
            p2p_enabled: false,
            ..Config::default()
        };
        let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
        e.handle_input(Instant::from_millis(0), playlist(5));
        e.handle_input(
            Instant::from_millis(0),
            Input::PeerCandidate {
                conn: ConnId(1),
                swarm: SW,
                peer: PeerId([9; 20]),
                inbound: true,
            },
        );
        e.handle_input(Instant::from_millis(0), request(1, 3));
        let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        assert!(!outs
            .iter()
            .any(|o| matches!(o, Output::Announce { .. } | Output::ConnectPeer { .. })));
        assert!(outs.contains(&Output::ClosePeer {
            conn: ConnId(1),
            reason: CloseReason::P2pDisabled
        }));
        assert!(outs
            .iter()
            .any(|o| matches!(o, Output::StartHttp { url: u, .. } if *u == url(3))));
    }

    #[test]
    fn swarm_start_announces_and_reannounces() {
        let cfg = Config::default();
        let interval = cfg.announce_interval_ms;
        let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
        e.handle_input(Instant::from_millis(0), playlist(5));
        let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Announce {
                event: AnnounceEvent::Started,
                ..
            }
        )));
        let t = e.poll_timeout().map(|t| t.as_millis());
        assert_eq!(t, Some(interval));
        e.handle_timeout(Instant::from_millis(interval));
        let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Announce {
                event: AnnounceEvent::Update,
                ..
            }
        )));
    }

    #[test]
    fn reannounce_asks_only_for_peers_the_tracker_counted_and_we_lack() {
        let cfg = Config::default();
        let interval = cfg.announce_interval_ms;
        let numwant_at = |e: &mut Engine, t: u64| {
            e.handle_timeout(Instant::from_millis(t));
            std::iter::from_fn(|| e.poll_output())
                .find_map(|o| match o {
                    Output::Announce {
                        event: AnnounceEvent::Update,
                        numwant,
                        ..
                    } => Some(numwant),
                    _ => None,
                })
                .expect("a periodic announce")
        };
        let mut e = Engine::new(cfg.clone(), Instant::from_millis(0), 1);
        e.handle_input(Instant::from_millis(0), playlist(5));
        // Not heard from the tracker: ask for the configured number.
        assert_eq!(numwant_at(&mut e, interval), cfg.announce_numwant);
        // The tracker counts 3 others, none connected: ask for 3, then none when it counts 0.
        e.handle_input(
            Instant::from_millis(interval + 1),
            Input::SwarmPeers {
                swarm: SW,
                peers: 3,
            },
        );
        assert_eq!(numwant_at(&mut e, 2 * interval + 1), 3);
        e.handle_input(
            Instant::from_millis(2 * interval + 2),
            Input::SwarmPeers {
                swarm: SW,
                peers: 0,
            },
        );
        assert_eq!(numwant_at(&mut e, 3 * interval + 2), 0);
    }

    #[test]
    fn peers_handshake_and_join() {
        let m = two(Config::default());
        for i in 0..2 {
            assert_eq!(m.engines[i].stats().peers, 1);
            assert!(m
                .events
                .iter()
                .any(|(j, e)| *j == i && matches!(e, Event::PeerJoined { .. })));
        }
        assert!(m
            .sent
            .iter()
            .any(|(_, msg)| matches!(msg, Message::Handshake { version: 1, .. })));
    }

    #[test]
    fn duplicate_and_banned_candidates_are_refused() {
        let mut m = two(Config::default());
        let p1 = m.engines[1].peer_id();
        m.input(
            0,
            Input::PeerCandidate {
                conn: ConnId(555),
                swarm: SW,
                peer: p1,
                inbound: true,
            },
        );
        assert!(m.closes.contains(&(0, ConnId(555), CloseReason::Duplicate)));
        // Garbage bytes: malformed message, immediate ban.
        m.input(
            0,
            Input::PeerMessage {
                conn: ConnId(101),
                data: vec![0xee, 1, 2],
            },
        );
        assert_eq!(m.banned(0), vec![BanReason::ProtocolViolation]);
        m.input(
            0,
            Input::PeerCandidate {
                conn: ConnId(556),
                swarm: SW,
                peer: p1,
                inbound: true,
            },
        );
        assert!(m.closes.contains(&(0, ConnId(556), CloseReason::Banned)));
        assert_eq!(m.engines[0].stats().peers_banned, 1);
    }

    #[test]
    fn live_edge_waits_then_fetches_announces_and_relays() {
        let mut m = two(quiet());
        m.auto_http = false;
        // Segment 5 starts 10 s ahead of a paused playhead: non-urgent, nobody has it.
        m.input(0, request(1, 5));
        assert!(
            m.http_urls(0).is_empty(),
            "should wait before fetching from the CDN"
        );
        let wake = m.engines[0]
            .poll_timeout()
            .map(|t| t.as_millis())
            .unwrap_or(u64::MAX);
        let cap = live_edge::delay_cap(2_000, 3_000, Some(10_000), 1);
        assert!(
            wake <= m.now.as_millis() + cap,
            "wake {wake} beyond cap {cap}"
        );
        m.advance(m.now.as_millis() + cap);
        assert_eq!(m.http_urls(0), vec![url(5)]);
        // First bytes with the size: peer 1 learns it is downloading.
        m.serve_pending(0, 0, 40_000);
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 0 && matches!(msg, Message::Downloading { seq: 5, .. })));
        // Viewer 1 asks: it requests from viewer 0 instead of the CDN.
        m.input(1, request(7, 5));
        assert!(m.http_urls(1).is_empty());
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 5, .. })));
        // Chunks already here were relayed; the rest follow the HTTP body.
        let relayed_early = m
            .sent
            .iter()
            .filter(|(i, msg)| *i == 0 && matches!(msg, Message::Data { .. }))
            .count();
        assert!(relayed_early >= 2, "relayed {relayed_early}");
        m.serve_pending(0, 40_000, usize::MAX);
        let want = m.cdn[&url(5)].clone();
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_eq!(d1[0].2, want);
        assert_eq!(d1[0].3.p2p_bytes, want.len() as u64);
        assert_eq!(d1[0].3.http_bytes, 0);
        assert_eq!(m.engines[1].stats().p2p_down, want.len() as u64);
        assert_eq!(m.engines[0].stats().p2p_up, want.len() as u64);
        assert_eq!(m.engines[1].stats().segments_p2p, 1);
    }

    /// `share_upload_buffers`: chunks relayed mid-download and from the finished copy go
    /// out as frames over the sender's buffer; the receiver gets the sender's bytes whether
    /// its interner offers the very same buffer (kept, no comparison) or a copy differing
    /// in one byte (not used).
    #[test]
    fn shared_buffer_frames_deliver_the_senders_bytes() {
        for offer_same in [true, false] {
            let mut m = two(quiet());
            m.auto_http = false;
            let truth = m.cdn[&url(5)].clone();
            let published: SegmentBytes = Rc::new(truth.clone());
            let offer: SegmentBytes = if offer_same {
                published.clone()
            } else {
                let mut other = truth.clone();
                other[1_000] ^= 1;
                Rc::new(other)
            };
            m.share(0, BTreeMap::from([(url(5), published.clone())]));
            m.share(1, BTreeMap::from([(url(5), offer.clone())]));
            m.input(0, request(1, 5));
            m.advance(m.now.as_millis() + 3_000);
            assert_eq!(m.http_urls(0), vec![url(5)]);
            m.serve_pending(0, 0, 40_000);
            m.input(1, request(7, 5));
            assert!(m.http_urls(1).is_empty());
            m.serve_pending(0, 40_000, usize::MAX);
            let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
            assert_eq!(d1.len(), 1, "offer_same {offer_same}");
            assert_eq!(d1[0].2, truth, "offer_same {offer_same}");
            assert_eq!(d1[0].3.p2p_bytes, truth.len() as u64);
            assert_eq!(
                m.frames,
                truth.len().div_ceil(CHUNK_SIZE),
                "all chunks as frames"
            );
            assert_eq!(m.engines[1].stats().peers_banned, 0);
            // The cache holds the offered buffer only if its bytes were the ones received.
            let key = SegmentKey { swarm: SW, seq: 5 };
            let cached = m.engines[1].store.get_buffer(&key);
            assert_eq!(cached.is_some_and(|c| Rc::ptr_eq(c, &offer)), offer_same);
            assert_eq!(cached.map(|c| c.as_slice()), Some(&truth[..]));
        }
    }

    #[test]
    fn urgent_request_goes_http_even_if_a_peer_has_it() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        assert_eq!(m.http_urls(0), vec![url(1)]);
        // Seg 1 starts 2 s ahead: urgent for viewer 1 too.
        m.input(1, request(2, 1));
        assert_eq!(m.http_urls(1), vec![url(1)]);
    }

    #[test]
    fn non_urgent_request_taken_from_holder() {
        let mut m = two(quiet());
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        assert_eq!(m.http_urls(0), vec![url(6)]);
        m.input(1, request(2, 6));
        assert!(m.http_urls(1).is_empty());
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_eq!(d1[0].2, m.cdn[&url(6)]);
    }

    #[test]
    fn corrupt_chunk_bans_sender_and_refetches_over_http() {
        let mut m = two(quiet());
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        m.tamper = Some(Box::new(|from, msg| match msg {
            Message::Data {
                id,
                chunk,
                total_size,
                payload,
            } if from == 0 => {
                let mut p = payload.clone();
                p[0] ^= 0xff;
                Some(Message::Data {
                    id: *id,
                    chunk: *chunk,
                    total_size: *total_size,
                    payload: p,
                })
            }
            other => Some(other.clone()),
        }));
        m.input(1, request(2, 6));
        assert_eq!(m.banned(1), vec![BanReason::CorruptData]);
        assert!(m
            .events
            .iter()
            .any(|(i, e)| *i == 1 && matches!(e, Event::VerificationFailed { seq: 6, .. })));
        assert_eq!(m.http_urls(1), vec![url(6)]);
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_eq!(d1[0].2, m.cdn[&url(6)]);
        let s = m.engines[1].stats();
        assert!(s.p2p_discarded > 0);
        assert_eq!(s.p2p_down, 0);
    }

    /// Flips one payload byte that is not a TS sync byte: the structural checks pass it.
    fn subtle_flip(from: usize, msg: &Message) -> Option<Message> {
        match msg {
            Message::Data {
                id,
                chunk,
                total_size,
                payload,
            } if from == 0 && payload.len() > 100 => {
                let mut p = payload.clone();
                p[100] ^= 0x01;
                Some(Message::Data {
                    id: *id,
                    chunk: *chunk,
                    total_size: *total_size,
                    payload: p,
                })
            }
            other => Some(other.clone()),
        }
    }

    #[test]
    fn spot_check_bans_a_subtle_corrupter_after_delivery() {
        let cfg = Config {
            spot_check_ratio: 1.0,
            ..quiet()
        };
        let mut m = two(cfg);
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        m.tamper = Some(Box::new(subtle_flip));
        let http_before = m.engines[1].stats().http_down;
        m.input(1, request(2, 6));
        m.advance(m.now.as_millis() + 1_000);
        // The flips pass the structural checks: the player got the altered bytes (the
        // weakness of a check after delivery) ...
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_ne!(d1[0].2, m.cdn[&url(6)]);
        assert!(d1[0].3.p2p_bytes > 0);
        // ... then the spot check fetched the CDN's copy, which differs: the sender is banned.
        assert_eq!(m.http_urls(1), vec![url(6)]);
        let peer0 = m.engines[0].peer_id();
        assert!(m.events.iter().any(|(i, e)| *i == 1
            && matches!(e, Event::SpotCheckFailed { seq: 6, peers, .. } if *peers == vec![peer0])));
        assert_eq!(m.banned(1), vec![BanReason::CorruptData]);
        let s = m.engines[1].stats();
        assert_eq!(s.peers_banned, 1);
        // Spot-check bytes are CDN bytes, but not a delivery.
        assert_eq!(s.http_down - http_before, m.cdn[&url(6)].len() as u64);
        assert_eq!(s.segments_http, 0);
        // The altered copy is no longer offered to other peers.
        assert!(!m.engines[1]
            .store
            .contains(&SegmentKey { swarm: SW, seq: 6 }));
    }

    #[test]
    fn spot_check_of_honest_bytes_changes_nothing_and_waits_for_an_idle_cdn() {
        let cfg = Config {
            spot_check_ratio: 1.0,
            ..quiet()
        };
        let mut m = two(cfg.clone());
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        // Viewer 1 is also loading segment 0 over HTTP (held): the spot check must wait.
        m.auto_http = false;
        m.input(1, request(3, 0));
        assert_eq!(m.http_urls(1), vec![url(0)]);
        m.input(1, request(2, 6));
        assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
        assert_eq!(
            m.http_urls(1),
            vec![url(0)],
            "spot check started beside a player transfer"
        );
        m.serve_pending(0, 0, usize::MAX);
        assert_eq!(m.http_urls(1), vec![url(0), url(6)]);
        let k = m.pending_http.len() - 1;
        m.serve_pending(k, 0, usize::MAX);
        assert!(m
            .events
            .iter()
            .all(|(_, e)| !matches!(e, Event::SpotCheckFailed { .. })));
        assert!(m.banned(1).is_empty());
        assert!(m.engines[1]
            .store
            .contains(&SegmentKey { swarm: SW, seq: 6 }));

        // Ratio 0: never.
        let mut m = two(Config {
            spot_check_ratio: 0.0,
            ..quiet()
        });
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        m.input(1, request(2, 6));
        m.advance(m.now.as_millis() + 1_000);
        assert!(m.http_urls(1).is_empty());
    }

    #[test]
    fn stalled_peer_is_abandoned_for_http_before_the_deadline() {
        let mut m = two(quiet());
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        // Viewer 0 answers nothing any more.
        m.tamper = Some(Box::new(
            |from, msg| if from == 0 { None } else { Some(msg.clone()) },
        ));
        let start = m.now.as_millis();
        for i in 0..2 {
            m.input(
                i,
                Input::Playhead {
                    swarm: SW,
                    position_ms: 4_000,
                    buffered_ahead_ms: 6_000,
                    rate: 1.0,
                },
            );
        }
        // Segment 6 starts at 12 s: 8 s away.
        m.input(1, request(2, 6));
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 6, .. })));
        m.advance(start + 8_000);
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert!(
            d1[0].4.as_millis() < start + 8_000,
            "delivered at {}",
            d1[0].4.as_millis()
        );
        assert_eq!(m.http_urls(1), vec![url(6)]);
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 1 && matches!(msg, Message::Cancel { .. })));
        // Stalling is not misbehaviour: a stall mark and a lower score, no strike.
        let p = m.engines[1].stats().per_peer.first().cloned();
        assert_eq!(p.as_ref().map(|p| (p.strikes, p.stalls)), Some((0, 1)));
        let fresh = crate::peers::score(None, None, 0);
        assert!(p.is_some_and(|p| p.score < fresh));
    }

    #[test]
    fn prefetch_only_uses_peers() {
        let mut m = two(Config::default());
        for seq in 1..6 {
            m.input(0, request(seq as u32, seq));
            m.advance(m.now.as_millis() + 2_000);
        }
        assert_eq!(m.http_urls(0).len(), 5);
        // Viewer 1 plays from 0: asks for segment 0 (urgent, HTTP); prefetches the rest from 0.
        m.input(
            1,
            Input::Playhead {
                swarm: SW,
                position_ms: 0,
                buffered_ahead_ms: 0,
                rate: 0.0,
            },
        );
        m.input(1, request(50, 0));
        assert_eq!(m.http_urls(1), vec![url(0)]);
        m.advance(m.now.as_millis() + 1_000);
        let s = m.engines[1].stats();
        assert_eq!(s.p2p_down, 5 * m.cdn[&url(1)].len() as u64, "{s:?}");
        // The player then gets them from the cache.
        m.input(1, request(51, 3));
        let last = m
            .delivered
            .last()
            .map(|d| (d.0, d.3.from_cache, d.3.p2p_bytes > 0));
        assert_eq!(last, Some((1, true, true)));
        assert_eq!(m.http_urls(1).len(), 1);
    }

    #[test]
    fn prefetch_skips_segments_the_player_holds_in_another_rendition() {
        let mut m = two(Config::default());
        for seq in 1..6 {
            m.input(0, request(seq as u32, seq));
            m.advance(m.now.as_millis() + 2_000);
        }
        // Viewer 1 just switched to this rendition: it asked for nothing here yet, and its
        // buffer already holds segments 0..=2 (from another rendition).
        m.input(
            1,
            Input::Playhead {
                swarm: SW,
                position_ms: 0,
                buffered_ahead_ms: 3 * SEG_MS as u64,
                rate: 0.0,
            },
        );
        m.advance(m.now.as_millis() + 1_000);
        let got: Vec<Seq> = m
            .events
            .iter()
            .filter_map(|(i, e)| match e {
                Event::SegmentLoaded { seq, .. } if *i == 1 => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(got, vec![3, 4, 5]);
    }

    #[test]
    fn zero_upload_budget_announces_nothing_and_answers_busy() {
        let cfg = Config {
            upload_bytes_per_sec: 0,
            ..Config::default()
        };
        let mut m = two(cfg);
        m.input(0, request(1, 1));
        assert!(!m
            .sent
            .iter()
            .any(|(_, msg)| matches!(msg, Message::Have { .. } | Message::Downloading { .. })));
        m.input(
            0,
            Input::PeerMessage {
                conn: ConnId(101),
                data: wire::encode(&Message::Request {
                    id: 1,
                    seq: 1,
                    first_chunk: 0,
                    count: 1,
                }),
            },
        );
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 0 && matches!(msg, Message::Busy { id: 1, .. })));
        assert_eq!(m.engines[0].stats().p2p_up, 0);
    }

    #[test]
    fn upload_is_paced_by_the_budget() {
        let cfg = Config {
            upload_bytes_per_sec: 100_000,
            ..quiet()
        };
        let mut m = two(cfg);
        m.input(0, request(1, 6));
        m.advance(m.now.as_millis() + 2_000);
        let t0 = m.now.as_millis();
        m.input(1, request(2, 6));
        let size = m.cdn[&url(6)].len() as u64;
        // Burst is 4 chunks (61440 B) at this rate; the remaining ~32.6 KB take ~330 ms.
        assert!(m.engines[0].stats().p2p_up < size);
        m.advance(t0 + 200);
        assert!(m.engines[0].stats().p2p_up < size);
        m.advance(t0 + 1_000);
        assert_eq!(m.engines[0].stats().p2p_up, size);
        assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
    }

    #[test]
    fn aborted_urgent_http_is_cancelled() {
        let mut e = Engine::new(Config::default(), Instant::from_millis(0), 3);
        let now = Instant::from_millis(0);
        e.handle_input(now, playlist(5));
        e.handle_input(now, playhead(0));
        e.handle_input(now, request(1, 0));
        let id = std::iter::from_fn(|| e.poll_output()).find_map(|o| match o {
            Output::StartHttp { id, .. } => Some(id),
            _ => None,
        });
        let Some(id) = id else { panic!("no http") };
        e.handle_input(now, Input::SegmentAborted { req: RequestId(1) });
        let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        assert!(outs.contains(&Output::CancelHttp { id }));
        assert!(!outs.iter().any(|o| matches!(
            o,
            Output::FailSegment { .. } | Output::DeliverSegment { .. }
        )));
        // Late inputs for the cancelled transfer are harmless.
        e.handle_input(
            now,
            Input::HttpProgress {
                id,
                data: vec![1, 2, 3],
                total: Some(3),
            },
        );
        e.handle_input(now, Input::HttpDone { id });
    }

    #[test]
    fn aborted_http_is_cancelled_unless_peers_read_it() {
        // Far ahead of the playhead (not urgent), no peers: fetched at once, then aborted
        // (a seek): nobody needs it, so the transfer stops.
        let mut e = Engine::new(Config::default(), Instant::from_millis(0), 3);
        let now = Instant::from_millis(0);
        e.handle_input(now, playlist(20));
        e.handle_input(now, playhead(0));
        e.handle_input(now, request(1, 10));
        let mut id = None;
        let mut now = now;
        for _ in 0..10 {
            id = std::iter::from_fn(|| e.poll_output()).find_map(|o| match o {
                Output::StartHttp { id, .. } => Some(id),
                _ => None,
            });
            match (id, e.poll_timeout()) {
                (None, Some(t)) => {
                    now = t;
                    e.handle_timeout(t);
                }
                _ => break,
            }
        }
        let Some(id) = id else { panic!("no http") };
        e.handle_input(now, Input::SegmentAborted { req: RequestId(1) });
        let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
        assert!(outs.contains(&Output::CancelHttp { id }), "{outs:?}");

        // A peer reads our relay of the transfer: it runs on for the peer.
        let mut m = two(quiet());
        m.auto_http = false;
        m.input(0, request(1, 10));
        m.advance(m.now.as_millis() + 1_000);
        assert_eq!(m.pending_http.len(), 1, "viewer 0 did not fetch");
        m.serve_pending(0, 0, 20_000);
        m.input(1, request(2, 10));
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 10, .. })));
        m.input(0, Input::SegmentAborted { req: RequestId(1) });
        assert!(m.cancelled.is_empty(), "{:?}", m.cancelled);
        m.serve_pending(0, 20_000, usize::MAX);
        m.advance(m.now.as_millis() + 1_000);
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_eq!(d1[0].2, m.cdn[&url(10)]);
        assert!(
            !m.delivered.iter().any(|d| d.0 == 0),
            "aborted request answered"
        );
    }

    #[test]
    fn set_policy_p2p_off_closes_peers_and_goes_http() {
        let mut m = two(Config::default());
        m.engines[1].handle_input(
            m.now,
            Input::SetPolicy {
                p2p_enabled: false,
                upload_bytes_per_sec: 0,
            },
        );
        let mut closed = 0;
        let mut stopped = 0;
        while let Some(o) = m.engines[1].poll_output() {
            match o {
                Output::ClosePeer {
                    reason: CloseReason::P2pDisabled,
                    ..
                } => closed += 1,
                Output::Announce {
                    event: AnnounceEvent::Stopped,
                    ..
                } => stopped += 1,
                _ => {}
            }
        }
        assert_eq!((closed, stopped), (1, 1));
        assert_eq!(m.engines[1].stats().peers, 0);
        let now = m.now;
        m.engines[1].handle_input(now, request(9, 3));
        let mut http = false;
        while let Some(o) = m.engines[1].poll_output() {
            http |= matches!(o, Output::StartHttp { .. });
            assert!(!matches!(o, Output::SendToPeer { .. }), "{o:?}");
        }
        assert!(http);
    }

    #[test]
    fn leaving_a_swarm_closes_its_peers_fails_its_requests_and_forgets_it() {
        let mut m = two(Config::default());
        let now = m.now;
        m.engines[1].handle_input(now, request(9, 12));
        while m.engines[1].poll_output().is_some() {}
        m.engines[1].handle_input(now, Input::LeaveSwarm { swarm: SW });
        let (mut closed, mut stopped, mut failed) = (0, 0, Vec::new());
        while let Some(o) = m.engines[1].poll_output() {
            match o {
                Output::ClosePeer {
                    reason: CloseReason::SwarmLeft,
                    ..
                } => closed += 1,
                Output::Announce {
                    event: AnnounceEvent::Stopped,
                    ..
                } => stopped += 1,
                Output::FailSegment { req, .. } => failed.push(req),
                _ => {}
            }
        }
        assert_eq!((closed, stopped), (1, 1));
        assert_eq!(failed, vec![RequestId(9)]);
        assert_eq!(m.engines[1].stats().peers, 0);
        // Unknown now: a candidate for it is refused, leaving again does nothing.
        m.engines[1].handle_input(
            now,
            Input::PeerCandidate {
                conn: ConnId(77),
                swarm: SW,
                peer: PeerId([7; 20]),
                inbound: true,
            },
        );
        m.engines[1].handle_input(now, Input::LeaveSwarm { swarm: SW });
        let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
        assert_eq!(
            outs,
            vec![Output::ClosePeer {
                conn: ConnId(77),
                reason: CloseReason::Rejected
            }]
        );
        // A playlist joins it again.
        m.engines[1].handle_input(now, playlist(20));
        let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Announce {
                event: AnnounceEvent::Started,
                ..
            }
        )));
    }

    #[test]
    fn signed_manifest_required_when_a_key_is_configured() {
        let secret = [42u8; 32];
        let key = integrity::format_public_key(&integrity::public_key_of(&secret));
        let cfg = Config {
            integrity_public_key: Some(key),
            ..Config::default()
        };
        let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
        let text = b"shoal-manifest 1\nchunk-size 15360\nsegment a.ts 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";
        let rejected = |e: &mut Engine| {
            let mut n = 0;
            while let Some(o) = e.poll_output() {
                n += usize::from(matches!(o, Output::Event(Event::ManifestRejected { .. })));
            }
            n
        };
        let now = Instant::from_millis(1);
        e.handle_input(
            now,
            Input::IntegrityManifest {
                data: text.to_vec(),
            },
        );
        assert_eq!(rejected(&mut e), 1, "unsigned manifest accepted");
        assert!(e.manifest.is_none());
        let signed = integrity::sign_manifest(text, &secret).unwrap_or_default();
        e.handle_input(now, Input::IntegrityManifest { data: signed });
        assert_eq!(rejected(&mut e), 0);
        assert!(e.manifest.is_some());
        let other = integrity::sign_manifest(text, &[7u8; 32]).unwrap_or_default();
        e.handle_input(now, Input::IntegrityManifest { data: other });
        assert_eq!(
            rejected(&mut e),
            1,
            "manifest signed by another key accepted"
        );
        assert!(e.manifest.is_some(), "the verified manifest must stay");
    }

    #[test]
    fn a_joining_viewer_waits_for_its_first_peers_not_for_urgent_segments() {
        let mut m = Mesh::new(vec![Config::default(), Config::default()]).with_cdn(20, 500);
        m.input(0, playlist(20));
        m.input(0, playhead(0));
        m.input(0, request(1, 0));
        m.input(0, request(2, 8));
        // Segment 0 is needed now: HTTP at once. Segment 8 (16 s away) waits for peers.
        assert_eq!(m.http_urls(0), vec![url(0)]);
        // Viewer 1 holds segment 8 and connects within the join window: 8 comes from it.
        m.input(1, playlist(20));
        m.input(1, playhead(16_000));
        m.input(1, request(9, 8));
        m.advance(m.now.as_millis() + 1_000);
        assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(9)));
        m.connect(0, 1);
        m.advance(m.now.as_millis() + 1_000);
        assert_eq!(
            m.http_urls(0),
            vec![url(0)],
            "segment 8 must not be fetched over HTTP"
        );
        let got: Vec<_> = m
            .delivered
            .iter()
            .filter(|d| d.0 == 0)
            .map(|d| d.1)
            .collect();
        assert_eq!(got, vec![RequestId(1), RequestId(2)]);
        assert!(m.engines[0].stats().p2p_down > 0);
    }

    #[test]
    fn urgent_segment_comes_from_a_complete_holder_when_http_has_time_to_spare() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        assert_eq!(m.http_urls(0), vec![url(1)]);
        // Segment 1 is 2 s away (urgent) for viewer 1 too. Having seen a segment come over
        // HTTP in 50 ms, it keeps 600 ms for HTTP and asks the holder for the rest.
        m.input(
            1,
            Input::HttpSample {
                bytes: 94_000,
                ms: 50,
            },
        );
        m.input(1, request(2, 1));
        assert!(m.http_urls(1).is_empty());
        m.advance(m.now.as_millis() + 500);
        assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(2)));
        assert!(m.http_urls(1).is_empty());
        assert!(m.engines[1].stats().p2p_down > 0);
    }

    #[test]
    fn urgent_segment_comes_from_a_peer_known_only_by_its_bitfield() {
        let mut m = Mesh::new(vec![quiet(), quiet()]).with_cdn(20, 500);
        let with_bitrate = |i: Input| match i {
            Input::Playlist {
                swarm,
                live,
                container,
                segments,
                ..
            } => Input::Playlist {
                swarm,
                live,
                container,
                bitrate: 400_000,
                segments,
            },
            other => other,
        };
        for i in 0..2 {
            m.input(i, with_bitrate(playlist(20)));
            m.input(i, playhead(0));
        }
        m.input(0, request(1, 1));
        assert_eq!(m.http_urls(0), vec![url(1)]);
        // Viewer 1 meets viewer 0 only now: it learns what 0 holds from a Bitfield (no sizes).
        m.connect(0, 1);
        m.input(
            1,
            Input::HttpSample {
                bytes: 94_000,
                ms: 50,
            },
        );
        m.input(1, request(2, 1));
        m.advance(m.now.as_millis() + 500);
        assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(2)));
        assert!(m.http_urls(1).is_empty(), "{:?}", m.http_urls(1));
    }

    #[test]
    fn a_slow_http_sample_keeps_urgent_segments_on_http() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        // The last segment took 1.5 s over HTTP: 2 s is not enough to try a peer first.
        m.input(
            1,
            Input::HttpSample {
                bytes: 94_000,
                ms: 1_500,
            },
        );
        m.input(1, request(2, 1));
        assert_eq!(m.http_urls(1), vec![url(1)]);
    }

    #[test]
    fn a_joining_viewer_holds_an_urgent_segment_for_counted_peers_while_http_has_time() {
        let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
        m.input(0, playlist(20));
        m.input(
            0,
            Input::HttpSample {
                bytes: 94_000,
                ms: 50,
            },
        );
        m.input(
            0,
            Input::SwarmPeers {
                swarm: SW,
                peers: 2,
            },
        );
        m.input(0, playhead(0));
        let t0 = m.now.as_millis();
        // Segment 1 is 2 s away: 600 ms kept for HTTP and ~520 ms for a peer to deliver
        // leave about 870 ms to wait for the peers the tracker counted.
        m.input(0, request(1, 1));
        assert!(m.http_urls(0).is_empty());
        m.advance(t0 + 800);
        assert!(m.http_urls(0).is_empty());
        m.advance(t0 + 1_000);
        assert_eq!(m.http_urls(0), vec![url(1)]);
        // Without the sample (no idea how fast HTTP is) it would not have waited at all.
        let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
        m.input(0, playlist(20));
        m.input(
            0,
            Input::SwarmPeers {
                swarm: SW,
                peers: 2,
            },
        );
        m.input(0, playhead(0));
        m.input(0, request(1, 1));
        assert_eq!(m.http_urls(0), vec![url(1)]);
    }

    #[test]
    fn a_tracker_count_of_zero_ends_the_join_wait() {
        // Segment 8 (16 s away) waits for peers until the tracker answers; so does the urgent
        // segment 1 while HTTP has time to spare (a fast HTTP sample).
        for (seq, sample) in [(8, None), (1, Some(50))] {
            let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
            m.input(0, playlist(20));
            if let Some(ms) = sample {
                m.input(0, Input::HttpSample { bytes: 94_000, ms });
            }
            m.input(0, playhead(0));
            m.input(0, request(1, seq));
            // Not heard from the tracker yet: peers may come, the segment waits.
            assert!(m.http_urls(0).is_empty());
            m.advance(m.now.as_millis() + 100);
            assert!(m.http_urls(0).is_empty());
            m.input(
                0,
                Input::SwarmPeers {
                    swarm: SW,
                    peers: 0,
                },
            );
            assert_eq!(m.http_urls(0), vec![url(seq)]);
        }
    }

    #[test]
    fn a_joining_viewer_alone_fetches_over_http_when_the_join_window_ends() {
        let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
        m.input(0, playlist(20));
        m.input(0, playhead(0));
        m.input(0, request(1, 8));
        assert!(m.http_urls(0).is_empty());
        m.advance(m.now.as_millis() + live_edge::JOIN_WAIT_MS - 10);
        assert!(m.http_urls(0).is_empty());
        m.advance(m.now.as_millis() + 20);
        assert_eq!(m.http_urls(0), vec![url(8)]);
    }

    #[test]
    fn http_failure_fails_the_request_open() {
        let mut m = Mesh::new(vec![Config::default()]);
        m.input(0, playlist(5));
        m.input(0, playhead(0));
        m.input(0, request(1, 1));
        assert_eq!(m.failed, vec![(0, RequestId(1))]);
    }

    #[test]
    fn unknown_segment_fetched_by_its_url() {
        let mut m = Mesh::new(vec![Config::default()]);
        m.cdn
            .insert("https://elsewhere/x.ts".into(), ts_segment(1, 10));
        m.input(
            0,
            Input::SegmentRequested {
                req: RequestId(9),
                swarm: SwarmId([1; 20]),
                seq: 77,
                url: "https://elsewhere/x.ts".into(),
                range: None,
            },
        );
        assert_eq!(m.delivered.len(), 1);
        assert_eq!(m.delivered[0].2, ts_segment(1, 10));
    }

    #[test]
    fn cdn_fetch_yields_to_a_peer_that_announced_first() {
        let mut m = two(quiet());
        m.auto_http = false;
        m.input(0, request(1, 8));
        m.advance(m.now.as_millis() + 2_000);
        assert_eq!(m.http_urls(0), vec![url(8)]);
        let id = m.pending_http[0].1;
        // Before our first byte, the peer says it is downloading segment 8 too.
        let size = m.cdn[&url(8)].len() as u32;
        m.input(
            0,
            Input::PeerMessage {
                conn: ConnId(101),
                data: wire::encode(&Message::Downloading { seq: 8, size }),
            },
        );
        assert_eq!(m.cancelled, vec![(0, id)]);
        assert!(m
            .sent
            .iter()
            .any(|(i, msg)| *i == 0 && matches!(msg, Message::Request { seq: 8, .. })));
        // Once bytes flowed (and we announced), we keep our transfer.
        let mut m = two(quiet());
        m.auto_http = false;
        m.input(0, request(1, 8));
        m.advance(m.now.as_millis() + 2_000);
        m.serve_pending(0, 0, 1_000);
        m.input(
            0,
            Input::PeerMessage {
                conn: ConnId(101),
                data: wire::encode(&Message::Downloading { seq: 8, size }),
            },
        );
        assert!(m.cancelled.is_empty());
    }

    #[test]
    fn stalled_cdn_transfer_is_replaced_by_peers() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        m.auto_http = false;
        // Urgent for viewer 1 (2 s ahead): HTTP at once, but the CDN sends nothing.
        m.input(1, request(2, 1));
        assert_eq!(m.http_urls(1), vec![url(1)]);
        let id = m.pending_http[0].1;
        let t0 = m.now.as_millis();
        m.advance(t0 + 1_400);
        assert!(m.cancelled.is_empty(), "abandoned before the stall timeout");
        m.advance(t0 + 1_600);
        assert_eq!(m.cancelled, vec![(1, id)]);
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1);
        assert_eq!(d1[0].2, m.cdn[&url(1)]);
        assert_eq!(d1[0].3.p2p_bytes, d1[0].2.len() as u64);
        // Without holders a stalled transfer is kept (nothing better to do).
        let mut m = Mesh::new(vec![quiet()]).with_cdn(5, 100);
        m.auto_http = false;
        m.input(0, playlist(5));
        m.input(0, playhead(0));
        m.input(0, request(1, 1));
        m.advance(m.now.as_millis() + 10_000);
        assert!(m.cancelled.is_empty());
        m.serve_pending(0, 0, usize::MAX);
        assert_eq!(m.delivered.len(), 1);
    }

    #[test]
    fn slow_cdn_is_degraded_for_throughput_and_raced_by_peers() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        m.auto_http = false;
        m.input(1, playhead(0));
        // Urgent for viewer 1: HTTP at once. The body trickles at about a third of the rate
        // the segment plays at (94 kB per 2 s = 47 kB/s), never silent long enough to stall.
        m.input(1, request(2, 1));
        assert_eq!(m.http_urls(1), vec![url(1)]);
        let (id, size) = (m.pending_http[0].1, m.cdn[&url(1)].len());
        let t0 = m.now.as_millis();
        let mut sent = 0;
        let mut degraded_at = None;
        for k in 1..=20u64 {
            m.advance(t0 + 100 + k * 250);
            m.now = Instant::from_millis(t0 + 100 + k * 250);
            m.serve_pending(0, sent, 4_000);
            sent += 4_000;
            if degraded_at.is_none() {
                degraded_at = m.events.iter().find_map(|(i, e)| match e {
                    Event::CdnDegraded { reason } if *i == 1 => Some((m.now, reason.clone())),
                    _ => None,
                });
            }
            if !m.delivered.iter().any(|d| d.0 == 1) {
                continue;
            }
            let (at, reason) = degraded_at.expect("delivered without a degraded CDN");
            assert!(reason.starts_with("throughput"), "{reason}");
            // First piece at t0+350 (latency only), then 500 ms of evidence.
            assert!(at.as_millis() <= t0 + 350 + 500, "noticed at {at:?}");
            let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
            assert_eq!(d1[0].2, m.cdn[&url(1)]);
            assert!(
                d1[0].3.http_bytes > 0 && d1[0].3.p2p_bytes > 0,
                "{:?}",
                d1[0].3
            );
            assert!(sent < size, "peers did not finish first");
            // Peers won the race: the transfer is stopped.
            assert_eq!(m.cancelled, vec![(1, id)]);
            assert!(m.engines[1].stats().cdn_degraded);
            return;
        }
        panic!("segment not delivered; events {:?}", m.events);
    }

    #[test]
    fn slow_but_sufficient_cdn_is_not_degraded() {
        let mut m = two(quiet());
        m.input(0, request(1, 1));
        m.auto_http = false;
        m.input(1, request(2, 1));
        let size = m.cdn[&url(1)].len();
        let t0 = m.now.as_millis();
        // 1.5x the rate the segment plays at: 94 kB in about 1.4 s.
        let mut sent = 0;
        let mut k = 0;
        while sent < size {
            k += 1;
            m.advance(t0 + 100 + k * 57);
            m.now = Instant::from_millis(t0 + 100 + k * 57);
            m.serve_pending(0, sent, 4_000);
            sent += 4_000;
        }
        assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
        assert!(m
            .events
            .iter()
            .all(|(_, e)| !matches!(e, Event::CdnDegraded { .. })));
        assert!(!m.engines[1].stats().cdn_degraded);
    }
}
