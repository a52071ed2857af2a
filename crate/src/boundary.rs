//! The compact binary encoding of what crosses the wasm boundary (crate/src/wasm.rs ↔
//! js-shim/src/boundary.ts): `Input`s and the engine config go in as bytes, `Output`s and
//! `Stats` come out as bytes. It replaces generic serde conversion of JS objects, whose
//! monomorphized code was the largest part of the shipped wasm (BENCHMARKS.md "Shipped size").
//!
//! Layout (all little-endian; the TypeScript side in js-shim/src/boundary.ts mirrors it):
//! - every number is an `f64` (8 bytes): JS numbers both ways. Inputs are checked here: an
//!   integer field must hold a whole number in its type's range (u64: at most 2^53), or the
//!   input is refused;
//! - `bool`: one byte, 0 or 1; `Option<T>`: one byte 0 (none) or 1 followed by `T`;
//! - strings, swarm and peer ids (40 hex digits): `u32` byte length + UTF-8;
//! - byte strings: in inputs `u32` length + the bytes; in outputs nothing in the stream: the
//!   payloads travel as separate `Uint8Array`s in order, so a segment is copied out of wasm
//!   memory once, never re-encoded;
//! - enums: a one-byte tag, the variant's index in declaration order, then the variant's
//!   fields in declaration order;
//! - outputs: one after another until the end of the buffer;
//! - config: records `name (string), tag (0 null, 1 bool, 2 number, 3 string), value` until
//!   the end, so the host sends only the fields it sets and unknown names are refused by name.
//!
//! Adding a field to an `Input`/`Output` variant is a compile error here (patterns name every
//! field) until its encoding is written; the TypeScript side has the same guard.
//!
//! Invariants: decoding never panics and never indexes out of bounds; a malformed buffer gives
//! a [`BoundaryError`] naming what was wrong.

use std::rc::Rc;

use crate::types::{
    AnnounceEvent, BanReason, ByteRange, CloseReason, Config, ConnId, Container, DeliveryTiming,
    Event, HttpId, InboundOffers, Input, Instant, Output, PeerId, PeerStats, RequestId,
    SegmentInfo, Stats, SwarmId,
};

/// What was wrong with an encoded input or config (a fixed text: no formatting machinery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundaryError(pub String);

impl BoundaryError {
    fn new(msg: &str) -> Self {
        BoundaryError(msg.to_string())
    }
}

type Res<T> = Result<T, BoundaryError>;

/// Largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_992.0;

/// Reads the encoding front to back.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Res<&'a [u8]> {
        if n > self.buf.len() {
            return Err(BoundaryError::new("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Res<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn len(&mut self) -> Res<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    pub fn f64(&mut self) -> Res<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A whole number in `0..=max` (and at most 2^53).
    fn whole(&mut self, max: f64) -> Res<u64> {
        let v = self.f64()?;
        if v >= 0.0 && v <= max && v <= MAX_SAFE && v.trunc() == v {
            Ok(v as u64)
        } else {
            Err(BoundaryError::new(
                "an integer field holds a negative, fractional or too large number",
            ))
        }
    }

    pub fn u64(&mut self) -> Res<u64> {
        self.whole(MAX_SAFE)
    }

    pub fn u32(&mut self) -> Res<u32> {
        Ok(self.whole(u32::MAX as f64)? as u32)
    }

    fn u16(&mut self) -> Res<u16> {
        Ok(self.whole(u16::MAX as f64)? as u16)
    }

    fn bool(&mut self) -> Res<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BoundaryError::new("a boolean is neither 0 nor 1")),
        }
    }

    fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<Option<T>> {
        if self.bool()? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn bytes(&mut self) -> Res<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }

    pub fn str(&mut self) -> Res<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| BoundaryError::new("a string is not UTF-8"))
    }

    fn string(&mut self) -> Res<String> {
        self.str().map(str::to_string)
    }

    fn swarm(&mut self) -> Res<SwarmId> {
        SwarmId::from_hex(self.str()?)
            .ok_or_else(|| BoundaryError::new("a swarm id is not 40 hex digits"))
    }

    fn peer(&mut self) -> Res<PeerId> {
        PeerId::from_hex(self.str()?)
            .ok_or_else(|| BoundaryError::new("a peer id is not 40 hex digits"))
    }

    fn range(&mut self) -> Res<Option<ByteRange>> {
        self.option(|r| {
            Ok(ByteRange {
                start: r.u64()?,
                end: r.u64()?,
            })
        })
    }

    fn tag<T: Copy>(&mut self, all: &[T]) -> Res<T> {
        all.get(self.u8()? as usize)
            .copied()
            .ok_or_else(|| BoundaryError::new("unknown enum tag"))
    }
}

