//! The discrete-event loop: viewers (a real `Engine` behind a player model), their access
//! links, the CDN, the tracker and the peer connections, stepped by one event queue.
//!
//! Invariants:
//! - Deterministic: every random draw comes from `Rng` streams derived from the scenario
//!   seed; events at the same microsecond run in scheduling order; every map that is iterated
//!   is a `BTreeMap` or a `Vec`. Same scenario and seed -> same `RunResult`.
//! - The engine contract is kept: outputs are drained after every call, ids are echoed back
//!   unchanged, nothing is delivered for a transfer the engine cancelled, no message is sent on
//!   a connection before both sides got `PeerConnected`, nothing is delivered to a viewer that
//!   left.
//! - No per-byte work beyond what the engine itself does: a link is a "busy until" time
//!   (serialization) plus a propagation delay; an HTTP body arrives in pieces of
//!   `HTTP_PIECE` bytes, each one event.
//! - The simulator counts CDN bytes itself (what the origin served) and checks every
//!   delivered segment against the published bytes.
//!
//! This file holds the world's state and the event loop; the models are beside it:
//! `engine_io` (engine calls and outputs), `viewers` (arrivals, churn, outcomes), `player`
//! (playhead, playlists, ABR, requests), `cdn` (bandwidth, outages, HTTP pieces), `net`
//! (tracker, connections, messages), `adversary` (liars, floods, tampering).

use super::media::Media;
use super::rng::Rng;
use super::scenario::{Outage, OutageKind, Role, Scenario};
use crate::store::SegmentBytes;
use crate::testkit::{self, EventQueue};
use crate::types::*;
use crate::wire::{self, kind, Message, CHUNK_SIZE, DATA_HEADER_LEN};
use crate::Engine;
use std::collections::BTreeMap;
use std::rc::Rc;

mod adversary;
mod cdn;
mod engine_io;
mod net;
mod player;
mod viewers;

use adversary::{describe, tamper};

/// Simulated time is in microseconds; the engine sees milliseconds.
const MS: u64 = 1_000;
const SEC: u64 = 1_000_000;
/// HTTP bodies are delivered in pieces of this many (simulated) bytes.
const HTTP_PIECE: usize = 2 * CHUNK_SIZE;
/// Per data-channel message overhead on the wire (SCTP + DTLS + UDP/IP), bytes.
const MSG_OVERHEAD: usize = 60;
/// Invariant checks that read `Engine::stats` run this often per viewer.
const STATS_CHECK_EVERY: u64 = 10 * SEC;
/// First violations kept verbatim in the report.
const MAX_VIOLATION_NOTES: usize = 20;

#[derive(Debug)]
enum Ev {
    Join(u32),
    Leave(u32),
    Wake(u32),
    PlaylistTick(u32),
    PlayerTick(u32),
    PlayerRetry(u32),
    HttpPiece(u64),
    HttpFail { x: u64, status: u16 },
    TrackerReply { v: u32, r: u16, numwant: u32 },
    ConnOpen(u32),
    ConnFail(u32),
    Msg { c: u32, to_b: bool, frame: Frame },
    Closed { c: u32, to_b: bool },
    Sample,
}

/// A message in flight: its bytes, or a `Data` message as header and a slice of the
/// sender's shared buffer (`Engine::share_upload_buffers`).
#[derive(Debug)]
enum Frame {
    Bytes(Vec<u8>),
    Data(DataFrame),
}

impl Frame {
    fn kind(&self) -> Option<u8> {
        match self {
            Frame::Bytes(b) => b.first().copied(),
            Frame::Data(f) => Some(f.head[0]),
        }
    }

    fn len(&self) -> usize {
        match self {
            Frame::Bytes(b) => b.len(),
            Frame::Data(f) => f.len(),
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Frame::Bytes(b) => b,
            Frame::Data(f) => f.to_vec(),
        }
    }
}

