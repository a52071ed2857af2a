//! Peer sessions, measurements, scoring, upload pacing and bans.
//!
//! The engine owns the sessions; this module holds the per-peer state and the pure
//! functions (scoring, pacing) the engine's decisions use.

pub mod scoring;
pub mod session;
pub mod upload;

pub use scoring::{score, Ewma};
pub use session::{Avail, PeerState, Session, UpRequest};
pub use upload::TokenBucket;
