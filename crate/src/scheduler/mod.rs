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
