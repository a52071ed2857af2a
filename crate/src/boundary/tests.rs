use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn swarm() -> impl Strategy<Value = SwarmId> {
    any::<[u8; 20]>().prop_map(SwarmId)
}
fn peer() -> impl Strategy<Value = PeerId> {
    any::<[u8; 20]>().prop_map(PeerId)
}
/// u64 fields cross as JS numbers: at most 2^53.
fn big() -> impl Strategy<Value = u64> {
    0u64..=(1u64 << 53)
}
fn range() -> impl Strategy<Value = Option<ByteRange>> {
    proptest::option::of((big(), big()).prop_map(|(start, end)| ByteRange { start, end }))
}
fn text() -> impl Strategy<Value = String> {
    ".{0,12}"
}
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}
fn one_of<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    (0..all.len()).prop_map(move |i| all[i])
}

fn input() -> impl Strategy<Value = Input> {
    let segment = (big(), big(), any::<u32>(), text(), range()).prop_map(
        |(seq, start_ms, duration_ms, url, range)| SegmentInfo {
            seq,
            start_ms,
            duration_ms,
            url,
            range,
        },
    );
    prop_oneof![
        (
            swarm(),
            any::<bool>(),
            one_of(&CONTAINERS),
            any::<u32>(),
            vec(segment, 0..4)
        )
            .prop_map(
                |(swarm, live, container, bitrate, segments)| Input::Playlist {
                    swarm,
                    live,
                    container,
                    bitrate,
                    segments
                }
            ),
        (
            swarm(),
            big(),
            big(),
            any::<f32>().prop_filter("finite", |f| f.is_finite())
        )
            .prop_map(
                |(swarm, position_ms, buffered_ahead_ms, rate)| Input::Playhead {
                    swarm,
                    position_ms,
                    buffered_ahead_ms,
                    rate
                }
            ),
        (
            any::<u32>(),
            swarm(),
            big(),
            text(),
            range(),
            proptest::option::of(big())
        )
            .prop_map(|(req, swarm, seq, url, range, timeout_ms)| {
                Input::SegmentRequested {
                    req: RequestId(req),
                    swarm,
                    seq,
                    url,
                    range,
                    timeout_ms,
                }
            }),
        any::<u32>().prop_map(|r| Input::SegmentAborted { req: RequestId(r) }),
        (any::<u32>(), swarm(), peer(), any::<bool>()).prop_map(|(c, swarm, peer, inbound)| {
            Input::PeerCandidate {
                conn: ConnId(c),
                swarm,
                peer,
                inbound,
            }
        }),
        any::<u32>().prop_map(|c| Input::PeerConnected { conn: ConnId(c) }),
        (any::<u32>(), bytes()).prop_map(|(c, data)| Input::PeerMessage {
            conn: ConnId(c),
            data
        }),
        any::<u32>().prop_map(|c| Input::PeerClosed { conn: ConnId(c) }),
        (any::<u32>(), bytes(), proptest::option::of(big())).prop_map(|(id, data, total)| {
            Input::HttpProgress {
                id: HttpId(id),
                data,
                total,
            }
        }),
        any::<u32>().prop_map(|id| Input::HttpDone { id: HttpId(id) }),
        (any::<u32>(), any::<u16>(), text()).prop_map(|(id, status, reason)| Input::HttpFailed {
            id: HttpId(id),
            status,
            reason
        }),
        bytes().prop_map(|data| Input::IntegrityManifest { data }),
        (any::<bool>(), big()).prop_map(|(p2p_enabled, upload_bytes_per_sec)| {
            Input::SetPolicy {
                p2p_enabled,
                upload_bytes_per_sec,
            }
        }),
        (swarm(), any::<u32>()).prop_map(|(swarm, peers)| Input::SwarmPeers { swarm, peers }),
        (big(), big()).prop_map(|(bytes, ms)| Input::HttpSample { bytes, ms }),
        swarm().prop_map(|swarm| Input::LeaveSwarm { swarm }),
        Just(Input::PlayerStarted),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (swarm(), peer()).prop_map(|(swarm, peer)| Event::PeerJoined { swarm, peer }),
        (swarm(), peer()).prop_map(|(swarm, peer)| Event::PeerLeft { swarm, peer }),
        (swarm(), peer(), one_of(&BAN_REASONS)).prop_map(|(swarm, peer, reason)| {
            Event::PeerBanned {
                swarm,
                peer,
                reason,
            }
        }),
        (swarm(), big(), big(), big()).prop_map(|(swarm, seq, http_bytes, p2p_bytes)| {
            Event::SegmentLoaded {
                swarm,
                seq,
                http_bytes,
                p2p_bytes,
            }
        }),
        (swarm(), big(), peer(), text()).prop_map(|(swarm, seq, peer, detail)| {
            Event::VerificationFailed {
                swarm,
                seq,
                peer,
                detail,
            }
        }),
        text().prop_map(|detail| Event::ManifestRejected { detail }),
        text().prop_map(|detail| Event::Warning { detail }),
        text().prop_map(|reason| Event::CdnDegraded { reason }),
        Just(Event::CdnRecovered {}),
        (swarm(), big(), vec(peer(), 0..3))
            .prop_map(|(swarm, seq, peers)| { Event::SpotCheckFailed { swarm, seq, peers } }),
    ]
}