impl Ev {
    const NAMES: [&'static str; 14] = [
        "join",
        "leave",
        "wake",
        "playlist",
        "player",
        "retry",
        "httpPiece",
        "httpFail",
        "tracker",
        "connOpen",
        "connFail",
        "msg",
        "closed",
        "sample",
    ];
    fn kind(&self) -> usize {
        match self {
            Ev::Join(_) => 0,
            Ev::Leave(_) => 1,
            Ev::Wake(_) => 2,
            Ev::PlaylistTick(_) => 3,
            Ev::PlayerTick(_) => 4,
            Ev::PlayerRetry(_) => 5,
            Ev::HttpPiece(_) => 6,
            Ev::HttpFail { .. } => 7,
            Ev::TrackerReply { .. } => 8,
            Ev::ConnOpen(_) => 9,
            Ev::ConnFail(_) => 10,
            Ev::Msg { .. } => 11,
            Ev::Closed { .. } => 12,
            Ev::Sample => 13,
        }
    }
}

const PROFILE_SLOTS: usize = 14 + 0x22;

struct Profile {
    count: [u64; PROFILE_SLOTS],
    nanos: [u64; PROFILE_SLOTS],
    high: usize,
    stale: u64,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            count: [0; PROFILE_SLOTS],
            nanos: [0; PROFILE_SLOTS],
            high: 0,
            stale: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Engine(HttpId),
    /// The player's own load after the engine failed the request (fail open).
    Player(u32),
}

struct Xfer {
    v: u32,
    owner: Owner,
    rend: usize,
    seq: u64,
    data: crate::store::SegmentBytes,
    pos: usize,
    end: usize,
    first: bool,
    /// When the previous piece arrived (server-side pacing).
    last: u64,
}

struct Pending {
    req: u32,
    seq: u64,
    rend: usize,
    /// The engine failed it; the player loads it itself (transfer id).
    direct: Option<u64>,
}

struct Player {
    rend: usize,
    /// Playlist window as last loaded.
    known: Option<(u64, u64)>,
    next_seq: u64,
    initialized: bool,
    pos_ms: f64,
    buf_end_ms: u64,
    last_us: u64,
    started: bool,
    playing: bool,
    ended: bool,
    stalled_since: Option<u64>,
    pending: Option<Pending>,
    next_req: u32,
    /// Throughput estimate, simulated bytes/s (fast and slow EWMA, hls.js style).
    bw_fast: f64,
    bw_slow: f64,
    playlist_sent: Vec<bool>,
}

struct Viewer {
    role: Role,
    engine: Option<Box<Engine>>,
    alive: bool,
    peer: PeerId,
    down_bps: f64,
    up_bps: f64,
    lat_us: u64,
    nat: bool,
    isp_draw: f64,
    /// The network it is placed in (`Scenario::networks`), if the scenario has networks.
    net: Option<u16>,
    /// P2P payload bytes it received, and of those the ones from another network.
    p2p_in: u64,
    p2p_in_cross: u64,
    cdn_bps: f64,
    ttfb_us: (u64, u64),
    up_busy: u64,
    down_busy: u64,
    wake: Option<u64>,
    http: Vec<(HttpId, u64)>,
    conns: Vec<u32>,
    pl: Player,
    join_us: u64,
    leave_us: Option<u64>,
    churn: bool,
    group: usize,
    rng: Rng,
    cache_budget: u64,
    next_stats_check: u64,
    // outcomes
    startup_us: Option<u64>,
    watch_us: u64,
    stall_us: u64,
    stalls: u32,
    cdn_bytes: u64,
    corrupted: u32,
    skipped: u32,
    final_stats: Option<Stats>,
}

struct Conn {
    a: u32,
    b: u32,
    ok: [bool; 2],
    open: bool,
    closed: bool,
    owd_us: u64,
    last_arrival: [u64; 2],
    blocked: bool,
    /// Between two networks: (a's, b's); its messages cross both networks' links.
    cross: Option<(u16, u16)>,
}

/// A network's link to the other networks: busy-until times each way.
#[derive(Default)]
struct NetLink {
    bps: f64,
    out_busy: u64,
    in_busy: u64,
}