/// Appends the encoding.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Any number (JS has only `f64`; integers above 2^53 would round, none are produced).
    pub fn num(&mut self, v: impl Into<JsNumber>) {
        self.buf.extend_from_slice(&v.into().0.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn option<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            f(self, v);
        }
    }
    fn range(&mut self, v: &Option<ByteRange>) {
        self.option(v, |w, r| {
            w.num(r.start);
            w.num(r.end);
        });
    }
}

/// A number as the boundary carries it.
pub struct JsNumber(f64);

macro_rules! as_f64 {
    ($($t:ty),*) => {$(
        impl From<$t> for JsNumber {
            fn from(v: $t) -> Self {
                JsNumber(v as f64)
            }
        }
    )*};
}
as_f64!(u16, u32, u64, usize, f32, f64);

const CONTAINERS: [Container; 3] = [Container::Ts, Container::Fmp4, Container::Unknown];
const ANNOUNCE_EVENTS: [AnnounceEvent; 3] = [
    AnnounceEvent::Started,
    AnnounceEvent::Update,
    AnnounceEvent::Stopped,
];
const INBOUND: [InboundOffers; 3] = [
    InboundOffers::Answer,
    InboundOffers::Queue,
    InboundOffers::Ignore,
];
const CLOSE_REASONS: [CloseReason; 7] = [
    CloseReason::Rejected,
    CloseReason::Banned,
    CloseReason::TooManyPeers,
    CloseReason::Duplicate,
    CloseReason::Idle,
    CloseReason::P2pDisabled,
    CloseReason::SwarmLeft,
];
const BAN_REASONS: [BanReason; 4] = [
    BanReason::CorruptData,
    BanReason::ProtocolViolation,
    BanReason::TooManyStrikes,
    BanReason::LimitExceeded,
];

/// The index of `v` in `all` (every variant is listed, checked by the tests).
fn index_of<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

/// Decodes one input (the whole buffer).
pub fn decode_input(buf: &[u8]) -> Res<Input> {
    let mut r = Reader::new(buf);
    let input = match r.u8()? {
        0 => {
            let swarm = r.swarm()?;
            let live = r.bool()?;
            let container = r.tag(&CONTAINERS)?;
            let bitrate = r.u32()?;
            let n = r.len()?;
            let mut segments = Vec::with_capacity(n.min(r.buf.len()));
            for _ in 0..n {
                segments.push(SegmentInfo {
                    seq: r.u64()?,
                    start_ms: r.u64()?,
                    duration_ms: r.u32()?,
                    url: r.string()?,
                    range: r.range()?,
                });
            }
            Input::Playlist {
                swarm,
                live,
                container,
                bitrate,
                segments,
            }
        }
        1 => Input::Playhead {
            swarm: r.swarm()?,
            position_ms: r.u64()?,
            buffered_ahead_ms: r.u64()?,
            rate: r.f64()? as f32,
        },
        2 => Input::SegmentRequested {
            req: RequestId(r.u32()?),
            swarm: r.swarm()?,
            seq: r.u64()?,
            url: r.string()?,
            range: r.range()?,
            timeout_ms: r.option(Reader::u64)?,
        },
        3 => Input::SegmentAborted {
            req: RequestId(r.u32()?),
        },
        4 => Input::PeerCandidate {
            conn: ConnId(r.u32()?),
            swarm: r.swarm()?,
            peer: r.peer()?,
            inbound: r.bool()?,
        },
        5 => Input::PeerConnected {
            conn: ConnId(r.u32()?),
        },
        6 => Input::PeerMessage {
            conn: ConnId(r.u32()?),
            data: r.bytes()?.to_vec(),
        },
        7 => Input::PeerClosed {
            conn: ConnId(r.u32()?),
        },
        8 => Input::HttpProgress {
            id: HttpId(r.u32()?),
            data: r.bytes()?.to_vec(),
            total: r.option(Reader::u64)?,
        },
        9 => Input::HttpDone {
            id: HttpId(r.u32()?),
        },
        10 => Input::HttpFailed {
            id: HttpId(r.u32()?),
            status: r.u16()?,
            reason: r.string()?,
        },
        11 => Input::IntegrityManifest {
            data: r.bytes()?.to_vec(),
        },
        12 => Input::SetPolicy {
            p2p_enabled: r.bool()?,
            upload_bytes_per_sec: r.u64()?,
        },
        13 => Input::SwarmPeers {
            swarm: r.swarm()?,
            peers: r.u32()?,
        },
        14 => Input::HttpSample {
            bytes: r.u64()?,
            ms: r.u64()?,
        },
        15 => Input::LeaveSwarm { swarm: r.swarm()? },
        16 => Input::PlayerStarted,
        _ => return Err(BoundaryError::new("unknown input type")),
    };
    if !r.is_empty() {
        return Err(BoundaryError::new("trailing bytes after the input"));
    }
    Ok(input)
}

