//! The JS binding exercised from inside headless Chromium (wasm-bindgen-test): what the shim
//! sends goes in as plain JS objects, what it gets back is checked as plain JS objects.
//! Run with `bash scripts/test-wasm.sh` (see scripts/test-all.sh).
#![cfg(all(feature = "wasm", target_arch = "wasm32"))]

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use shoal::wasm::{derive_swarm_id, WasmEngine};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const SEG_URL: &str = "http://127.0.0.1:9/vod/r0/seg0.ts";

fn js(json: &str) -> JsValue {
    JSON::parse(json).unwrap_or_else(|e| panic!("test JSON {json}: {e:?}"))
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

fn ok<T>(r: Result<T, JsError>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what} threw: {:?}", JsValue::from(e)))
}

/// The message of the JS `Error` a call threw; fails the test if it did not throw an `Error`.
fn thrown<T>(r: Result<T, JsError>, what: &str) -> String {
    match r {
        Ok(_) => panic!("{what} should have thrown"),
        Err(e) => {
            let v = JsValue::from(e);
            let err = v
                .dyn_into::<js_sys::Error>()
                .unwrap_or_else(|v| panic!("{what} threw a non-Error: {v:?}"));
            String::from(err.message())
        }
    }
}

fn outputs_of_type(outs: &[JsValue], ty: &str) -> Vec<JsValue> {
    outs.iter()
        .filter(|o| get_str(o, "type").as_deref() == Some(ty))
        .cloned()
        .collect()
}

/// Advances the engine's clock timeout by timeout, collecting outputs, until `done` holds or
/// `limit_ms` of engine time has passed.
fn run_until(
    engine: &mut WasmEngine,
    now: &mut f64,
    outs: &mut Vec<JsValue>,
    limit_ms: f64,
    done: impl Fn(&[JsValue]) -> bool,
) {
    let deadline = *now + limit_ms;
    while !done(outs) {
        let Some(t) = engine.poll_timeout() else {
            return;
        };
        if t > deadline {
            return;
        }
        *now = now.max(t);
        outs.extend(ok(engine.handle_timeout(*now), "handleTimeout").iter());
    }
}

/// 188-byte MPEG-TS packets: what a `ts` rendition's segments look like.
fn ts_payload(packets: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(packets * 188);
    for p in 0..packets {
        v.push(0x47);
        v.extend((1..188).map(|i| ((p * 31 + i) % 251) as u8));
    }
    v
}

fn vod_engine(swarm: &str, config: &str) -> (WasmEngine, Vec<JsValue>) {
    let mut engine = ok(WasmEngine::new(js(config), 1_000.0, 7.0), "new WasmEngine");
    let playlist = js(&format!(
        r#"{{"type":"playlist","swarm":"{swarm}","live":false,"container":"ts","bitrate":800000,
            "segments":[
              {{"seq":0,"startMs":0,"durationMs":4000,"url":"{SEG_URL}"}},
              {{"seq":1,"startMs":4000,"durationMs":4000,"url":"http://127.0.0.1:9/vod/r0/seg1.ts","range":null}}
            ]}}"#
    ));
    let outs: Vec<JsValue> = ok(engine.handle_input(1_000.0, playlist), "playlist")
        .iter()
        .collect();
    (engine, outs)
}

