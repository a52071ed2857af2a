//! Swarm scenarios: real engines in the in-process harness (crate/tests/harness), each test
//! asserting a behaviour the engine must have. `cargo test --test swarm -- --nocapture`
//! prints each run's table.

mod harness;

use harness::cdn::{CdnFault, FaultKind};
use harness::net::Behavior;
use harness::{offload, Scenario, Sim, Summary, ViewerCfg, ViewerSummary};
use shoal::Config;

fn print(sim: &Sim, title: &str) -> Summary {
    let s = sim.summary();
    println!("{}", s.table(title));
    s
}

fn assert_contract(sim: &Sim) {
    let v = sim.contract_violations();
    assert!(
        v.is_empty(),
        "engine broke the host contract:\n{}",
        v.join("\n")
    );
}

/// Segments a viewer must have played by `end_ms` if it never stalled: everything from
/// its start position up to the playhead (a few segments of slack for startup).
fn min_segments(sc: &Scenario, join_ms: u64, end_ms: u64) -> u32 {
    let played = end_ms.saturating_sub(join_ms) / sc.segment_ms;
    played.saturating_sub(3) as u32
}

/// Asserts that `v` never stalled and played at least `min_segments` by `end_ms`.
fn assert_played_through(sc: &Scenario, v: &ViewerSummary, end_ms: u64) {
    assert_eq!(
        v.stalls, 0,
        "viewer {} stalled {} ms",
        v.index, v.stalled_ms
    );
    assert!(
        v.delivered >= min_segments(sc, v.joined_ms, end_ms),
        "viewer {} played {}",
        v.index,
        v.delivered
    );
}

/// The viewers the corrupter (viewer 0) sent bad chunks to, after asserting there were some
/// and that no corrupted segment reached a player.
fn corrupter_victims(sim: &Sim, s: &Summary) -> Vec<usize> {
    let mut victims: Vec<usize> = sim.net.log.corrupted.iter().map(|t| t.victim).collect();
    victims.sort_unstable();
    victims.dedup();
    assert!(
        !victims.is_empty(),
        "nobody requested from the corrupter: nothing tested"
    );
    assert_eq!(s.corrupted(), 0, "a corrupted segment reached a player");
    victims
}

/// Asserts that every viewer but the corrupter (viewer 0) banned nobody, never stalled and
/// got all `segments`.
fn assert_honest_viewers_unharmed(s: &Summary, segments: u32) {
    for v in s.viewers.iter().skip(1) {
        assert!(
            v.banned.iter().all(|&b| b == 0),
            "viewer {} banned an honest peer: {:?}",
            v.index,
            v.banned
        );
        assert_eq!(v.stalls, 0, "honest viewer {} stalled", v.index);
        assert_eq!(
            v.delivered, segments,
            "honest viewer {} did not get every segment",
            v.index
        );
    }
}

/// A live scenario of 4 viewers in which viewer 0's CDN has `kind` of fault from 20 s to 32 s.
fn one_cdn_fault(seed: u64, kind: FaultKind) -> Scenario {
    let viewers = (0..4).map(|i| ViewerCfg::new(i * 500)).collect();
    let fault = CdnFault {
        viewer: Some(0),
        from_ms: 20_000,
        until_ms: 32_000,
        kind,
    };
    Scenario {
        cdn_faults: vec![fault],
        ..Scenario::live(seed, viewers)
    }
}

