//! The engine's vocabulary: time, identifiers, configuration, inputs and outputs.
//!
//! Invariants:
//! - Everything here is plain data: no clocks, no I/O, no JS types. The same values cross
//!   the wasm boundary as camelCase JS objects (serde, `type` tag) and drive the native
//!   swarm harness and simulator.
//! - Ids that the host allocates (`ConnId`, `RequestId`) are echoed back unchanged; ids the
//!   engine allocates (`HttpId`) are echoed back by the host in `Http*` inputs.
//! - Byte ranges are half-open: `start..end`, `end` exclusive (hls.js convention).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in milliseconds since an origin chosen by the host.
/// The engine never reads a clock: every entry point takes `now`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Instant(pub u64);

impl Instant {
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_sub(d.as_millis().min(u64::MAX as u128) as u64),
        )
    }
}

macro_rules! hex20 {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// The bytes as two big-endian integers: comparing them orders ids exactly as
            /// comparing the bytes does, without a `memcmp` call (ids are map keys on the
            /// engine's hottest paths).
            fn ord_key(&self) -> (u128, u32) {
                let mut hi = [0u8; 16];
                let mut lo = [0u8; 4];
                hi.copy_from_slice(&self.0[..16]);
                lo.copy_from_slice(&self.0[16..]);
                (u128::from_be_bytes(hi), u32::from_be_bytes(lo))
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Parses 40 hex digits. `None` on any other input.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 20];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some($name(out))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.ord_key().cmp(&other.ord_key())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..8])
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::from_hex(&s).ok_or_else(|| {
                    serde::de::Error::custom(concat!(
                        "expected 40 hex digits for ",
                        stringify!($name)
                    ))
                })
            }
        }
    };
}

hex20!(
    SwarmId,
    "One swarm per stream rendition. 20 bytes so it can be used as a WebTorrent `info_hash`.\n\
     Serialized as 40 lowercase hex digits."
);
hex20!(
    PeerId,
    "A viewer's id in a swarm (the tracker's `peer_id`). Serialized as 40 hex digits."
);

impl SwarmId {
    /// Derives the swarm id every viewer computes identically for the same rendition:
    /// the first 20 bytes of SHA-256("shoal-swarm-v1" 0x00 stream_key 0x00 rendition_key).
    ///
    /// `stream_key` identifies the stream (the app's configured swarm name, or the master
    /// playlist / MPD URL without query string); `rendition_key` identifies the rendition
    /// inside it (HLS: the media playlist URL without query string, or "level:<bitrate>:<codecs>";
    /// DASH: the representation id and its period).
    pub fn derive(stream_key: &str, rendition_key: &str) -> SwarmId {
        let mut h = Sha256::new();
        h.update(b"shoal-swarm-v1\0");
        h.update(stream_key.as_bytes());
        h.update([0u8]);
        h.update(rendition_key.as_bytes());
        let digest = h.finalize();
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        SwarmId(out)
    }
}

/// Position of a segment in its swarm. HLS: the media sequence number (`frag.sn`, which
/// already includes `EXT-X-MEDIA-SEQUENCE`). DASH: `$Number$`, or for `$Time$` /
/// SegmentTimeline the segment's start time in the representation's timescale.
pub type Seq = u64;

/// Globally unique segment identity: the swarm (rendition) and the sequence inside it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SegmentKey {
    pub swarm: SwarmId,
    pub seq: Seq,
}

/// A peer connection, allocated by the host (one per RTCPeerConnection attempt).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnId(pub u32);

/// A player's segment request, allocated by the host.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u32);

/// An HTTP transfer, allocated by the engine in `Output::StartHttp`.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HttpId(pub u32);

/// Half-open byte range `start..end` of a resource (e.g. `EXT-X-BYTERANGE`, DASH SegmentBase).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Container format of a rendition's media segments, used by structural checks.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Container {
    /// MPEG-2 transport stream: 188-byte packets starting with 0x47.
    Ts,
    /// Fragmented MP4 / CMAF: a sequence of ISO-BMFF boxes.
    Fmp4,
    #[default]
    Unknown,
}

