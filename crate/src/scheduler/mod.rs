//! Which segment, from which source, when.
//!
//! `deadline` says when the player needs a segment; `urgent` whether peers may still bring an
//! urgent one; `live_edge` how long a viewer waits before fetching an unannounced segment from
//! the CDN; `picker` plans chunk requests among the peers holding a segment. All are pure:
//! the engine gathers the facts (`engine/schedule.rs`) and applies their answers.

pub mod deadline;
pub mod live_edge;
pub mod picker;
pub mod urgent;

/// What the scheduler decided for one download (`Engine::plan`); the engine carries it out
/// (`Engine::apply_step`).
#[derive(Debug)]
pub enum Step {
    /// Nothing to change now.
    Nothing,
    /// An HTTP transfer runs: race it with peers if the CDN path is degraded.
    RaceHttp,
    /// Fetch over HTTP now, cancelling what peers were asked for if `cancel_p2p`.
    Http { cancel_p2p: bool },
    /// Nobody wants it and no peer is fetching it: forget it.
    Drop,
    /// Hand missing chunks to these holders, best first.
    Assign(Vec<picker::Holder>),
    /// Wait until then before planning again.
    Wait(crate::types::Instant),
    /// Nobody announced it: wait as the live-edge rule says, then fetch from the CDN.
    Fetch(live_edge::FetchDelay),
}