#[test]
fn live_swarm_gets_most_bytes_from_peers_without_stalls() {
    const WARMUP: u64 = 20_000;
    const END: u64 = 70_000;
    // Links differ per viewer (CDN 12-32 Mbit/s, uplink 2.4-16 Mbit/s, 10-60 ms to peers).
    let seed = 0x5107;
    let viewers = (0..8)
        .map(|i| ViewerCfg::varied(i as u64 * 700, seed, i))
        .collect();
    let sc = Scenario {
        jitter_ms: 20,
        ..Scenario::live(seed, viewers)
    };
    let mut sim = Sim::new(sc.clone());
    sim.run_until(WARMUP);
    let warm = print(&sim, "live, 8 viewers, after warm-up");
    sim.run_until(END);
    let end = print(&sim, "live, 8 viewers, end");
    let (p2p, cdn) = (
        end.p2p_bytes - warm.p2p_bytes,
        end.cdn_bytes - warm.cdn_bytes,
    );
    let steady = offload(p2p, cdn);
    println!(
        "steady state ({} s .. {} s): offload {:.1}% cdn {:.2} MB p2p {:.2} MB",
        WARMUP / 1000,
        END / 1000,
        100.0 * steady,
        cdn as f64 / 1e6,
        p2p as f64 / 1e6
    );
    assert_contract(&sim);
    for v in &end.viewers {
        assert!(v.startup_ms.is_some(), "viewer {} never started", v.index);
        let want = min_segments(&sc, v.joined_ms, END);
        assert!(
            v.delivered >= want,
            "viewer {} played {} segments, expected >= {want}",
            v.index,
            v.delivered
        );
        assert_eq!(
            v.skipped, 0,
            "viewer {} fell out of the live window",
            v.index
        );
    }
    assert_eq!(end.corrupted(), 0, "corrupted segments reached a player");
    assert_eq!(
        end.stalls(),
        0,
        "viewers stalled ({} ms in total)",
        end.stalled_ms()
    );
    assert!(
        steady >= 0.5,
        "steady-state offload {:.1}% < 50%",
        100.0 * steady
    );
    // The engines' own accounting must agree that peers carried the bytes.
    let e_p2p: u64 = end.viewers.iter().map(|v| v.stats.p2p_down).sum();
    assert!(
        e_p2p > 0 && e_p2p <= end.p2p_bytes,
        "engine p2p_down {e_p2p} vs harness {}",
        end.p2p_bytes
    );
}

#[test]
fn stalling_peer_is_replaced_by_http_before_the_deadline() {
    // Viewer 0 is ahead (it joined first and prefetched), then stops sending mid-segment:
    // from t = 14 s each request it serves gets 3 chunks and nothing more.
    const END: u64 = 75_000;
    let staller = ViewerCfg {
        behavior: Behavior::Staller {
            from_ms: 14_000,
            pass_chunks: 3,
        },
        ..ViewerCfg::new(0)
    };
    let victim = ViewerCfg::new(8_000);
    let sc = Scenario::vod(0x57a1, 30, vec![staller, victim]);
    let mut sim = Sim::new(sc);
    sim.run_until(END);
    let s = print(&sim, "VOD, staller (0) and victim (1)");
    assert_contract(&sim);

    let dropped: Vec<u64> = sim
        .net
        .log
        .dropped
        .iter()
        .filter(|t| t.victim == 1)
        .filter_map(|t| t.seq)
        .collect();
    assert!(
        !dropped.is_empty(),
        "the victim never requested from the staller after it stalled: nothing tested"
    );
    let victim = &s.viewers[1];
    let player = &sim.viewers[1].player;
    assert_eq!(victim.corrupted, 0);
    assert_eq!(
        victim.stalls, 0,
        "victim stalled for {} ms",
        victim.stalled_ms
    );
    assert_eq!(victim.delivered, 30, "victim did not get every segment");
    // The segments the staller cut off reached the player whole (bytes checked on
    // delivery), and HTTP filled in what the staller withheld.
    let mut replaced = 0;
    for seq in &dropped {
        if let Some(d) = player.deliveries.iter().find(|d| d.seq == *seq) {
            assert!(
                d.http_bytes > 0 || d.direct,
                "segment {seq} was cut off by the staller but shows no HTTP bytes: {d:?}"
            );
            replaced += 1;
        }
    }
    assert!(
        replaced > 0,
        "none of the cut-off segments {dropped:?} was delivered"
    );
    // The victim noticed: the staller was abandoned and deprioritized (stall marks; stalling
    // is not proof of misbehaviour, so no ban is required), or dropped.
    let staller_id = sim.peer_id(0);
    let stalls = victim
        .stats
        .per_peer
        .iter()
        .find(|p| p.peer == staller_id)
        .map_or(0, |p| p.stalls);
    let gone = victim.stats.per_peer.iter().all(|p| p.peer != staller_id);
    assert!(
        stalls > 0 || gone,
        "victim never abandoned the staller: {:?}",
        victim.stats.per_peer
    );
}