fn output() -> impl Strategy<Value = Output> {
    prop_oneof![
        (any::<u32>(), text(), range()).prop_map(|(id, url, range)| Output::StartHttp {
            id: HttpId(id),
            url,
            range
        }),
        any::<u32>().prop_map(|id| Output::CancelHttp { id: HttpId(id) }),
        (
            swarm(),
            one_of(&ANNOUNCE_EVENTS),
            any::<u32>(),
            any::<u32>(),
            one_of(&INBOUND),
            any::<u32>(),
            big(),
        )
            .prop_map(
                |(swarm, event, numwant, offers, inbound, queue_max, queue_max_age_ms)| {
                    Output::Announce {
                        swarm,
                        event,
                        numwant,
                        offers,
                        inbound,
                        queue_max,
                        queue_max_age_ms,
                    }
                }
            ),
        any::<u32>().prop_map(|c| Output::ConnectPeer { conn: ConnId(c) }),
        (any::<u32>(), one_of(&CLOSE_REASONS)).prop_map(|(c, reason)| Output::ClosePeer {
            conn: ConnId(c),
            reason
        }),
        (any::<u32>(), bytes()).prop_map(|(c, data)| Output::SendToPeer {
            conn: ConnId(c),
            data
        }),
        (any::<u32>(), big(), proptest::option::of(big())).prop_map(|(r, loaded, total)| {
            Output::SegmentProgress {
                req: RequestId(r),
                loaded,
                total,
            }
        }),
        (
            any::<u32>(),
            bytes(),
            (big(), big(), big(), big(), big(), any::<bool>())
        )
            .prop_map(
                |(r, data, (h, p, s, f, e, from_cache))| Output::DeliverSegment {
                    req: RequestId(r),
                    data: Rc::new(data),
                    timing: DeliveryTiming {
                        http_bytes: h,
                        p2p_bytes: p,
                        transfer_start: Instant(s),
                        first_byte: Instant(f),
                        transfer_end: Instant(e),
                        from_cache,
                    },
                }
            ),
        (any::<u32>(), text()).prop_map(|(r, reason)| Output::FailSegment {
            req: RequestId(r),
            reason
        }),
        event().prop_map(Output::Event),
    ]
}

fn encode_outputs(outs: &[Output]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut w = Writer::default();
    let mut payloads = Vec::new();
    for o in outs {
        encode_output(o, &mut w, &mut |b: &[u8]| payloads.push(b.to_vec()));
    }
    (w.buf, payloads)
}

proptest! {
    #[test]
    fn inputs_round_trip(i in input()) {
        let bytes = encode_input(&i).expect("every generated input crosses");
        prop_assert_eq!(decode_input(&bytes), Ok(i));
    }

    #[test]
    fn outputs_round_trip(outs in vec(output(), 0..6)) {
        let (buf, payloads) = encode_outputs(&outs);
        let mut r = Reader::new(&buf);
        let mut it = payloads.into_iter();
        let mut back = Vec::new();
        while !r.is_empty() {
            back.push(decode_output(&mut r, &mut it).expect("decodes"));
        }
        prop_assert!(it.next().is_none(), "every payload is used");
        prop_assert_eq!(back, outs);
    }

    #[test]
    fn stats_round_trip(
        n in vec(big(), 7),
        peers in vec((peer(), swarm(), big(), big(), any::<u32>(), any::<u32>()), 0..3),
        cdn_degraded in any::<bool>(),
    ) {
        let s = Stats {
            http_down: n[0], p2p_down: n[1], p2p_up: n[2], p2p_discarded: n[3],
            segments_http: n[4], segments_p2p: n[5], peers: 3, peers_banned: 1, cache_bytes: n[6],
            per_peer: peers.into_iter().map(|(peer, swarm, d, u, strikes, stalls)| PeerStats {
                peer, swarm, down_bytes: d, up_bytes: u, throughput: 1.5, rtt_ms: 20.25, strikes,
                score: -0.5, stalls,
            }).collect(),
            cdn_degraded, http_ttfb_ms: 12.5, p2p_ttfb_ms: 0.0,
        };
        prop_assert_eq!(decode_stats(&encode_stats(&s)), Ok(s));
    }

    /// Garbage never panics; it decodes or is refused.
    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..200)) {
        let _ = decode_input(&buf);
        let _ = decode_config(&buf);
    }

    /// Every prefix of a valid encoding is refused (nothing reads past the end).
    #[test]
    fn truncated_inputs_are_refused(i in input()) {
        let bytes = encode_input(&i).expect("crosses");
        for cut in 0..bytes.len() {
            prop_assert!(decode_input(&bytes[..cut]).is_err());
        }
    }
}