/// Encodes one input as the shim does (tests and native hosts; the wasm build only decodes).
/// `None` for `PeerData`, which never crosses the boundary.
pub fn encode_input(input: &Input) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    match input {
        Input::Playlist {
            swarm,
            live,
            container,
            bitrate,
            segments,
        } => {
            w.u8(0);
            w.str(&swarm.to_hex());
            w.bool(*live);
            w.u8(index_of(&CONTAINERS, container));
            w.num(*bitrate);
            w.buf
                .extend_from_slice(&(segments.len() as u32).to_le_bytes());
            for s in segments {
                let SegmentInfo {
                    seq,
                    start_ms,
                    duration_ms,
                    url,
                    range,
                } = s;
                w.num(*seq);
                w.num(*start_ms);
                w.num(*duration_ms);
                w.str(url);
                w.range(range);
            }
        }
        Input::Playhead {
            swarm,
            position_ms,
            buffered_ahead_ms,
            rate,
        } => {
            w.u8(1);
            w.str(&swarm.to_hex());
            w.num(*position_ms);
            w.num(*buffered_ahead_ms);
            w.num(*rate);
        }
        Input::SegmentRequested {
            req,
            swarm,
            seq,
            url,
            range,
            timeout_ms,
        } => {
            w.u8(2);
            w.num(req.0);
            w.str(&swarm.to_hex());
            w.num(*seq);
            w.str(url);
            w.range(range);
            w.option(timeout_ms, |w, t| w.num(*t));
        }
        Input::SegmentAborted { req } => {
            w.u8(3);
            w.num(req.0);
        }
        Input::PeerCandidate {
            conn,
            swarm,
            peer,
            inbound,
        } => {
            w.u8(4);
            w.num(conn.0);
            w.str(&swarm.to_hex());
            w.str(&peer.to_hex());
            w.bool(*inbound);
        }
        Input::PeerConnected { conn } => {
            w.u8(5);
            w.num(conn.0);
        }
        Input::PeerMessage { conn, data } => {
            w.u8(6);
            w.num(conn.0);
            w.bytes(data);
        }
        Input::PeerData { .. } => return None,
        Input::PeerClosed { conn } => {
            w.u8(7);
            w.num(conn.0);
        }
        Input::HttpProgress { id, data, total } => {
            w.u8(8);
            w.num(id.0);
            w.bytes(data);
            w.option(total, |w, t| w.num(*t));
        }
        Input::HttpDone { id } => {
            w.u8(9);
            w.num(id.0);
        }
        Input::HttpFailed { id, status, reason } => {
            w.u8(10);
            w.num(id.0);
            w.num(*status);
            w.str(reason);
        }
        Input::IntegrityManifest { data } => {
            w.u8(11);
            w.bytes(data);
        }
        Input::SetPolicy {
            p2p_enabled,
            upload_bytes_per_sec,
        } => {
            w.u8(12);
            w.bool(*p2p_enabled);
            w.num(*upload_bytes_per_sec);
        }
        Input::SwarmPeers { swarm, peers } => {
            w.u8(13);
            w.str(&swarm.to_hex());
            w.num(*peers);
        }
        Input::HttpSample { bytes, ms } => {
            w.u8(14);
            w.num(*bytes);
            w.num(*ms);
        }
        Input::LeaveSwarm { swarm } => {
            w.u8(15);
            w.str(&swarm.to_hex());
        }
        Input::PlayerStarted => w.u8(16),
    }
    Some(w.buf)
}