#[derive(Default)]
struct TrackerSwarm {
    members: Vec<u32>,
    pos: BTreeMap<u32, usize>,
}

impl TrackerSwarm {
    fn add(&mut self, v: u32) {
        if !self.pos.contains_key(&v) {
            self.pos.insert(v, self.members.len());
            self.members.push(v);
        }
    }
    fn remove(&mut self, v: u32) {
        if let Some(i) = self.pos.remove(&v) {
            self.members.swap_remove(i);
            if let Some(&moved) = self.members.get(i) {
                self.pos.insert(moved, i);
            }
        }
    }
    fn pick(&self, v: u32, n: usize, rng: &mut Rng) -> Vec<u32> {
        let others = self
            .members
            .len()
            .saturating_sub(usize::from(self.pos.contains_key(&v)));
        if others <= n {
            return self.members.iter().copied().filter(|&m| m != v).collect();
        }
        let mut out: Vec<u32> = Vec::with_capacity(n);
        let mut tries = 0;
        while out.len() < n && tries < 20 * n {
            tries += 1;
            let m = self.members[rng.below(self.members.len())];
            if m != v && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }
}

/// Counters of one run, before per-viewer aggregation.
#[derive(Default)]
pub struct Totals {
    pub events: u64,
    pub cdn_bytes: u64,
    pub p2p_wire_bytes: u64,
    pub bans: u64,
    pub bans_of_honest: u64,
    pub ban_reasons: BTreeMap<String, u64>,
    pub msg_kinds: BTreeMap<u8, u64>,
    pub verification_failures: u64,
    pub fail_segments: u64,
    pub violations: u64,
    pub violation_notes: Vec<String>,
    /// Largest segment cache seen in any viewer at the periodic checks (simulated bytes).
    pub max_cache_bytes: u64,
    /// Adversary viewers banned by at least one peer, and adversaries in the run.
    pub adversaries_banned: u64,
    pub adversaries: u64,
    /// P2P payload bytes that crossed from one network to another (`Scenario::networks`).
    pub p2p_cross_bytes: u64,
}

/// One time-series row (simulated bytes; the report rescales).
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub t_s: u64,
    pub viewers: u32,
    pub playing: u32,
    pub stalled: u32,
    /// Stalled viewers among those hit by the CDN outages.
    pub stalled_affected: u32,
    pub cdn_bytes: u64,
    pub p2p_bytes: u64,
    pub peers: u64,
}

/// Per-viewer outcome.
#[derive(Clone, Debug)]
pub struct ViewerOutcome {
    pub role: Role,
    pub group: usize,
    pub startup_ms: Option<u64>,
    pub watch_ms: u64,
    pub stall_ms: u64,
    pub stalls: u32,
    pub cdn_bytes: u64,
    pub p2p_bytes: u64,
    pub p2p_up: u64,
    pub corrupted: u32,
    pub skipped: u32,
    pub banned: u32,
    /// In the group hit by the scenario's CDN outages (its per-viewer draw is below the
    /// largest outage fraction, or it is in an outage's network).
    pub affected: bool,
    /// Its network (`Scenario::networks`).
    pub net: Option<u16>,
    /// P2P payload bytes received on the wire, and of those from another network.
    pub p2p_in: u64,
    pub p2p_in_cross: u64,
}

pub struct RunOutput {
    pub totals: Totals,
    pub viewers: Vec<ViewerOutcome>,
    pub samples: Vec<Sample>,
    /// CDN bytes served per second of simulated time.
    pub cdn_per_s: Vec<u64>,
}

