//! What the simulator, the tests and the fuzz targets share to drive engines in-process:
//! the event queue of a discrete-event loop ([`EventQueue`]), seeded randomness ([`Rng`])
//! and test media (MPEG-TS segments that pass the engine's structural checks, integrity
//! manifests for them).
//!
//! Behind the feature `testkit`, which `sim` implies; the crate's own tests always have it,
//! its integration tests through a dev-dependency on the crate itself, the fuzz targets
//! through their manifest. Nothing here is part of the engine.

pub mod media;
pub mod queue;
pub mod rng;

pub use media::{manifest, manifest_line, rendition_segment, ts_segment, TS_PACKET};
pub use queue::EventQueue;
pub use rng::{splitmix64, Rng};