#[test]
fn corrupting_peer_is_banned_and_nothing_corrupt_is_played() {
    const END: u64 = 50_000;
    let mut viewers = vec![ViewerCfg {
        behavior: Behavior::Corrupter { from_ms: 0 },
        ..ViewerCfg::new(0)
    }];
    viewers.extend((1..4).map(|i| ViewerCfg::new(4_000 + i * 500)));
    let sc = Scenario::vod(0xC0EE, 25, viewers);
    let mut sim = Sim::new(sc);
    sim.run_until(END);
    let s = print(&sim, "VOD, corrupter (0) and 3 honest viewers");
    assert_contract(&sim);

    let victims = corrupter_victims(&sim, &s);
    for &i in &victims {
        let v = &s.viewers[i];
        assert!(
            v.stats.peers_banned >= 1,
            "viewer {i} got corrupted chunks but banned nobody"
        );
        assert!(
            v.banned.contains(&0),
            "viewer {i} did not close the corrupter as banned: {:?}",
            v.banned
        );
        assert!(
            !sim.viewers[i].log.banned_events.is_empty(),
            "viewer {i}: no PeerBanned event"
        );
    }
    assert_honest_viewers_unharmed(&s, 25);
}

#[test]
fn lone_viewer_plays_everything_over_http() {
    const END: u64 = 40_000;
    let sc = Scenario::live(0x10E, vec![ViewerCfg::new(0)]);
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    let s = print(&sim, "live, one viewer");
    assert_contract(&sim);
    let v = &s.viewers[0];
    assert_eq!(v.p2p_bytes, 0);
    assert_eq!(v.stats.p2p_down, 0);
    assert!(v.stats.http_down > 0);
    assert_eq!(v.stalls, 0, "stalled {} ms", v.stalled_ms);
    assert_eq!(
        v.failed, 0,
        "the engine gave up on segments it could fetch over HTTP"
    );
    assert!(
        v.delivered >= min_segments(&sc, 0, END),
        "only {} segments played",
        v.delivered
    );
    assert_eq!(v.corrupted, 0);
}

#[test]
fn p2p_disabled_viewer_never_touches_peers() {
    const END: u64 = 40_000;
    let mut viewers: Vec<ViewerCfg> = (0..3).map(|i| ViewerCfg::new(i * 500)).collect();
    let off = Config {
        p2p_enabled: false,
        ..Config::default()
    };
    viewers.push(ViewerCfg {
        config: off,
        ..ViewerCfg::new(300)
    });
    let sc = Scenario::live(0x0FF, viewers);
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    let s = print(&sim, "live, 3 viewers + 1 with p2p disabled (3)");
    assert_contract(&sim);
    let log = &sim.viewers[3].log;
    assert_eq!(
        (log.announces, log.connects, log.sends),
        (0, 0, 0),
        "p2p-disabled engine talked to the swarm"
    );
    let v = &s.viewers[3];
    assert_eq!(
        (v.p2p_bytes, v.p2p_sent, v.stats.p2p_down, v.stats.p2p_up),
        (0, 0, 0, 0)
    );
    assert_eq!(v.stalls, 0);
    assert!(v.delivered >= min_segments(&sc, 300, END));
    assert_eq!(s.corrupted(), 0);
}

#[test]
fn same_seed_same_run() {
    const END: u64 = 30_000;
    let run = |seed: u64| {
        let viewers = (0..4).map(|i| ViewerCfg::new(i * 900)).collect();
        let mut sim = Sim::new(Scenario {
            jitter_ms: 20,
            ..Scenario::live(seed, viewers)
        });
        sim.run_until(END);
        sim.summary()
    };
    let a = run(42);
    let b = run(42);
    println!("{}", a.table("live, 4 viewers, seed 42"));
    assert_eq!(a, b, "two runs with the same seed differ");
    let c = run(43);
    println!(
        "seed 42 fingerprint {:016x}, seed 43 fingerprint {:016x}",
        a.fingerprint, c.fingerprint
    );
    assert_ne!(
        a.fingerprint, c.fingerprint,
        "the seed has no effect on the run"
    );
}