pub struct World<'a> {
    sc: &'a Scenario,
    p2p: bool,
    now: u64,
    /// Events in simulated microseconds, bucketed by millisecond.
    queue: EventQueue<Ev>,
    media: Media,
    swarms: Vec<SwarmId>,
    viewers: Vec<Viewer>,
    peer_index: BTreeMap<PeerId, u32>,
    conns: Vec<Conn>,
    xfers: BTreeMap<u64, Xfer>,
    next_xfer: u64,
    tracker: Vec<TrackerSwarm>,
    /// One per `Scenario::networks`.
    nets: Vec<NetLink>,
    /// Each outage's network index (`Outage::network`).
    outage_nets: Vec<Option<u16>>,
    rng: Rng,
    totals: Totals,
    samples: Vec<Sample>,
    cdn_per_s: Vec<u64>,
    sample_cdn: u64,
    sample_p2p: u64,
    end_us: u64,
    scratch: Vec<Output>,
    /// Manifest text of the current playlist window (`manifest = true`), rebuilt when the
    /// window moves: (window, bytes).
    manifest: Option<((u64, u64), Vec<u8>)>,
    /// Manifest lines already hashed, by (rendition, seq).
    manifest_lines: BTreeMap<(usize, u64), String>,
    /// Adversaries banned by at least one peer.
    banned_adversaries: std::collections::BTreeSet<u32>,
    /// `SHOAL_SIM_TRACE=<viewer>`: log that viewer's engine outputs and player events to
    /// stderr (debugging aid; never part of the report).
    trace: Option<u32>,
    /// `SHOAL_SIM_PROFILE=1`: count events by kind, the wall time spent on each kind (peer
    /// messages by message kind) and the queue's high-water mark, printed to stderr at the
    /// end (profiling aid; never part of the report).
    profile: Option<Box<Profile>>,
}

fn scale_bps(mbps: f64, byte_scale: f64) -> f64 {
    mbps * 1_000_000.0 / 8.0 * byte_scale
}

/// Microseconds to move `bytes` at `bps` bytes/s.
fn tx_us(bytes: usize, bps: f64) -> u64 {
    if bps <= 0.0 {
        return u64::MAX / 4;
    }
    (bytes as f64 * 1e6 / bps).ceil() as u64
}

impl<'a> World<'a> {
    pub fn new(sc: &'a Scenario, p2p: bool) -> Self {
        let media = Media::new(&sc.stream, sc.byte_scale, sc.seed);
        let swarms = (0..media.renditions())
            .map(|r| SwarmId::derive(&format!("sim:{}", sc.name), &format!("r{r}")))
            .collect();
        let mut w = World {
            sc,
            p2p,
            now: 0,
            queue: EventQueue::new(MS),
            tracker: (0..media.renditions())
                .map(|_| TrackerSwarm::default())
                .collect(),
            media,
            swarms,
            nets: sc
                .networks
                .iter()
                .map(|n| NetLink {
                    bps: scale_bps(n.inter_mbps, sc.byte_scale),
                    ..NetLink::default()
                })
                .collect(),
            outage_nets: sc
                .cdn
                .outages
                .iter()
                .map(|o| {
                    o.network
                        .as_deref()
                        .and_then(|n| sc.network_index(n))
                        .map(|i| i as u16)
                })
                .collect(),
            viewers: Vec::new(),
            peer_index: BTreeMap::new(),
            conns: Vec::new(),
            xfers: BTreeMap::new(),
            next_xfer: 1,
            rng: Rng::derive(sc.seed, 1),
            totals: Totals::default(),
            samples: Vec::new(),
            cdn_per_s: vec![0; sc.duration_s as usize + 1],
            sample_cdn: 0,
            sample_p2p: 0,
            end_us: sc.duration_s * SEC,
            scratch: Vec::new(),
            trace: std::env::var("SHOAL_SIM_TRACE")
                .ok()
                .and_then(|x| x.parse().ok()),
            profile: std::env::var_os("SHOAL_SIM_PROFILE").map(|_| Box::default()),
            manifest: None,
            manifest_lines: BTreeMap::new(),
            banned_adversaries: std::collections::BTreeSet::new(),
        };
        let mut idx = 0u64;
        for (gi, g) in sc.groups.iter().enumerate() {
            for _ in 0..g.count {
                let mut r = Rng::derive(sc.seed, 1_000_000 + idx);
                let join = r.range_f64(g.join_from_s, g.join_to_s);
                let leave = match (g.leave_from_s, g.leave_to_s) {
                    (Some(a), Some(b)) => Some(r.range_f64(a, b)),
                    _ => None,
                };
                w.add_viewer(gi, join, leave, r);
                idx += 1;
            }
        }
        w.push(0, Ev::Sample);
        w
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.queue.push(at.max(self.now), ev);
    }

