//! Shoal core: the sans-IO engine behind a peer-assisted HLS/DASH delivery plugin.
//!
//! The host (the TypeScript shim in a browser, the swarm harness or the simulator natively)
//! feeds [`Input`]s with the current time, drains [`Output`]s, and calls
//! [`Engine::handle_timeout`] at [`Engine::poll_timeout`]. Nothing here reads a clock,
//! draws entropy or touches a socket.
#![forbid(unsafe_code)]

// Native only while no wasm export uses it: even unused, the module moves the shipped wasm
// (+750 bytes at opt-level z).
pub mod boundary;
#[cfg(not(target_arch = "wasm32"))]
pub mod dash;
pub mod engine;
pub mod health;
pub mod integrity;
pub mod peers;
pub mod scheduler;
pub mod stats;
pub mod store;
pub mod types;
pub mod wire;

#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod wasm;

pub use engine::Engine;
pub use types::*;

#[cfg(feature = "sim")]
pub mod sim;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