#[test]
fn viewers_keep_playing_when_peers_vanish() {
    // Six viewers; the two earliest (the likeliest to be serving the others) close their
    // tabs at 30 s without a goodbye. The rest must not notice in their playback.
    const END: u64 = 60_000;
    let viewers = (0..6)
        .map(|i| ViewerCfg {
            leave_ms: (i < 2).then_some(30_000),
            ..ViewerCfg::new(i * 600)
        })
        .collect();
    let sc = Scenario::live(0xB7E, viewers);
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    let s = print(&sim, "live, 6 viewers, 0 and 1 leave at 30 s");
    assert_contract(&sim);
    let served_by_leavers: u64 = s.viewers[..2].iter().map(|v| v.p2p_sent).sum();
    assert!(
        served_by_leavers > 0,
        "the leavers served nobody: nothing tested"
    );
    for v in &s.viewers[2..] {
        assert_played_through(&sc, v, END);
        assert_eq!(v.corrupted, 0);
    }
}

#[test]
fn subtle_corruption_is_caught_by_the_integrity_manifest() {
    // The corrupter flips one bit inside a TS packet of every chunk it sends: the data stays
    // structurally valid, so only the manifest's hashes can tell. Every engine has it.
    const END: u64 = 50_000;
    let mut viewers = vec![ViewerCfg {
        behavior: Behavior::SubtleCorrupter { from_ms: 0 },
        ..ViewerCfg::new(0)
    }];
    viewers.extend((1..4).map(|i| ViewerCfg::new(4_000 + i * 500)));
    let sc = Scenario {
        manifest: true,
        ..Scenario::vod(0x5AB7, 25, viewers)
    };
    let mut sim = Sim::new(sc);
    sim.run_until(END);
    let s = print(
        &sim,
        "VOD with manifest, subtle corrupter (0) and 3 honest viewers",
    );
    assert_contract(&sim);
    for (i, v) in sim.viewers.iter().enumerate() {
        let rejected: Vec<&String> = v
            .log
            .warnings
            .iter()
            .filter(|w| w.contains("manifest"))
            .collect();
        assert!(rejected.is_empty(), "viewer {i}: {rejected:?}");
    }
    let victims = corrupter_victims(&sim, &s);
    for &i in &victims {
        let v = &s.viewers[i];
        assert!(
            v.banned.contains(&0),
            "viewer {i} got bad chunks but did not ban the sender: {:?}",
            v.banned
        );
        assert!(v.stats.p2p_discarded > 0, "viewer {i} discarded nothing");
    }
    assert_honest_viewers_unharmed(&s, 25);
}

#[test]
fn swarm_rides_out_one_viewers_cdn_outage() {
    // Viewer 0 (the first to join, so the one the live edge tends to find fetching from the
    // CDN) gets no CDN bytes at all from 20 s to 32 s. Its peers can still reach the CDN.
    const END: u64 = 50_000;
    let sc = one_cdn_fault(0xCD0, FaultKind::Stall);
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    let s = print(&sim, "live, 4 viewers, viewer 0's CDN stalls 20-32 s");
    assert_contract(&sim);
    assert!(
        sim.cdn.fault_hits[0] > 0,
        "viewer 0 had no CDN transfer during the outage: nothing tested"
    );
    for v in &s.viewers {
        assert_played_through(&sc, v, END);
    }
}

#[test]
fn viewer_whose_cdn_fails_plays_from_peers_and_recovers() {
    // Viewer 0's CDN answers 503 from 20 s to 32 s; its peers' CDN works.
    const END: u64 = 50_000;
    let sc = one_cdn_fault(0xCD1, FaultKind::Fail);
    let mut sim = Sim::new(sc.clone());
    sim.run_until(26_000);
    let degraded = |sim: &Sim| {
        sim.viewers[0]
            .engine
            .as_ref()
            .map(|e| e.stats().cdn_degraded)
    };
    assert_eq!(
        degraded(&sim),
        Some(true),
        "viewer 0 did not notice its CDN failing"
    );
    sim.run_until(END);
    let s = print(&sim, "live, 4 viewers, viewer 0's CDN fails 20-32 s");
    assert_contract(&sim);
    assert!(
        sim.cdn.fault_hits[0] > 0,
        "viewer 0 had no CDN request during the outage: nothing tested"
    );
    assert_eq!(degraded(&sim), Some(false), "viewer 0 never recovered");
    for v in &s.viewers {
        assert_played_through(&sc, v, END);
    }
}

