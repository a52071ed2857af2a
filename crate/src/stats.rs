//! Offload accounting and per-segment timings (engine helper).