/// One media segment as listed by the playlist / MPD.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    pub seq: Seq,
    /// Presentation start, in ms on the player's timeline (the same clock as `Playhead`).
    pub start_ms: u64,
    pub duration_ms: u32,
    /// Absolute URL the CDN serves it at.
    pub url: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub range: Option<ByteRange>,
}

/// Engine configuration. Every field has a default; JS passes a partial camelCase object.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// Master switch. When false the engine never announces, never connects, never uploads:
    /// every request goes over HTTP.
    pub p2p_enabled: bool,
    /// Maximum connected peers per swarm.
    pub max_peers: usize,
    /// Segments starting less than this far ahead of the playhead are urgent: they come
    /// over HTTP unless a peer is already delivering them fast enough to finish in time.
    pub urgent_window_ms: u64,
    /// How far ahead of the playhead the engine fetches segments from peers
    /// (the buffer target). Bounded so a viewer never downloads much more than the player would.
    pub prefetch_window_ms: u64,
    /// Concurrent HTTP transfers.
    pub max_http: usize,
    /// Concurrent P2P segment downloads.
    pub max_p2p: usize,
    /// A peer that sends no bytes for this long on an active request is abandoned.
    pub peer_stall_timeout_ms: u64,
    /// Live-edge coordination (decides the live offload; full policy in
    /// `scheduler::live_edge`): a viewer asked for a segment no peer has announced waits up to
    /// this long before fetching it over HTTP, and takes it from a peer if one announces it
    /// first. The wait is uniform in `[0, cap]`; the cap is this value scaled down with fewer
    /// connected peers (`* min(peers, 4) / 4`, 0 without peers) and by the viewer's worth as
    /// a relay (`* min(1, bitrate / upload budget)`, never below 1 s), and never reaches into
    /// the urgent window (`cap <= deadline - urgent_window_ms`).
    pub live_edge_delay_max_ms: u64,
    /// Byte budget of the segment cache.
    pub cache_bytes: u64,
    /// Peers we serve at the same time.
    pub upload_slots: usize,
    /// Upload byte-rate budget in bytes/s. 0 = never upload.
    pub upload_bytes_per_sec: u64,
    /// Strikes (timeouts, absent lies, protocol errors) before a peer is banned.
    /// Corrupted data bans at once.
    pub strikes_to_ban: u32,
    /// Re-announce to the tracker this often while the swarm has room for more peers.
    pub announce_interval_ms: u64,
    /// Peers requested per announce.
    pub announce_numwant: u32,
    /// `ed25519:<base64>` key that must sign the integrity manifest (docs/MANIFEST.md
    /// "Signatures"). When set, an `IntegrityManifest` that fails `Manifest::parse_signed`
    /// is rejected (`ManifestRejected`, the previous manifest stays), and a segment not
    /// (yet) listed in the verified manifest is never taken from peers: at the live edge it
    /// comes over HTTP until a manifest refresh lists it.
    pub integrity_public_key: Option<String>,
    /// Spot checks (`integrity::spot_check`): the fraction of segments that peers
    /// contributed to and no manifest vouched for which is fetched again from the CDN after
    /// delivery and compared chunk by chunk (SHA-256 per wire chunk); the peers that sent
    /// chunks that differ are banned (`Event::SpotCheckFailed`). Catches what the structural
    /// checks miss, but only after the player got the bytes. 0 disables; values outside
    /// `[0, 1]` are clamped.
    pub spot_check_ratio: f64,
    /// Start hold: until the player shows its first frame (`Input::PlayerStarted`) or this
    /// long after the engine was created, announces carry no WebRTC offers and offers other
    /// viewers send are queued, not answered (`InboundOffers::Queue`): peer connections cost
    /// CPU (certificates, ICE) that the first frames need. The tracker still counts the
    /// viewer and reports the swarm's size (`SwarmPeers`). When the hold ends the engine
    /// announces every swarm again with offers (`InboundOffers::Answer`). 0: no hold.
    pub start_hold_ms: u64,
    /// Fewest other viewers the tracker must count in a swarm (`SwarmPeers`) before any peer
    /// connection is made in it: until then its announces carry no offers and offers from
    /// others are ignored (`InboundOffers::Ignore`). Once reached, the swarm stays open
    /// until P2P is turned off or the swarm is left. 0: no minimum.
    pub min_swarm_size: u32,
    /// Most WebRTC offers the host makes per announce (each is a peer connection and its
    /// ICE gathering): `Announce::offers` is `min(numwant, max_offers)`.
    pub max_offers: u32,
    /// Most offers from other viewers the host keeps while a swarm's offers are queued
    /// (`InboundOffers::Queue`, the start hold); the oldest goes first
    /// (`Announce::queue_max`).
    pub max_queued_offers: u32,
    /// A queued offer older than this when the swarm's offers are answered again is dropped,
    /// not answered: its sender has given up on it (`Announce::queue_max_age_ms`).
    pub queued_offer_max_age_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            p2p_enabled: true,
            max_peers: 12,
            urgent_window_ms: 3_000,
            prefetch_window_ms: 30_000,
            max_http: 2,
            max_p2p: 4,
            peer_stall_timeout_ms: 1_500,
            live_edge_delay_max_ms: 6_000,
            cache_bytes: 128 * 1024 * 1024,
            upload_slots: 6,
            upload_bytes_per_sec: 12_500_000,
            strikes_to_ban: 3,
            announce_interval_ms: 20_000,
            announce_numwant: 10,
            integrity_public_key: None,
            spot_check_ratio: 0.02,
            start_hold_ms: 3_000,
            min_swarm_size: 0,
            max_offers: 5,
            max_queued_offers: 16,
            queued_offer_max_age_ms: 10_000,
        }
    }
}