/// The first scenario over many seeds (slow in debug: `cargo test --release --test swarm
/// -- --ignored --nocapture seed_sweep`). A pass on one seed can be luck; this shows spread.
#[test]
#[ignore = "slow: a sweep over seeds, run on demand"]
fn seed_sweep_live_swarm() {
    const WARMUP: u64 = 20_000;
    const END: u64 = 70_000;
    let mut failures = Vec::new();
    for seed in 1..=12u64 {
        let viewers = (0..8)
            .map(|i| ViewerCfg::varied(i as u64 * 700, seed, i))
            .collect();
        let mut sim = Sim::new(Scenario {
            jitter_ms: 20,
            ..Scenario::live(seed, viewers)
        });
        sim.run_until(WARMUP);
        let warm = sim.summary();
        sim.run_until(END);
        let end = sim.summary();
        let steady = offload(
            end.p2p_bytes - warm.p2p_bytes,
            end.cdn_bytes - warm.cdn_bytes,
        );
        println!(
            "seed {seed:>2}: steady offload {:.1}% stalls {} stalled {} ms corrupted {} violations {}",
            100.0 * steady,
            end.stalls(),
            end.stalled_ms(),
            end.corrupted(),
            sim.contract_violations().len()
        );
        if steady < 0.5
            || end.stalls() > 0
            || end.corrupted() > 0
            || !sim.contract_violations().is_empty()
        {
            failures.push(seed);
        }
    }
    assert!(
        failures.is_empty(),
        "seeds failing the live scenario: {failures:?}"
    );
}

/// A VOD swarm joining one viewer a second (as the browser benchmark does): every viewer
/// after the first should find nearly the whole file at its peers. Startup segments are
/// urgent and come over HTTP; the rest waits for the viewer's first peers.
#[test]
fn vod_swarm_joining_one_per_second_takes_the_file_from_peers() {
    const END: u64 = 50_000;
    let seed = 0x70D6;
    let viewers: Vec<ViewerCfg> = (0..6)
        .map(|i| ViewerCfg::varied(i as u64 * 1_000, seed, i))
        .collect();
    let sc = Scenario {
        jitter_ms: 20,
        // Browsers take about a second from announce to an open data channel.
        tracker_delay_ms: 400,
        ..Scenario::vod(seed, 25, viewers)
    };
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    let end = print(&sim, "VOD, 6 viewers joining 1 s apart");
    assert_contract(&sim);
    assert_eq!(end.stalls(), 0, "no viewer may stall");
    assert_eq!(end.corrupted(), 0);
    let off = offload(end.p2p_bytes, end.cdn_bytes);
    println!(
        "VOD 6 viewers: offload {:.1}% (limit {:.1}%)",
        100.0 * off,
        100.0 * (1.0 - 1.0 / 6.0)
    );
    // The first viewer fetches everything over HTTP (1/6 of the bytes); each later one
    // needs its first segments over HTTP too.
    assert!(off > 0.6, "offload {off:.3}");
}

/// The VOD scenario above over several seeds (`cargo test --test swarm -- --ignored
/// --nocapture vod_seed_sweep`).
#[test]
#[ignore = "a sweep over seeds, run on demand"]
fn vod_seed_sweep() {
    let mut total = 0.0;
    for seed in 1..=8u64 {
        let viewers: Vec<ViewerCfg> = (0..6)
            .map(|i| ViewerCfg::varied(i as u64 * 1_000, seed, i))
            .collect();
        let mut sim = Sim::new(Scenario {
            jitter_ms: 20,
            tracker_delay_ms: 400,
            ..Scenario::vod(seed, 25, viewers)
        });
        sim.run_until(50_000);
        let end = sim.summary();
        let off = offload(end.p2p_bytes, end.cdn_bytes);
        total += off;
        println!(
            "seed {seed}: offload {:.1}% stalls {}",
            100.0 * off,
            end.stalls()
        );
    }
    println!("mean offload {:.1}%", 100.0 * total / 8.0);
}

