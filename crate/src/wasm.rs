//! The JavaScript binding of [`Engine`] (feature `wasm`, wasm32 only), used by the TypeScript
//! shim through the module wasm-bindgen generates (`js-shim/wasm/shoal.js`).
//!
//! Invariants:
//! - Nothing JS passes in can panic here: a malformed config, input, time or size becomes a
//!   thrown JS `Error` (the shim treats that as "fail open"), and the engine is not touched.
//! - Every entry point returns all outputs the engine queued, so its queue is empty between
//!   calls and the host never has to poll for outputs.
//! - Inputs, config, outputs and stats cross in the compact binary encoding of
//!   crate/src/boundary.rs (js-shim/src/boundary.ts turns them into the plain objects of
//!   js-shim/src/core-types.ts); media bytes cross as `Uint8Array`s, copied once.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::boundary::{decode_config, decode_input, encode_output, encode_stats, Writer};
use crate::engine::Engine;
use crate::types::{HttpId, Input, Instant, SwarmId};

/// A [`Engine`] owned by JS. Construct with `new WasmEngine(config, nowMs, seed)`.
#[wasm_bindgen]
pub struct WasmEngine {
    engine: Engine,
}

#[wasm_bindgen]
impl WasmEngine {
    /// `config` is config records (crate/src/boundary.rs; empty for all defaults). Throws on
    /// a field of the wrong type or a field `Config` does not have, naming it, so a typo in an
    /// app's options is reported instead of silently ignored.
    #[wasm_bindgen(constructor)]
    pub fn new(config: &[u8], now_ms: f64, seed: f64) -> Result<WasmEngine, JsError> {
        console_error_panic_hook::set_once();
        let config = decode_config(config).map_err(|e| error("invalid Shoal config: ", &e.0))?;
        let now = instant(now_ms)?;
        let seed = whole_number(seed)?;
        Ok(WasmEngine {
            engine: Engine::new(config, now, seed),
        })
    }

    /// Feeds one encoded input; returns the outputs it produced (see [`WasmEngine::drain`]).
    #[wasm_bindgen(js_name = handleInput)]
    pub fn handle_input(&mut self, now_ms: f64, input: &[u8]) -> Result<Array, JsError> {
        let now = instant(now_ms)?;
        let input = decode_input(input).map_err(|e| error("invalid Shoal input: ", &e.0))?;
        self.engine.handle_input(now, input);
        Ok(self.drain())
    }

    /// Same as `handleInput` of a `peerMessage` input, without encoding the message into a
    /// second buffer first.
    #[wasm_bindgen(js_name = peerMessage)]
    pub fn peer_message(
        &mut self,
        now_ms: f64,
        conn: u32,
        data: Vec<u8>,
    ) -> Result<Array, JsError> {
        let now = instant(now_ms)?;
        self.engine.handle_input(
            now,
            Input::PeerMessage {
                conn: crate::types::ConnId(conn),
                data,
            },
        );
        Ok(self.drain())
    }

    /// Same as `handleInput` of an `httpProgress` input, the other input that carries media
    /// bytes at full rate.
    #[wasm_bindgen(js_name = httpProgress)]
    pub fn http_progress(
        &mut self,
        now_ms: f64,
        id: u32,
        data: Vec<u8>,
        total: Option<f64>,
    ) -> Result<Array, JsError> {
        let now = instant(now_ms)?;
        let total = total.map(whole_number).transpose()?;
        self.engine.handle_input(
            now,
            Input::HttpProgress {
                id: HttpId(id),
                data,
                total,
            },
        );
        Ok(self.drain())
    }

    /// Call at (or after) `pollTimeout()`; returns the outputs it produced.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_ms: f64) -> Result<Array, JsError> {
        let now = instant(now_ms)?;
        self.engine.handle_timeout(now);
        Ok(self.drain())
    }

    /// This engine's peer id (40 hex digits): the host announces it to the tracker as its
    /// `peer_id`, and remote engines check their Handshake against it.
    #[wasm_bindgen(js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.engine.peer_id().to_hex()
    }

    /// The next time (host ms) the engine wants `handleTimeout`, or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        // Precision loss above 2^53 ms (285,000 years) is harmless for a deadline.
        self.engine.poll_timeout().map(|t| t.as_millis() as f64)
    }

    /// The engine's `Stats`, encoded (crate/src/boundary.rs `encode_stats`).
    pub fn stats(&self) -> Vec<u8> {
        encode_stats(&self.engine.stats())
    }
}

impl WasmEngine {
    /// Every queued output: `[stream, ...payloads]`, the encoded outputs and then, as
    /// separate `Uint8Array`s in order, the byte strings they carry (each copied out of wasm
    /// memory once).
    fn drain(&mut self) -> Array {
        let out = Array::new();
        out.push(&JsValue::NULL);
        let mut w = Writer::default();
        while let Some(o) = self.engine.poll_output() {
            encode_output(&o, &mut w, &mut |b: &[u8]| {
                out.push(&Uint8Array::from(b));
            });
        }
        out.set(0, Uint8Array::from(&w.buf[..]).into());
        out
    }
}

/// The swarm id (40 lowercase hex digits) every viewer derives for the same rendition; see
/// [`SwarmId::derive`].
#[wasm_bindgen(js_name = deriveSwarmId)]
pub fn derive_swarm_id(stream_key: &str, rendition_key: &str) -> String {
    SwarmId::derive(stream_key, rendition_key).to_hex()
}

fn error(prefix: &str, msg: &str) -> JsError {
    let mut s = String::from(prefix);
    s.push_str(msg);
    JsError::new(&s)
}

/// JS times are `performance.now()`-based floats; the engine counts whole milliseconds.
fn instant(ms: f64) -> Result<Instant, JsError> {
    whole_number(ms).map(Instant::from_millis)
}

/// Floors a finite non-negative JS number into a `u64` (saturating above `u64::MAX`).
fn whole_number(v: f64) -> Result<u64, JsError> {
    if v.is_finite() && v >= 0.0 {
        // `as` saturates; finite and non-negative was checked above.
        Ok(v.floor() as u64)
    } else {
        Err(JsError::new(
            "Shoal: times, seeds and sizes must be finite non-negative numbers",
        ))
    }
}