/// Appends one output; its byte strings go to `payload` instead of the stream, in order.
pub fn encode_output(o: &Output, w: &mut Writer, payload: &mut impl FnMut(&[u8])) {
    match o {
        Output::StartHttp { id, url, range } => {
            w.u8(0);
            w.num(id.0);
            w.str(url);
            w.range(range);
        }
        Output::CancelHttp { id } => {
            w.u8(1);
            w.num(id.0);
        }
        Output::Announce {
            swarm,
            event,
            numwant,
            offers,
            inbound,
            queue_max,
            queue_max_age_ms,
        } => {
            w.u8(2);
            w.str(&swarm.to_hex());
            w.u8(index_of(&ANNOUNCE_EVENTS, event));
            w.num(*numwant);
            w.num(*offers);
            w.u8(index_of(&INBOUND, inbound));
            w.num(*queue_max);
            w.num(*queue_max_age_ms);
        }
        Output::ConnectPeer { conn } => {
            w.u8(3);
            w.num(conn.0);
        }
        Output::ClosePeer { conn, reason } => {
            w.u8(4);
            w.num(conn.0);
            w.u8(index_of(&CLOSE_REASONS, reason));
        }
        Output::SendToPeer { conn, data } => {
            w.u8(5);
            w.num(conn.0);
            payload(data);
        }
        // Hosts across the boundary never ask for shared upload buffers; should one come,
        // it goes as the `SendToPeer` it stands for.
        Output::SendData { conn, frame } => {
            w.u8(5);
            w.num(conn.0);
            payload(&frame.to_vec());
        }
        Output::SegmentProgress { req, loaded, total } => {
            w.u8(6);
            w.num(req.0);
            w.num(*loaded);
            w.option(total, |w, t| w.num(*t));
        }
        Output::DeliverSegment { req, data, timing } => {
            let DeliveryTiming {
                http_bytes,
                p2p_bytes,
                transfer_start,
                first_byte,
                transfer_end,
                from_cache,
            } = timing;
            w.u8(7);
            w.num(req.0);
            payload(data);
            w.num(*http_bytes);
            w.num(*p2p_bytes);
            w.num(transfer_start.0);
            w.num(first_byte.0);
            w.num(transfer_end.0);
            w.bool(*from_cache);
        }
        Output::FailSegment { req, reason } => {
            w.u8(8);
            w.num(req.0);
            w.str(reason);
        }
        Output::Event(e) => {
            w.u8(9);
            encode_event(e, w);
        }
    }
}

