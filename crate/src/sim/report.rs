//! The report: the browser benchmark's fields plus CDN peak, per-viewer percentiles and a
//! time series, for the Shoal run and the P2P-disabled baseline over the same world.
//!
//! Invariants: byte figures are rescaled to real bytes (divided by `byte_scale`); the
//! JSON is a pure function of the run outputs (no wall clock, ordered fields), so the same
//! scenario and seed give byte-identical JSON.

use super::scenario::{Outage, Role, Scenario};
use super::world::{RunOutput, ViewerOutcome};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pct {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Pct {
    pub fn of(mut xs: Vec<f64>) -> Pct {
        if xs.is_empty() {
            return Pct::default();
        }
        xs.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len()) - 1;
            round3(xs[i])
        };
        Pct {
            p10: at(0.10),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: round3(xs[xs.len() - 1]),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PerViewer {
    pub offload: Pct,
    pub startup_ms: Pct,
    pub rebuffer_ratio: Pct,
    pub stalls: Pct,
    pub cdn_mb: Pct,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeriesRow {
    pub t_s: u64,
    pub viewers: u32,
    pub playing: u32,
    pub stalled: u32,
    pub stalled_affected: u32,
    pub cdn_mbps: f64,
    pub p2p_mbps: f64,
    pub conns_per_viewer: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// P2P bytes accepted by engines / (those + bytes the CDN served).
    pub offload: f64,
    pub cdn_bytes: u64,
    pub p2p_bytes: u64,
    pub p2p_up_bytes: u64,
    pub startup_ms_median: f64,
    /// Stalled time / (playing + stalled time), over all viewers.
    pub rebuffer_ratio: f64,
    pub stalls: u64,
    pub corrupted_delivered: u64,
    pub banned_peers: u64,
    /// Bans of peers that were in fact honest.
    pub banned_honest: u64,
    pub ban_reasons: std::collections::BTreeMap<String, u64>,
    /// Peer messages delivered, by type.
    pub messages: std::collections::BTreeMap<String, u64>,
    pub verification_failures: u64,
    /// Adversary viewers (corrupters, liars, free-riders) banned by at least one peer, of
    /// `adversaries` in the run.
    pub adversaries_banned: u64,
    pub adversaries: u64,
    /// Largest engine segment cache observed in one viewer (checked every 10 s), and the
    /// configured budget (real bytes).
    pub max_cache_bytes: u64,
    pub cache_budget_bytes: u64,
    /// Requests the engine failed over to the player's own HTTP load.
    pub failed_over: u64,
    /// Viewers that never played a frame.
    pub never_started: u64,
    pub skipped_segments: u64,
    /// Max CDN egress over any 10 s window, Mbit/s.
    pub cdn_peak_mbps_10s: f64,
    pub viewers: u64,
    pub events: u64,
    pub violations: u64,
    pub violation_notes: Vec<String>,
    pub per_viewer: PerViewer,
    /// Same figures restricted to honest viewers (adversaries excluded).
    pub honest_rebuffer_ratio: f64,
    pub honest_offload: f64,
    /// The viewers hit by the scenario's CDN outages (absent without outages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<Affected>,
    /// Where the P2P bytes went between the scenario's networks (absent without networks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<Networks>,
    pub timeseries: Vec<SeriesRow>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Networks {
    /// P2P payload bytes that crossed from one network to another / all P2P payload bytes.
    pub cross_share: f64,
    pub per_network: Vec<NetworkReport>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkReport {
    pub name: String,
    pub viewers: u64,
    pub offload: f64,
    pub rebuffer_ratio: f64,
    pub stalls: u64,
    /// Of the P2P bytes this network's viewers received, the share from other networks.
    pub cross_share: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Affected {
    pub viewers: u64,
    pub rebuffer_ratio: f64,
    pub stalls: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub duration_s: u64,
    pub byte_scale: f64,
    pub live: bool,
    /// The scenario's CDN faults, for plots.
    pub outages: Vec<Outage>,
    pub shoal: RunReport,
    pub baseline: RunReport,
    /// CDN bytes without Shoal / with Shoal (the "divide by 4-10" figure).
    pub cdn_ratio: f64,
    /// CDN 10 s peak without Shoal / with Shoal.
    pub peak_ratio: f64,
}

fn unscale(bytes: u64, scale: f64) -> u64 {
    (bytes as f64 / scale).round() as u64
}

pub fn summarize(sc: &Scenario, out: &RunOutput) -> RunReport {
    let scale = sc.byte_scale;
    let vs: &[ViewerOutcome] = &out.viewers;
    let p2p: u64 = vs.iter().map(|v| v.p2p_bytes).sum();
    let up: u64 = vs.iter().map(|v| v.p2p_up).sum();
    let cdn = out.totals.cdn_bytes;
    let offload = if p2p + cdn > 0 {
        p2p as f64 / (p2p + cdn) as f64
    } else {
        0.0
    };
    let ratio = |stall: u64, watch: u64| {
        if watch > 0 {
            stall as f64 / watch as f64
        } else {
            0.0
        }
    };
    let stall_total: u64 = vs.iter().map(|v| v.stall_ms).sum();
    let watch_total: u64 = vs.iter().map(|v| v.watch_ms).sum();
    let honest: Vec<&ViewerOutcome> = vs.iter().filter(|v| v.role == Role::Honest).collect();
    let h_stall: u64 = honest.iter().map(|v| v.stall_ms).sum();
    let h_watch: u64 = honest.iter().map(|v| v.watch_ms).sum();
    let h_p2p: u64 = honest.iter().map(|v| v.p2p_bytes).sum();
    let hit: Vec<&ViewerOutcome> = vs.iter().filter(|v| v.affected).collect();
    let affected = (!sc.cdn.outages.is_empty()).then(|| Affected {
        viewers: hit.len() as u64,
        rebuffer_ratio: round6(ratio(
            hit.iter().map(|v| v.stall_ms).sum(),
            hit.iter().map(|v| v.watch_ms).sum(),
        )),
        stalls: hit.iter().map(|v| v.stalls as u64).sum(),
    });
    let networks = (!sc.networks.is_empty()).then(|| Networks {
        cross_share: round6(share(out.totals.p2p_cross_bytes, out.totals.p2p_wire_bytes)),
        per_network: sc
            .networks
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let of: Vec<&ViewerOutcome> =
                    vs.iter().filter(|v| v.net == Some(i as u16)).collect();
                let sum = |f: fn(&ViewerOutcome) -> u64| of.iter().map(|v| f(v)).sum::<u64>();
                let p2p = sum(|v| v.p2p_bytes);
                NetworkReport {
                    name: n.name.clone(),
                    viewers: of.len() as u64,
                    offload: round6(share(p2p, p2p + sum(|v| v.cdn_bytes))),
                    rebuffer_ratio: round6(ratio(sum(|v| v.stall_ms), sum(|v| v.watch_ms))),
                    stalls: sum(|v| u64::from(v.stalls)),
                    cross_share: round6(share(sum(|v| v.p2p_in_cross), sum(|v| v.p2p_in))),
                }
            })
            .collect(),
    });
    let h_cdn: u64 = honest.iter().map(|v| v.cdn_bytes).sum();
    let startups: Vec<f64> = vs
        .iter()
        .filter_map(|v| v.startup_ms.map(|s| s as f64))
        .collect();
    let per_viewer = PerViewer {
        offload: Pct::of(
            vs.iter()
                .filter(|v| v.p2p_bytes + v.cdn_bytes > 0)
                .map(|v| v.p2p_bytes as f64 / (v.p2p_bytes + v.cdn_bytes) as f64)
                .collect(),
        ),
        startup_ms: Pct::of(startups.clone()),
        rebuffer_ratio: Pct::of(
            vs.iter()
                .filter(|v| v.watch_ms > 0)
                .map(|v| ratio(v.stall_ms, v.watch_ms))
                .collect(),
        ),
        stalls: Pct::of(vs.iter().map(|v| v.stalls as f64).collect()),
        cdn_mb: Pct::of(
            vs.iter()
                .map(|v| unscale(v.cdn_bytes, scale) as f64 / 1e6)
                .collect(),
        ),
    };
    let win: usize = 10;
    let mut peak = 0u64;
    let mut sum = 0u64;
    for (i, b) in out.cdn_per_s.iter().enumerate() {
        sum += b;
        if i >= win {
            sum -= out.cdn_per_s[i - win];
        }
        peak = peak.max(sum);
    }
    let peak_mbps = unscale(peak, scale) as f64 * 8.0 / 1e6 / win as f64;
    let per = sc.sample_s as f64;
    let timeseries = out
        .samples
        .iter()
        .map(|s| SeriesRow {
            t_s: s.t_s,
            viewers: s.viewers,
            playing: s.playing,
            stalled: s.stalled,
            stalled_affected: s.stalled_affected,
            cdn_mbps: round3(unscale(s.cdn_bytes, scale) as f64 * 8.0 / 1e6 / per),
            p2p_mbps: round3(unscale(s.p2p_bytes, scale) as f64 * 8.0 / 1e6 / per),
            conns_per_viewer: if s.viewers > 0 {
                round3(s.peers as f64 / s.viewers as f64)
            } else {
                0.0
            },
        })
        .collect();
    RunReport {
        offload: round6(offload),
        cdn_bytes: unscale(cdn, scale),
        p2p_bytes: unscale(p2p, scale),
        p2p_up_bytes: unscale(up, scale),
        startup_ms_median: per_viewer.startup_ms.p50,
        rebuffer_ratio: round6(ratio(stall_total, watch_total)),
        stalls: vs.iter().map(|v| v.stalls as u64).sum(),
        corrupted_delivered: vs.iter().map(|v| v.corrupted as u64).sum(),
        banned_peers: out.totals.bans,
        banned_honest: out.totals.bans_of_honest,
        ban_reasons: out.totals.ban_reasons.clone(),
        messages: out
            .totals
            .msg_kinds
            .iter()
            .map(|(k, n)| (kind_name(*k).to_string(), *n))
            .collect(),
        verification_failures: out.totals.verification_failures,
        adversaries_banned: out.totals.adversaries_banned,
        adversaries: out.totals.adversaries,
        max_cache_bytes: unscale(out.totals.max_cache_bytes, scale),
        cache_budget_bytes: sc.engine.cache_bytes,
        failed_over: out.totals.fail_segments,
        never_started: vs.iter().filter(|v| v.startup_ms.is_none()).count() as u64,
        skipped_segments: vs.iter().map(|v| v.skipped as u64).sum(),
        cdn_peak_mbps_10s: round3(peak_mbps),
        viewers: vs.len() as u64,
        events: out.totals.events,
        violations: out.totals.violations,
        violation_notes: out.totals.violation_notes.clone(),
        per_viewer,
        honest_rebuffer_ratio: round6(ratio(h_stall, h_watch)),
        honest_offload: if h_p2p + h_cdn > 0 {
            round6(h_p2p as f64 / (h_p2p + h_cdn) as f64)
        } else {
            0.0
        },
        affected,
        networks,
        timeseries,
    }
}

/// `part / whole`, 0 when `whole` is 0.
fn share(part: u64, whole: u64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

fn kind_name(k: u8) -> &'static str {
    use crate::wire::kind;
    match k {
        kind::HANDSHAKE => "handshake",
        kind::BITFIELD => "bitfield",
        kind::HAVE => "have",
        kind::DOWNLOADING => "downloading",
        kind::LOST => "lost",
        kind::REQUEST => "request",
        kind::CANCEL => "cancel",
        kind::DATA => "data",
        kind::ABSENT => "absent",
        kind::BUSY => "busy",
        kind::PING => "ping",
        kind::PONG => "pong",
        _ => "other",
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Report {
    pub fn new(sc: &Scenario, shoal: RunReport, baseline: RunReport) -> Report {
        let div = |a: f64, b: f64| if b > 0.0 { round3(a / b) } else { 0.0 };
        Report {
            scenario: sc.name.clone(),
            seed: sc.seed,
            duration_s: sc.duration_s,
            byte_scale: sc.byte_scale,
            live: sc.stream.live,
            outages: sc.cdn.outages.clone(),
            cdn_ratio: div(baseline.cdn_bytes as f64, shoal.cdn_bytes as f64),
            peak_ratio: div(baseline.cdn_peak_mbps_10s, shoal.cdn_peak_mbps_10s),
            shoal,
            baseline,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let (b, h) = (&self.baseline, &self.shoal);
        let _ = writeln!(
            s,
            "scenario {} (seed {}, {} s, {} viewers, {}, byte_scale {})",
            self.scenario,
            self.seed,
            self.duration_s,
            h.viewers,
            if self.live { "live" } else { "vod" },
            self.byte_scale
        );
        let _ = writeln!(s, "{:<28} {:>16} {:>16}", "", "baseline (no P2P)", "shoal");
        let row = |s: &mut String, name: &str, a: String, c: String| {
            let _ = writeln!(s, "{name:<28} {a:>16} {c:>16}");
        };
        // A row whose two columns are `cell` of the baseline and of the Shoal run.
        let both = |s: &mut String, name: &str, cell: &dyn Fn(&RunReport) -> String| {
            row(s, name, cell(b), cell(h));
        };
        let gb = |x: u64| format!("{:.3} GB", x as f64 / 1e9);
        both(&mut s, "offload", &|r| pct(r.offload));
        both(&mut s, "cdnBytes", &|r| gb(r.cdn_bytes));
        both(&mut s, "p2pBytes", &|r| gb(r.p2p_bytes));
        both(&mut s, "CDN peak (10 s window)", &|r| {
            format!("{:.1} Mb/s", r.cdn_peak_mbps_10s)
        });
        both(&mut s, "startupMsMedian", &|r| {
            format!("{:.0}", r.startup_ms_median)
        });
        both(&mut s, "startup ms p90 / p99", &|r| {
            format!(
                "{:.0}/{:.0}",
                r.per_viewer.startup_ms.p90, r.per_viewer.startup_ms.p99
            )
        });
        both(&mut s, "rebufferRatio", &|r| {
            format!("{:.4}%", r.rebuffer_ratio * 100.0)
        });
        both(&mut s, "rebuffer p90 / p99 viewer", &|r| {
            format!(
                "{:.2}/{:.2}%",
                r.per_viewer.rebuffer_ratio.p90 * 100.0,
                r.per_viewer.rebuffer_ratio.p99 * 100.0
            )
        });
        both(&mut s, "stalls", &|r| r.stalls.to_string());
        if let (Some(ba), Some(ha)) = (&b.affected, &h.affected) {
            row(
                &mut s,
                &format!("affected ({}) rebuffer", ha.viewers),
                format!("{:.4}%", ba.rebuffer_ratio * 100.0),
                format!("{:.4}%", ha.rebuffer_ratio * 100.0),
            );
            row(
                &mut s,
                "affected stalls",
                ba.stalls.to_string(),
                ha.stalls.to_string(),
            );
        }
        if let Some(hn) = &h.networks {
            row(
                &mut s,
                "P2P bytes across networks",
                "-".into(),
                pct(hn.cross_share),
            );
            let base = b.networks.as_ref().map(|n| n.per_network.as_slice());
            for (i, n) in hn.per_network.iter().enumerate() {
                let br = base
                    .and_then(|p| p.get(i))
                    .map_or(0.0, |x| x.rebuffer_ratio);
                row(
                    &mut s,
                    &format!("{} ({}) rebuffer", n.name, n.viewers),
                    format!("{:.4}%", br * 100.0),
                    format!("{:.4}%", n.rebuffer_ratio * 100.0),
                );
                row(
                    &mut s,
                    &format!("{} offload / across", n.name),
                    "-".into(),
                    format!("{} / {}", pct(n.offload), pct(n.cross_share)),
                );
            }
        }
        row(
            &mut s,
            "offload p10/p50/p90 viewer",
            "-".into(),
            format!(
                "{:.0}/{:.0}/{:.0}%",
                h.per_viewer.offload.p10 * 100.0,
                h.per_viewer.offload.p50 * 100.0,
                h.per_viewer.offload.p90 * 100.0
            ),
        );
        both(&mut s, "corruptedDelivered", &|r| {
            r.corrupted_delivered.to_string()
        });
        both(&mut s, "bannedPeers (honest)", &|r| {
            format!("{} ({})", r.banned_peers, r.banned_honest)
        });
        both(&mut s, "adversaries banned", &|r| {
            format!("{}/{}", r.adversaries_banned, r.adversaries)
        });
        row(
            &mut s,
            "max cache per viewer (MB)",
            format!("{:.2}", b.max_cache_bytes as f64 / 1e6),
            format!(
                "{:.2} of {:.2}",
                h.max_cache_bytes as f64 / 1e6,
                h.cache_budget_bytes as f64 / 1e6
            ),
        );
        both(&mut s, "failed over to player", &|r| {
            r.failed_over.to_string()
        });
        both(&mut s, "never started / skipped", &|r| {
            format!("{}/{}", r.never_started, r.skipped_segments)
        });
        both(&mut s, "invariant violations", &|r| {
            r.violations.to_string()
        });
        both(&mut s, "events", &|r| r.events.to_string());
        let _ = writeln!(
            s,
            "CDN without / with Shoal: bytes x{:.2}, 10 s peak x{:.2}",
            self.cdn_ratio, self.peak_ratio
        );
        for n in h
            .violation_notes
            .iter()
            .chain(b.violation_notes.iter())
            .take(5)
        {
            let _ = writeln!(s, "  violation: {n}");
        }
        s
    }

    /// Time series of both runs, one row per sample.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "t_s,viewers,shoal_playing,shoal_stalled,shoal_cdn_mbps,shoal_p2p_mbps,shoal_conns_per_viewer,base_stalled,base_cdn_mbps,shoal_stalled_affected,base_stalled_affected\n",
        );
        for (h, b) in self.shoal.timeseries.iter().zip(&self.baseline.timeseries) {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{}",
                h.t_s,
                h.viewers,
                h.playing,
                h.stalled,
                h.cdn_mbps,
                h.p2p_mbps,
                h.conns_per_viewer,
                b.stalled,
                b.cdn_mbps,
                h.stalled_affected,
                b.stalled_affected
            );
        }
        s
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let p = Pct::of((1..=100).map(|x| x as f64).collect());
        assert_eq!(
            (p.p10, p.p50, p.p90, p.p99, p.max),
            (10.0, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Pct::of(vec![]), Pct::default());
        assert_eq!(Pct::of(vec![3.0]).p10, 3.0);
    }
}
