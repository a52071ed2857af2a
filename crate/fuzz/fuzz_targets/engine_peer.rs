//! One engine, one connected peer whose every move comes from the fuzz input: raw bytes,
//! wire messages built from fuzz bytes (answers to the engine's own requests included),
//! time jumps (backwards too) and HTTP events, honest or not. Then the host answers HTTP
//! honestly and the peer goes quiet.
//!
//! Checked: no panic; `poll_output` terminates; every message the engine sends decodes; no
//! message to a connection it closed; a malformed message bans at once; `strikes_to_ban`
//! definite violations (second handshake, unsolicited pong, data for an id never issued)
//! close the peer; the cache stays within budget; delivered bytes are the CDN's (the
//! engine has the integrity manifest); every request is answered at most once, and exactly
//! once after the settle phase; `handle_timeout` does not spin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal::wire::{self, Message};
use shoal::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const SW: SwarmId = SwarmId([7; 20]);
const PEER: PeerId = PeerId([0xAB; 20]);
const CONN: ConnId = ConnId(1);
const SEGS: u64 = 16;
const SEG_MS: u64 = 2_000;
const STRIKES: u32 = 3;
/// `handle_timeout` calls that produce no output, per simulated second, before we call it a
/// busy loop (as crate/tests/engine_robustness.rs). The idle wakes left are timers that found
/// nothing to do and moved on (a stalled transfer nobody else holds: one per
/// `peer_stall_timeout_ms`); the most any input of a 2,756-input corpus (grown over about
/// 360,000 runs) made was 24 in 6 s. Engine unit test:
/// `a_stalled_transfer_nobody_can_take_over_wakes_once_per_stall_timeout`.
const MAX_IDLE_WAKES_PER_SEC: u64 = 100;

fn url(seq: u64) -> String {
    format!("https://cdn.test/v/s{seq}.ts")
}

fn segment(seq: u64) -> Vec<u8> {
    testkit::ts_segment(seq, 90 + (seq * 53 % 300) as usize)
}

/// What the CDN publishes and the integrity manifest for it: the same for every input, so
/// made once (generating and hashing it was most of an input's time).
struct Published {
    cdn: BTreeMap<String, Vec<u8>>,
    manifest: Vec<u8>,
}

fn published() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| {
        let cdn: BTreeMap<String, Vec<u8>> = (0..SEGS).map(|i| (url(i), segment(i))).collect();
        let keys: Vec<(String, &[u8])> = cdn
            .iter()
            .map(|(u, b)| (u.rsplit('/').next().unwrap_or("").to_string(), &b[..]))
            .collect();
        let manifest = testkit::manifest(keys.iter().map(|(k, b)| (k.as_str(), *b)), true);
        Published { cdn, manifest }
    })
}

/// Reads the fuzz input as little fields; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A sequence number: mostly one the playlist knows, sometimes anything.
    fn seq(&mut self) -> u64 {
        match self.u8() {
            0..=199 => u64::from(self.u8()) % (SEGS + 4),
            200..=219 => u64::MAX - u64::from(self.u16()),
            _ => self.u64(),
        }
    }
}

#[derive(Default)]
struct Model {
    closed: bool,
    banned: bool,
    violations: u32,
    last_ping: Option<u32>,
    max_issued: u32,
    asked: Vec<(u32, u64, u32, u32)>,
    /// req -> (seq, answered, aborted)
    reqs: BTreeMap<u32, (u64, bool, bool)>,
    http: BTreeMap<u32, (String, Option<ByteRange>, usize)>,
    http_done: BTreeSet<u32>,
}

struct World {
    e: Engine,
    cfg: Config,
    now: u64,
    cdn: &'static BTreeMap<String, Vec<u8>>,
    m: Model,
    next_req: u32,
}