fn encode_event(e: &Event, w: &mut Writer) {
    match e {
        Event::PeerJoined { swarm, peer } | Event::PeerLeft { swarm, peer } => {
            w.u8(if matches!(e, Event::PeerJoined { .. }) {
                0
            } else {
                1
            });
            w.str(&swarm.to_hex());
            w.str(&peer.to_hex());
        }
        Event::PeerBanned {
            swarm,
            peer,
            reason,
        } => {
            w.u8(2);
            w.str(&swarm.to_hex());
            w.str(&peer.to_hex());
            w.u8(index_of(&BAN_REASONS, reason));
        }
        Event::SegmentLoaded {
            swarm,
            seq,
            http_bytes,
            p2p_bytes,
        } => {
            w.u8(3);
            w.str(&swarm.to_hex());
            w.num(*seq);
            w.num(*http_bytes);
            w.num(*p2p_bytes);
        }
        Event::VerificationFailed {
            swarm,
            seq,
            peer,
            detail,
        } => {
            w.u8(4);
            w.str(&swarm.to_hex());
            w.num(*seq);
            w.str(&peer.to_hex());
            w.str(detail);
        }
        Event::ManifestRejected { detail } => {
            w.u8(5);
            w.str(detail);
        }
        Event::Warning { detail } => {
            w.u8(6);
            w.str(detail);
        }
        Event::CdnDegraded { reason } => {
            w.u8(7);
            w.str(reason);
        }
        Event::CdnRecovered {} => w.u8(8),
        Event::SpotCheckFailed { swarm, seq, peers } => {
            w.u8(9);
            w.str(&swarm.to_hex());
            w.num(*seq);
            w.buf.extend_from_slice(&(peers.len() as u32).to_le_bytes());
            for p in peers {
                w.str(&p.to_hex());
            }
        }
    }
}

/// Decodes one output (tests and native hosts; JS decodes in js-shim/src/boundary.ts).
/// `payloads` yields the byte strings that went out beside the stream, in order.
pub fn decode_output(
    r: &mut Reader<'_>,
    payloads: &mut dyn Iterator<Item = Vec<u8>>,
) -> Res<Output> {
    let mut payload = || {
        payloads
            .next()
            .ok_or_else(|| BoundaryError::new("missing payload"))
    };
    Ok(match r.u8()? {
        0 => Output::StartHttp {
            id: HttpId(r.u32()?),
            url: r.string()?,
            range: r.range()?,
        },
        1 => Output::CancelHttp {
            id: HttpId(r.u32()?),
        },
        2 => Output::Announce {
            swarm: r.swarm()?,
            event: r.tag(&ANNOUNCE_EVENTS)?,
            numwant: r.u32()?,
            offers: r.u32()?,
            inbound: r.tag(&INBOUND)?,
            queue_max: r.u32()?,
            queue_max_age_ms: r.u64()?,
        },
        3 => Output::ConnectPeer {
            conn: ConnId(r.u32()?),
        },
        4 => Output::ClosePeer {
            conn: ConnId(r.u32()?),
            reason: r.tag(&CLOSE_REASONS)?,
        },
        5 => Output::SendToPeer {
            conn: ConnId(r.u32()?),
            data: payload()?,
        },
        6 => Output::SegmentProgress {
            req: RequestId(r.u32()?),
            loaded: r.u64()?,
            total: r.option(Reader::u64)?,
        },
        7 => Output::DeliverSegment {
            req: RequestId(r.u32()?),
            data: Rc::new(payload()?),
            timing: DeliveryTiming {
                http_bytes: r.u64()?,
                p2p_bytes: r.u64()?,
                transfer_start: Instant(r.u64()?),
                first_byte: Instant(r.u64()?),
                transfer_end: Instant(r.u64()?),
                from_cache: r.bool()?,
            },
        },
        8 => Output::FailSegment {
            req: RequestId(r.u32()?),
            reason: r.string()?,
        },
        9 => Output::Event(match r.u8()? {
            0 => Event::PeerJoined {
                swarm: r.swarm()?,
                peer: r.peer()?,
            },
            1 => Event::PeerLeft {
                swarm: r.swarm()?,
                peer: r.peer()?,
            },
            2 => Event::PeerBanned {
                swarm: r.swarm()?,
                peer: r.peer()?,
                reason: r.tag(&BAN_REASONS)?,
            },
            3 => Event::SegmentLoaded {
                swarm: r.swarm()?,
                seq: r.u64()?,
                http_bytes: r.u64()?,
                p2p_bytes: r.u64()?,
            },
            4 => Event::VerificationFailed {
                swarm: r.swarm()?,
                seq: r.u64()?,
                peer: r.peer()?,
                detail: r.string()?,
            },
            5 => Event::ManifestRejected {
                detail: r.string()?,
            },
            6 => Event::Warning {
                detail: r.string()?,
            },
            7 => Event::CdnDegraded {
                reason: r.string()?,
            },
            8 => Event::CdnRecovered {},
            9 => {
                let swarm = r.swarm()?;
                let seq = r.u64()?;
                let n = r.len()?;
                let mut peers = Vec::new();
                for _ in 0..n {
                    peers.push(r.peer()?);
                }
                Event::SpotCheckFailed { swarm, seq, peers }
            }
            _ => return Err(BoundaryError::new("unknown event kind")),
        }),
        _ => return Err(BoundaryError::new("unknown output type")),
    })
}