/// Live, 4 viewers at 1 Mbit/s (125 kB/s); viewer 0's CDN path carries `bytes_per_sec`
/// from 20 s to 40 s, its peers' paths stay fast.
fn throttled_run(seed: u64, bytes_per_sec: u64) -> (Sim, Scenario) {
    const END: u64 = 55_000;
    let viewers = (0..4).map(|i| ViewerCfg::new(i * 500)).collect();
    let fault = CdnFault {
        viewer: Some(0),
        from_ms: 20_000,
        until_ms: 40_000,
        kind: FaultKind::Throttle { bytes_per_sec },
    };
    let sc = Scenario {
        cdn_faults: vec![fault],
        ..Scenario::live(seed, viewers)
    };
    let mut sim = Sim::new(sc.clone());
    sim.run_until(END);
    (sim, sc)
}

#[test]
fn viewer_whose_cdn_is_throttled_below_the_bitrate_keeps_playing_from_peers() {
    const END: u64 = 55_000;
    // 50 kB/s: 0.4x what the media plays at.
    let (sim, sc) = throttled_run(0xCD2, 50_000);
    let s = print(
        &sim,
        "live, 4 viewers, viewer 0's CDN at 0.4 Mbit/s 20-40 s",
    );
    assert_contract(&sim);
    assert!(
        sim.cdn.fault_hits[0] > 0,
        "viewer 0 had no CDN transfer during the throttle: nothing tested"
    );
    let events = &sim.viewers[0].log.cdn_events;
    println!("viewer 0 CDN events: {events:?}");
    let (at, reason) = events
        .iter()
        .find_map(|(t, r)| r.as_ref().map(|r| (*t, r.clone())))
        .expect("viewer 0 never reported its CDN degraded");
    assert!(
        reason.starts_with("throughput"),
        "degraded for another reason: {reason}"
    );
    // Only a CDN transfer can show the throttle: the first one after 20 s may wait up to
    // the live-edge cap (6 s * 3 peers / 4 with this harness's unknown bitrate), and the
    // throughput check needs about a second of it.
    assert!(
        (20_000..26_000).contains(&at),
        "degraded at {at} ms, the throttle began at 20 s"
    );
    assert!(
        matches!(events.last(), Some((t, None)) if *t >= 40_000),
        "viewer 0 did not recover after the throttle: {events:?}"
    );
    let during: u64 = sim.viewers[0]
        .player
        .deliveries
        .iter()
        .filter(|d| (21_000..40_000).contains(&d.at_ms))
        .map(|d| d.p2p_bytes)
        .sum();
    assert!(
        during > 0,
        "viewer 0 took nothing from peers while throttled"
    );
    for v in &s.viewers {
        assert_played_through(&sc, v, END);
    }
    // The other viewers' paths were fine all along.
    for v in sim.viewers.iter().skip(1) {
        assert!(v.log.cdn_events.is_empty(), "{:?}", v.log.cdn_events);
    }
}

#[test]
fn cdn_slower_than_usual_but_above_the_bitrate_is_not_degraded() {
    // 200 kB/s: 1.6x the media rate, a twelfth of the viewer's usual 2.5 MB/s.
    let (sim, _) = throttled_run(0xCD2, 200_000);
    let s = print(
        &sim,
        "live, 4 viewers, viewer 0's CDN at 1.6 Mbit/s 20-40 s",
    );
    assert_contract(&sim);
    assert!(
        sim.cdn.fault_hits[0] >= 20,
        "viewer 0 fetched too little over the slow path to tell: {} pieces",
        sim.cdn.fault_hits[0]
    );
    for v in &sim.viewers {
        assert!(
            v.log.cdn_events.is_empty(),
            "viewer {:?} reported {:?}",
            v.cfg.join_ms,
            v.log.cdn_events
        );
    }
    assert_eq!(s.stalls(), 0);
}