    fn log(&self, v: u32, text: &str) {
        let p = &self.viewers[v as usize].pl;
        eprintln!(
            "[{:>9.3}] v{v} pos {:.0} buf_end {} next {} | {text}",
            self.now as f64 / SEC as f64,
            p.pos_ms,
            p.buf_end_ms,
            p.next_seq
        );
    }

    fn violation(&mut self, note: String) {
        self.totals.violations += 1;
        if self.totals.violation_notes.len() < MAX_VIOLATION_NOTES {
            self.totals.violation_notes.push(note);
        }
    }

    pub fn run(mut self) -> RunOutput {
        while let Some((at, ev)) = self.queue.pop() {
            if at > self.end_us {
                break;
            }
            self.now = at;
            self.totals.events += 1;
            let Some(p) = self.profile.as_mut() else {
                self.handle(ev);
                continue;
            };
            let slot = match &ev {
                Ev::Msg { frame, .. } => Ev::NAMES.len() + usize::from(frame.kind().unwrap_or(0)),
                ev => ev.kind(),
            }
            .min(PROFILE_SLOTS - 1);
            p.high = p.high.max(self.queue.len() + 1);
            let t = std::time::Instant::now();
            self.handle(ev);
            if let Some(p) = self.profile.as_mut() {
                p.count[slot] += 1;
                p.nanos[slot] += t.elapsed().as_nanos() as u64;
            }
        }
        if let Some(p) = &self.profile {
            let total: u64 = p.nanos.iter().sum();
            eprintln!(
                "profile: queue high-water {}; stale wakes {}",
                p.high, p.stale
            );
            eprintln!(
                "profile: {:>14} {:>10} {:>8} {:>6}",
                "kind", "events", "ns/ev", "time"
            );
            for i in 0..PROFILE_SLOTS {
                if p.count[i] == 0 {
                    continue;
                }
                let name = match Ev::NAMES.get(i) {
                    Some(n) => (*n).to_string(),
                    None => format!(
                        "msg {}",
                        wire::kind_name((i - Ev::NAMES.len()) as u8).unwrap_or("?")
                    ),
                };
                eprintln!(
                    "profile: {name:>14} {:>10} {:>8} {:>5.1}%",
                    p.count[i],
                    p.nanos[i] / p.count[i],
                    100.0 * p.nanos[i] as f64 / total.max(1) as f64
                );
            }
        }
        self.now = self.end_us;
        for v in 0..self.viewers.len() as u32 {
            if self.viewers[v as usize].alive {
                self.finish_viewer(v);
            }
        }
        let viewers = self
            .viewers
            .iter()
            .filter(|v| v.join_us < self.end_us)
            .map(|v| {
                let st = v.final_stats.clone().unwrap_or_default();
                ViewerOutcome {
                    role: v.role,
                    group: v.group,
                    startup_ms: v.startup_us.map(|u| u / MS),
                    watch_ms: v.watch_us / MS,
                    stall_ms: v.stall_us / MS,
                    stalls: v.stalls,
                    cdn_bytes: v.cdn_bytes,
                    p2p_bytes: st.p2p_down,
                    p2p_up: st.p2p_up,
                    corrupted: v.corrupted,
                    skipped: v.skipped,
                    banned: st.peers_banned,
                    affected: self.affected(v),
                    net: v.net,
                    p2p_in: v.p2p_in,
                    p2p_in_cross: v.p2p_in_cross,
                }
            })
            .collect();
        self.totals.adversaries_banned = self.banned_adversaries.len() as u64;
        self.totals.adversaries = self
            .viewers
            .iter()
            .filter(|v| v.join_us < self.end_us && v.role != Role::Honest)
            .count() as u64;
        RunOutput {
            totals: self.totals,
            viewers,
            samples: self.samples,
            cdn_per_s: self.cdn_per_s,
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Join(v) => self.join(v),
            Ev::Leave(v) => {
                if self.viewers[v as usize].alive {
                    self.finish_viewer(v);
                    if self.viewers[v as usize].churn {
                        self.replace(v);
                    }
                }
            }
            Ev::Wake(v) => {
                let now_ms = self.now / MS;
                let vw = &mut self.viewers[v as usize];
                if !vw.alive || vw.wake != Some(now_ms) {
                    if let Some(p) = self.profile.as_mut() {
                        p.stale += 1;
                    }
                    return;
                }
                vw.wake = None;
                if let Some(e) = vw.engine.as_mut() {
                    e.handle_timeout(Instant(now_ms));
                }
                self.drain(v);
            }
            Ev::PlaylistTick(v) => self.playlist_tick(v),
            Ev::PlayerTick(v) => self.player_tick(v),
            Ev::PlayerRetry(v) => {
                if self.viewers[v as usize].alive {
                    self.maybe_request(v);
                }
            }
            Ev::HttpPiece(x) => self.http_piece(x),
            Ev::HttpFail { x, status } => self.http_fail(x, status),
            Ev::TrackerReply { v, r, numwant } => self.tracker_reply(v, r, numwant),
            Ev::ConnOpen(c) => self.conn_open(c),
            Ev::ConnFail(c) => {
                let conn = &mut self.conns[c as usize];
                if conn.closed {
                    return;
                }
                conn.closed = true;
                let (a, b) = (conn.a, conn.b);
                self.input(a, Input::PeerClosed { conn: ConnId(c) });
                self.input(b, Input::PeerClosed { conn: ConnId(c) });
            }
            Ev::Msg { c, to_b, frame } => self.deliver_msg(c, to_b, frame),
            Ev::Closed { c, to_b } => {
                let conn = &self.conns[c as usize];
                let to = if to_b { conn.b } else { conn.a };
                self.input(to, Input::PeerClosed { conn: ConnId(c) });
            }
            Ev::Sample => self.sample(),
        }
    }