/// `Stats` in declaration order; `per_peer` as a `u32` count and each peer's fields.
pub fn encode_stats(s: &Stats) -> Vec<u8> {
    let Stats {
        http_down,
        p2p_down,
        p2p_up,
        p2p_discarded,
        segments_http,
        segments_p2p,
        peers,
        peers_banned,
        cache_bytes,
        per_peer,
        cdn_degraded,
        http_ttfb_ms,
        p2p_ttfb_ms,
    } = s;
    let mut w = Writer::default();
    for v in [
        http_down,
        p2p_down,
        p2p_up,
        p2p_discarded,
        segments_http,
        segments_p2p,
    ] {
        w.num(*v);
    }
    w.num(*peers);
    w.num(*peers_banned);
    w.num(*cache_bytes);
    w.buf
        .extend_from_slice(&(per_peer.len() as u32).to_le_bytes());
    for p in per_peer {
        let PeerStats {
            peer,
            swarm,
            down_bytes,
            up_bytes,
            throughput,
            rtt_ms,
            strikes,
            score,
            stalls,
        } = p;
        w.str(&peer.to_hex());
        w.str(&swarm.to_hex());
        w.num(*down_bytes);
        w.num(*up_bytes);
        w.num(*throughput);
        w.num(*rtt_ms);
        w.num(*strikes);
        w.num(*score);
        w.num(*stalls);
    }
    w.bool(*cdn_degraded);
    w.num(*http_ttfb_ms);
    w.num(*p2p_ttfb_ms);
    w.buf
}

/// Inverse of [`encode_stats`] (tests).
pub fn decode_stats(buf: &[u8]) -> Res<Stats> {
    let mut r = Reader::new(buf);
    let mut s = Stats {
        http_down: r.u64()?,
        p2p_down: r.u64()?,
        p2p_up: r.u64()?,
        p2p_discarded: r.u64()?,
        segments_http: r.u64()?,
        segments_p2p: r.u64()?,
        peers: r.u32()?,
        peers_banned: r.u32()?,
        cache_bytes: r.u64()?,
        ..Stats::default()
    };
    for _ in 0..r.len()? {
        s.per_peer.push(PeerStats {
            peer: r.peer()?,
            swarm: r.swarm()?,
            down_bytes: r.u64()?,
            up_bytes: r.u64()?,
            throughput: r.f64()?,
            rtt_ms: r.f64()?,
            strikes: r.u32()?,
            score: r.f64()?,
            stalls: r.u32()?,
        });
    }
    s.cdn_degraded = r.bool()?;
    s.http_ttfb_ms = r.f64()?;
    s.p2p_ttfb_ms = r.f64()?;
    Ok(s)
}

/// The camelCase config field names, in `Config`'s declaration order (a test checks them
/// against serde's).
pub const CONFIG_FIELDS: [&str; 21] = [
    "p2pEnabled",
    "maxPeers",
    "urgentWindowMs",
    "prefetchWindowMs",
    "maxHttp",
    "maxP2p",
    "peerStallTimeoutMs",
    "liveEdgeDelayMaxMs",
    "cacheBytes",
    "uploadSlots",
    "uploadBytesPerSec",
    "strikesToBan",
    "announceIntervalMs",
    "announceNumwant",
    "integrityPublicKey",
    "spotCheckRatio",
    "startHoldMs",
    "minSwarmSize",
    "maxOffers",
    "maxQueuedOffers",
    "queuedOfferMaxAgeMs",
];

