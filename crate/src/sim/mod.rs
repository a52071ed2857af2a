//! `shoal-sim`: many real [`Engine`](crate::Engine)s over a modelled network, CDN, tracker
//! and player, in one deterministic discrete-event loop (see docs/SIMULATOR.md).
//!
//! Invariants:
//! - A run is a pure function of the scenario (seed included): no wall clock, no hash-order
//!   iteration, so the same input gives a byte-identical report.
//! - The baseline is the same world (same viewers, links, joins, outages) with
//!   `p2pEnabled = false`, so the two runs differ only by P2P.

pub mod media;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod world;

pub use report::{Report, RunReport};
pub use scenario::Scenario;

/// Runs the scenario once with P2P as configured (`p2p = true`) or disabled.
pub fn run_once(sc: &Scenario, p2p: bool) -> RunReport {
    let out = world::World::new(sc, p2p).run();
    report::summarize(sc, &out)
}

/// Runs the Shoal world and the P2P-disabled baseline, returns the combined report and the
/// number of events processed in total.
pub fn run(sc: &Scenario) -> Report {
    let shoal = run_once(sc, true);
    let baseline = run_once(sc, false);
    Report::new(sc, shoal, baseline)
}