/// Facts the host reports to the engine.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Input {
    /// A rendition's playlist was loaded or refreshed. Creates the swarm on first sight
    /// (the engine then emits `Announce`). For live streams, segments no longer listed
    /// slide out of the window.
    Playlist {
        swarm: SwarmId,
        live: bool,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(as = "Option<_>", optional))]
        container: Container,
        /// Nominal bitrate of the rendition in bits/s (0 if unknown).
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(as = "Option<_>", optional))]
        bitrate: u32,
        segments: Vec<SegmentInfo>,
    },
    /// Where the player is: the swarm it is currently playing/loading, the playhead on the
    /// playlist timeline, and how much is buffered ahead of it.
    Playhead {
        swarm: SwarmId,
        position_ms: u64,
        buffered_ahead_ms: u64,
        #[serde(default = "default_rate")]
        #[cfg_attr(feature = "ts", ts(as = "Option<_>", optional))]
        rate: f32,
    },
    /// The player asks for a segment. `url`/`range` repeat the playlist entry so a request
    /// for a segment the engine has not seen in a playlist can still be served over HTTP.
    SegmentRequested {
        req: RequestId,
        swarm: SwarmId,
        seq: Seq,
        url: String,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        range: Option<ByteRange>,
        /// The player loads the segment itself if the engine has not delivered it this many
        /// ms after the request (hls.js: the earlier of its fragment load policy's
        /// `maxTimeToFirstByteMs` and `maxLoadTimeMs`; dash.js: the request's `timeout`).
        /// The segment is then due by that time at the latest, so it goes over HTTP
        /// `urgent_window_ms` before. `None` (or 0): no limit.
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        timeout_ms: Option<u64>,
    },
    /// The player no longer wants the segment (seek, level switch, destroy).
    SegmentAborted { req: RequestId },
    /// The tracker introduced a peer on `conn`: `inbound` when the remote sent us an offer,
    /// false when it answered one of ours. The engine answers with `ConnectPeer` or `ClosePeer`.
    PeerCandidate {
        conn: ConnId,
        swarm: SwarmId,
        peer: PeerId,
        inbound: bool,
    },
    /// The data channel on `conn` is open.
    PeerConnected { conn: ConnId },
    /// One data-channel message from the peer.
    PeerMessage {
        conn: ConnId,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "ts", ts(type = "Uint8Array"))]
        data: Vec<u8>,
    },
    /// `PeerMessage` of a `Data` message kept as its header and a slice of the sender's
    /// buffer (hosts running engines in one process: `Engine::share_upload_buffers`). Not
    /// serialized.
    #[serde(skip)]
    PeerData { conn: ConnId, frame: DataFrame },
    /// The connection is gone (closed, failed, timed out).
    PeerClosed { conn: ConnId },
    /// Bytes of an HTTP response body, in order. `total` is the body length when known
    /// (Content-Length); hosts send it with the first progress.
    HttpProgress {
        id: HttpId,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "ts", ts(type = "Uint8Array"))]
        data: Vec<u8>,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        total: Option<u64>,
    },
    /// The HTTP response body is complete.
    HttpDone { id: HttpId },
    /// The HTTP transfer failed: `status` is the HTTP status, 0 for a network error.
    HttpFailed {
        id: HttpId,
        status: u16,
        reason: String,
    },
    /// An integrity manifest (see docs/MANIFEST.md) was fetched.
    IntegrityManifest {
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "ts", ts(type = "Uint8Array"))]
        data: Vec<u8>,
    },
    /// Runtime consent / upload switch (replaces `Config.p2p_enabled` and
    /// `Config.upload_bytes_per_sec`). P2P off: every peer is closed (`P2pDisabled`), the
    /// tracker gets `Stopped`, everything comes over HTTP. Upload 0: nothing more is
    /// served (`Busy`).
    SetPolicy {
        p2p_enabled: bool,
        upload_bytes_per_sec: u64,
    },
    /// The tracker's count of other viewers in the swarm (from an announce response).
    /// A viewer that just joined waits briefly for them rather than fetch non-urgent
    /// segments over HTTP; with 0 it does not wait.
    SwarmPeers { swarm: SwarmId, peers: u32 },
    /// A media segment the player fetched over HTTP by itself (before the engine loaded,
    /// or as a fallback): `bytes` in `ms` from request to last byte. Like the engine's own
    /// HTTP transfers, it tells how much time an urgent segment must keep in hand for HTTP
    /// when peers are tried first.
    HttpSample { bytes: u64, ms: u64 },
    /// The host no longer needs this swarm (a DASH period that left the live window): the
    /// engine tells the tracker `Stopped`, closes the swarm's peer connections (`SwarmLeft`),
    /// fails its pending player requests open and forgets it. Cached segments stay in the
    /// cache until evicted. A later `Playlist` for it joins it again.
    LeaveSwarm { swarm: SwarmId },
    /// The player showed its first frame: the start hold (`Config::start_hold_ms`) ends.
    PlayerStarted,
}

