//! The JS binding exercised from inside headless Chromium (wasm-bindgen-test): inputs and
//! config go in encoded as the shim encodes them (crate/src/boundary.rs), outputs come back as
//! `[stream, ...payloads]` JS arrays and are decoded here. The shim's half of the codec is
//! tested against the same engine by tests/unit/boundary.mjs.
//! Run with `bash scripts/test-wasm.sh` (see scripts/test-all.sh).
#![cfg(all(feature = "wasm", target_arch = "wasm32"))]

use js_sys::{Array, Uint8Array};
use shoal::boundary::{
    decode_output, decode_stats, encode_config, encode_input, ConfigValue, Reader, Writer,
};
use shoal::wasm::{derive_swarm_id, WasmEngine};
use shoal::{
    AnnounceEvent, ByteRange, Container, HttpId, Input, Output, RequestId, SegmentInfo, SwarmId,
};
use wasm_bindgen::{JsCast, JsError, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const SEG_URL: &str = "http://127.0.0.1:9/vod/r0/seg0.ts";

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

/// Decodes what an engine call returned: the stream first, then its payloads.
fn decode(raw: Array) -> Vec<Output> {
    let stream = raw
        .get(0)
        .dyn_into::<Uint8Array>()
        .expect("the stream is a Uint8Array")
        .to_vec();
    let mut payloads = raw.iter().skip(1).map(|p| {
        p.dyn_into::<Uint8Array>()
            .expect("payloads are Uint8Arrays")
            .to_vec()
    });
    let mut r = Reader::new(&stream);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(decode_output(&mut r, &mut payloads).expect("engine output decodes"));
    }
    assert!(
        payloads.next().is_none(),
        "every payload belongs to an output"
    );
    out
}

fn feed(engine: &mut WasmEngine, now: f64, input: &Input) -> Vec<Output> {
    let bytes = encode_input(input).expect("crosses the boundary");
    decode(ok(engine.handle_input(now, &bytes), "handleInput"))
}

/// Advances the engine's clock timeout by timeout, collecting outputs, until `done` holds or
/// `limit_ms` of engine time has passed.
fn run_until(
    engine: &mut WasmEngine,
    now: &mut f64,
    outs: &mut Vec<Output>,
    limit_ms: f64,
    done: impl Fn(&[Output]) -> bool,
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
        outs.extend(decode(ok(engine.handle_timeout(*now), "handleTimeout")));
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

fn config(fields: &[(&str, ConfigValue)]) -> Vec<u8> {
    encode_config(fields)
}

fn swarm_of(hex: &str) -> SwarmId {
    SwarmId::from_hex(hex).expect("derived ids are 40 hex digits")
}

fn vod_engine(swarm: SwarmId, cfg: &[(&str, ConfigValue)]) -> (WasmEngine, Vec<Output>) {
    let mut engine = ok(
        WasmEngine::new(&config(cfg), 1_000.0, 7.0),
        "new WasmEngine",
    );
    let playlist = Input::Playlist {
        swarm,
        live: false,
        container: Container::Ts,
        bitrate: 800_000,
        segments: vec![
            SegmentInfo {
                seq: 0,
                start_ms: 0,
                duration_ms: 4000,
                url: SEG_URL.into(),
                range: None,
            },
            SegmentInfo {
                seq: 1,
                start_ms: 4000,
                duration_ms: 4000,
                url: "http://127.0.0.1:9/vod/r0/seg1.ts".into(),
                range: Some(ByteRange { start: 0, end: 10 }),
            },
        ],
    };
    let outs = feed(&mut engine, 1_000.0, &playlist);
    (engine, outs)
}

#[wasm_bindgen_test]
fn http_segment_round_trip_delivers_the_same_bytes() {
    let swarm = swarm_of(&derive_swarm_id("wasm-test-stream", "r0"));
    let (mut engine, mut outs) = vod_engine(swarm, &[("p2pEnabled", ConfigValue::Bool(false))]);
    let mut now = 1_000.0;
    outs.extend(feed(
        &mut engine,
        now,
        &Input::Playhead {
            swarm,
            position_ms: 0,
            buffered_ahead_ms: 0,
            rate: 1.0,
        },
    ));
    outs.extend(feed(
        &mut engine,
        now,
        &Input::SegmentRequested {
            req: RequestId(1),
            swarm,
            seq: 0,
            url: SEG_URL.into(),
            range: None,
            timeout_ms: None,
        },
    ));
    let start_of = |o: &[Output]| {
        o.iter().find_map(|o| match o {
            Output::StartHttp { id, url, range } if url == SEG_URL => Some((*id, *range)),
            _ => None,
        })
    };
    run_until(&mut engine, &mut now, &mut outs, 10_000.0, |o| {
        start_of(o).is_some()
    });
    let (id, range) =
        start_of(&outs).unwrap_or_else(|| panic!("no startHttp for {SEG_URL}; outputs: {outs:?}"));
    assert_eq!(range, None);

    let body = ts_payload(40);
    let (first, second) = body.split_at(188 * 15);
    // First chunk through the encoded path, second through the fast path.
    now += 50.0;
    let mut outs = feed(
        &mut engine,
        now,
        &Input::HttpProgress {
            id,
            data: first.to_vec(),
            total: Some(body.len() as u64),
        },
    );
    now += 50.0;
    outs.extend(decode(ok(
        engine.http_progress(now, id.0, second.to_vec(), None),
        "fast httpProgress",
    )));
    now += 1.0;
    outs.extend(feed(
        &mut engine,
        now,
        &Input::HttpDone { id: HttpId(id.0) },
    ));
    run_until(&mut engine, &mut now, &mut outs, 5_000.0, |o| {
        o.iter().any(|o| matches!(o, Output::DeliverSegment { .. }))
    });

    let deliveries: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::DeliverSegment { req, data, timing } => Some((*req, data, timing)),
            _ => None,
        })
        .collect();
    assert_eq!(deliveries.len(), 1, "one delivery; outputs: {outs:?}");
    let (req, data, timing) = &deliveries[0];
    assert_eq!(*req, RequestId(1));
    assert_eq!(data.as_slice(), &body[..]);
    assert_eq!(timing.http_bytes, body.len() as u64);
    assert_eq!(timing.p2p_bytes, 0);

    let stats = decode_stats(&engine.stats()).expect("stats decode");
    assert_eq!(stats.http_down, body.len() as u64);
}

