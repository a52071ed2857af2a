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
    /// largest outage fraction).
    pub affected: bool,
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

    fn add_viewer(&mut self, group: usize, join_s: f64, leave_s: Option<f64>, mut r: Rng) -> u32 {
        let sc = self.sc;
        let g = &sc.groups[group];
        let total: f64 = sc.links.iter().map(|l| l.weight).sum();
        let mut pick = r.f64() * total;
        let mut link = &sc.links[0];
        for l in &sc.links {
            if pick < l.weight {
                link = l;
                break;
            }
            pick -= l.weight;
        }
        let spread = r.range_f64(0.75, 1.25);
        let down_bps = scale_bps(link.down_mbps * spread, sc.byte_scale);
        let up_bps = scale_bps(link.up_mbps * spread, sc.byte_scale).max(1.0);
        let lat_us = link.latency_ms * MS + r.range_u64(0, link.latency_ms * MS / 2);
        let nat = r.chance(sc.nat_fraction);
        let isp_draw = r.f64();
        let join_us = (join_s * SEC as f64) as u64;
        let mut leave_us = leave_s.map(|s| (s * SEC as f64) as u64);
        if g.churn_per_min > 0.0 {
            let session = r.exp(60.0 / g.churn_per_min);
            let l = join_us + (session * SEC as f64) as u64;
            leave_us = Some(leave_us.map_or(l, |x| x.min(l)));
        }
        let v = self.viewers.len() as u32;
        let cache_budget = (sc.engine.cache_bytes as f64 * sc.byte_scale) as u64;
        self.viewers.push(Viewer {
            role: g.role,
            engine: None,
            alive: false,
            peer: PeerId([0; 20]),
            down_bps,
            up_bps,
            lat_us,
            nat,
            isp_draw,
            cdn_bps: scale_bps(sc.cdn.mbps, sc.byte_scale),
            ttfb_us: (sc.cdn.ttfb_ms_min * MS, sc.cdn.ttfb_ms_max * MS),
            up_busy: 0,
            down_busy: 0,
            wake: None,
            http: Vec::new(),
            conns: Vec::new(),
            pl: Player {
                rend: sc.player.start_rendition,
                known: None,
                next_seq: 0,
                initialized: false,
                pos_ms: 0.0,
                buf_end_ms: 0,
                last_us: join_us,
                started: false,
                playing: false,
                ended: false,
                stalled_since: None,
                pending: None,
                next_req: 1,
                bw_fast: 0.0,
                bw_slow: 0.0,
                playlist_sent: vec![false; sc.stream.bitrates.len()],
            },
            join_us,
            leave_us,
            churn: g.churn_per_min > 0.0,
            group,
            rng: r,
            cache_budget,
            next_stats_check: 0,
            startup_us: None,
            watch_us: 0,
            stall_us: 0,
            stalls: 0,
            cdn_bytes: 0,
            corrupted: 0,
            skipped: 0,
            final_stats: None,
        });
        if join_us < self.end_us {
            self.push(join_us, Ev::Join(v));
        }
        v
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
        let affected_fraction = self.affected_fraction();
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
                    affected: v.isp_draw < affected_fraction,
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

    // ------------------------------------------------------------ engine plumbing

    fn input(&mut self, v: u32, input: Input) {
        let now = Instant(self.now / MS);
        let vw = &mut self.viewers[v as usize];
        if !vw.alive {
            return;
        }
        if let Some(e) = vw.engine.as_mut() {
            e.handle_input(now, input);
        }
        self.drain(v);
    }

    fn drain(&mut self, v: u32) {
        let mut outs = std::mem::take(&mut self.scratch);
        {
            let vw = &mut self.viewers[v as usize];
            let Some(e) = vw.engine.as_mut() else {
                self.scratch = outs;
                return;
            };
            while let Some(o) = e.poll_output() {
                outs.push(o);
            }
        }
        for o in outs.drain(..) {
            self.on_output(v, o);
        }
        self.scratch = outs;
        self.sync_wake(v);
    }

    fn sync_wake(&mut self, v: u32) {
        let now_ms = self.now / MS;
        let vw = &mut self.viewers[v as usize];
        let Some(t) = vw.engine.as_ref().and_then(|e| e.poll_timeout()) else {
            return;
        };
        // A wake at or before now has just been served: the engine wants to be called
        // again, so give it the next millisecond rather than spin.
        let t = t.as_millis().max(now_ms + 1);
        if vw.wake.is_none_or(|w| t < w || w <= now_ms) {
            vw.wake = Some(t);
            self.push(t * MS, Ev::Wake(v));
        } else if vw.wake != Some(t) {
            // Later than the wake already queued: that one will find a mismatch and be
            // dropped, so queue this one too.
            vw.wake = Some(t);
            self.push(t * MS, Ev::Wake(v));
        }
    }

    fn on_output(&mut self, v: u32, o: Output) {
        if self.trace == Some(v) {
            let text = match &o {
                Output::SendToPeer { conn, data } => format!("send c{} {}", conn.0, describe(data)),
                Output::SendData { conn, frame } => {
                    format!("send c{} {}", conn.0, describe(&frame.to_vec()))
                }
                Output::DeliverSegment { req, timing, .. } => {
                    format!("deliver req {} {timing:?}", req.0)
                }
                o => format!("{o:?}"),
            };
            self.log(v, &text);
        }
        match o {
            Output::StartHttp { id, url, range } => {
                let Some((rend, seq)) = Media::parse_url(&url) else {
                    self.violation(format!("viewer {v}: StartHttp for unknown url {url}"));
                    return;
                };
                let dup = self.viewers[v as usize].http.iter().any(|(_, x)| {
                    self.xfers
                        .get(x)
                        .is_some_and(|t| t.rend == rend && t.seq == seq)
                });
                if dup {
                    self.violation(format!(
                        "t={}ms viewer {v}: two HTTP downloads of r{rend}/{seq}",
                        self.now / MS
                    ));
                }
                let x = self.start_xfer(v, Owner::Engine(id), rend, seq, range);
                self.viewers[v as usize].http.push((id, x));
            }
            Output::CancelHttp { id } => {
                let vw = &mut self.viewers[v as usize];
                if let Some(i) = vw.http.iter().position(|(h, _)| *h == id) {
                    let (_, x) = vw.http.swap_remove(i);
                    self.xfers.remove(&x);
                }
            }
            Output::Announce {
                swarm,
                event,
                numwant,
            } => {
                let Some(r) = self.swarms.iter().position(|s| *s == swarm) else {
                    return;
                };
                match event {
                    AnnounceEvent::Stopped => self.tracker[r].remove(v),
                    _ => {
                        self.tracker[r].add(v);
                        let delay = self.sc.tracker.announce_delay_ms * MS;
                        self.push(
                            self.now + delay,
                            Ev::TrackerReply {
                                v,
                                r: r as u16,
                                numwant,
                            },
                        );
                    }
                }
            }
            Output::ConnectPeer { conn } => self.conn_answer(v, conn.0, true),
            Output::ClosePeer { conn, .. } => self.conn_answer(v, conn.0, false),
            Output::SendToPeer { conn, data } => self.send_msg(v, conn.0, Frame::Bytes(data)),
            Output::SendData { conn, frame } => self.send_msg(v, conn.0, Frame::Data(frame)),
            Output::SegmentProgress { .. } => {}
            Output::DeliverSegment { req, data, timing } => {
                self.on_delivered(v, req.0, Some(&data), Some(&timing))
            }
            Output::FailSegment { req, .. } => {
                self.totals.fail_segments += 1;
                self.on_engine_failed(v, req.0);
            }
            Output::Event(Event::PeerBanned { peer, reason, .. }) => {
                self.totals.bans += 1;
                *self
                    .totals
                    .ban_reasons
                    .entry(format!("{reason:?}"))
                    .or_insert(0) += 1;
                let who = self.peer_index.get(&peer).copied();
                let honest = who.is_some_and(|p| self.viewers[p as usize].role == Role::Honest);
                if honest {
                    self.totals.bans_of_honest += 1;
                } else if let Some(p) = who {
                    self.banned_adversaries.insert(p);
                }
            }
            Output::Event(Event::VerificationFailed { .. }) => {
                self.totals.verification_failures += 1;
            }
            Output::Event(_) => {}
        }
    }

    // ------------------------------------------------------------ viewers

    fn join(&mut self, v: u32) {
        let sc = self.sc;
        let vi = v as usize;
        let mut cfg = sc.engine.clone();
        cfg.p2p_enabled = self.p2p && cfg.p2p_enabled;
        cfg.cache_bytes = self.viewers[vi].cache_budget;
        cfg.upload_bytes_per_sec = match sc.upload_fraction_of_uplink {
            Some(f) => (self.viewers[vi].up_bps * f) as u64,
            None => (cfg.upload_bytes_per_sec as f64 * sc.byte_scale) as u64,
        };
        if self.viewers[vi].role == Role::FreeRider {
            cfg.upload_bytes_per_sec = 0;
        }
        let seed = Rng::derive(sc.seed, 2_000_000 + v as u64).next_u64();
        let mut engine = Engine::new(cfg, Instant(self.now / MS), seed);
        // Downloads and caches use the published buffer instead of their own copy while
        // the bytes they receive are the same (the engine compares them): memory
        // O(segments), not O(viewers x cache).
        let published = self.media.published();
        engine.share_upload_buffers(true);
        engine.set_interner(Box::new(move |url, range| {
            let (r, seq) = Media::parse_url(url)?;
            range
                .is_none()
                .then(|| published.borrow().get(&(r, seq)).cloned())
                .flatten()
        }));
        let peer = engine.peer_id();
        self.peer_index.insert(peer, v);
        let vw = &mut self.viewers[vi];
        vw.engine = Some(Box::new(engine));
        vw.peer = peer;
        vw.alive = true;
        vw.pl.last_us = self.now;
        vw.next_stats_check = self.now + STATS_CHECK_EVERY;
        let ttfb = vw.rng.range_u64(vw.ttfb_us.0, vw.ttfb_us.1);
        let tick = sc.player.playhead_interval_ms * MS;
        if let Some(l) = vw.leave_us {
            self.push(l, Ev::Leave(v));
        }
        self.push(self.now + ttfb, Ev::PlaylistTick(v));
        self.push(self.now + tick, Ev::PlayerTick(v));
    }

    /// A churned viewer is replaced by a newcomer a few seconds later.
    fn replace(&mut self, v: u32) {
        let g = self.viewers[v as usize].group;
        let mut r = Rng::derive(self.sc.seed, 3_000_000 + v as u64);
        let join_s = self.now as f64 / SEC as f64 + r.range_f64(1.0, 10.0);
        let idx = self.viewers.len() as u64;
        let vr = Rng::derive(self.sc.seed, 1_000_000 + idx);
        self.add_viewer(g, join_s, None, vr);
    }

    fn finish_viewer(&mut self, v: u32) {
        self.advance(v);
        let now = self.now;
        let vi = v as usize;
        let conns: Vec<u32> = std::mem::take(&mut self.viewers[vi].conns);
        for c in conns {
            let conn = &mut self.conns[c as usize];
            if conn.closed {
                continue;
            }
            conn.closed = true;
            let to_b = conn.a == v;
            let owd = conn.owd_us;
            let other = if to_b { conn.b } else { conn.a };
            let told = conn.ok[usize::from(to_b)] || conn.open;
            if told && self.viewers[other as usize].alive {
                self.push(now + owd, Ev::Closed { c, to_b });
            }
        }
        for t in self.tracker.iter_mut() {
            t.remove(v);
        }
        let vw = &mut self.viewers[vi];
        if let Some(since) = vw.pl.stalled_since.take() {
            vw.stall_us += now.saturating_sub(since);
        }
        if let Some(e) = vw.engine.take() {
            vw.final_stats = Some(e.stats());
        }
        vw.alive = false;
        vw.leave_us = Some(now);
        let http: Vec<(HttpId, u64)> = std::mem::take(&mut vw.http);
        for (_, x) in http {
            self.xfers.remove(&x);
        }
        if let Some(Pending {
            direct: Some(x), ..
        }) = self.viewers[vi].pl.pending.take()
        {
            self.xfers.remove(&x);
        }
    }

    // ------------------------------------------------------------ player

    /// Moves the playhead to `now`, detecting the moment the buffer ran dry.
    fn advance(&mut self, v: u32) {
        let now = self.now;
        let live = self.media.is_live();
        let total_ms = if live {
            u64::MAX
        } else {
            self.sc.stream.vod_segments * self.media.segment_ms()
        };
        let p = &mut self.viewers[v as usize];
        let pl = &mut p.pl;
        let elapsed = now.saturating_sub(pl.last_us);
        pl.last_us = now;
        if pl.started && (pl.playing || pl.stalled_since.is_some()) {
            p.watch_us += elapsed;
        }
        if !pl.playing {
            return;
        }
        let ahead_ms = pl.buf_end_ms as f64 - pl.pos_ms;
        let el_ms = elapsed as f64 / MS as f64;
        if el_ms < ahead_ms {
            pl.pos_ms += el_ms;
            return;
        }
        pl.pos_ms = pl.buf_end_ms as f64;
        pl.playing = false;
        if pl.buf_end_ms >= total_ms {
            pl.ended = true;
            return;
        }
        let dry_at = now.saturating_sub(((el_ms - ahead_ms) * MS as f64) as u64);
        pl.stalled_since = Some(dry_at);
        p.stalls += 1;
        if self.trace == Some(v) {
            self.log(v, "STALL");
        }
    }

    fn send_playhead(&mut self, v: u32) {
        let p = &self.viewers[v as usize];
        if !p.pl.initialized {
            return;
        }
        let input = Input::Playhead {
            swarm: self.swarms[p.pl.rend],
            position_ms: p.pl.pos_ms as u64,
            buffered_ahead_ms: p.pl.buf_end_ms.saturating_sub(p.pl.pos_ms as u64),
            rate: if p.pl.playing { 1.0 } else { 0.0 },
        };
        self.input(v, input);
    }

    fn send_playlist(&mut self, v: u32, rend: usize) {
        let Some((lo, hi)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let seg_ms = self.media.segment_ms();
        let segments: Vec<SegmentInfo> = (lo..=hi)
            .map(|seq| SegmentInfo {
                seq,
                start_ms: seq * seg_ms,
                duration_ms: seg_ms as u32,
                url: Media::url(rend, seq),
                range: None,
            })
            .collect();
        self.viewers[v as usize].pl.playlist_sent[rend] = true;
        let input = Input::Playlist {
            swarm: self.swarms[rend],
            live: self.media.is_live(),
            container: Container::Ts,
            bitrate: self.media.bitrate(rend).min(u32::MAX as u64) as u32,
            segments,
        };
        self.input(v, input);
    }

    /// The origin's integrity manifest for the current window (all renditions), as the
    /// viewer would fetch it beside the playlist.
    fn send_manifest(&mut self, v: u32) {
        let Some((lo, hi)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let fresh = self.manifest.as_ref().is_some_and(|(w, _)| *w == (lo, hi));
        if !fresh {
            let mut text = testkit::media::manifest_header();
            for r in 0..self.media.renditions() {
                for seq in lo..=hi {
                    if let Some(line) = self.manifest_lines.get(&(r, seq)) {
                        text.push_str(line);
                        continue;
                    }
                    let data = self.media.bytes(r, seq);
                    let key = crate::integrity::manifest_key(&Media::url(r, seq), None);
                    let line = testkit::manifest_line(&key, &data, true);
                    text.push_str(&line);
                    self.manifest_lines.insert((r, seq), line);
                }
            }
            self.manifest_lines.retain(|&(_, s), _| s >= lo);
            self.manifest = Some(((lo, hi), text.into_bytes()));
        }
        let Some((_, data)) = self.manifest.as_ref() else {
            return;
        };
        let data = data.clone();
        self.input(v, Input::IntegrityManifest { data });
    }

    fn playlist_tick(&mut self, v: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        let now_ms = self.now / MS;
        let window = self.media.window(now_ms);
        let seg_ms = self.media.segment_ms();
        let live = self.media.is_live();
        let sync = self.sc.player.live_sync_segments;
        let p = &mut self.viewers[v as usize];
        p.pl.known = window;
        if !p.pl.initialized {
            if let Some((lo, hi)) = window {
                p.pl.initialized = true;
                let start = if live {
                    (hi + 1).saturating_sub(sync.max(1)).max(lo)
                } else {
                    0
                };
                p.pl.next_seq = start;
                p.pl.pos_ms = (start * seg_ms) as f64;
                p.pl.buf_end_ms = start * seg_ms;
            }
        }
        let rend = p.pl.rend;
        let resend = live || !p.pl.playlist_sent[rend];
        if live {
            self.push(self.now + seg_ms * MS, Ev::PlaylistTick(v));
            self.media.prune(now_ms);
        }
        if resend {
            self.send_playlist(v, rend);
            if self.sc.manifest {
                self.send_manifest(v);
            }
        }
        match self.viewers[v as usize].role {
            Role::Liar => self.lie(v),
            Role::Flooder => self.flood(v),
            _ => {}
        }
        self.send_playhead(v);
        self.maybe_request(v);
    }

    fn player_tick(&mut self, v: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        self.advance(v);
        let tick = self.sc.player.playhead_interval_ms * MS;
        self.push(self.now + tick, Ev::PlayerTick(v));
        self.send_playhead(v);
        self.maybe_request(v);
        if self.now >= self.viewers[v as usize].next_stats_check {
            self.viewers[v as usize].next_stats_check = self.now + STATS_CHECK_EVERY;
            let budget = self.viewers[v as usize].cache_budget;
            if let Some(st) = self.viewers[v as usize].engine.as_ref().map(|e| e.stats()) {
                self.totals.max_cache_bytes = self.totals.max_cache_bytes.max(st.cache_bytes);
                if st.cache_bytes > budget {
                    self.violation(format!(
                        "t={}ms viewer {v}: cache {} above budget {budget}",
                        self.now / MS,
                        st.cache_bytes
                    ));
                }
            }
        }
    }

    fn choose_rendition(&self, v: u32) -> usize {
        let p = &self.viewers[v as usize];
        let cur = p.pl.rend;
        if !self.sc.player.abr || p.pl.bw_slow <= 0.0 {
            return cur;
        }
        let est = p.pl.bw_fast.min(p.pl.bw_slow) * 8.0 / self.sc.byte_scale;
        let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
        let mut best = 0;
        for r in 0..self.media.renditions() {
            let factor = if r > cur { 0.7 } else { 0.95 };
            if self.media.bitrate(r) as f64 <= est * factor {
                best = r;
            }
        }
        if best > cur && ahead < 8_000.0 {
            return cur;
        }
        best
    }

    fn maybe_request(&mut self, v: u32) {
        let seg_ms = self.media.segment_ms();
        let live = self.media.is_live();
        let max_buf = self.sc.player.max_buffer_ms;
        let vod_n = self.sc.stream.vod_segments;
        {
            let p = &mut self.viewers[v as usize];
            if !p.alive || !p.pl.initialized || p.pl.pending.is_some() || p.pl.ended {
                return;
            }
            let Some((lo, hi)) = p.pl.known else {
                return;
            };
            if live && p.pl.next_seq < lo {
                // Fell out of the live window: jump forward, as hls.js does.
                p.skipped += (lo - p.pl.next_seq) as u32;
                p.pl.next_seq = lo;
                p.pl.pos_ms = (lo * seg_ms) as f64;
                p.pl.buf_end_ms = lo * seg_ms;
            }
            if p.pl.next_seq > hi || (!live && p.pl.next_seq >= vod_n) {
                return;
            }
            let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
            if ahead >= max_buf as f64 {
                return;
            }
        }
        let rend = self.choose_rendition(v);
        if rend != self.viewers[v as usize].pl.rend {
            self.viewers[v as usize].pl.rend = rend;
            self.send_playlist(v, rend);
            self.send_playhead(v);
        }
        let p = &mut self.viewers[v as usize];
        if !p.alive {
            return;
        }
        let seq = p.pl.next_seq;
        let req = p.pl.next_req;
        p.pl.next_req = p.pl.next_req.wrapping_add(1).max(1);
        p.pl.pending = Some(Pending {
            req,
            seq,
            rend,
            direct: None,
        });
        if self.trace == Some(v) {
            self.log(v, &format!("REQUEST req {req} r{rend}/{seq}"));
        }
        let input = Input::SegmentRequested {
            req: RequestId(req),
            swarm: self.swarms[rend],
            seq,
            url: Media::url(rend, seq),
            range: None,
        };
        self.input(v, input);
    }

    /// A segment reached the player: from the engine (`data`, `timing`) or from its own
    /// fallback load (`None`: the origin's bytes).
    fn on_delivered(
        &mut self,
        v: u32,
        req: u32,
        data: Option<&SegmentBytes>,
        timing: Option<&DeliveryTiming>,
    ) {
        let matches = self.viewers[v as usize]
            .pl
            .pending
            .as_ref()
            .is_some_and(|p| p.req == req);
        if !matches {
            self.violation(format!(
                "t={}ms viewer {v}: delivery for request {req} not pending",
                self.now / MS
            ));
            return;
        }
        self.advance(v);
        let Some(pend) = self.viewers[v as usize].pl.pending.take() else {
            return;
        };
        if let Some(data) = data {
            let truth = self.media.bytes(pend.rend, pend.seq);
            // The engine hands out the shared copy when its bytes equal it (`set_interner`).
            if !Rc::ptr_eq(data, &truth) && data.as_slice() != truth.as_slice() {
                self.viewers[v as usize].corrupted += 1;
                self.violation(format!(
                    "t={}ms viewer {v}: corrupted segment r{}/{} delivered",
                    self.now / MS,
                    pend.rend,
                    pend.seq
                ));
            }
        }
        let seg_ms = self.media.segment_ms();
        let now = self.now;
        let resume = self.sc.player.resume_buffer_ms;
        let vod_end = self.sc.stream.vod_segments * seg_ms;
        let live = self.media.is_live();
        let size = self.media.size(pend.rend, pend.seq) as f64;
        let p = &mut self.viewers[v as usize];
        p.pl.buf_end_ms = (pend.seq + 1) * seg_ms;
        p.pl.next_seq = pend.seq + 1;
        if let Some(t) = timing {
            if !t.from_cache {
                let dur_ms = t
                    .transfer_end
                    .as_millis()
                    .saturating_sub(t.transfer_start.as_millis())
                    .max(1) as f64;
                let sample = size * 1000.0 / dur_ms;
                if p.pl.bw_slow <= 0.0 {
                    p.pl.bw_fast = sample;
                    p.pl.bw_slow = sample;
                } else {
                    p.pl.bw_fast += 0.5 * (sample - p.pl.bw_fast);
                    p.pl.bw_slow += 0.1 * (sample - p.pl.bw_slow);
                }
            }
        }
        if !p.pl.started {
            p.pl.started = true;
            p.pl.playing = true;
            p.startup_us = Some(now.saturating_sub(p.join_us));
        } else if let Some(since) = p.pl.stalled_since {
            let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
            let at_end = !live && p.pl.buf_end_ms >= vod_end;
            if ahead >= resume as f64 || at_end {
                p.stall_us += now.saturating_sub(since);
                p.pl.stalled_since = None;
                p.pl.playing = true;
            }
        }
        self.send_playhead(v);
        self.maybe_request(v);
    }

    /// The engine gave up on the request: the player loads it over plain HTTP.
    fn on_engine_failed(&mut self, v: u32, req: u32) {
        let Some(pend) = self.viewers[v as usize].pl.pending.as_ref() else {
            return;
        };
        if pend.req != req {
            return;
        }
        let (rend, seq) = (pend.rend, pend.seq);
        let x = self.start_xfer(v, Owner::Player(req), rend, seq, None);
        if let Some(p) = self.viewers[v as usize].pl.pending.as_mut() {
            p.direct = Some(x);
        }
    }

    // ------------------------------------------------------------ CDN

    /// The failing outage hitting viewer `v` now (a throttle is not a failure).
    fn outage(&self, v: u32) -> Option<OutageKind> {
        self.active_outage(v, false).map(|o| o.kind)
    }

    fn active_outage(&self, v: u32, throttle: bool) -> Option<&Outage> {
        let t = self.now as f64 / SEC as f64;
        let draw = self.viewers[v as usize].isp_draw;
        self.sc.cdn.outages.iter().find(|o| {
            t >= o.from_s
                && t < o.from_s + o.duration_s
                && draw < o.fraction
                && (o.kind == OutageKind::Throttle) == throttle
        })
    }

    /// The viewer's CDN throughput now, simulated bytes/s.
    fn cdn_bps(&self, v: u32) -> f64 {
        let base = self.viewers[v as usize].cdn_bps;
        match self.active_outage(v, true) {
            Some(o) => base.min(scale_bps(o.mbps, self.sc.byte_scale)),
            None => base,
        }
    }

    fn start_xfer(
        &mut self,
        v: u32,
        owner: Owner,
        rend: usize,
        seq: u64,
        range: Option<ByteRange>,
    ) -> u64 {
        let x = self.next_xfer;
        self.next_xfer += 1;
        let data = self.media.bytes(rend, seq);
        let (pos, end) = match range {
            Some(r) => (
                (r.start as usize).min(data.len()),
                (r.end as usize).min(data.len()),
            ),
            None => (0, data.len()),
        };
        let ttfb = {
            let vw = &mut self.viewers[v as usize];
            vw.rng.range_u64(vw.ttfb_us.0, vw.ttfb_us.1)
        };
        self.xfers.insert(
            x,
            Xfer {
                v,
                owner,
                rend,
                seq,
                data,
                pos,
                end,
                first: true,
                last: self.now + ttfb,
            },
        );
        let served = self.media.served(seq, self.now / MS);
        match (served, self.outage(v)) {
            (false, _) => self.push(self.now + ttfb, Ev::HttpFail { x, status: 404 }),
            (true, Some(OutageKind::Error)) => {
                self.push(self.now + ttfb, Ev::HttpFail { x, status: 503 })
            }
            (true, Some(OutageKind::Stall)) => {
                let to = self.sc.player.http_timeout_ms * MS;
                self.push(self.now + to, Ev::HttpFail { x, status: 0 })
            }
            (true, None | Some(OutageKind::Throttle)) => self.schedule_piece(x),
        }
        x
    }

    fn schedule_piece(&mut self, x: u64) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let n = (t.end - t.pos).min(HTTP_PIECE);
        let cdn_bps = self.cdn_bps(t.v);
        let vw = &mut self.viewers[t.v as usize];
        let server = t.last + tx_us(n, cdn_bps);
        let arrive = server.max(vw.down_busy.max(self.now) + tx_us(n, vw.down_bps));
        vw.down_busy = arrive;
        self.push(arrive, Ev::HttpPiece(x));
    }

    fn http_piece(&mut self, x: u64) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let v = t.v;
        if !self.viewers[v as usize].alive {
            self.xfers.remove(&x);
            return;
        }
        if let Some(kind) = self.outage(v) {
            let (at, status) = match kind {
                OutageKind::Error | OutageKind::Throttle => (self.now, 0),
                OutageKind::Stall => (self.now + self.sc.player.http_timeout_ms * MS, 0),
            };
            self.push(at, Ev::HttpFail { x, status });
            return;
        }
        let Some(t) = self.xfers.get_mut(&x) else {
            return;
        };
        let n = (t.end - t.pos).min(HTTP_PIECE);
        let piece = t
            .data
            .get(t.pos..t.pos + n)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let total = t.first.then_some((t.end - t.pos) as u64);
        t.first = false;
        t.pos += n;
        t.last = self.now;
        let done = t.pos >= t.end;
        let owner = t.owner;
        self.account_cdn(v, n as u64);
        match owner {
            Owner::Engine(id) => {
                self.input(
                    v,
                    Input::HttpProgress {
                        id,
                        data: piece,
                        total,
                    },
                );
                if done {
                    self.forget_http(v, id, x);
                    self.input(v, Input::HttpDone { id });
                } else if self.xfers.contains_key(&x) {
                    self.schedule_piece(x);
                }
            }
            Owner::Player(req) => {
                if done {
                    self.xfers.remove(&x);
                    self.on_delivered(v, req, None, None);
                } else {
                    self.schedule_piece(x);
                }
            }
        }
    }

    fn forget_http(&mut self, v: u32, id: HttpId, x: u64) {
        self.xfers.remove(&x);
        let vw = &mut self.viewers[v as usize];
        if let Some(i) = vw.http.iter().position(|(h, _)| *h == id) {
            vw.http.swap_remove(i);
        }
    }

    fn http_fail(&mut self, x: u64, status: u16) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let (v, owner) = (t.v, t.owner);
        match owner {
            Owner::Engine(id) => {
                self.forget_http(v, id, x);
                self.input(
                    v,
                    Input::HttpFailed {
                        id,
                        status,
                        reason: "simulated CDN failure".into(),
                    },
                );
            }
            Owner::Player(_) => {
                self.xfers.remove(&x);
                let retry = self.sc.player.retry_ms * MS;
                let p = &mut self.viewers[v as usize];
                if p.alive {
                    p.pl.pending = None;
                    self.push(self.now + retry, Ev::PlayerRetry(v));
                }
            }
        }
    }

    fn account_cdn(&mut self, v: u32, n: u64) {
        self.totals.cdn_bytes += n;
        self.sample_cdn += n;
        self.viewers[v as usize].cdn_bytes += n;
        let s = (self.now / SEC) as usize;
        if let Some(b) = self.cdn_per_s.get_mut(s) {
            *b += n;
        }
    }

    // ------------------------------------------------------------ tracker and connections

    fn tracker_reply(&mut self, v: u32, r: u16, numwant: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        let n = numwant.min(50) as usize;
        let picks = self.tracker[r as usize].pick(v, n, &mut self.rng);
        for p in picks {
            if !self.viewers[p as usize].alive {
                continue;
            }
            let c = self.conns.len() as u32;
            let (va, vb) = (&self.viewers[v as usize], &self.viewers[p as usize]);
            let blocked = (va.nat && vb.nat) || self.rng.chance(self.sc.tracker.connect_fail);
            let owd_us = va.lat_us + vb.lat_us;
            let (pa, pb) = (va.peer, vb.peer);
            self.conns.push(Conn {
                a: v,
                b: p,
                ok: [false; 2],
                open: false,
                closed: false,
                owd_us,
                last_arrival: [0; 2],
                blocked,
            });
            self.viewers[v as usize].conns.push(c);
            self.viewers[p as usize].conns.push(c);
            let swarm = self.swarms[r as usize];
            self.input(
                p,
                Input::PeerCandidate {
                    conn: ConnId(c),
                    swarm,
                    peer: pa,
                    inbound: true,
                },
            );
            if self.conns[c as usize].closed {
                continue;
            }
            self.input(
                v,
                Input::PeerCandidate {
                    conn: ConnId(c),
                    swarm,
                    peer: pb,
                    inbound: false,
                },
            );
        }
    }

    fn conn_answer(&mut self, v: u32, c: u32, yes: bool) {
        let Some(conn) = self.conns.get_mut(c as usize) else {
            return;
        };
        if conn.closed {
            return;
        }
        let side_b = conn.b == v;
        if !yes {
            conn.closed = true;
            let other_told = conn.ok[usize::from(!side_b)] || conn.open;
            let owd = conn.owd_us;
            if other_told {
                self.push(self.now + owd, Ev::Closed { c, to_b: !side_b });
            }
            return;
        }
        conn.ok[usize::from(side_b)] = true;
        if conn.ok[0] && conn.ok[1] {
            let rtt = 2 * conn.owd_us;
            if conn.blocked {
                let t = self.sc.tracker.connect_timeout_ms * MS;
                self.push(self.now + t, Ev::ConnFail(c));
            } else {
                let t = self.sc.tracker.connect_ms * MS + 2 * rtt;
                self.push(self.now + t, Ev::ConnOpen(c));
            }
        }
    }

    fn conn_open(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        if conn.closed {
            return;
        }
        conn.open = true;
        let (a, b) = (conn.a, conn.b);
        self.input(a, Input::PeerConnected { conn: ConnId(c) });
        if !self.conns[c as usize].closed {
            self.input(b, Input::PeerConnected { conn: ConnId(c) });
        }
    }

    fn send_msg(&mut self, v: u32, c: u32, mut frame: Frame) {
        let Some(conn) = self.conns.get(c as usize) else {
            return;
        };
        if conn.closed {
            return;
        }
        if !conn.open {
            self.violation(format!(
                "t={}ms viewer {v}: send on conn {c} before it opened",
                self.now / MS
            ));
            return;
        }
        let to_b = conn.a == v;
        let to = if to_b { conn.b } else { conn.a };
        let owd = conn.owd_us;
        match self.viewers[v as usize].role {
            Role::Corrupter | Role::StealthCorrupter if frame.kind() == Some(kind::DATA) => {
                let stealth = self.viewers[v as usize].role == Role::StealthCorrupter;
                let mut data = frame.into_vec();
                tamper(&mut data, stealth);
                frame = Frame::Bytes(data);
            }
            _ => {}
        }
        let len = frame.len() + MSG_OVERHEAD;
        let now = self.now;
        let sender = &mut self.viewers[v as usize];
        let dep = sender.up_busy.max(now) + tx_us(len, sender.up_bps);
        sender.up_busy = dep;
        // The receiver's downlink is booked for this message's transmission time from now,
        // not until its arrival: a message held back by a slow (or flooding) sender's uplink
        // must not keep the receiver's link busy for other senders meanwhile.
        let recv = &mut self.viewers[to as usize];
        recv.down_busy = recv.down_busy.max(now) + tx_us(len, recv.down_bps);
        let mut arrive = (dep + owd).max(recv.down_busy);
        let dir = usize::from(to_b);
        let conn = &mut self.conns[c as usize];
        arrive = arrive.max(conn.last_arrival[dir]);
        conn.last_arrival[dir] = arrive;
        self.push(arrive, Ev::Msg { c, to_b, frame });
    }

    fn deliver_msg(&mut self, c: u32, to_b: bool, frame: Frame) {
        let conn = &self.conns[c as usize];
        if conn.closed {
            return;
        }
        let to = if to_b { conn.b } else { conn.a };
        if self.trace == Some(to) {
            let text = match &frame {
                Frame::Bytes(b) => describe(b),
                Frame::Data(f) => describe(&f.to_vec()),
            };
            self.log(to, &format!("recv c{c} {text}"));
        }
        if let Some(k) = frame.kind() {
            *self.totals.msg_kinds.entry(k).or_insert(0) += 1;
            if k == kind::DATA {
                let n = frame.len().saturating_sub(DATA_HEADER_LEN) as u64;
                self.totals.p2p_wire_bytes += n;
                self.sample_p2p += n;
            }
        }
        let conn = ConnId(c);
        let input = match frame {
            Frame::Bytes(data) => Input::PeerMessage { conn, data },
            Frame::Data(frame) => Input::PeerData { conn, frame },
        };
        self.input(to, input);
    }

    /// A liar announces the newest live segment to all its peers, without having it.
    fn lie(&mut self, v: u32) {
        let Some((_, newest)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let rend = self.viewers[v as usize].pl.rend;
        let size = self.media.size(rend, newest) as u32;
        let msg = wire::encode(&Message::Have { seq: newest, size });
        let conns = self.open_conns(v);
        for c in conns {
            self.send_msg(v, c, Frame::Bytes(msg.clone()));
        }
    }

    /// Viewer `v`'s connections that are open and not closed.
    fn open_conns(&self, v: u32) -> Vec<u32> {
        self.viewers[v as usize]
            .conns
            .iter()
            .copied()
            .filter(|&c| self.is_live_conn(c))
            .collect()
    }

    fn is_live_conn(&self, c: u32) -> bool {
        self.conns[c as usize].open && !self.conns[c as usize].closed
    }

    /// The largest fraction of viewers any CDN outage hits (viewers whose ISP draw is below
    /// it are the affected ones).
    fn affected_fraction(&self) -> f64 {
        self.sc
            .cdn
            .outages
            .iter()
            .map(|o| o.fraction)
            .fold(0.0, f64::max)
    }

    /// One burst of a flooder to each open connection: 64 requests (ids reused, chunks out of
    /// range included), 64 `Have` for future segments with absurd sizes, 16 unsolicited chunks.
    fn flood(&mut self, v: u32) {
        let Some((_, newest)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let mut burst = Vec::with_capacity(144);
        for i in 0..64u32 {
            burst.push(wire::encode(&Message::Request {
                id: i % 8,
                seq: newest.saturating_sub(32) + u64::from(i),
                first_chunk: i * 7,
                count: 1 + i,
            }));
            burst.push(wire::encode(&Message::Have {
                seq: newest + 1 + u64::from(i),
                size: u32::MAX - i,
            }));
        }
        for i in 0..16u32 {
            burst.push(wire::encode(&Message::Data {
                id: 1_000 + i,
                chunk: i,
                total_size: 16 * wire::CHUNK_SIZE as u32,
                payload: vec![0x47; wire::CHUNK_SIZE],
            }));
        }
        let conns = self.open_conns(v);
        for c in conns {
            for m in &burst {
                self.send_msg(v, c, Frame::Bytes(m.clone()));
            }
        }
    }

    // ------------------------------------------------------------ sampling

    fn sample(&mut self) {
        let (mut viewers, mut playing, mut stalled, mut peers) = (0u32, 0u32, 0u32, 0u64);
        let mut stalled_affected = 0u32;
        let affected_fraction = self.affected_fraction();
        for v in &self.viewers {
            if v.alive {
                viewers += 1;
                if v.pl.playing {
                    playing += 1;
                }
                if v.pl.stalled_since.is_some() {
                    stalled += 1;
                    if v.isp_draw < affected_fraction {
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

/// A message for the trace log.
fn describe(data: &[u8]) -> String {
    format!(
        "{:?}",
        wire::decode(data).map(|m| match m {
            Message::Data { id, chunk, .. } => format!("Data id {id} chunk {chunk}"),
            m => format!("{m:?}"),
        })
    )
}

/// Corrupts a `Data` message's payload in place. Plain: inverts every byte (breaks the
/// MPEG-TS sync bytes). Stealth: flips one content byte, keeping the structure valid.
fn tamper(data: &mut [u8], stealth: bool) {
    if data.len() <= DATA_HEADER_LEN {
        return;
    }
    if !stealth {
        for b in data.iter_mut().skip(DATA_HEADER_LEN) {
            *b = !*b;
        }
        return;
    }
    let chunk = data
        .get(5..9)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes) as usize;
    let base = chunk * CHUNK_SIZE;
    let payload_len = data.len() - DATA_HEADER_LEN;
    if let Some(i) = (0..payload_len).find(|i| (base + i) % super::media::TS_PACKET > 3) {
        data[DATA_HEADER_LEN + i] ^= 0x5A;
    }
}