fn default_rate() -> f32 {
    1.0
}

/// How the last announce to the tracker should be labelled.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnnounceEvent {
    Started,
    Update,
    Stopped,
}

/// What the host does with the WebRTC offers other viewers send through the tracker in a
/// swarm (`Output::Announce`), until the next `Announce` for that swarm.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InboundOffers {
    /// Answer each one (the engine then gets `PeerCandidate { inbound: true }`).
    #[default]
    Answer,
    /// Keep them, unanswered (the start hold), at most `Announce::queue_max`; at the next
    /// `Answer` for the swarm, answer those at most `Announce::queue_max_age_ms` old.
    Queue,
    /// Drop them (the swarm is below `Config::min_swarm_size`, or P2P stops).
    Ignore,
}

/// Where the bytes of a delivered segment came from, and how long the transfer really
/// took: the host reports these to the player's ABR (hls.js `LoaderStats`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryTiming {
    pub http_bytes: u64,
    pub p2p_bytes: u64,
    /// When the transfer that produced these bytes started (may precede the request if the
    /// segment was prefetched).
    pub transfer_start: Instant,
    /// When its first byte arrived.
    pub first_byte: Instant,
    /// When its last byte arrived.
    pub transfer_end: Instant,
    /// True if the segment was already complete in the cache when the player asked.
    pub from_cache: bool,
}

/// Why a connection is closed.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloseReason {
    Rejected,
    Banned,
    TooManyPeers,
    Duplicate,
    Idle,
    P2pDisabled,
    /// The host left the swarm (`Input::LeaveSwarm`).
    SwarmLeft,
}

/// Why a peer is banned.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BanReason {
    CorruptData,
    ProtocolViolation,
    TooManyStrikes,
    LimitExceeded,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Http,
    P2p,
}

