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
pub mod scenario;
pub mod world;

/// The simulator's randomness (shared with the tests).
pub use crate::testkit::rng;

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
    let (shoal, baseline) = run_both(sc, true);
    Report::new(sc, shoal, baseline.unwrap_or_default())
}

/// Runs the Shoal world on this thread and, with `baseline`, the P2P-disabled world on a
/// second thread at the same time. The two worlds share nothing but the scenario, so the
/// reports are the same as from two runs one after the other.
pub fn run_both(sc: &Scenario, baseline: bool) -> (RunReport, Option<RunReport>) {
    std::thread::scope(|scope| {
        let base = baseline.then(|| scope.spawn(|| run_once(sc, false)));
        let shoal = run_once(sc, true);
        let base = base.map(|h| match h.join() {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e),
        });
        (shoal, base)
    })
}
