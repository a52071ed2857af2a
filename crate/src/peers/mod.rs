//! Peer sessions, measurements, scoring, upload pacing and bans.
//!
//! The engine owns the sessions; this module holds the per-peer state and the pure
//! functions (scoring, pacing) the engine's decisions use.
//!
//! Penalty policy: being slow is not misbehaviour. A peer that stalls (sends nothing on a
//! request for `peer_stall_timeout_ms`) or is too slow for a deadline is abandoned, gets a
//! stall mark (halves its score, doubles its back-off, up to 16x) and is tried again later;
//! every completed request removes a mark. Stalls never ban. Strikes (ban at
//! `strikes_to_ban`) and immediate bans need proof of misbehaviour: data failing a check or
//! the manifest (ban at once when it is the only contributor), malformed messages (ban at
//! once), protocol violations (Data for ids never issued, a size contradicting its own
//! announcement, unexpected Pong, ...), `Absent` for announced segments three times in a
//! row, and message/request floods (ban at once).

pub mod registry;
pub mod scoring;
pub mod session;
pub mod upload;

pub use registry::Peers;
pub use scoring::{score, Ewma};
pub use session::{Avail, PeerState, Session, UpRequest};
pub use upload::{ChunkSource, Served, TokenBucket, Uploads};