/// Things the app may want to know; never required for correctness.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Event {
    PeerJoined {
        swarm: SwarmId,
        peer: PeerId,
    },
    PeerLeft {
        swarm: SwarmId,
        peer: PeerId,
    },
    PeerBanned {
        swarm: SwarmId,
        peer: PeerId,
        reason: BanReason,
    },
    /// A segment was completed into the cache.
    SegmentLoaded {
        swarm: SwarmId,
        seq: Seq,
        http_bytes: u64,
        p2p_bytes: u64,
    },
    /// Bytes from a peer failed a check and were discarded.
    VerificationFailed {
        swarm: SwarmId,
        seq: Seq,
        peer: PeerId,
        detail: String,
    },
    /// The manifest could not be used.
    ManifestRejected {
        detail: String,
    },
    /// Something the engine could not act on (e.g. unknown HttpId); for logs.
    Warning {
        detail: String,
    },
    /// The CDN path fails or stalls (HTTP error, no first byte or no progress within
    /// 1 s): urgent segments are now taken from peers too, until `CdnRecovered`.
    CdnDegraded {
        reason: String,
    },
    /// An HTTP transfer completed again after `CdnDegraded`.
    CdnRecovered {},
    /// A spot check (`Config::spot_check_ratio`) found that the CDN's copy of a segment
    /// differs from the one peers delivered: `peers` sent the chunks that differ (all of the
    /// segment's peers if its length differs) and are banned. The player already had the
    /// bytes.
    SpotCheckFailed {
        swarm: SwarmId,
        seq: Seq,
        peers: Vec<PeerId>,
    },
}

/// Commands the engine gives the host. Drain with `poll_output()` after every call.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Output {
    /// Fetch `url` (with `Range: bytes=start-(end-1)` when `range` is set); report with
    /// `HttpProgress`/`HttpDone`/`HttpFailed` carrying `id`.
    StartHttp {
        id: HttpId,
        url: String,
        range: Option<ByteRange>,
    },
    /// Abort the transfer; send no more inputs for `id`.
    CancelHttp {
        id: HttpId,
    },
    /// Announce to the tracker for `swarm` with `offers` WebRTC offers of the host's (0: the
    /// tracker counts the viewer and reports the swarm's size, but relays nothing), and
    /// handle offers from others as `inbound` says. A host that reconnects to a tracker
    /// repeats the last `Announce` of each swarm.
    Announce {
        swarm: SwarmId,
        event: AnnounceEvent,
        numwant: u32,
        #[serde(default)]
        offers: u32,
        #[serde(default)]
        inbound: InboundOffers,
        /// Offers kept while `inbound` is `Queue` (`Config::max_queued_offers`); the
        /// oldest is dropped first.
        #[serde(default)]
        queue_max: u32,
        /// Queued offers older than this are dropped, not answered, when `inbound` is
        /// `Answer` (`Config::queued_offer_max_age_ms`).
        #[serde(default)]
        queue_max_age_ms: u64,
    },
    /// Go ahead with the WebRTC connection for a `PeerCandidate`.
    ConnectPeer {
        conn: ConnId,
    },
    /// Close (or refuse) the connection.
    ClosePeer {
        conn: ConnId,
        reason: CloseReason,
    },
    /// Send one data-channel message.
    SendToPeer {
        conn: ConnId,
        #[serde(with = "serde_bytes")]
        #[cfg_attr(feature = "ts", ts(type = "Uint8Array"))]
        data: Vec<u8>,
    },
    /// `SendToPeer` of a `Data` message as its header and a slice of a cached segment,
    /// without copying the payload; only for hosts that asked
    /// (`Engine::share_upload_buffers`), which deliver it as `Input::PeerData`. Not
    /// serialized.
    #[serde(skip)]
    SendData {
        conn: ConnId,
        frame: DataFrame,
    },
    /// Bytes of a requested segment have arrived (from any source): lets the host keep the
    /// player's progress stats truthful while the transfer runs.
    SegmentProgress {
        req: RequestId,
        loaded: u64,
        total: Option<u64>,
    },
    /// Complete the player's request with these bytes (shared with the engine's cache, so
    /// a delivery does not copy the segment).
    DeliverSegment {
        req: RequestId,
        #[serde(with = "shared_bytes")]
        #[cfg_attr(feature = "ts", ts(type = "Uint8Array"))]
        data: crate::store::SegmentBytes,
        timing: DeliveryTiming,
    },
    /// The engine gives up on the request; the host must load it over plain HTTP itself
    /// (fail open).
    FailSegment {
        req: RequestId,
        reason: String,
    },
    Event(Event),
}

