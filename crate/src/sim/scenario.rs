//! Scenario files: what the simulated world looks like. TOML (or JSON), every field has a
//! default, unknown fields are errors (a typo must not silently fall back to a default).
//!
//! Invariants: `Scenario::validate` rejects values the simulator cannot honour (empty
//! rendition ladder, zero durations, fractions outside [0, 1], weights that sum to 0), so the
//! event loop never divides by zero or indexes an empty list.

use crate::types::Config;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    /// Simulated wall time, seconds.
    pub duration_s: u64,
    /// Every byte quantity (segment sizes, link and CDN rates, upload budget, cache budget) is
    /// multiplied by this in the simulation and divided back in the report: the same timing
    /// with fewer bytes to move. 1.0 = real sizes.
    pub byte_scale: f64,
    pub stream: Stream,
    /// Link profiles viewers are drawn from (by weight).
    pub links: Vec<LinkProfile>,
    /// Fraction of viewers behind a NAT that cannot reach another such viewer.
    pub nat_fraction: f64,
    pub groups: Vec<Group>,
    pub cdn: Cdn,
    pub tracker: Tracker,
    pub player: Player,
    /// The engine configuration every viewer runs (`Config`, camelCase keys).
    pub engine: Config,
    /// When set, each viewer's `uploadBytesPerSec` is this fraction of its modelled uplink
    /// (a host that knows its uplink); otherwise `engine.uploadBytesPerSec` applies as is.
    pub upload_fraction_of_uplink: Option<f64>,
    /// Time-series resolution, seconds.
    pub sample_s: u64,
    /// The origin publishes an integrity manifest (docs/MANIFEST.md: size, SHA-256 and
    /// per-chunk hashes of every segment, built from the published bytes); each viewer gets
    /// it with every playlist load, so peers' chunks are checked against it.
    pub manifest: bool,
    /// Networks (ISPs, regions) the viewers are placed in, by weight; empty = one flat
    /// network where a peer path's latency is only the two access links.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
}

