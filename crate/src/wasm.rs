//! The JavaScript binding of [`Engine`] (feature `wasm`, wasm32 only), used by the TypeScript
//! shim through the module wasm-bindgen generates (`js-shim/wasm/shoal.js`).
//!
//! Invariants:
//! - Nothing JS passes in can panic here: a malformed config, input, time or size becomes a
//!   thrown JS `Error` (the shim treats that as "fail open"), and the engine is not touched.
//! - Every entry point returns all outputs the engine queued, so its queue is empty between
//!   calls and the host never has to poll for outputs.
//! - Values cross in the shapes of js-shim/src/core-types.ts: plain camelCase objects,
//!   integers as JS numbers (an integer above 2^53 is an error, never a rounded number),
//!   bytes as `Uint8Array`, absent optionals as `null`.

use js_sys::{Array, Object};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::engine::Engine;
use crate::types::{Config, HttpId, Input, Instant, SwarmId};

/// Outputs and stats go out as plain objects; `None` as `null` because the TS mirror declares
/// `range: ByteRange | null` and `total: number | null`.
const SERIALIZER: serde_wasm_bindgen::Serializer =
    serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true);

/// A [`Engine`] owned by JS. Construct with `new WasmEngine(config, nowMs, seed)`.
#[wasm_bindgen]
pub struct WasmEngine {
    engine: Engine,
}

#[wasm_bindgen]
impl WasmEngine {
    /// `config` is a partial camelCase `Config` (`{}`, `null` or `undefined` for all defaults).
    /// Throws on a field of the wrong type or a field `Config` does not have, so a typo in an
    /// app's options is reported instead of silently ignored.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue, now_ms: f64, seed: f64) -> Result<WasmEngine, JsError> {
        console_error_panic_hook::set_once();
        let config = parse_config(&config)?;
        let now = instant(now_ms, "nowMs")?;
        let seed = whole_number(seed, "seed")?;
        Ok(WasmEngine {
            engine: Engine::new(config, now, seed),
        })
    }

    /// Feeds one `CoreInput` object; returns the outputs it produced.
    #[wasm_bindgen(js_name = handleInput)]
    pub fn handle_input(&mut self, now_ms: f64, input: JsValue) -> Result<Array, JsError> {
        let now = instant(now_ms, "nowMs")?;
        if !input.is_object() {
            return Err(JsError::new(
                "invalid Shoal input: expected an object with a `type` field",
            ));
        }
        let input: Input = serde_wasm_bindgen::from_value(input)
            .map_err(|e| JsError::new(&format!("invalid Shoal input: {}", de_msg(&e))))?;
        self.engine.handle_input(now, input);
        self.drain()
    }

    /// Same as `handleInput(nowMs, {type: 'peerMessage', conn, data})`, without building and
    /// walking a JS object for every data-channel message.
    #[wasm_bindgen(js_name = peerMessage)]
    pub fn peer_message(
        &mut self,
        now_ms: f64,
        conn: u32,
        data: Vec<u8>,
    ) -> Result<Array, JsError> {
        let now = instant(now_ms, "nowMs")?;
        self.engine.handle_input(
            now,
            Input::PeerMessage {
                conn: crate::types::ConnId(conn),
                data,
            },
        );
        self.drain()
    }

    /// Same as `handleInput(nowMs, {type: 'httpProgress', id, data, total})`, the other input
    /// that carries media bytes at full rate.
    #[wasm_bindgen(js_name = httpProgress)]
    pub fn http_progress(
        &mut self,
        now_ms: f64,
        id: u32,
        data: Vec<u8>,
        total: Option<f64>,
    ) -> Result<Array, JsError> {
        let now = instant(now_ms, "nowMs")?;
        let total = total.map(|t| whole_number(t, "total")).transpose()?;
        self.engine.handle_input(
            now,
            Input::HttpProgress {
                id: HttpId(id),
                data,
                total,
            },
        );
        self.drain()
    }

    /// Call at (or after) `pollTimeout()`; returns the outputs it produced.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now_ms: f64) -> Result<Array, JsError> {
        let now = instant(now_ms, "nowMs")?;
        self.engine.handle_timeout(now);
        self.drain()
    }

    /// The next time (host ms) the engine wants `handleTimeout`, or `undefined`.
    /// This engine's peer id (40 hex digits): the host announces it to the tracker as its
    /// `peer_id`, and remote engines check their Handshake against it.
    #[wasm_bindgen(js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.engine.peer_id().to_hex()
    }

    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        // Precision loss above 2^53 ms (285,000 years) is harmless for a deadline.
        self.engine.poll_timeout().map(|t| t.as_millis() as f64)
    }

    /// A `CoreStats` object.
    pub fn stats(&self) -> Result<JsValue, JsError> {
        to_js(&self.engine.stats())
    }
}