impl World {
    fn new(cfg: Config, seed: u64) -> World {
        let published = published();
        let mut w = World {
            e: Engine::new(cfg.clone(), Instant(10_000), seed),
            cfg,
            now: 10_000,
            cdn: &published.cdn,
            m: Model::default(),
            next_req: 1,
        };
        w.input(Input::IntegrityManifest {
            data: published.manifest.clone(),
        });
        w.input(Input::Playlist {
            swarm: SW,
            live: true,
            container: Container::Ts,
            bitrate: 0,
            segments: (0..SEGS)
                .map(|i| SegmentInfo {
                    seq: i,
                    start_ms: i * SEG_MS,
                    duration_ms: SEG_MS as u32,
                    url: url(i),
                    range: None,
                })
                .collect(),
        });
        w.input(Input::Playhead {
            swarm: SW,
            position_ms: 0,
            buffered_ahead_ms: 0,
            rate: 1.0,
        });
        w.input(Input::PeerCandidate {
            conn: CONN,
            swarm: SW,
            peer: PEER,
            inbound: true,
        });
        w.input(Input::PeerConnected { conn: CONN });
        w.peer(wire::encode(&Message::Handshake {
            version: 1,
            swarm: SW,
            peer: PEER,
            capabilities: 3,
        }));
        assert!(!w.m.closed, "valid handshake refused");
        w
    }

