//! Which segment, from which source, when.
//!
//! `live_edge` decides how long a viewer waits before fetching an unannounced segment from
//! the CDN; `picker` plans chunk requests among the peers holding a segment. Both are pure:
//! the engine applies their plans.

pub mod live_edge;
pub mod picker;