#[wasm_bindgen_test]
fn http_segment_round_trip_delivers_the_same_bytes() {
    let swarm = derive_swarm_id("wasm-test-stream", "r0");
    let (mut engine, mut outs) = vod_engine(&swarm, r#"{"p2pEnabled":false}"#);
    let mut now = 1_000.0;
    let playhead = js(&format!(
        r#"{{"type":"playhead","swarm":"{swarm}","positionMs":0,"bufferedAheadMs":0}}"#
    ));
    outs.extend(ok(engine.handle_input(now, playhead), "playhead").iter());
    let request = js(&format!(
        r#"{{"type":"segmentRequested","req":1,"swarm":"{swarm}","seq":0,"url":"{SEG_URL}"}}"#
    ));
    outs.extend(ok(engine.handle_input(now, request), "segmentRequested").iter());
    let has_start = |o: &[JsValue]| {
        outputs_of_type(o, "startHttp")
            .iter()
            .any(|s| get_str(s, "url").as_deref() == Some(SEG_URL))
    };
    run_until(&mut engine, &mut now, &mut outs, 10_000.0, has_start);
    let start = outputs_of_type(&outs, "startHttp")
        .into_iter()
        .find(|s| get_str(s, "url").as_deref() == Some(SEG_URL))
        .unwrap_or_else(|| panic!("no startHttp for {SEG_URL}; outputs: {outs:?}"));
    assert!(
        get(&start, "range").is_null(),
        "no range: null, not undefined"
    );
    let id = get(&start, "id")
        .as_f64()
        .expect("startHttp id is a number");

    let body = ts_payload(40);
    let (first, second) = body.split_at(188 * 15);
    // First chunk through the generic path with a Uint8Array, second through the fast path.
    let progress = Object::new();
    Reflect::set(&progress, &"type".into(), &"httpProgress".into()).unwrap();
    Reflect::set(&progress, &"id".into(), &id.into()).unwrap();
    Reflect::set(&progress, &"data".into(), &Uint8Array::from(first).into()).unwrap();
    Reflect::set(&progress, &"total".into(), &(body.len() as f64).into()).unwrap();
    now += 50.0;
    let mut outs: Vec<JsValue> = ok(engine.handle_input(now, progress.into()), "httpProgress")
        .iter()
        .collect();
    now += 50.0;
    outs.extend(
        ok(
            engine.http_progress(now, id as u32, second.to_vec(), None),
            "fast httpProgress",
        )
        .iter(),
    );
    now += 1.0;
    outs.extend(
        ok(
            engine.handle_input(now, js(&format!(r#"{{"type":"httpDone","id":{id}}}"#))),
            "httpDone",
        )
        .iter(),
    );
    run_until(&mut engine, &mut now, &mut outs, 5_000.0, |o| {
        !outputs_of_type(o, "deliverSegment").is_empty()
    });

    let deliveries = outputs_of_type(&outs, "deliverSegment");
    assert_eq!(deliveries.len(), 1, "one delivery; outputs: {outs:?}");
    let d = &deliveries[0];
    assert_eq!(get(d, "req").as_f64(), Some(1.0));
    let data = get(d, "data")
        .dyn_into::<Uint8Array>()
        .unwrap_or_else(|v| panic!("deliverSegment data is not a Uint8Array: {v:?}"));
    assert_eq!(data.to_vec(), body);
    let timing = get(d, "timing");
    assert_eq!(get(&timing, "httpBytes").as_f64(), Some(body.len() as f64));
    assert_eq!(get(&timing, "p2pBytes").as_f64(), Some(0.0));

    let stats = ok(engine.stats(), "stats");
    assert_eq!(get(&stats, "httpDown").as_f64(), Some(body.len() as f64));
    assert!(Array::is_array(&get(&stats, "perPeer")));
}

#[wasm_bindgen_test]
fn p2p_enabled_engine_announces_the_swarm() {
    let swarm = derive_swarm_id("wasm-test-stream", "r1");
    let (mut engine, mut outs) = vod_engine(&swarm, "{}");
    let mut now = 1_000.0;
    let announced = |o: &[JsValue]| !outputs_of_type(o, "announce").is_empty();
    run_until(&mut engine, &mut now, &mut outs, 5_000.0, announced);
    let announces = outputs_of_type(&outs, "announce");
    assert!(
        announces
            .iter()
            .any(|a| get_str(a, "swarm").as_deref() == Some(swarm.as_str())
                && get_str(a, "event").as_deref() == Some("started")),
        "expected an announce(started) for the new swarm; outputs: {outs:?}"
    );
}

#[wasm_bindgen_test]
fn malformed_inputs_throw_errors_and_leave_the_engine_usable() {
    let swarm = derive_swarm_id("wasm-test-stream", "r2");
    let (mut engine, _) = vod_engine(&swarm, r#"{"p2pEnabled":false}"#);
    let msg = thrown(
        engine.handle_input(2_000.0, js(r#"{"type":"noSuchInput"}"#)),
        "unknown type",
    );
    assert!(msg.contains("noSuchInput"), "{msg}");
    let msg = thrown(
        engine.handle_input(2_000.0, js(r#"{"type":"httpDone"}"#)),
        "missing id",
    );
    assert!(msg.contains("id"), "{msg}");
    thrown(
        engine.handle_input(2_000.0, js(r#"{"type":"peerMessage","conn":1,"data":5}"#)),
        "number as bytes",
    );
    thrown(
        engine.handle_input(2_000.0, js(r#"{"type":"segmentAborted","req":-1}"#)),
        "negative id",
    );
    thrown(
        engine.handle_input(
            2_000.0,
            js(r#"{"type":"playhead","swarm":"xyz","positionMs":0,"bufferedAheadMs":0}"#),
        ),
        "bad swarm id",
    );
    thrown(
        engine.handle_input(2_000.0, JsValue::from(42)),
        "number input",
    );
    thrown(
        engine.handle_input(2_000.0, JsValue::UNDEFINED),
        "undefined input",
    );
    thrown(
        engine.handle_input(f64::NAN, js(r#"{"type":"httpDone","id":1}"#)),
        "NaN time",
    );
    thrown(engine.handle_timeout(-5.0), "negative time");
    thrown(
        engine.http_progress(2_000.0, 1, vec![1, 2], Some(f64::INFINITY)),
        "infinite total",
    );
    // Still alive after all of that.
    ok(
        engine.handle_input(2_001.0, js(r#"{"type":"segmentAborted","req":99}"#)),
        "valid input after errors",
    );
    ok(engine.stats(), "stats after errors");
}

#[wasm_bindgen_test]
fn bad_configs_throw_naming_the_field() {
    let msg = thrown(
        WasmEngine::new(js(r#"{"maxPeers":"many"}"#), 0.0, 1.0),
        "string maxPeers",
    );
    assert!(msg.contains("maxPeers"), "{msg}");
    let msg = thrown(WasmEngine::new(js(r#"{"maxPeer":3}"#), 0.0, 1.0), "typo");
    assert!(msg.contains("maxPeer") && msg.contains("unknown"), "{msg}");
    thrown(
        WasmEngine::new(js(r#"{"cacheBytes":-1}"#), 0.0, 1.0),
        "negative cacheBytes",
    );
    thrown(WasmEngine::new(js("[1,2]"), 0.0, 1.0), "array config");
    thrown(
        WasmEngine::new(JsValue::from_str("fast"), 0.0, 1.0),
        "string config",
    );
    thrown(WasmEngine::new(JsValue::NULL, f64::NAN, 1.0), "NaN now");
    thrown(WasmEngine::new(JsValue::NULL, 0.0, -1.0), "negative seed");
}

#[wasm_bindgen_test]
fn partial_null_and_undefined_configs_are_accepted() {
    ok(
        WasmEngine::new(js(r#"{"maxPeers":3,"p2pEnabled":false}"#), 0.0, 1.0),
        "partial config",
    );
    ok(WasmEngine::new(JsValue::NULL, 0.0, 1.0), "null config");
    ok(
        WasmEngine::new(JsValue::UNDEFINED, 0.5, 2.0),
        "undefined config",
    );
}

#[wasm_bindgen_test]
fn derive_swarm_id_is_40_hex_stable_and_distinct() {
    let a = derive_swarm_id(
        "https://cdn.example/live/master.m3u8",
        "level:800000:avc1.4d401f",
    );
    assert_eq!(a.len(), 40);
    assert!(
        a.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{a}"
    );
    assert_eq!(
        a,
        derive_swarm_id(
            "https://cdn.example/live/master.m3u8",
            "level:800000:avc1.4d401f"
        )
    );
    assert_ne!(
        a,
        derive_swarm_id(
            "https://cdn.example/live/master.m3u8",
            "level:1600000:avc1.4d401f"
        )
    );
    // The separator keeps ("ab","c") and ("a","bc") apart.
    assert_ne!(derive_swarm_id("ab", "c"), derive_swarm_id("a", "bc"));
}
