//! Spot checks in the swarm harness: without a manifest, a peer that flips bits inside TS
//! packets passes the structural checks; re-fetching a sample of peer-delivered segments
//! from the CDN is what catches it (after delivery). `cargo test --test swarm_spot_check --
//! --nocapture` prints the runs.

mod harness;

use harness::net::Behavior;
use harness::{Scenario, Sim, Summary, ViewerCfg};
use shoal::Config;

const END: u64 = 50_000;

/// A subtle corrupter (viewer 0, first to join, so it holds what the others ask for) and
/// three honest viewers with the given spot-check ratio; no manifest.
fn run(ratio: f64) -> (Sim, Summary) {
    let mut viewers = vec![ViewerCfg {
        behavior: Behavior::SubtleCorrupter { from_ms: 0 },
        ..ViewerCfg::new(0)
    }];
    viewers.extend((1..4).map(|i| ViewerCfg {
        config: Config {
            spot_check_ratio: ratio,
            ..Config::default()
        },
        ..ViewerCfg::new(4_000 + i * 500)
    }));
    let mut sim = Sim::new(Scenario::vod(0x5907, 25, viewers));
    sim.run_until(END);
    let s = sim.summary();
    println!(
        "{}",
        s.table(&format!(
            "VOD, no manifest, spot checks {ratio}: subtle corrupter (0) + 3 honest"
        ))
    );
    let v = sim.contract_violations();
    assert!(
        v.is_empty(),
        "engine broke the host contract:\n{}",
        v.join("\n")
    );
    (sim, s)
}

fn victims(sim: &Sim) -> Vec<usize> {
    let mut v: Vec<usize> = sim.net.log.corrupted.iter().map(|t| t.victim).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn without_spot_checks_subtle_corruption_goes_unnoticed() {
    // The control: proves the corrupter's flips pass every other check, so the test below
    // measures the spot checks and nothing else.
    let (sim, s) = run(0.0);
    assert!(
        !victims(&sim).is_empty(),
        "nobody requested from the corrupter"
    );
    assert!(
        s.corrupted() > 0,
        "no corrupted segment was played: nothing to catch"
    );
    for v in s.viewers.iter().skip(1) {
        assert!(
            v.banned.is_empty(),
            "viewer {} banned {:?}",
            v.index,
            v.banned
        );
    }
}

#[test]
fn spot_checks_ban_a_subtle_corrupter() {
    let (sim, s) = run(0.5);
    let evil = sim.peer_id(0);
    let victims = victims(&sim);
    assert!(!victims.is_empty(), "nobody requested from the corrupter");
    // Without a manifest an honest viewer re-shares what it was fooled with, so a failed
    // spot check may blame a victim that relayed a bad copy. Nobody else may be blamed.
    let suspects: Vec<_> = std::iter::once(0)
        .chain(victims.iter().copied())
        .map(|i| sim.peer_id(i))
        .collect();
    let mut caught_by = Vec::new();
    for (i, v) in sim.viewers.iter().enumerate().skip(1) {
        for (seq, peers) in &v.log.spot_check_failed {
            assert!(
                peers.iter().all(|p| suspects.contains(p)),
                "viewer {i}: seq {seq} blamed {peers:?}, who never had corrupted bytes"
            );
            for p in peers {
                assert!(
                    v.log.banned_events.iter().any(|(b, _)| b == p),
                    "viewer {i}: spot check of seq {seq} failed but {p:?} was not banned"
                );
            }
            if peers.contains(&evil) {
                caught_by.push(i);
            }
        }
        for (p, _) in &v.log.banned_events {
            assert!(
                suspects.contains(p),
                "viewer {i} banned {p:?}, who never had corrupted bytes"
            );
        }
    }
    caught_by.dedup();
    assert!(
        !caught_by.is_empty(),
        "no viewer caught the corrupter itself: spot checks missing or too rare"
    );
    // The check comes after delivery, so a victim may have played a few bad segments, but
    // far fewer than without spot checks, and none from a banned corrupter.
    let (_, control) = run(0.0);
    assert!(
        s.corrupted() < control.corrupted(),
        "spot checks did not reduce corrupted segments: {} vs {}",
        s.corrupted(),
        control.corrupted()
    );
    for v in s.viewers.iter().skip(1) {
        assert_eq!(v.stalls, 0, "honest viewer {} stalled", v.index);
        assert_eq!(
            v.delivered, 25,
            "viewer {} did not get every segment",
            v.index
        );
    }
    println!(
        "corrupter caught by viewers {caught_by:?}; corrupted segments played {} (control {})",
        s.corrupted(),
        control.corrupted()
    );
}