#[test]
fn enum_tables_list_every_variant_once() {
    // A variant missing from a table would encode as the first one.
    fn distinct<T: PartialEq>(all: &[T]) -> bool {
        all.iter()
            .enumerate()
            .all(|(i, a)| all.iter().position(|b| b == a) == Some(i))
    }
    assert!(distinct(&CONTAINERS) && distinct(&ANNOUNCE_EVENTS) && distinct(&INBOUND));
    assert!(distinct(&CLOSE_REASONS) && distinct(&BAN_REASONS));
    // The tables' order is serde's (the TS string unions list variants in the same order).
    let names = |v: serde_json::Value| v.as_str().map(str::to_string);
    let order: Vec<_> = CLOSE_REASONS
        .iter()
        .map(|c| names(serde_json::to_value(c).ok()?))
        .collect();
    assert_eq!(
        order,
        [
            "rejected",
            "banned",
            "tooManyPeers",
            "duplicate",
            "idle",
            "p2pDisabled",
            "swarmLeft"
        ]
        .map(|s| Some(s.to_string()))
    );
}

#[test]
fn config_fields_are_serdes_in_order() {
    let v = serde_json::to_value(Config::default()).expect("serializes");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = CONFIG_FIELDS.to_vec();
    sorted.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, sorted);
}

#[test]
fn config_records_set_fields_and_errors_name_them() {
    let c = decode_config(&encode_config(&[
        ("maxPeers", ConfigValue::Num(3.0)),
        ("p2pEnabled", ConfigValue::Bool(false)),
        ("integrityPublicKey", ConfigValue::Str("ed25519:x".into())),
        ("spotCheckRatio", ConfigValue::Num(0.5)),
    ]))
    .expect("valid");
    assert_eq!(c.max_peers, 3);
    assert!(!c.p2p_enabled);
    assert_eq!(c.integrity_public_key.as_deref(), Some("ed25519:x"));
    assert_eq!(c.spot_check_ratio, 0.5);
    assert_eq!(c.urgent_window_ms, Config::default().urgent_window_ms);
    assert_eq!(decode_config(&[]), Ok(Config::default()));

    let err = decode_config(&encode_config(&[("maxPeer", ConfigValue::Num(3.0))])).unwrap_err();
    assert!(
        err.0.contains("unknown field `maxPeer`") && err.0.contains("maxPeers"),
        "{err:?}"
    );
    let err = decode_config(&encode_config(&[(
        "maxPeers",
        ConfigValue::Str("many".into()),
    )]))
    .unwrap_err();
    assert!(err.0.contains("`maxPeers`"), "{err:?}");
    let err = decode_config(&encode_config(&[("maxPeers", ConfigValue::Num(-1.0))])).unwrap_err();
    assert!(err.0.contains("`maxPeers`"), "{err:?}");
    let err = decode_config(&encode_config(&[("p2pEnabled", ConfigValue::Num(1.0))])).unwrap_err();
    assert!(err.0.contains("`p2pEnabled`"), "{err:?}");
}

#[test]
fn out_of_range_numbers_are_refused() {
    let mut w = Writer::default();
    w.u8(3); // segmentAborted
    w.num(-1.0f64);
    assert!(decode_input(&w.buf).is_err());
    let mut w = Writer::default();
    w.u8(3);
    w.num(1.5f64);
    assert!(decode_input(&w.buf).is_err());
    let mut w = Writer::default();
    w.u8(3);
    w.num(4_294_967_296.0f64);
    assert!(decode_input(&w.buf).is_err());
    let mut w = Writer::default();
    w.u8(3);
    w.num(7.0f64);
    assert_eq!(
        decode_input(&w.buf),
        Ok(Input::SegmentAborted { req: RequestId(7) })
    );
    assert!(decode_input(&[99]).is_err());
    let mut trailing = w.buf.clone();
    trailing.push(0);
    assert!(decode_input(&trailing).is_err());
}