/// A config value as the host sends it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

/// Encodes config records (tests and native hosts; the shim writes them in boundary.ts).
pub fn encode_config(fields: &[(&str, ConfigValue)]) -> Vec<u8> {
    let mut w = Writer::default();
    for (name, v) in fields {
        w.str(name);
        match v {
            ConfigValue::Null => w.u8(0),
            ConfigValue::Bool(b) => {
                w.u8(1);
                w.bool(*b);
            }
            ConfigValue::Num(n) => {
                w.u8(2);
                w.num(*n);
            }
            ConfigValue::Str(s) => {
                w.u8(3);
                w.str(s);
            }
        }
    }
    w.buf
}

/// `Config::default()` with the encoded fields set. Errors name the field.
pub fn decode_config(buf: &[u8]) -> Res<Config> {
    let mut c = Config::default();
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        let name = r.str()?;
        let field = |msg: &str| {
            let mut s = String::from("field `");
            s.push_str(name);
            s.push_str("`: ");
            s.push_str(msg);
            BoundaryError(s)
        };
        let value = match r.u8()? {
            0 => ConfigValue::Null,
            1 => ConfigValue::Bool(r.bool()?),
            2 => ConfigValue::Num(r.f64()?),
            3 => ConfigValue::Str(r.string()?),
            _ => return Err(BoundaryError::new("unknown config value tag")),
        };
        let flag = || match value {
            ConfigValue::Bool(b) => Ok(b),
            _ => Err(field("expected a boolean")),
        };
        let int = |max: f64| match value {
            ConfigValue::Num(v) if v >= 0.0 && v <= max && v <= MAX_SAFE && v.trunc() == v => {
                Ok(v as u64)
            }
            _ => Err(field("expected a whole non-negative number in range")),
        };
        let u32_ = || int(u32::MAX as f64).map(|v| v as u32);
        let u64_ = || int(MAX_SAFE);
        let usize_ = || int(u32::MAX as f64).map(|v| v as usize);
        match name {
            "p2pEnabled" => c.p2p_enabled = flag()?,
            "maxPeers" => c.max_peers = usize_()?,
            "urgentWindowMs" => c.urgent_window_ms = u64_()?,
            "prefetchWindowMs" => c.prefetch_window_ms = u64_()?,
            "maxHttp" => c.max_http = usize_()?,
            "maxP2p" => c.max_p2p = usize_()?,
            "peerStallTimeoutMs" => c.peer_stall_timeout_ms = u64_()?,
            "liveEdgeDelayMaxMs" => c.live_edge_delay_max_ms = u64_()?,
            "cacheBytes" => c.cache_bytes = u64_()?,
            "uploadSlots" => c.upload_slots = usize_()?,
            "uploadBytesPerSec" => c.upload_bytes_per_sec = u64_()?,
            "strikesToBan" => c.strikes_to_ban = u32_()?,
            "announceIntervalMs" => c.announce_interval_ms = u64_()?,
            "announceNumwant" => c.announce_numwant = u32_()?,
            "integrityPublicKey" => {
                c.integrity_public_key = match value {
                    ConfigValue::Null => None,
                    ConfigValue::Str(ref s) => Some(s.clone()),
                    _ => return Err(field("expected a string or null")),
                }
            }
            "spotCheckRatio" => {
                c.spot_check_ratio = match value {
                    ConfigValue::Num(v) => v,
                    _ => return Err(field("expected a number")),
                }
            }
            "startHoldMs" => c.start_hold_ms = u64_()?,
            "minSwarmSize" => c.min_swarm_size = u32_()?,
            "maxOffers" => c.max_offers = u32_()?,
            "maxQueuedOffers" => c.max_queued_offers = u32_()?,
            "queuedOfferMaxAgeMs" => c.queued_offer_max_age_ms = u64_()?,
            _ => {
                let mut s = String::from("unknown field `");
                s.push_str(name);
                s.push_str("` (known fields: ");
                s.push_str(&CONFIG_FIELDS.join(", "));
                s.push(')');
                return Err(BoundaryError(s));
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
