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

use crate::health::{self, CdnHealth, CDN_RETRY_MS};
use crate::integrity::spot_check::{SpotChecker, Verdict as SpotVerdict};
use crate::integrity::{self, Manifest, ManifestEntry};
use crate::peers::session::{MAX_DOWN_REQUESTS, MAX_UP_REQUESTS};
use crate::peers::{Avail, ChunkSource, PeerState, Peers, Served, Session, UpRequest, Uploads};
use crate::scheduler::deadline::{self, Playhead};
use crate::scheduler::{live_edge, picker, urgent, Step};
use crate::stats::Tally;
use crate::store::{SegmentBytes, Store};
use crate::types::*;
use crate::wire::{
    self, Message, CHUNK_SIZE, MAX_BITFIELD_BYTES, MAX_SEGMENT_SIZE, PROTOCOL_VERSION,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

mod cdn;
mod data;
mod delivery;
mod download;
mod http;
mod news;
mod offers;
mod player;
mod protocol;
mod schedule;
mod spot;
mod swarm;
mod timer;
mod upload;

use delivery::*;
use download::*;
use http::*;
use offers::OfferPolicy;
use player::PlayerLimits;
use swarm::*;
use timer::{earliest, Timer, TimerTable};

/// A host's source of shared segment bytes (`Engine::set_shared_copies`): given a segment's URL
/// and range, it may return a shared buffer that it believes holds the segment's bytes.
/// The engine only ever uses the bytes it received: the buffer stands in for its own copy
/// as long as every byte received equals it.
pub type SharedCopies = Box<dyn Fn(&str, Option<ByteRange>) -> Option<SegmentBytes>>;

const CHUNK: u64 = CHUNK_SIZE as u64;
/// Chunks in the largest allowed segment: "all chunks" when the size is not known yet.
const MAX_CHUNKS: u32 = MAX_SEGMENT_SIZE.div_ceil(CHUNK_SIZE as u32);
/// How often an urgent segment that peers are delivering is re-checked for pace.
const PACE_CHECK_MS: u64 = 250;
const BUSY_RETRY_MS: u16 = 1_000;
/// An HTTP body without Content-Length larger than this is abandoned (fail open).
const MAX_UNSIZED_BODY: usize = 256 * 1024 * 1024;
/// Segments looked at per prefetch pass.
const PREFETCH_SCAN: usize = 64;
/// Finished peer segments waiting for their URL before a spot-check offer.
const MAX_UNNAMED: usize = 8;
/// Live segments past the playlist's end that are fetched from peers that announced them.
const PEER_LEARNED_AHEAD: u64 = 2;
/// A segment ending this close past the player's buffered end counts as buffered (buffered
/// ranges and segment times differ by a frame or a rounding).
const BUFFERED_SLACK_MS: u64 = 250;
/// An HTTP transfer without a (first or next) byte for this long marks the CDN degraded.
const CDN_SLOW_MS: u64 = 1_000;
/// HTTP failures of one segment before its request fails open to the host.
const MAX_HTTP_FAILURES: u32 = 3;

pub struct Engine {
    config: Config,
    rng: ChaCha8Rng,
    our_id: PeerId,
    swarms: BTreeMap<SwarmId, Swarm>,
    playhead: Option<Playhead>,
    store: Store,
    downloads: BTreeMap<SegmentKey, Download>,
    http: HttpTransfers,
    requests: BTreeMap<RequestId, SegmentKey>,
    peers: Peers,
    p2p_reqs: PeerRequests,
    uploads: Uploads,
    manifest: Option<Manifest>,
    /// Re-fetches a sample of peer-delivered segments from the CDN (no manifest needed).
    spot: SpotChecker,
    /// Peer segments finished before their URL was known (learned from peers ahead of the
    /// playlist), with each chunk's sender: offered to the spot checker once the playlist
    /// names them. At most `MAX_UNNAMED` entries.
    unnamed: BTreeMap<SegmentKey, Vec<Option<PeerId>>>,
    tally: Tally,
    cdn: CdnHealth,
    out: VecDeque<Output>,
    timers: TimerTable,
    /// An input asked for scheduling (`reschedule`); it runs once, before the input returns.
    schedule_pending: bool,
    shared_copies: Option<SharedCopies>,
    /// `Data` goes out as `Output::SendData` when its payload lies in a shared buffer.
    share_uploads: bool,
    /// The start hold and the swarm-size gate (`offers.rs`).
    offer_policy: OfferPolicy,
    /// When the player gives up on its pending requests (`player.rs`).
    player_limits: PlayerLimits,
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
        Engine {
            uploads: Uploads::new(config.upload_bytes_per_sec, now),
            store: Store::new(config.cache_bytes),
            spot: SpotChecker::new(config.spot_check_ratio, seed),
            unnamed: BTreeMap::new(),
            offer_policy: OfferPolicy::new(&config, now),
            player_limits: PlayerLimits::default(),
            config,
            rng,
            our_id: PeerId(id),
            swarms: BTreeMap::new(),
            playhead: None,
            downloads: BTreeMap::new(),
            http: HttpTransfers::default(),
            requests: BTreeMap::new(),
            peers: Peers::new(),
            p2p_reqs: PeerRequests::default(),
            manifest: None,
            tally: Tally::default(),
            cdn: CdnHealth::default(),
            out: VecDeque::new(),
            timers: TimerTable::default(),
            schedule_pending: false,
            shared_copies: None,
            share_uploads: false,
        }
    }

    /// Lets the host supply shared copies of segments the engine keeps in its cache (a
    /// process running many engines, e.g. the simulator, then holds identical bytes once).
    /// A returned buffer is used only if its bytes equal the engine's own; nothing else
    /// changes. Browsers do not set one.
    pub fn set_shared_copies(&mut self, copies: SharedCopies) {
        self.shared_copies = Some(copies);
    }

    /// For hosts that run engines in one process and pass messages between them (the
    /// simulator): `Data` whose payload lies in a shared buffer (a cached segment) goes out
    /// as `Output::SendData`, a header and a slice of that buffer, and the host delivers
    /// it to the receiving engine as `Input::PeerData`. The bytes are those of
    /// `SendToPeer`; nothing is copied, and a receiver assembling over the same buffer
    /// (`set_shared_copies`) needs no comparison. Off by default: browser hosts need bytes.
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
        self.timers.next_timeout()
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
                self.reschedule();
            }
            Input::SegmentRequested {
                req,
                swarm,
                seq,
                url,
                range,
                timeout_ms,
            } => {
                self.note_player_limit(now, req, SegmentKey { swarm, seq }, timeout_ms);
                self.on_request(now, req, swarm, seq, url, range)
            }
            Input::SegmentAborted { req } => self.on_abort(req),
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
                if self.peers.contains_key(&conn) {
                    self.remove_session(conn);
                    self.reschedule();
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
                        self.reschedule();
                    }
                    Err(e) => self.event(Event::ManifestRejected {
                        detail: format!("{e:?}"),
                    }),
                }
            }
            Input::SetPolicy {
                p2p_enabled,
                upload_bytes_per_sec,
            } => {
                if !p2p_enabled {
                    self.close_swarm_gate(None);
                }
                self.set_policy(now, p2p_enabled, upload_bytes_per_sec)
            }
            Input::SwarmPeers { swarm, peers } => {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.tracker_peers = Some(peers);
                }
                self.note_swarm_size(now, swarm, peers);
                if peers == 0 && self.ready_conns(swarm).is_empty() {
                    // Nobody is coming: a join wait for this swarm's segments has no reason.
                    for (k, d) in self.downloads.iter_mut() {
                        if k.swarm == swarm && d.http.is_none() && d.p2p.is_empty() {
                            d.wait_until = None;
                        }
                    }
                }
                self.reschedule();
            }
            Input::HttpSample { bytes, ms } => {
                if bytes > 0 {
                    self.cdn.note_transfer_ms(ms);
                }
            }
            Input::LeaveSwarm { swarm } => {
                self.leave_swarm(swarm);
                self.close_swarm_gate(Some(swarm));
            }
            Input::PlayerStarted => self.end_start_hold(now),
        }
        self.schedule_if_pending(now);
        self.arm_timers(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        // Not on the timer table: the spot checker's own transfer is only looked at when
        // the engine wakes for another reason.
        if let Some(id) = self.spot.stalled(now) {
            self.out.push_back(Output::CancelHttp { id });
        }
        self.note_http_flow(now);
        for timer in Timer::VALUES {
            if self.timers.is_expired(timer, now) {
                self.on_timer(now, timer);
            }
        }
        self.reschedule();
        self.schedule_if_pending(now);
        self.arm_timers(now);
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::PeerStall => self.abandon_stalled_peer_requests(now),
            Timer::CdnSlow => self.flag_slow_http(now),
            Timer::HttpStall => self.rescue_stalled_http(now),
            Timer::Announce => self.announce_due(now),
            Timer::Ping => self.ping_due(now),
            Timer::StartHold => self.end_start_hold(now),
            // The scheduling that follows every timeout makes the segment's plan urgent.
            Timer::PlayerLimit => {}
            // The scheduling that follows every timeout pumps uploads and downloads.
            Timer::Upload | Timer::Schedule => {}
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            peers: self
                .peers
                .values()
                .filter(|s| s.state == PeerState::Ready)
                .count() as u32,
            cache_bytes: self.store.used_bytes(),
            per_peer: self
                .peers
                .values()
                .filter(|s| s.state == PeerState::Ready)
                .map(|s| PeerStats {
                    peer: s.peer,
                    swarm: s.swarm,
                    down_bytes: s.down_bytes,
                    up_bytes: s.up_bytes,
                    throughput: s.throughput.get().unwrap_or(0.0),
                    rtt_ms: s.rtt.get().unwrap_or(0.0),
                    strikes: s.strikes(),
                    score: s.score(),
                    stalls: s.stalls(),
                })
                .collect(),
            cdn_degraded: self.cdn.is_degraded(),
            ..self.tally.snapshot()
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

    fn manifest_entry(&self, url: &str, range: Option<ByteRange>) -> Option<&ManifestEntry> {
        self.manifest.as_ref().and_then(|m| m.lookup(url, range))
    }

    /// Milliseconds of media before the playhead needs `key` (`None`: no playhead yet; see
    /// `Playhead::deadline_ms`). The player's own limits may make it sooner (`deadline_ms`,
    /// player.rs).
    fn playhead_deadline_ms(&self, now: Instant, key: SegmentKey) -> Option<i64> {
        let seg = self.swarms.get(&key.swarm).and_then(|s| s.segment(key.seq));
        Some(self.playhead?.deadline_ms(now, seg))
    }

    fn is_urgent(&self, deadline: Option<i64>) -> bool {
        deadline::is_urgent(deadline, self.config.urgent_window_ms)
    }

    fn p2p_active(&self) -> usize {
        self.downloads
            .values()
            .filter(|d| !d.p2p.is_empty())
            .count()
    }

    /// Re-arms every timer from the state an input or timeout left.
    fn arm_timers(&mut self, now: Instant) {
        let p2p = self.config.p2p_enabled;
        let stall = ms(self.config.peer_stall_timeout_ms);
        let peer_stall = self.p2p_reqs.next_stall(stall);
        let cdn_slow = earliest(
            self.http
                .values()
                .filter(|x| !x.flagged)
                .map(|x| x.last_at + ms(CDN_SLOW_MS)),
        );
        let http_stall = earliest(self.http.values().map(|x| x.last_at + stall)).filter(|_| p2p);
        let announce = earliest(self.swarms.values().filter_map(|s| s.next_announce));
        let t = &mut self.timers;
        t.set(Timer::PeerStall, peer_stall);
        t.set(Timer::CdnSlow, cdn_slow);
        t.set(Timer::HttpStall, http_stall);
        t.set(Timer::Announce, announce);
        t.set(Timer::Ping, self.peers.ping_at().filter(|_| p2p));
        t.set(Timer::Upload, self.uploads.wake());
        t.set(Timer::StartHold, self.offer_policy.hold_until());
        let player_limit = self.player_limit_wake(now);
        self.timers.set(Timer::PlayerLimit, player_limit);
        let schedule = self.next_schedule(now);
        self.timers.set(Timer::Schedule, schedule);
    }
}

fn ms(v: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v)
}

#[cfg(test)]
mod tests;