/// A network (an ISP or a region): its share of the viewers, the latency added to a path
/// between two of its viewers, and its link to the other networks (latency and capacity).
/// A viewer's network is chosen by the same per-viewer draw that decides which viewers a
/// `fraction` outage hits, so networks are contiguous ranges of that draw in list order.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    pub name: String,
    pub weight: f64,
    /// One-way latency added to a path inside this network (on top of both access links).
    pub latency_ms: u64,
    /// One-way latency from this network to the exchange with the others: a path between
    /// networks A and B adds A's and B's.
    pub inter_latency_ms: u64,
    /// Capacity of this network's link to the others, Mbit/s each way, shared by every
    /// peer message that leaves or enters the network.
    pub inter_mbps: f64,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            name: "net".into(),
            weight: 1.0,
            latency_ms: 2,
            inter_latency_ms: 20,
            inter_mbps: 1_000.0,
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "unnamed".into(),
            seed: 1,
            duration_s: 600,
            byte_scale: 1.0,
            stream: Stream::default(),
            links: vec![
                LinkProfile {
                    name: "home-50/10".into(),
                    weight: 0.6,
                    down_mbps: 50.0,
                    up_mbps: 10.0,
                    latency_ms: 20,
                },
                LinkProfile {
                    name: "mobile-20/2".into(),
                    weight: 0.3,
                    down_mbps: 20.0,
                    up_mbps: 2.0,
                    latency_ms: 40,
                },
                LinkProfile {
                    name: "fiber-300/100".into(),
                    weight: 0.1,
                    down_mbps: 300.0,
                    up_mbps: 100.0,
                    latency_ms: 10,
                },
            ],
            nat_fraction: 0.2,
            groups: vec![Group::default()],
            cdn: Cdn::default(),
            tracker: Tracker::default(),
            player: Player::default(),
            engine: Config::default(),
            upload_fraction_of_uplink: Some(0.8),
            sample_s: 5,
            manifest: false,
            networks: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stream {
    pub live: bool,
    pub segment_ms: u64,
    /// Rendition ladder, bits/s, lowest first.
    pub bitrates: Vec<u64>,
    /// Live: segments listed in the playlist.
    pub live_window: u64,
    /// VOD: segments in the asset.
    pub vod_segments: u64,
    /// Per-segment size variation, ± this fraction (encoders are not constant bitrate).
    pub size_jitter: f64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            live: true,
            segment_ms: 6_000,
            bitrates: vec![1_200_000, 2_500_000],
            live_window: 10,
            vod_segments: 150,
            size_jitter: 0.15,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkProfile {
    pub name: String,
    pub weight: f64,
    pub down_mbps: f64,
    pub up_mbps: f64,
    /// One-way latency of the access link; peer RTT = 2 * (a + b).
    pub latency_ms: u64,
}

impl Default for LinkProfile {
    fn default() -> Self {
        LinkProfile {
            name: "home".into(),
            weight: 1.0,
            down_mbps: 50.0,
            up_mbps: 10.0,
            latency_ms: 20,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Honest,
    /// Inverts the payload of every `Data` message it sends (structurally broken chunks).
    Corrupter,
    /// Keeps the MPEG-TS sync bytes but flips content bytes: only a hash catches it.
    StealthCorrupter,
    /// Announces (`Have`) each new live segment as soon as it appears, without having it.
    Liar,
    /// Never uploads (`uploadBytesPerSec = 0`).
    FreeRider,
    /// Floods its peers every segment: requests for every segment of the window and beyond,
    /// `Have` for segments that do not exist yet, and chunks nobody asked for.
    Flooder,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub count: u64,
    pub role: Role,
    /// Joins are spread uniformly over [join_from_s, join_to_s].
    pub join_from_s: f64,
    pub join_to_s: f64,
    /// If set, each viewer leaves at a uniform time in [leave_from_s, leave_to_s].
    pub leave_from_s: Option<f64>,
    pub leave_to_s: Option<f64>,
    /// Random churn: this fraction of the group's viewers leaves per minute (exponential
    /// session lengths) and each leaver is replaced by a newcomer a few seconds later.
    pub churn_per_min: f64,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            name: "viewers".into(),
            count: 100,
            role: Role::Honest,
            join_from_s: 0.0,
            join_to_s: 60.0,
            leave_from_s: None,
            leave_to_s: None,
            churn_per_min: 0.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageKind {
    /// Requests fail at once (HTTP 503 after the time to first byte).
    Error,
    /// Requests hang: no byte arrives, the loader times out.
    Stall,
    /// The CDN path still works but at most `mbps` (per viewer).
    Throttle,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outage {
    pub from_s: f64,
    pub duration_s: f64,
    /// Fraction of viewers affected (an ISP): viewers are assigned to the group by a
    /// per-viewer draw, so the same viewers are affected by every outage with this fraction.
    pub fraction: f64,
    pub kind: OutageKind,
    /// `throttle` only: the affected viewers' CDN throughput, Mbit/s.
    pub mbps: f64,
    /// The outage hits this network's viewers (a name from `networks`) instead of a
    /// `fraction` of all viewers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

impl Default for Outage {
    fn default() -> Self {
        Outage {
            from_s: 0.0,
            duration_s: 60.0,
            fraction: 1.0,
            kind: OutageKind::Error,
            mbps: 1.0,
            network: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cdn {
    /// Per-viewer CDN throughput cap (the viewer's downlink also limits it).
    pub mbps: f64,
    /// Time to first byte, uniform in [ttfb_ms_min, ttfb_ms_max].
    pub ttfb_ms_min: u64,
    pub ttfb_ms_max: u64,
    pub outages: Vec<Outage>,
}

impl Default for Cdn {
    fn default() -> Self {
        Cdn {
            mbps: 40.0,
            ttfb_ms_min: 30,
            ttfb_ms_max: 150,
            outages: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tracker {
    /// Announce round trip: from `Announce` to the offers reaching the chosen peers.
    pub announce_delay_ms: u64,
    /// Signalling + ICE + DTLS: from both sides accepting to the data channel opening.
    pub connect_ms: u64,
    /// A connection that cannot be established (NAT) fails after this long.
    pub connect_timeout_ms: u64,
    /// Probability that a connection fails for other reasons.
    pub connect_fail: f64,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            announce_delay_ms: 150,
            connect_ms: 600,
            connect_timeout_ms: 5_000,
            connect_fail: 0.05,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Player {
    /// Buffer ahead the player tries to keep (hls.js `maxBufferLength`).
    pub max_buffer_ms: u64,
    /// Live start: this many segments behind the newest (hls.js `liveSyncDurationCount`).
    pub live_sync_segments: u64,
    /// Buffer needed to resume after a stall.
    pub resume_buffer_ms: u64,
    /// How often the player reports its playhead to the engine.
    pub playhead_interval_ms: u64,
    /// Throughput-based ABR over the ladder; off = stay on `start_rendition`.
    pub abr: bool,
    pub start_rendition: usize,
    /// The loader gives up on a request with no progress for this long.
    pub http_timeout_ms: u64,
    /// Delay before the player retries a failed direct load.
    pub retry_ms: u64,
}

impl Default for Player {
    fn default() -> Self {
        Player {
            max_buffer_ms: 30_000,
            live_sync_segments: 3,
            resume_buffer_ms: 2_000,
            playhead_interval_ms: 1_000,
            abr: true,
            start_rendition: 0,
            http_timeout_ms: 10_000,
            retry_ms: 1_000,
        }
    }
}

impl Scenario {
    /// Parses TOML, or JSON when the text starts with `{`.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.to_string())?
        };
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        let frac = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be in [0, 1], got {v}"))
            }
        };
        if self.duration_s == 0 || self.duration_s > 86_400 {
            return Err("duration_s must be in 1..=86400".into());
        }
        if self.byte_scale.is_nan() || self.byte_scale <= 0.0 || self.byte_scale > 1.0 {
            return Err("byte_scale must be in (0, 1]".into());
        }
        if self.stream.bitrates.is_empty() || self.stream.bitrates.contains(&0) {
            return Err("stream.bitrates must list positive bitrates".into());
        }
        if self.stream.segment_ms < 100 {
            return Err("stream.segment_ms must be >= 100".into());
        }
        if self.stream.live && self.stream.live_window == 0 {
            return Err("stream.live_window must be >= 1".into());
        }
        if !self.stream.live && self.stream.vod_segments == 0 {
            return Err("stream.vod_segments must be >= 1".into());
        }
        frac("stream.size_jitter", self.stream.size_jitter)?;
        if self.links.is_empty() || self.links.iter().map(|l| l.weight).sum::<f64>() <= 0.0 {
            return Err("links must have a positive total weight".into());
        }
        for l in &self.links {
            if l.weight < 0.0 || l.down_mbps.is_nan() || l.down_mbps <= 0.0 || l.up_mbps < 0.0 {
                return Err(format!(
                    "link {}: weight >= 0, down_mbps > 0, up_mbps >= 0",
                    l.name
                ));
            }
        }
        frac("nat_fraction", self.nat_fraction)?;
        if self.groups.iter().map(|g| g.count).sum::<u64>() == 0 {
            return Err("groups must hold at least one viewer".into());
        }
        for g in &self.groups {
            if g.join_to_s < g.join_from_s || g.join_from_s < 0.0 {
                return Err(format!("group {}: 0 <= join_from_s <= join_to_s", g.name));
            }
            if g.leave_from_s.is_some() != g.leave_to_s.is_some() {
                return Err(format!(
                    "group {}: set both leave_from_s and leave_to_s",
                    g.name
                ));
            }
            if let (Some(a), Some(b)) = (g.leave_from_s, g.leave_to_s) {
                if b < a {
                    return Err(format!("group {}: leave_from_s <= leave_to_s", g.name));
                }
            }
            if !(0.0..=10.0).contains(&g.churn_per_min) {
                return Err(format!("group {}: churn_per_min in [0, 10]", g.name));
            }
        }
        if self.cdn.mbps.is_nan()
            || self.cdn.mbps <= 0.0
            || self.cdn.ttfb_ms_max < self.cdn.ttfb_ms_min
        {
            return Err("cdn: mbps > 0 and ttfb_ms_min <= ttfb_ms_max".into());
        }
        for o in &self.cdn.outages {
            frac("cdn.outages.fraction", o.fraction)?;
            if o.kind == OutageKind::Throttle && (o.mbps.is_nan() || o.mbps <= 0.0) {
                return Err("cdn.outages: a throttle needs mbps > 0".into());
            }
            if o.duration_s < 0.0 || o.from_s < 0.0 {
                return Err("cdn.outages: from_s and duration_s >= 0".into());
            }
            if let Some(n) = &o.network {
                if self.network_index(n).is_none() {
                    return Err(format!("cdn.outages: no network named {n}"));
                }
            }
        }
        if !self.networks.is_empty() && self.networks.iter().map(|n| n.weight).sum::<f64>() <= 0.0 {
            return Err("networks must have a positive total weight".into());
        }
        for (i, n) in self.networks.iter().enumerate() {
            if n.weight.is_nan() || n.weight < 0.0 || n.inter_mbps.is_nan() || n.inter_mbps <= 0.0 {
                return Err(format!(
                    "network {}: weight >= 0 and inter_mbps > 0",
                    n.name
                ));
            }
            if self.network_index(&n.name) != Some(i) {
                return Err(format!("network {}: names must be unique", n.name));
            }
        }
        if self.networks.len() > usize::from(u16::MAX) {
            return Err("at most 65535 networks".into());
        }
        frac("tracker.connect_fail", self.tracker.connect_fail)?;
        if self.player.start_rendition >= self.stream.bitrates.len() {
            return Err("player.start_rendition beyond the ladder".into());
        }
        if self.player.playhead_interval_ms == 0 || self.player.http_timeout_ms == 0 {
            return Err("player intervals must be > 0".into());
        }
        if let Some(f) = self.upload_fraction_of_uplink {
            frac("upload_fraction_of_uplink", f)?;
        }
        if self.sample_s == 0 {
            return Err("sample_s must be >= 1".into());
        }
        Ok(())
    }

    pub fn network_index(&self, name: &str) -> Option<usize> {
        self.networks.iter().position(|n| n.name == name)
    }

    /// The network a viewer with per-viewer draw `draw` (uniform in [0, 1)) is placed in:
    /// networks are consecutive ranges of the draw, by weight, in list order.
    pub fn network_of(&self, draw: f64) -> Option<u16> {
        let total: f64 = self.networks.iter().map(|n| n.weight).sum();
        if self.networks.is_empty() || total <= 0.0 {
            return None;
        }
        let mut left = draw * total;
        for (i, n) in self.networks.iter().enumerate() {
            if left < n.weight {
                return Some(i as u16);
            }
            left -= n.weight;
        }
        Some((self.networks.len() - 1) as u16)
    }

    pub fn viewer_count(&self) -> u64 {
        self.groups.iter().map(|g| g.count).sum()
    }
}