#[wasm_bindgen_test]
fn p2p_enabled_engine_announces_the_swarm() {
    let swarm = swarm_of(&derive_swarm_id("wasm-test-stream", "r1"));
    let (mut engine, mut outs) = vod_engine(swarm, &[]);
    let mut now = 1_000.0;
    let announced = |o: &[Output]| o.iter().any(|o| matches!(o, Output::Announce { .. }));
    run_until(&mut engine, &mut now, &mut outs, 5_000.0, announced);
    assert!(
        outs.iter().any(|o| matches!(o, Output::Announce { swarm: s, event: AnnounceEvent::Started, .. } if *s == swarm)),
        "expected an announce(started) for the new swarm; outputs: {outs:?}"
    );
}

#[wasm_bindgen_test]
fn malformed_inputs_throw_errors_and_leave_the_engine_usable() {
    let swarm = swarm_of(&derive_swarm_id("wasm-test-stream", "r2"));
    let (mut engine, _) = vod_engine(swarm, &[("p2pEnabled", ConfigValue::Bool(false))]);
    let msg = thrown(engine.handle_input(2_000.0, &[99]), "unknown type");
    assert!(msg.contains("unknown input type"), "{msg}");
    let msg = thrown(engine.handle_input(2_000.0, &[9]), "missing id");
    assert!(msg.contains("truncated"), "{msg}");
    thrown(engine.handle_input(2_000.0, &[]), "empty input");
    let mut negative = Writer::default();
    negative.u8(3); // segmentAborted
    negative.num(-1.0f64);
    thrown(engine.handle_input(2_000.0, &negative.buf), "negative id");
    let mut bad_swarm = Writer::default();
    bad_swarm.u8(1); // playhead
    bad_swarm.str("xyz");
    bad_swarm.num(0u64);
    bad_swarm.num(0u64);
    bad_swarm.num(1.0f64);
    let msg = thrown(engine.handle_input(2_000.0, &bad_swarm.buf), "bad swarm id");
    assert!(msg.contains("swarm id"), "{msg}");
    let done = encode_input(&Input::HttpDone { id: HttpId(1) }).expect("crosses");
    thrown(engine.handle_input(f64::NAN, &done), "NaN time");
    thrown(engine.handle_timeout(-5.0), "negative time");
    thrown(
        engine.http_progress(2_000.0, 1, vec![1, 2], Some(f64::INFINITY)),
        "infinite total",
    );
    // Still alive after all of that.
    let aborted = encode_input(&Input::SegmentAborted { req: RequestId(99) }).expect("crosses");
    ok(
        engine.handle_input(2_001.0, &aborted),
        "valid input after errors",
    );
    decode_stats(&engine.stats()).expect("stats after errors");
}

#[wasm_bindgen_test]
fn bad_configs_throw_naming_the_field() {
    let msg = thrown(
        WasmEngine::new(
            &config(&[("maxPeers", ConfigValue::Str("many".into()))]),
            0.0,
            1.0,
        ),
        "string maxPeers",
    );
    assert!(msg.contains("maxPeers"), "{msg}");
    let msg = thrown(
        WasmEngine::new(&config(&[("maxPeer", ConfigValue::Num(3.0))]), 0.0, 1.0),
        "typo",
    );
    assert!(msg.contains("maxPeer") && msg.contains("unknown"), "{msg}");
    thrown(
        WasmEngine::new(&config(&[("cacheBytes", ConfigValue::Num(-1.0))]), 0.0, 1.0),
        "negative cacheBytes",
    );
    thrown(WasmEngine::new(&[1, 2], 0.0, 1.0), "garbage config");
    thrown(WasmEngine::new(&[], f64::NAN, 1.0), "NaN now");
    thrown(WasmEngine::new(&[], 0.0, -1.0), "negative seed");
}

#[wasm_bindgen_test]
fn partial_and_empty_configs_are_accepted() {
    ok(
        WasmEngine::new(
            &config(&[
                ("maxPeers", ConfigValue::Num(3.0)),
                ("p2pEnabled", ConfigValue::Bool(false)),
                ("integrityPublicKey", ConfigValue::Null),
            ]),
            0.0,
            1.0,
        ),
        "partial config",
    );
    ok(WasmEngine::new(&[], 0.5, 2.0), "empty config");
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