/// A `Data` message as its header and a slice of a shared segment buffer: the message's
/// bytes are `head ++ data[start..end]` (`Output::SendData`, `Input::PeerData`).
#[derive(Clone, Debug, PartialEq)]
pub struct DataFrame {
    pub head: [u8; crate::wire::DATA_HEADER_LEN],
    pub data: crate::store::SegmentBytes,
    pub start: usize,
    pub end: usize,
}

impl DataFrame {
    /// The payload (empty if the range does not fit the buffer).
    pub fn payload(&self) -> &[u8] {
        self.data.get(self.start..self.end).unwrap_or_default()
    }

    /// Length of the whole message in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload().len()
    }

    /// Never true: a frame holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The message's bytes, as `SendToPeer` would carry them.
    pub fn to_vec(&self) -> Vec<u8> {
        [&self.head[..], self.payload()].concat()
    }
}

/// Counters for the app, the demo page and benchmarks.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Media bytes downloaded over HTTP by the engine.
    pub http_down: u64,
    /// Media bytes received from peers and accepted (verified).
    pub p2p_down: u64,
    /// Media bytes sent to peers.
    pub p2p_up: u64,
    /// Bytes from peers that failed a check and were discarded.
    pub p2p_discarded: u64,
    /// Segments delivered to the player, by where most of their bytes came from.
    pub segments_http: u64,
    pub segments_p2p: u64,
    /// Connected peers over all swarms.
    pub peers: u32,
    pub peers_banned: u32,
    /// Bytes currently held by the segment cache.
    pub cache_bytes: u64,
    /// Per connected peer.
    pub per_peer: Vec<PeerStats>,
    /// The CDN path is failing or too slow (between `CdnDegraded` and `CdnRecovered`).
    #[serde(default)]
    pub cdn_degraded: bool,
    /// EWMA of time to first byte of HTTP transfers, ms (0 before the first).
    #[serde(default)]
    pub http_ttfb_ms: f64,
    /// EWMA of time to first byte of peer requests, ms (0 before the first).
    #[serde(default)]
    pub p2p_ttfb_ms: f64,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    pub peer: PeerId,
    pub swarm: SwarmId,
    pub down_bytes: u64,
    pub up_bytes: u64,
    /// EWMA of measured download throughput from this peer, bytes/s.
    pub throughput: f64,
    /// EWMA of round-trip time, ms.
    pub rtt_ms: f64,
    pub strikes: u32,
    pub score: f64,
    /// Times we gave up on a request to this peer because it sent nothing (never decays;
    /// the score's stall penalty does).
    #[serde(default)]
    pub stalls: u32,
}

/// Serde for shared segment bytes: a byte string on the wire, like `serde_bytes`.
mod shared_bytes {
    use crate::store::SegmentBytes;
    use serde::{Deserializer, Serializer};
    use std::rc::Rc;

    pub fn serialize<S: Serializer>(v: &SegmentBytes, s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(v.as_slice(), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SegmentBytes, D::Error> {
        serde_bytes::deserialize::<Vec<u8>, D>(d).map(Rc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Ids are map keys whose iteration order shows in outputs: the hand-written `Ord`
        /// must order exactly as the bytes do.
        #[test]
        fn id_order_is_byte_order(a in any::<[u8; 20]>(), b in any::<[u8; 20]>(), cut in 0usize..20) {
            prop_assert_eq!(SwarmId(a).cmp(&SwarmId(b)), a.cmp(&b));
            prop_assert_eq!(PeerId(a).partial_cmp(&PeerId(b)), Some(a.cmp(&b)));
            // Ids sharing a prefix, down to all but the last bytes.
            let mut c = a;
            c[cut..].copy_from_slice(&b[cut..]);
            prop_assert_eq!(SwarmId(a).cmp(&SwarmId(c)), a.cmp(&c));
        }
    }
}
