//! `Engine::set_shared_copies` (a host running many engines shares identical cached bytes): the
//! engine keeps the offered buffer only when its bytes equal the ones it verified, and the
//! player gets the same bytes either way.
//!
//! `cargo test --test engine_shared_copies`

use shoal::store::SegmentBytes;
use shoal::*;
use std::rc::Rc;

const SW: SwarmId = SwarmId([7; 20]);
const SEG_MS: u64 = 2_000;

fn url(seq: u64) -> String {
    format!("https://cdn.test/live/s{seq}.ts")
}

/// A structurally valid MPEG-TS segment (3 chunks), distinct per seq.
fn ts_segment(seq: u64) -> Vec<u8> {
    shoal::testkit::ts_segment(seq, 250)
}

/// Loads segment 4 over HTTP (P2P off) with a shared-copy source offering `offered`; returns the
/// engine (alive: its cache may hold `offered`) and the bytes delivered to the player.
fn load_with(offered: &SegmentBytes) -> (Engine, Vec<u8>) {
    let cfg = Config {
        p2p_enabled: false,
        ..Config::default()
    };
    let mut now = Instant::from_millis(1_000);
    let mut e = Engine::new(cfg, now, 1);
    let give = offered.clone();
    e.set_shared_copies(Box::new(move |u, range| {
        (u == url(4) && range.is_none()).then(|| give.clone())
    }));
    let segments = (0..6)
        .map(|seq| SegmentInfo {
            seq,
            start_ms: seq * SEG_MS,
            duration_ms: SEG_MS as u32,
            url: url(seq),
            range: None,
        })
        .collect();
    e.handle_input(
        now,
        Input::Playlist {
            swarm: SW,
            live: true,
            container: Container::Ts,
            bitrate: 0,
            segments,
        },
    );
    e.handle_input(
        now,
        Input::Playhead {
            swarm: SW,
            position_ms: 4 * SEG_MS,
            buffered_ahead_ms: 0,
            rate: 1.0,
        },
    );
    e.handle_input(
        now,
        Input::SegmentRequested {
            req: RequestId(1),
            swarm: SW,
            seq: 4,
            url: url(4),
            range: None,
            timeout_ms: None,
        },
    );
    let mut delivered = None;
    for _ in 0..100 {
        while let Some(o) = e.poll_output() {
            match o {
                Output::StartHttp { id, url: u, .. } => {
                    assert_eq!(u, url(4), "only the requested segment is fetched");
                    let body = ts_segment(4);
                    let total = Some(body.len() as u64);
                    e.handle_input(
                        now,
                        Input::HttpProgress {
                            id,
                            data: body,
                            total,
                        },
                    );
                    e.handle_input(now, Input::HttpDone { id });
                }
                Output::DeliverSegment { req, data, .. } => {
                    assert_eq!(req, RequestId(1));
                    delivered = Some(data);
                }
                _ => {}
            }
        }
        if delivered.is_some() {
            break;
        }
        now = e
            .poll_timeout()
            .map_or(now + ms(100), |t| t.max(now + ms(1)));
        e.handle_timeout(now);
    }
    assert_eq!(e.stats().cache_bytes, ts_segment(4).len() as u64);
    (e, delivered.map(|d| d.to_vec()).unwrap_or_default())
}

fn ms(v: u64) -> std::time::Duration {
    std::time::Duration::from_millis(v)
}

#[test]
fn the_cache_keeps_the_offered_buffer_only_when_its_bytes_are_equal() {
    // References: ours, the shared-copy source's, and the cache's when it keeps the buffer.
    let equal: SegmentBytes = Rc::new(ts_segment(4));
    let (engine, got) = load_with(&equal);
    assert_eq!(got, ts_segment(4));
    assert_eq!(
        Rc::strong_count(&equal),
        3,
        "equal bytes: the cache holds the offer"
    );
    drop(engine);
    assert_eq!(Rc::strong_count(&equal), 1);

    let mut other = ts_segment(4);
    other[5] ^= 1;
    let differs: SegmentBytes = Rc::new(other);
    let (_engine, got) = load_with(&differs);
    assert_eq!(got, ts_segment(4), "the player gets the verified bytes");
    assert_eq!(
        Rc::strong_count(&differs),
        2,
        "other bytes: the cache keeps its own"
    );
}