    fn input(&mut self, input: Input) {
        self.e.handle_input(Instant(self.now), input);
        self.drain();
    }

    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(out) = self.e.poll_output() {
            n += 1;
            assert!(n < 200_000, "poll_output does not terminate");
            self.output(out);
        }
        assert!(
            self.e.stats().cache_bytes <= self.cfg.cache_bytes,
            "cache over budget"
        );
        n
    }

    fn output(&mut self, out: Output) {
        match out {
            Output::SendToPeer { conn, data } => {
                assert_eq!(conn, CONN, "send to a connection never opened");
                assert!(!self.m.closed, "send on a closed connection");
                let msg = wire::decode(&data).expect("engine sent a malformed message");
                match msg {
                    Message::Request {
                        id,
                        seq,
                        first_chunk,
                        count,
                    } => {
                        self.m.max_issued = self.m.max_issued.max(id);
                        self.m.asked.push((id, seq, first_chunk, count));
                        if self.m.asked.len() > 64 {
                            self.m.asked.remove(0);
                        }
                    }
                    Message::Cancel { id } => self.m.asked.retain(|a| a.0 != id),
                    Message::Ping { nonce } => self.m.last_ping = Some(nonce),
                    _ => {}
                }
            }
            Output::StartHttp { id, url, range } => {
                assert!(!self.m.http.contains_key(&id.0) && !self.m.http_done.contains(&id.0));
                self.m.http.insert(id.0, (url, range, 0));
            }
            Output::CancelHttp { id } => {
                assert!(
                    self.m.http.remove(&id.0).is_some(),
                    "cancel of a transfer not running"
                );
                self.m.http_done.insert(id.0);
            }
            Output::DeliverSegment { req, data, timing } => {
                let r = self
                    .m
                    .reqs
                    .get_mut(&req.0)
                    .expect("delivery for an unknown request");
                assert!(!r.1 && !r.2, "delivery for an answered or aborted request");
                r.1 = true;
                match self.cdn.get(&url(r.0)) {
                    Some(body) => assert!(
                        body.as_slice() == data.as_slice(),
                        "delivered bytes are not the CDN's"
                    ),
                    None => assert!(timing.p2p_bytes > 0, "HTTP delivery of a 404 segment"),
                }
            }
            Output::FailSegment { req, .. } => {
                let r = self
                    .m
                    .reqs
                    .get_mut(&req.0)
                    .expect("failure for an unknown request");
                assert!(!r.1 && !r.2, "failure for an answered or aborted request");
                r.1 = true;
            }
            Output::ClosePeer { conn, reason } => {
                if conn == CONN {
                    self.m.closed = true;
                    self.m.banned |= reason == CloseReason::Banned;
                }
            }
            _ => {}
        }
    }

    fn peer(&mut self, data: Vec<u8>) {
        let open = !self.m.closed;
        let decoded = wire::decode(&data);
        if open {
            let ready = self.e.stats().peers > 0;
            match &decoded {
                Ok(Message::Handshake { .. }) if ready => self.m.violations += 1,
                Ok(Message::Pong { nonce }) => {
                    if self.m.last_ping == Some(*nonce) {
                        self.m.last_ping = None;
                    } else {
                        self.m.violations += 1;
                    }
                }
                Ok(Message::Data { id, .. }) if *id == 0 || *id > self.m.max_issued => {
                    self.m.violations += 1
                }
                Ok(Message::Absent { id } | Message::Busy { id, .. }) => {
                    self.m.asked.retain(|a| a.0 != *id)
                }
                _ => {}
            }
        }
        self.input(Input::PeerMessage { conn: CONN, data });
        if open && decoded.is_err() {
            assert!(self.m.banned, "malformed message not banned");
        }
        if !self.m.closed {
            assert!(
                self.m.violations < STRIKES,
                "peer survives {} violations",
                self.m.violations
            );
        }
    }

    fn advance(&mut self, ms: u64) {
        let target = self.now.saturating_add(ms);
        let mut idle = 0u64;
        while let Some(t) = self.e.poll_timeout().map(|t| t.0).filter(|&t| t <= target) {
            self.now = if t <= self.now { self.now + 1 } else { t };
            if self.now > target {
                break;
            }
            self.e.handle_timeout(Instant(self.now));
            if self.drain() == 0 {
                idle += 1;
            }
            assert!(
                idle <= MAX_IDLE_WAKES_PER_SEC * (ms / 1000 + 1),
                "handle_timeout spins without output"
            );
        }
        self.now = self.now.max(target);
    }

    fn serve(&mut self, id: u32, bytes: usize, no_total: bool, junk: bool) {
        let Some((u, range, sent)) = self.m.http.get(&id).cloned() else {
            return;
        };
        let Some(body) = self.cdn.get(&u) else {
            self.m.http.remove(&id);
            self.m.http_done.insert(id);
            self.input(Input::HttpFailed {
                id: HttpId(id),
                status: 404,
                reason: String::new(),
            });
            return;
        };
        let body = match range {
            Some(r) => {
                let end = (r.end.min(body.len() as u64)) as usize;
                &body[(r.start as usize).min(end)..end]
            }
            None => &body[..],
        };
        let to = sent.saturating_add(bytes.max(1)).min(body.len());
        let total = (sent == 0 && !no_total).then_some(body.len() as u64);
        let mut data = body[sent.min(to)..to].to_vec();
        let last = to == body.len();
        if last && junk && !no_total {
            data.extend_from_slice(&[0x47; 100]);
        }
        if let Some(x) = self.m.http.get_mut(&id) {
            x.2 = to;
        }
        self.input(Input::HttpProgress {
            id: HttpId(id),
            data,
            total,
        });
        if last && self.m.http.remove(&id).is_some() {
            self.m.http_done.insert(id);
            self.input(Input::HttpDone { id: HttpId(id) });
        }
    }

    fn request(&mut self, seq: u64) {
        let req = self.next_req;
        self.next_req += 1;
        self.m.reqs.insert(req, (seq, false, false));
        self.input(Input::SegmentRequested {
            req: RequestId(req),
            swarm: SW,
            seq,
            url: url(seq),
            range: None,
            timeout_ms: None,
        });
    }

    /// A wire message built from fuzz bytes, often aimed at the engine's own requests.
    fn message(&self, b: &mut Bytes) -> Option<Message> {
        let asked = |b: &mut Bytes| {
            let n = self.m.asked.len();
            (n > 0).then(|| self.m.asked[usize::from(b.u8()) % n])
        };
        Some(match b.u8() % 13 {
            0 => Message::Handshake {
                version: b.u16() % 3,
                swarm: if b.u8() & 1 == 0 {
                    SW
                } else {
                    SwarmId([8; 20])
                },
                peer: PEER,
                capabilities: b.u32(),
            },
            1 => {
                let len = usize::from(b.u16()) % wire::MAX_BITFIELD_BYTES + 1;
                let base = b.seq().min(u64::MAX - (len as u64 * 8 - 1));
                Message::Bitfield {
                    base,
                    bits: vec![b.u8(); len],
                }
            }
            2 | 3 => {
                let seq = b.seq();
                let real = self.cdn.get(&url(seq)).map_or(1000, |s| s.len() as u32);
                let size = if b.u8() < 200 {
                    real
                } else {
                    b.u32() % wire::MAX_SEGMENT_SIZE + 1
                };
                if b.u8() & 1 == 0 {
                    Message::Have { seq, size }
                } else {
                    Message::Downloading { seq, size }
                }
            }
            4 => Message::Lost { seq: b.seq() },
            5 => Message::Request {
                id: b.u32() % 64,
                seq: b.seq(),
                first_chunk: u32::from(b.u8() % 8),
                count: u32::from(b.u8() % 8) + 1,
            },
            6 => Message::Cancel { id: b.u32() % 64 },
            7 | 8 => {
                // Data for one of the engine's requests: right by default, else bent.
                let (id, seq, first, count) = asked(b)?;
                let unpublished;
                let body = match self.cdn.get(&url(seq)) {
                    Some(b) => &b[..],
                    None => {
                        unpublished = segment(seq);
                        &unpublished[..]
                    }
                };
                let mode = b.u8();
                let total = if mode & 0x07 == 1 {
                    (body.len() as u32 ^ u32::from(b.u16())).clamp(1, wire::MAX_SEGMENT_SIZE)
                } else {
                    body.len() as u32
                };
                let n = wire::chunk_count(total);
                let span = count.min(n.saturating_sub(first)).max(1);
                let chunk = match mode & 0x18 {
                    0x08 => first.saturating_add(count),
                    0x10 => first.saturating_sub(1),
                    _ => first + u32::from(b.u8()) % span,
                };
                let len = wire::chunk_len(total, chunk)?;
                let start = wire::chunk_offset(chunk) as usize;
                let mut payload: Vec<u8> = (0..len)
                    .map(|i| body.get(start + i).copied().unwrap_or(0x47))
                    .collect();
                if mode & 0x20 != 0 {
                    let i = usize::from(b.u16()) % payload.len();
                    payload[i] ^= b.u8() | 1;
                }
                Message::Data {
                    id,
                    chunk,
                    total_size: total,
                    payload,
                }
            }
            9 => {
                let total = b.u32() % wire::MAX_SEGMENT_SIZE + 1;
                let chunk = b.u32() % wire::chunk_count(total);
                let len = wire::chunk_len(total, chunk)?;
                Message::Data {
                    id: b.u32(),
                    chunk,
                    total_size: total,
                    payload: vec![0x47; len],
                }
            }
            10 => {
                let (id, ..) = asked(b)?;
                if b.u8() & 1 == 0 {
                    Message::Absent { id }
                } else {
                    Message::Busy {
                        id,
                        retry_after_ms: b.u16(),
                    }
                }
            }
            11 => Message::Ping { nonce: b.u32() },
            _ => {
                let nonce = b.u32();
                Message::Pong {
                    nonce: match self.m.last_ping {
                        Some(n) if nonce & 1 == 0 => n,
                        _ => nonce,
                    },
                }
            }
        })
    }

    fn step(&mut self, b: &mut Bytes) {
        match b.u8() % 16 {
            0 => {
                let n = usize::from(b.u8());
                let data = b.take(n);
                self.peer(data);
            }
            1..=5 => {
                let count = b.u8() % 4 + 1;
                for _ in 0..count {
                    if let Some(m) = self.message(b) {
                        self.peer(wire::encode(&m));
                    }
                }
            }
            6 => {
                // A valid message with one byte changed.
                if let Some(m) = self.message(b) {
                    let mut data = wire::encode(&m);
                    let i = usize::from(b.u16()) % data.len();
                    data[i] ^= b.u8() | 1;
                    self.peer(data);
                }
            }
            7 => self.advance(u64::from(b.u16()) % 6_000),
            8 => self.now = self.now.saturating_sub(u64::from(b.u16())),
            9 => {
                let ids: Vec<u32> = self.m.http.keys().copied().collect();
                if !ids.is_empty() {
                    let id = ids[usize::from(b.u8()) % ids.len()];
                    let flags = b.u8();
                    let bytes = usize::from(b.u16()) * 2;
                    match flags % 8 {
                        0 => {
                            self.m.http.remove(&id);
                            self.m.http_done.insert(id);
                            self.input(Input::HttpFailed {
                                id: HttpId(id),
                                status: 503,
                                reason: String::new(),
                            });
                        }
                        f => self.serve(id, bytes, f == 1, f == 2),
                    }
                }
            }
            10 => {
                // Transfers that are not running: never issued, or finished.
                let id = match (b.u8() & 1, self.m.http_done.iter().next()) {
                    (0, Some(&done)) => done,
                    _ => 50_000 + b.u32() % 1000,
                };
                if !self.m.http.contains_key(&id) {
                    let input = match b.u8() % 3 {
                        0 => Input::HttpProgress {
                            id: HttpId(id),
                            data: vec![0x47; usize::from(b.u16())],
                            total: Some(u64::from(b.u16())),
                        },
                        1 => Input::HttpDone { id: HttpId(id) },
                        _ => Input::HttpFailed {
                            id: HttpId(id),
                            status: 0,
                            reason: String::new(),
                        },
                    };
                    self.input(input);
                }
            }
            11 => {
                let seq = u64::from(b.u8()) % (SEGS + 3);
                self.request(seq);
            }
            12 => {
                let reqs: Vec<u32> = self.m.reqs.keys().copied().collect();
                if !reqs.is_empty() {
                    let req = reqs[usize::from(b.u8()) % reqs.len()];
                    if let Some(r) = self.m.reqs.get_mut(&req) {
                        r.2 |= !r.1;
                    }
                    self.input(Input::SegmentAborted {
                        req: RequestId(req),
                    });
                }
            }
            13 => {
                let rate = [1.0, 0.0, 2.0, f32::NAN][usize::from(b.u8() % 4)];
                let position_ms = u64::from(b.u16()) * 2;
                self.input(Input::Playhead {
                    swarm: SW,
                    position_ms,
                    buffered_ahead_ms: 0,
                    rate,
                });
            }
            14 => {
                let conn = ConnId(100 + u32::from(b.u8()));
                let input = match b.u8() % 3 {
                    0 => Input::PeerClosed { conn },
                    1 => Input::PeerConnected { conn },
                    _ => Input::SegmentAborted {
                        req: RequestId(90_000 + conn.0),
                    },
                };
                self.input(input);
            }
            _ => {
                self.m.closed = true;
                self.input(Input::PeerClosed { conn: CONN });
            }
        }
    }

    fn settle(&mut self) {
        for _ in 0..120 {
            for _ in 0..100 {
                let Some(&id) = self.m.http.keys().next() else {
                    break;
                };
                self.serve(id, usize::MAX, false, false);
            }
            if self.m.reqs.values().all(|r| r.1 || r.2) {
                return;
            }
            self.advance(1_000);
        }
        panic!("requests never answered with honest HTTP");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let cfg = Config {
        cache_bytes: [60_000, 200_000, 2_000_000][usize::from(b.u8() % 3)],
        prefetch_window_ms: if b.u8() & 1 == 0 { 0 } else { 30_000 },
        upload_bytes_per_sec: [12_500_000, 20_000, 0][usize::from(b.u8() % 3)],
        strikes_to_ban: STRIKES,
        ..Config::default()
    };
    let seed = u64::from(b.u16());
    let mut w = World::new(cfg, seed);
    w.request(0);
    w.request(1);
    let mut steps = 0;
    while !b.is_empty() && steps < 400 {
        w.step(&mut b);
        steps += 1;
    }
    w.settle();
});
