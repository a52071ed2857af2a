//! In-process swarm harness: N real `Engine`s, each behind a player model, joined by a fake
//! tracker and a fake network, fetching from a fake CDN, all stepped by one discrete-event
//! loop in simulated milliseconds (the shape of quinn-proto's `Pair`, many times over).
//!
//! Invariants:
//! - Deterministic: everything random comes from the scenario seed (the harness's own
//!   splitmix stream and each engine's seed), events at the same instant run in the order
//!   they were scheduled, and engines are always visited in index order.
//! - The harness follows the engine contract: outputs are drained after every call, ids are
//!   echoed back unchanged, nothing is delivered for a connection or transfer the engine
//!   closed or cancelled.
//! - The harness counts bytes itself (CDN bytes served, P2P payload bytes delivered) so its
//!   figures do not depend on the engine's own accounting.
#![allow(dead_code)]

pub mod cdn;
pub mod media;
pub mod net;
pub mod player;
pub mod tracker;

use cdn::{Cdn, CdnFault, CdnLink, Owner, Piece};
use media::{mix, splitmix64, Media};
use net::{Behavior, Net, SendError};
use player::{Delivery, PlayState, Player};
use shoal::{
    BanReason, CloseReason, Config, ConnId, Container, Engine, Event, Input, Instant, Output,
    PeerId, RequestId, SegmentInfo, Seq, Stats, SwarmId,
};
use std::fmt::Write as _;
use tracker::Tracker;

/// One viewer of the scenario.
#[derive(Clone, Debug)]
pub struct ViewerCfg {
    pub join_ms: u64,
    /// Closes the tab at this time: no goodbye, its connections just die.
    pub leave_ms: Option<u64>,
    pub config: Config,
    pub behavior: Behavior,
    pub rendition: u32,
    /// CDN downlink, bytes/s, and time to first byte.
    pub cdn_bytes_per_sec: u64,
    pub cdn_latency_ms: u64,
    /// Uplink towards peers, bytes/s, and this viewer's share of one-way peer latency.
    pub uplink_bytes_per_sec: u64,
    pub net_latency_ms: u64,
}

impl ViewerCfg {
    pub fn new(join_ms: u64) -> Self {
        ViewerCfg {
            join_ms,
            leave_ms: None,
            config: Config::default(),
            behavior: Behavior::Honest,
            rendition: 0,
            cdn_bytes_per_sec: 2_500_000,
            cdn_latency_ms: 60,
            uplink_bytes_per_sec: 1_250_000,
            net_latency_ms: 20,
        }
    }
}