    /// Does the `i`th CDN outage hit viewer `v` (when it is on)?
    fn outage_hits(&self, i: usize, v: &Viewer) -> bool {
        match self.outage_nets[i] {
            Some(n) => v.net == Some(n),
            None => v.isp_draw < self.sc.cdn.outages[i].fraction,
        }
    }

    /// Is viewer `v` among those some CDN outage hits?
    fn affected(&self, v: &Viewer) -> bool {
        (0..self.sc.cdn.outages.len()).any(|i| self.outage_hits(i, v))
    }

    fn sample(&mut self) {
        let (mut viewers, mut playing, mut stalled, mut peers) = (0u32, 0u32, 0u32, 0u64);
        let mut stalled_affected = 0u32;
        for v in &self.viewers {
            if v.alive {
                viewers += 1;
                if v.pl.playing {
                    playing += 1;
                }
                if v.pl.stalled_since.is_some() {
                    stalled += 1;
                    if self.affected(v) {
                        stalled_affected += 1;
                    }
                }
                peers += v.conns.iter().filter(|&&c| self.is_live_conn(c)).count() as u64;
            }
        }
        self.samples.push(Sample {
            t_s: self.now / SEC,
            viewers,
            playing,
            stalled,
            stalled_affected,
            cdn_bytes: std::mem::take(&mut self.sample_cdn),
            p2p_bytes: std::mem::take(&mut self.sample_p2p),
            peers,
        });
        // Closed connections are forgotten by the viewers' lists here, not on every close.
        for i in 0..self.viewers.len() {
            if self.viewers[i].alive {
                let conns = std::mem::take(&mut self.viewers[i].conns);
                self.viewers[i].conns = conns
                    .into_iter()
                    .filter(|&c| !self.conns[c as usize].closed)
                    .collect();
            }
        }
        self.push(self.now + self.sc.sample_s * SEC, Ev::Sample);
    }
}