impl WasmEngine {
    fn drain(&mut self) -> Result<Array, JsError> {
        let out = Array::new();
        let mut first_error = None;
        // Keep draining after a failed conversion so no output is left behind for the next call.
        while let Some(o) = self.engine.poll_output() {
            match to_js(&o) {
                Ok(v) => {
                    out.push(&v);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// The swarm id (40 lowercase hex digits) every viewer derives for the same rendition; see
/// [`SwarmId::derive`].
#[wasm_bindgen(js_name = deriveSwarmId)]
pub fn derive_swarm_id(stream_key: &str, rendition_key: &str) -> String {
    SwarmId::derive(stream_key, rendition_key).to_hex()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&SERIALIZER)
        .map_err(|e| JsError::new(&format!("Shoal could not convert a value for JS: {e}")))
}

/// JS times are `performance.now()`-based floats; the engine counts whole milliseconds.
fn instant(ms: f64, what: &str) -> Result<Instant, JsError> {
    whole_number(ms, what).map(Instant::from_millis)
}

/// Floors a finite non-negative JS number into a `u64` (saturating above `u64::MAX`).
fn whole_number(v: f64, what: &str) -> Result<u64, JsError> {
    if v.is_finite() && v >= 0.0 {
        // `as` saturates; finite and non-negative was checked above.
        Ok(v.floor() as u64)
    } else {
        Err(JsError::new(&format!(
            "Shoal: {what} must be a finite non-negative number, got {v}"
        )))
    }
}

fn parse_config(value: &JsValue) -> Result<Config, JsError> {
    if value.is_null() || value.is_undefined() {
        return Ok(Config::default());
    }
    if !value.is_object() || js_sys::Array::is_array(value) {
        return Err(JsError::new("invalid Shoal config: expected an object"));
    }
    // The field names, from serde itself so they cannot drift from `Config`.
    let known: Vec<String> = Object::keys(&Object::from(to_js(&Config::default())?))
        .iter()
        .filter_map(|k| k.as_string())
        .collect();
    let object = Object::from(value.clone());
    // Field by field, so the error names the offending key (serde's message alone does not).
    for key in Object::keys(&object).iter() {
        let name = key.as_string().unwrap_or_default();
        if !known.contains(&name) {
            return Err(JsError::new(&format!(
                "invalid Shoal config: unknown field `{name}` (known fields: {})",
                known.join(", ")
            )));
        }
        let single = Object::new();
        let field = js_sys::Reflect::get(&object, &key)
            .map_err(|_| JsError::new(&format!("invalid Shoal config: cannot read `{name}`")))?;
        js_sys::Reflect::set(&single, &key, &field)
            .map_err(|_| JsError::new("invalid Shoal config: cannot copy a field"))?;
        serde_wasm_bindgen::from_value::<Config>(single.into()).map_err(|e| {
            JsError::new(&format!(
                "invalid Shoal config field `{name}`: {}",
                de_msg(&e)
            ))
        })?;
    }
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| JsError::new(&format!("invalid Shoal config: {}", de_msg(&e))))
}

/// serde-wasm-bindgen errors wrap a JS `Error` and print as "Error: ..."; the message we throw
/// is itself an `Error`, so the prefix would only repeat.
fn de_msg(e: &serde_wasm_bindgen::Error) -> String {
    let s = e.to_string();
    match s.strip_prefix("Error: ") {
        Some(rest) => rest.to_string(),
        None => s,
    }
}