impl ViewerCfg {
    /// A viewer with links drawn from the seed: CDN 1.5-4 MB/s with 30-120 ms to first byte,
    /// uplink 0.3-2 MB/s (2.4-16 Mbit/s), 10-60 ms one-way to peers.
    pub fn varied(join_ms: u64, seed: u64, index: usize) -> Self {
        let mut r = mix(&[seed, index as u64, 0x7661_7279]);
        let mut pick = |lo: u64, hi: u64| lo + splitmix64(&mut r) % (hi - lo + 1);
        ViewerCfg {
            cdn_bytes_per_sec: pick(1_500_000, 4_000_000),
            cdn_latency_ms: pick(30, 120),
            uplink_bytes_per_sec: pick(300_000, 2_000_000),
            net_latency_ms: pick(10, 60),
            ..ViewerCfg::new(join_ms)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub stream: String,
    /// Live (sliding window) or VOD (fixed list of `vod_segments`).
    pub live: bool,
    pub segment_ms: u64,
    pub bitrates: Vec<u64>,
    pub live_window: u64,
    pub vod_segments: u64,
    /// Live start position, in segments from the end of the playlist.
    pub live_start_behind: u64,
    /// Buffer the player keeps ahead of the playhead before requesting the next segment.
    pub live_buffer_ms: u64,
    pub vod_buffer_ms: u64,
    pub playhead_interval_ms: u64,
    pub player_tick_ms: u64,
    /// Extra random delay per peer message, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    pub tracker_delay_ms: u64,
    /// Probability (per mille) that a connection both sides accepted fails to open.
    pub connect_fail_permille: u64,
    pub cdn_faults: Vec<CdnFault>,
    /// Hand every engine an integrity manifest when it joins (VOD: every segment; live:
    /// the harness knows future segments, a real publisher would update the file).
    pub manifest: bool,
    pub manifest_chunk_hashes: bool,
    pub viewers: Vec<ViewerCfg>,
}

impl Scenario {
    /// A live stream, 2 s segments at 1 Mbit/s, hls.js-like player settings.
    pub fn live(seed: u64, viewers: Vec<ViewerCfg>) -> Self {
        Scenario {
            seed,
            stream: "live1".into(),
            live: true,
            segment_ms: 2_000,
            bitrates: vec![1_000_000],
            live_window: 6,
            vod_segments: 0,
            live_start_behind: 3,
            live_buffer_ms: 6_000,
            vod_buffer_ms: 30_000,
            playhead_interval_ms: 500,
            player_tick_ms: 100,
            jitter_ms: 5,
            tracker_delay_ms: 50,
            connect_fail_permille: 0,
            cdn_faults: Vec::new(),
            manifest: false,
            manifest_chunk_hashes: true,
            viewers,
        }
    }

    pub fn vod(seed: u64, segments: u64, viewers: Vec<ViewerCfg>) -> Self {
        Scenario {
            stream: "vod1".into(),
            live: false,
            vod_segments: segments,
            ..Scenario::live(seed, viewers)
        }
    }
}

/// Harness events. Ties at one instant run in scheduling order.
#[derive(Debug)]
pub enum Ev {
    Join(usize),
    Leave(usize),
    PlayerTick(usize),
    PlayerPoke(usize),
    FetchPlaylist(usize),
    PlaylistLoaded {
        viewer: usize,
        segments: Vec<SegmentInfo>,
    },
    /// The tracker's answer to an announce: how many others are in the swarm.
    SwarmPeers {
        viewer: usize,
        swarm: SwarmId,
        peers: u32,
    },
    Candidate {
        viewer: usize,
        conn: ConnId,
        swarm: SwarmId,
        peer: PeerId,
        inbound: bool,
    },
    Connected {
        viewer: usize,
        conn: ConnId,
    },
    Closed {
        viewer: usize,
        conn: ConnId,
    },
    Message {
        viewer: usize,
        conn: ConnId,
        data: Vec<u8>,
        payload: usize,
        from: usize,
    },
    ConnectTimeout {
        link: usize,
    },
    HttpPiece {
        tid: u64,
    },
    HttpFail {
        viewer: usize,
        owner: Owner,
        status: u16,
    },
    DirectRetry {
        viewer: usize,
        seq: Seq,
    },
}

/// Events in simulated milliseconds, in (time, scheduling order).
pub type Queue = shoal::testkit::EventQueue<Ev>;

/// What happened at one viewer, beyond the player's own counters.
#[derive(Default)]
pub struct ViewerLog {
    pub announces: u32,
    pub connects: u32,
    pub sends: u64,
    pub sends_dropped: u64,
    /// Engine messages the wire decoder rejected: always an engine bug.
    pub undecodable: u64,
    pub p2p_payload_in: u64,
    pub p2p_payload_out: u64,
    pub p2p_wire_in: u64,
    /// Every `ClosePeer`: the remote viewer and the reason.
    pub closes: Vec<(usize, CloseReason)>,
    /// Viewers whose connection this engine closed with `CloseReason::Banned`.
    pub closed_banned: Vec<usize>,
    pub banned_events: Vec<(PeerId, BanReason)>,
    pub verification_failed: u32,
    /// `SpotCheckFailed` events: the segment and the peers it blamed.
    pub spot_check_failed: Vec<(u64, Vec<PeerId>)>,
    pub warnings: Vec<String>,
    /// Inputs the engine echoed wrongly (unknown HttpId / RequestId / ConnId).
    pub bad_ids: Vec<String>,
    pub http_failed_seen: u32,
    /// `CdnDegraded` (with its reason) and `CdnRecovered` (`None`), with the time.
    pub cdn_events: Vec<(u64, Option<String>)>,
}

pub struct Viewer {
    pub cfg: ViewerCfg,
    pub engine: Option<Engine>,
    pub player: Player,
    pub timeout: Option<u64>,
    pub log: ViewerLog,
    pub left: bool,
    spins: (u64, u32),
}

pub struct Sim {
    pub sc: Scenario,
    pub now: u64,
    pub q: Queue,
    pub cdn: Cdn,
    pub net: Net,
    pub tracker: Tracker,
    pub viewers: Vec<Viewer>,
    rng: u64,
    manifests: Vec<(u32, Vec<u8>)>,
    /// FNV-1a over everything the engines did, for determinism checks.
    fingerprint: u64,
}

impl Sim {
    pub fn new(sc: Scenario) -> Self {
        let media = Media::new(&sc.stream, sc.segment_ms, sc.bitrates.clone());
        let links = sc
            .viewers
            .iter()
            .map(|v| CdnLink {
                bytes_per_sec: v.cdn_bytes_per_sec,
                latency_ms: v.cdn_latency_ms,
            })
            .collect();
        let mut cdn = Cdn::new(
            media,
            sc.live.then_some(sc.live_window),
            sc.vod_segments,
            links,
        );
        cdn.faults = sc.cdn_faults.clone();
        let net = Net::new(
            sc.viewers.iter().map(|v| v.uplink_bytes_per_sec).collect(),
            sc.viewers.iter().map(|v| v.net_latency_ms).collect(),
            sc.viewers.iter().map(|v| v.behavior).collect(),
        );
        let tracker = Tracker::new(sc.viewers.len(), sc.tracker_delay_ms);
        let mut q = Queue::new(1);
        let viewers = sc
            .viewers
            .iter()
            .enumerate()
            .map(|(i, v)| {
                q.push(v.join_ms, Ev::Join(i));
                if let Some(t) = v.leave_ms {
                    q.push(t, Ev::Leave(i));
                }
                let swarm = SwarmId::derive(
                    &cdn.media.stream_key(),
                    &cdn.media.rendition_key(v.rendition),
                );
                let target = if sc.live {
                    sc.live_buffer_ms
                } else {
                    sc.vod_buffer_ms
                };
                Viewer {
                    cfg: v.clone(),
                    engine: None,
                    player: Player::new(
                        swarm,
                        v.rendition,
                        sc.live,
                        target,
                        sc.live_start_behind,
                        v.join_ms,
                    ),
                    timeout: None,
                    log: ViewerLog::default(),
                    left: false,
                    spins: (0, 0),
                }
            })
            .collect();
        let rng = mix(&[sc.seed, 0x4841_524e]);
        Sim {
            sc,
            now: 0,
            q,
            cdn,
            net,
            tracker,
            viewers,
            rng,
            manifests: Vec::new(),
            fingerprint: 0xcbf2_9ce4_8422_2325,
        }
    }

    /// The id viewer `i` announces to the tracker with: its engine's own (the shim does the
    /// same), which the engine checks against the remote's `Handshake`.
    pub fn peer_id(&self, i: usize) -> PeerId {
        self.viewers[i]
            .engine
            .as_ref()
            .map(|e| e.peer_id())
            .unwrap_or_default()
    }

    /// The manifest for viewer `i`'s rendition, built once per rendition.
    fn manifest_bytes(&mut self, i: usize) -> Vec<u8> {
        let r = self.viewers[i].player.rendition;
        if let Some((_, m)) = self.manifests.iter().find(|(k, _)| *k == r) {
            return m.clone();
        }
        let last = if self.sc.live {
            100_000 / self.sc.segment_ms.max(1) + self.sc.live_window
        } else {
            self.sc.vod_segments
        };
        let m = self
            .cdn
            .media
            .manifest(r, 0..last, self.sc.manifest_chunk_hashes);
        self.manifests.push((r, m.clone()));
        m
    }

    fn mark(&mut self, parts: &[u64]) {
        for p in parts {
            for b in p.to_le_bytes() {
                self.fingerprint ^= b as u64;
                self.fingerprint = self.fingerprint.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    /// Runs every event and engine timer up to and including `end_ms`.
    pub fn run_until(&mut self, end_ms: u64) {
        loop {
            let ev_at = self.q.peek_at();
            let timer = self
                .viewers
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.timeout.map(|t| (t.max(self.now), i)))
                .min();
            let next = match (ev_at, timer) {
                (None, None) => break,
                (Some(e), Some((t, _))) => e.min(t),
                (Some(e), None) => e,
                (None, Some((t, _))) => t,
            };
            if next > end_ms {
                break;
            }
            self.now = next;
            // Events first, then timers due at the same instant.
            if ev_at == Some(next) {
                if let Some((_, ev)) = self.q.pop() {
                    self.handle_event(ev);
                }
            } else if let Some((_, i)) = timer {
                self.fire_timer(i);
            }
        }
        self.now = end_ms;
    }

    fn fire_timer(&mut self, i: usize) {
        let now = self.now;
        let v = &mut self.viewers[i];
        if v.spins.0 == now {
            v.spins.1 += 1;
            assert!(
                v.spins.1 < 10_000,
                "viewer {i}: engine asks for handle_timeout again and again at t={now} ms without progress"
            );
        } else {
            v.spins = (now, 0);
        }
        if let Some(e) = v.engine.as_mut() {
            e.handle_timeout(Instant(now));
        }
        self.mark(&[now, i as u64, 0xFFFF]);
        self.drain(i);
    }

    /// Feeds one input to viewer `i`'s engine and acts on everything it outputs.
    pub fn input(&mut self, i: usize, input: Input) {
        let now = self.now;
        let Some(e) = self.viewers[i].engine.as_mut() else {
            return;
        };
        e.handle_input(Instant(now), input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        let mut outs = Vec::new();
        if let Some(e) = self.viewers[i].engine.as_mut() {
            while let Some(o) = e.poll_output() {
                outs.push(o);
            }
            self.viewers[i].timeout = e.poll_timeout().map(|t| t.as_millis());
        }
        for o in outs {
            self.on_output(i, o);
        }
    }

    fn jitter(&mut self) -> u64 {
        if self.sc.jitter_ms == 0 {
            0
        } else {
            splitmix64(&mut self.rng) % (self.sc.jitter_ms + 1)
        }
    }

    fn on_output(&mut self, i: usize, o: Output) {
        let now = self.now;
        match o {
            // Browser-like hosts send bytes: a shared-buffer frame is the same message.
            Output::SendData { conn, frame } => self.on_output(
                i,
                Output::SendToPeer {
                    conn,
                    data: frame.to_vec(),
                },
            ),
            Output::StartHttp { id, url, range } => {
                self.mark(&[now, i as u64, 1, id.0 as u64]);
                self.cdn
                    .start(&mut self.q, now, i, Owner::Engine(id), &url, range);
            }
            Output::CancelHttp { id } => {
                self.mark(&[now, i as u64, 2, id.0 as u64]);
                // Cancelling a finished transfer is legal (race with completion).
                self.cdn.cancel(i, id);
            }
            Output::Announce {
                swarm,
                event,
                numwant,
                ..
            } => {
                self.mark(&[now, i as u64, 3, numwant as u64]);
                self.viewers[i].log.announces += 1;
                let peers =
                    self.tracker
                        .announce(i, swarm, event, numwant, &self.net, &mut self.rng);
                let d = self.tracker.delay_ms;
                if event != shoal::AnnounceEvent::Stopped {
                    let count = self.tracker.others(swarm, i);
                    self.q.push(
                        now + d,
                        Ev::SwarmPeers {
                            viewer: i,
                            swarm,
                            peers: count,
                        },
                    );
                }
                let my_id = self.peer_id(i);
                for u in peers {
                    let their_id = self.peer_id(u);
                    let li = self.net.create(now, i, u);
                    // The offer reaches `u` first; its answer comes back to the announcer.
                    let (ci, cu) = (self.net.links[li].conn[0], self.net.links[li].conn[1]);
                    self.net.links[li].candidate_at = [now + 2 * d, now + d];
                    self.q.push(
                        now + d,
                        Ev::Candidate {
                            viewer: u,
                            conn: cu,
                            swarm,
                            peer: my_id,
                            inbound: true,
                        },
                    );
                    self.q.push(
                        now + 2 * d,
                        Ev::Candidate {
                            viewer: i,
                            conn: ci,
                            swarm,
                            peer: their_id,
                            inbound: false,
                        },
                    );
                    self.q.push(now + 10_000, Ev::ConnectTimeout { link: li });
                }
            }
            Output::ConnectPeer { conn } => {
                self.mark(&[now, i as u64, 4, conn.0 as u64]);
                self.viewers[i].log.connects += 1;
                let Some((li, side)) = self.net.side(conn) else {
                    self.viewers[i]
                        .log
                        .bad_ids
                        .push(format!("ConnectPeer unknown {conn:?}"));
                    return;
                };
                let lat = self.net.links[li].latency(&self.net);
                let l = &mut self.net.links[li];
                if l.viewer[side] != i {
                    self.viewers[i]
                        .log
                        .bad_ids
                        .push(format!("ConnectPeer on a foreign {conn:?}"));
                    return;
                }
                l.accepted[side] = true;
                if l.open && !l.connected && l.accepted == [true, true] {
                    l.connected = true;
                    let at = now + 3 * lat + 20;
                    let fail = self.sc.connect_fail_permille > 0
                        && splitmix64(&mut self.rng) % 1000 < self.sc.connect_fail_permille;
                    let l = &mut self.net.links[li];
                    if fail {
                        l.open = false;
                        l.told_closed = [true, true];
                    }
                    for s in 0..2 {
                        let (viewer, conn) = (l.viewer[s], l.conn[s]);
                        let ev = if fail {
                            Ev::Closed { viewer, conn }
                        } else {
                            Ev::Connected { viewer, conn }
                        };
                        self.q.push(at, ev);
                    }
                }
            }
            Output::ClosePeer { conn, reason } => {
                self.mark(&[now, i as u64, 5, conn.0 as u64]);
                let Some((li, side)) = self.net.side(conn) else {
                    self.viewers[i]
                        .log
                        .bad_ids
                        .push(format!("ClosePeer unknown {conn:?}"));
                    return;
                };
                let other = 1 - side;
                let lat = self.net.links[li].latency(&self.net);
                let l = &mut self.net.links[li];
                let remote = l.viewer[other];
                self.viewers[i].log.closes.push((remote, reason));
                if reason == CloseReason::Banned {
                    self.viewers[i].log.closed_banned.push(remote);
                }
                l.closed_self[side] = true;
                if l.open {
                    l.open = false;
                    if !l.told_closed[other] {
                        l.told_closed[other] = true;
                        // After everything in flight to it, and after its own candidate.
                        let at = (now + lat)
                            .max(l.last_arrival[other])
                            .max(l.candidate_at[other]);
                        self.q.push(
                            at,
                            Ev::Closed {
                                viewer: l.viewer[other],
                                conn: l.conn[other],
                            },
                        );
                    }
                }
            }
            Output::SendToPeer { conn, data } => {
                self.mark(&[now, i as u64, 6, conn.0 as u64, data.len() as u64]);
                self.viewers[i].log.sends += 1;
                let jitter = self.jitter();
                match self.net.send(now, jitter, conn, data) {
                    Ok(Some(out)) => {
                        self.viewers[i].log.p2p_payload_out += out.payload as u64;
                        self.q.push(
                            out.arrive_ms,
                            Ev::Message {
                                viewer: out.to,
                                conn: out.conn,
                                data: out.data,
                                payload: out.payload,
                                from: i,
                            },
                        );
                    }
                    Ok(None) => {}
                    Err(SendError::Undecodable(e)) => {
                        self.viewers[i].log.undecodable += 1;
                        self.viewers[i]
                            .log
                            .warnings
                            .push(format!("undecodable message: {e}"));
                    }
                    Err(SendError::NotOpen) => self.viewers[i].log.sends_dropped += 1,
                    Err(SendError::BeforeConnected) => {
                        self.viewers[i]
                            .log
                            .bad_ids
                            .push(format!("SendToPeer on {conn:?} before PeerConnected"));
                    }
                    Err(SendError::NoSuchConn) => {
                        self.viewers[i]
                            .log
                            .bad_ids
                            .push(format!("SendToPeer unknown {conn:?}"));
                    }
                }
            }
            Output::SegmentProgress { req, loaded, .. } => {
                self.mark(&[now, i as u64, 7, req.0 as u64, loaded]);
            }
            Output::DeliverSegment { req, data, timing } => {
                self.mark(&[
                    now,
                    i as u64,
                    8,
                    req.0 as u64,
                    data.len() as u64,
                    timing.p2p_bytes,
                ]);
                self.on_deliver(i, req, data.to_vec(), timing);
            }
            Output::FailSegment { req, reason } => {
                self.mark(&[now, i as u64, 9, req.0 as u64]);
                let p = &mut self.viewers[i].player;
                match p.pending {
                    Some(pd) if pd.req == Some(req) => {
                        p.failed += 1;
                        self.direct_fetch(i, pd.seq);
                    }
                    _ => self.viewers[i]
                        .log
                        .bad_ids
                        .push(format!("FailSegment for unknown {req:?}: {reason}")),
                }
            }
            Output::Event(ev) => {
                self.mark(&[now, i as u64, 10]);
                let log = &mut self.viewers[i].log;
                match ev {
                    Event::PeerBanned { peer, reason, .. } => {
                        log.banned_events.push((peer, reason))
                    }
                    Event::VerificationFailed { .. } => log.verification_failed += 1,
                    Event::SpotCheckFailed { seq, peers, .. } => {
                        log.spot_check_failed.push((seq, peers))
                    }
                    Event::Warning { detail } => log.warnings.push(detail),
                    Event::ManifestRejected { detail } => {
                        log.warnings.push(format!("manifest rejected: {detail}"))
                    }
                    Event::CdnDegraded { reason } => log.cdn_events.push((now, Some(reason))),
                    Event::CdnRecovered {} => log.cdn_events.push((now, None)),
                    _ => {}
                }
            }
        }
    }

    /// The viewer vanishes: engine and player stop, its peers see their connections close
    /// after what is already in flight, the tracker forgets it.
    fn leave(&mut self, i: usize) {
        let now = self.now;
        self.mark(&[now, i as u64, 101]);
        let v = &mut self.viewers[i];
        v.left = true;
        v.player.advance(now);
        v.player.state = PlayState::Ended;
        v.timeout = None;
        self.cdn.drop_viewer(i);
        self.tracker.remove(i);
        for li in 0..self.net.links.len() {
            let lat = self.net.links[li].latency(&self.net);
            let l = &mut self.net.links[li];
            let Some(side) = l.viewer.iter().position(|&x| x == i) else {
                continue;
            };
            let other = 1 - side;
            l.closed_self[side] = true;
            if l.open {
                l.open = false;
                if !l.told_closed[other] {
                    l.told_closed[other] = true;
                    let at = (now + lat)
                        .max(l.last_arrival[other])
                        .max(l.candidate_at[other]);
                    self.q.push(
                        at,
                        Ev::Closed {
                            viewer: l.viewer[other],
                            conn: l.conn[other],
                        },
                    );
                }
            }
        }
    }

    fn segment_info(&self, i: usize, seq: Seq) -> SegmentInfo {
        let p = &self.viewers[i].player;
        p.info(seq).cloned().unwrap_or_else(|| {
            let dur = self.sc.segment_ms;
            SegmentInfo {
                seq,
                start_ms: seq * dur,
                duration_ms: dur as u32,
                url: self.cdn.media.segment_url(p.rendition, seq),
                range: None,
            }
        })
    }

    fn on_deliver(
        &mut self,
        i: usize,
        req: RequestId,
        data: Vec<u8>,
        timing: shoal::DeliveryTiming,
    ) {
        let now = self.now;
        let pending = self.viewers[i].player.pending;
        let Some(pd) = pending.filter(|p| p.req == Some(req)) else {
            self.viewers[i]
                .log
                .bad_ids
                .push(format!("DeliverSegment for unknown {req:?}"));
            return;
        };
        let rendition = self.viewers[i].player.rendition;
        let good = self
            .cdn
            .media
            .segment(rendition, pd.seq)
            .is_some_and(|g| g[..] == data[..]);
        if !good {
            // The player would choke on it; count it and load the segment the plain way.
            self.viewers[i].player.corrupted += 1;
            self.direct_fetch(i, pd.seq);
            return;
        }
        let info = self.segment_info(i, pd.seq);
        let d = Delivery {
            seq: pd.seq,
            at_ms: now,
            http_bytes: timing.http_bytes,
            p2p_bytes: timing.p2p_bytes,
            from_cache: timing.from_cache,
            direct: false,
        };
        self.viewers[i]
            .player
            .append(now, pd.seq, info.start_ms, info.duration_ms as u64, d);
        self.q.push(now, Ev::PlayerPoke(i));
    }

    fn direct_fetch(&mut self, i: usize, seq: Seq) {
        let now = self.now;
        if self.viewers[i].left {
            return;
        }
        let url = self.segment_info(i, seq).url;
        self.viewers[i].player.pending = Some(player::Pending {
            seq,
            req: None,
            since: now,
        });
        self.cdn
            .start(&mut self.q, now, i, Owner::Player { seq }, &url, None);
    }

    fn handle_event(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Join(i) => {
                let seed = mix(&[self.sc.seed, i as u64, 0x454e47]);
                let mut config = self.viewers[i].cfg.config.clone();
                // This tracker introduces peers by `numwant` and models no WebRTC offers, so
                // the start hold (quiet announces, queued offers) has nothing to act on.
                config.start_hold_ms = 0;
                let engine = Engine::new(config, Instant(now), seed);
                self.viewers[i].engine = Some(engine);
                self.mark(&[now, i as u64, 100]);
                self.drain(i);
                if self.sc.manifest {
                    let data = self.manifest_bytes(i);
                    self.input(i, Input::IntegrityManifest { data });
                }
                self.q.push(now, Ev::FetchPlaylist(i));
                self.q.push(now, Ev::PlayerTick(i));
            }
            Ev::FetchPlaylist(i) if self.viewers[i].left => {}
            Ev::FetchPlaylist(i) => {
                let segments = self.cdn.playlist(self.viewers[i].player.rendition, now);
                let lat = self.viewers[i].cfg.cdn_latency_ms;
                self.q.push(
                    now + lat,
                    Ev::PlaylistLoaded {
                        viewer: i,
                        segments,
                    },
                );
                if self.sc.live {
                    // hls.js reloads a live playlist about every target duration.
                    self.q.push(now + self.sc.segment_ms, Ev::FetchPlaylist(i));
                }
            }
            Ev::PlaylistLoaded { viewer, segments } => {
                let p = &mut self.viewers[viewer].player;
                p.on_playlist(segments.clone());
                let input = Input::Playlist {
                    swarm: p.swarm,
                    live: self.sc.live,
                    container: Container::Ts,
                    bitrate: self.sc.bitrates[p.rendition as usize] as u32,
                    segments,
                };
                self.input(viewer, input);
                self.player_step(viewer);
            }
            Ev::Leave(i) => self.leave(i),
            Ev::PlayerTick(i) if self.viewers[i].left => {}
            Ev::PlayerTick(i) => {
                self.player_step(i);
                self.q.push(now + self.sc.player_tick_ms, Ev::PlayerTick(i));
            }
            Ev::PlayerPoke(i) => self.player_step(i),
            Ev::SwarmPeers {
                viewer,
                swarm,
                peers,
            } => self.input(viewer, Input::SwarmPeers { swarm, peers }),
            // The tracker relayed it: delivered even if the link already died (a
            // `PeerClosed` follows then).
            Ev::Candidate {
                viewer,
                conn,
                swarm,
                peer,
                inbound,
            } => self.input(
                viewer,
                Input::PeerCandidate {
                    conn,
                    swarm,
                    peer,
                    inbound,
                },
            ),
            Ev::Connected { viewer, conn } => {
                let open = self
                    .net
                    .side(conn)
                    .is_some_and(|(li, _)| self.net.links[li].open);
                if open {
                    self.input(viewer, Input::PeerConnected { conn });
                }
            }
            Ev::Closed { viewer, conn } => self.input(viewer, Input::PeerClosed { conn }),
            Ev::Message {
                viewer,
                conn,
                data,
                payload,
                from,
            } => {
                // Drop what arrives after the receiver closed its end.
                let Some((li, side)) = self.net.side(conn) else {
                    return;
                };
                if self.net.links[li].closed_self[side] {
                    return;
                }
                let log = &mut self.viewers[viewer].log;
                log.p2p_payload_in += payload as u64;
                log.p2p_wire_in += data.len() as u64;
                let _ = from;
                self.input(viewer, Input::PeerMessage { conn, data });
            }
            Ev::ConnectTimeout { link } => {
                let l = &mut self.net.links[link];
                if l.open && !l.connected {
                    l.open = false;
                    for s in 0..2 {
                        if !l.told_closed[s] && !l.closed_self[s] {
                            l.told_closed[s] = true;
                            self.q.push(
                                now,
                                Ev::Closed {
                                    viewer: l.viewer[s],
                                    conn: l.conn[s],
                                },
                            );
                        }
                    }
                }
            }
            Ev::HttpPiece { tid } => {
                if let Some(piece) = self.cdn.piece(&mut self.q, now, tid) {
                    self.on_piece(piece);
                }
            }
            Ev::HttpFail {
                viewer,
                owner,
                status,
            } => match owner {
                Owner::Engine(id) => {
                    self.viewers[viewer].log.http_failed_seen += 1;
                    self.input(
                        viewer,
                        Input::HttpFailed {
                            id,
                            status,
                            reason: format!("fake CDN: {status}"),
                        },
                    );
                }
                Owner::Player { seq } => self.q.push(now + 500, Ev::DirectRetry { viewer, seq }),
            },
            Ev::DirectRetry { viewer, seq } => self.direct_fetch(viewer, seq),
        }
    }

    fn on_piece(&mut self, p: Piece) {
        let now = self.now;
        match p.owner {
            Owner::Engine(id) => {
                self.input(
                    p.viewer,
                    Input::HttpProgress {
                        id,
                        data: p.data,
                        total: p.total,
                    },
                );
                if p.done {
                    self.input(p.viewer, Input::HttpDone { id });
                }
            }
            Owner::Player { seq } => {
                if !p.done {
                    return;
                }
                let i = p.viewer;
                let info = self.segment_info(i, seq);
                let d = Delivery {
                    seq,
                    at_ms: now,
                    http_bytes: 0,
                    p2p_bytes: 0,
                    from_cache: false,
                    direct: true,
                };
                if self.viewers[i]
                    .player
                    .pending
                    .is_some_and(|pd| pd.seq == seq && pd.req.is_none())
                {
                    let len = self
                        .cdn
                        .media
                        .segment(self.viewers[i].player.rendition, seq)
                        .map_or(0, |s| s.len());
                    let d = Delivery {
                        http_bytes: len as u64,
                        ..d
                    };
                    self.viewers[i].player.append(
                        now,
                        seq,
                        info.start_ms,
                        info.duration_ms as u64,
                        d,
                    );
                    self.q.push(now, Ev::PlayerPoke(i));
                }
            }
        }
    }

    /// Advances viewer `i`'s playback, reports the playhead, requests the next segment.
    fn player_step(&mut self, i: usize) {
        let now = self.now;
        let interval = self.sc.playhead_interval_ms;
        let p = &mut self.viewers[i].player;
        p.advance(now);
        if p.playlist.is_empty() {
            return;
        }
        let mut inputs = Vec::new();
        if p.last_playhead.is_none_or(|t| now >= t + interval) && p.state != PlayState::Ended {
            p.last_playhead = Some(now);
            let position_ms = match p.state {
                PlayState::Waiting => p.next_seq.and_then(|s| p.info(s)).map_or(0, |s| s.start_ms),
                _ => p.pos,
            };
            inputs.push(Input::Playhead {
                swarm: p.swarm,
                position_ms,
                buffered_ahead_ms: p.buffered_ahead(),
                rate: 1.0,
            });
        }
        if let Some(info) = p.want() {
            let req = p.new_request(info.seq, now);
            inputs.push(Input::SegmentRequested {
                req,
                swarm: p.swarm,
                seq: info.seq,
                url: info.url,
                range: info.range,
                timeout_ms: None,
            });
        }
        for input in inputs {
            self.input(i, input);
        }
    }

    pub fn summary(&self) -> Summary {
        let viewers: Vec<ViewerSummary> = self
            .viewers
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p = &v.player;
                ViewerSummary {
                    index: i,
                    joined_ms: v.cfg.join_ms,
                    startup_ms: p.started_at.map(|s| s - p.joined_at),
                    stalls: p.stalls,
                    stalled_ms: p.stalled_ms
                        + match p.state {
                            PlayState::Stalled { since } => self.now.saturating_sub(since),
                            _ => 0,
                        },
                    delivered: p.deliveries.len() as u32,
                    corrupted: p.corrupted,
                    failed: p.failed,
                    skipped: p.skipped,
                    cdn_bytes: self.cdn.served_engine[i] + self.cdn.served_player[i],
                    p2p_bytes: v.log.p2p_payload_in,
                    p2p_sent: v.log.p2p_payload_out,
                    banned: v.log.closed_banned.clone(),
                    stats: v.engine.as_ref().map(|e| e.stats()).unwrap_or_default(),
                }
            })
            .collect();
        let cdn_bytes = viewers.iter().map(|v| v.cdn_bytes).sum();
        let p2p_bytes = viewers.iter().map(|v| v.p2p_bytes).sum();
        Summary {
            at_ms: self.now,
            viewers,
            cdn_bytes,
            p2p_bytes,
            fingerprint: self.fingerprint,
        }
    }

    /// Everything harness-side that shows an engine broke the host contract.
    pub fn contract_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in self.viewers.iter().enumerate() {
            for b in &v.log.bad_ids {
                out.push(format!("viewer {i}: {b}"));
            }
            if v.log.undecodable > 0 {
                out.push(format!(
                    "viewer {i}: {} undecodable messages sent",
                    v.log.undecodable
                ));
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewerSummary {
    pub index: usize,
    pub joined_ms: u64,
    pub startup_ms: Option<u64>,
    pub stalls: u32,
    pub stalled_ms: u64,
    pub delivered: u32,
    pub corrupted: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Counted by the harness: bytes the CDN sent this viewer (engine + player fallback).
    pub cdn_bytes: u64,
    /// Counted by the harness: `Data` payload bytes delivered to this viewer's engine.
    pub p2p_bytes: u64,
    pub p2p_sent: u64,
    /// Viewers this one closed with `CloseReason::Banned`.
    pub banned: Vec<usize>,
    pub stats: Stats,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub at_ms: u64,
    pub viewers: Vec<ViewerSummary>,
    pub cdn_bytes: u64,
    pub p2p_bytes: u64,
    pub fingerprint: u64,
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

impl Summary {
    pub fn offload(&self) -> f64 {
        offload(self.p2p_bytes, self.cdn_bytes)
    }
    pub fn stalls(&self) -> u32 {
        self.viewers.iter().map(|v| v.stalls).sum()
    }
    pub fn stalled_ms(&self) -> u64 {
        self.viewers.iter().map(|v| v.stalled_ms).sum()
    }
    pub fn corrupted(&self) -> u32 {
        self.viewers.iter().map(|v| v.corrupted).sum()
    }

    pub fn table(&self, title: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "== {title} (t = {:.1} s)", self.at_ms as f64 / 1000.0);
        let _ = writeln!(
            s,
            "{:>3} {:>6} {:>8} {:>6} {:>9} {:>5} {:>4} {:>4} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>5} {:>6}",
            "v", "join", "startup", "stalls", "stall ms", "segs", "bad", "fail", "cdn MB", "p2p MB", "up MB",
            "e.http", "e.p2p", "e.up", "peers", "banned"
        );
        for v in &self.viewers {
            let _ = writeln!(
                s,
                "{:>3} {:>6} {:>8} {:>6} {:>9} {:>5} {:>4} {:>4} {:>8.2} {:>8.2} {:>8.2} | {:>8.2} {:>8.2} {:>8.2} {:>5} {:>6}",
                v.index,
                v.joined_ms,
                v.startup_ms.map_or("-".to_string(), |m| m.to_string()),
                v.stalls,
                v.stalled_ms,
                v.delivered,
                v.corrupted,
                v.failed,
                mb(v.cdn_bytes),
                mb(v.p2p_bytes),
                mb(v.p2p_sent),
                mb(v.stats.http_down),
                mb(v.stats.p2p_down),
                mb(v.stats.p2p_up),
                v.stats.peers,
                v.stats.peers_banned,
            );
        }
        let e_http: u64 = self.viewers.iter().map(|v| v.stats.http_down).sum();
        let e_p2p: u64 = self.viewers.iter().map(|v| v.stats.p2p_down).sum();
        let _ = writeln!(
            s,
            "offload {:.1}% cdn {:.2} MB p2p {:.2} MB stalls {} stalled {} ms corrupted {} (engine stats: offload {:.1}%, http {:.2} MB, p2p {:.2} MB)",
            100.0 * self.offload(),
            mb(self.cdn_bytes),
            mb(self.p2p_bytes),
            self.stalls(),
            self.stalled_ms(),
            self.corrupted(),
            100.0 * offload(e_p2p, e_http),
            mb(e_http),
            mb(e_p2p),
        );
        s
    }
}

pub fn offload(p2p: u64, cdn: u64) -> f64 {
    if p2p + cdn == 0 {
        0.0
    } else {
        p2p as f64 / (p2p + cdn) as f64
    }
}
