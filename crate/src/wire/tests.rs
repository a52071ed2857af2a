//! Property tests: round trip of valid messages, `validate` agreeing with the decoder, and
//! the decoder surviving arbitrary, truncated, extended and mutated input.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn id20() -> impl Strategy<Value = [u8; 20]> {
    any::<[u8; 20]>()
}

fn segment_size() -> impl Strategy<Value = u32> {
    // Small sizes exercise the short-last-chunk rule often; the full range reaches the limit.
    prop_oneof![
        1..=4 * CHUNK_SIZE as u32,
        1..=MAX_SEGMENT_SIZE,
        Just(MAX_SEGMENT_SIZE)
    ]
}

fn data() -> impl Strategy<Value = Message> {
    (any::<u32>(), segment_size())
        .prop_flat_map(|(id, total_size)| {
            let chunks = chunk_count(total_size);
            (
                Just(id),
                Just(total_size),
                prop_oneof![0..chunks, Just(chunks - 1)],
            )
        })
        .prop_flat_map(|(id, total_size, chunk)| {
            let len = chunk_len(total_size, chunk).unwrap_or(1);
            (
                Just(id),
                Just(chunk),
                Just(total_size),
                vec(any::<u8>(), len),
            )
        })
        .prop_map(|(id, chunk, total_size, payload)| Message::Data {
            id,
            chunk,
            total_size,
            payload,
        })
}

fn request() -> impl Strategy<Value = Message> {
    (any::<u32>(), any::<u64>(), 0..MAX_CHUNKS_PER_SEGMENT)
        .prop_flat_map(|(id, seq, first_chunk)| {
            (
                Just(id),
                Just(seq),
                Just(first_chunk),
                1..=MAX_CHUNKS_PER_SEGMENT - first_chunk,
            )
        })
        .prop_map(|(id, seq, first_chunk, count)| Message::Request {
            id,
            seq,
            first_chunk,
            count,
        })
}

fn bitfield() -> impl Strategy<Value = Message> {
    vec(any::<u8>(), 1..=MAX_BITFIELD_BYTES).prop_flat_map(|bits| {
        let max_base = u64::MAX - (bits.len() as u64 * 8 - 1);
        (prop_oneof![0..=max_base, Just(max_base)], Just(bits))
            .prop_map(|(base, bits)| Message::Bitfield { base, bits })
    })
}

pub(super) fn valid_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u16>(), id20(), id20(), any::<u32>()).prop_map(|(version, s, p, capabilities)| {
            Message::Handshake {
                version,
                swarm: SwarmId(s),
                peer: PeerId(p),
                capabilities,
            }
        }),
        bitfield(),
        (any::<u64>(), 1..=MAX_SEGMENT_SIZE).prop_map(|(seq, size)| Message::Have { seq, size }),
        (any::<u64>(), 1..=MAX_SEGMENT_SIZE)
            .prop_map(|(seq, size)| Message::Downloading { seq, size }),
        any::<u64>().prop_map(|seq| Message::Lost { seq }),
        (any::<u64>(), 1..=crate::wire::MAX_INCOMING_HOPS)
            .prop_map(|(seq, hops)| Message::Incoming { seq, hops }),
        request(),
        any::<u32>().prop_map(|id| Message::Cancel { id }),
        data(),
        any::<u32>().prop_map(|id| Message::Absent { id }),
        (any::<u32>(), any::<u16>())
            .prop_map(|(id, retry_after_ms)| Message::Busy { id, retry_after_ms }),
        any::<u32>().prop_map(|nonce| Message::Ping { nonce }),
        any::<u32>().prop_map(|nonce| Message::Pong { nonce }),
    ]
}

/// Any message, mostly invalid: fields drawn from their whole type range.
fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        valid_message(),
        (any::<u64>(), vec(any::<u8>(), 0..=MAX_MESSAGE_SIZE + 8))
            .prop_map(|(base, bits)| Message::Bitfield { base, bits }),
        (any::<u64>(), any::<u32>()).prop_map(|(seq, size)| Message::Have { seq, size }),
        (any::<u64>(), any::<u32>()).prop_map(|(seq, size)| Message::Downloading { seq, size }),
        (any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
            |(id, seq, first_chunk, count)| Message::Request {
                id,
                seq,
                first_chunk,
                count
            }
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            vec(any::<u8>(), 0..=CHUNK_SIZE + 2048)
        )
            .prop_map(|(id, chunk, total_size, payload)| Message::Data {
                id,
                chunk,
                total_size,
                payload
            }),
    ]
}

/// Variable-length messages whose bytes may still be valid after truncation or extension.
fn length_is_self_described(m: &Message) -> bool {
    !matches!(m, Message::Bitfield { .. })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_messages_round_trip(m in valid_message()) {
        prop_assert_eq!(m.validate(), Ok(()));
        let bytes = encode(&m);
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert!(bytes.len() <= MAX_MESSAGE_SIZE);
        prop_assert_eq!(bytes.first().copied(), Some(m.kind()));
        prop_assert_eq!(decode(&bytes), Ok(m));
    }

    #[test]
    fn validate_agrees_with_decoder(m in any_message()) {
        let bytes = encode(&m);
        prop_assert_eq!(bytes.len(), m.encoded_len());
        let decoded = decode(&bytes);
        prop_assert_eq!(m.validate(), decoded.as_ref().map(|_| ()).map_err(Clone::clone));
        if let Ok(d) = decoded {
            prop_assert_eq!(d, m);
        }
    }

    #[test]
    fn borrowed_data_decode_agrees(m in any_message(), cut in any::<prop::sample::Index>(),
                                   extra in vec(any::<u8>(), 0..4)) {
        let mut bytes = encode(&m);
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        bytes.extend_from_slice(&extra);
        let owned = decode(&bytes);
        match decode_data(&bytes) {
            None => prop_assert!(bytes.first() != Some(&kind::DATA)),
            Some(Ok(d)) => {
                prop_assert_eq!(d.encode(), bytes.clone());
                // Header and payload kept apart are the same message.
                let head = d.header();
                prop_assert_eq!(&head[..], &bytes[..DATA_HEADER_LEN]);
                prop_assert_eq!(decode_data_parts(&head, d.payload), Some(Ok(d)));
                prop_assert_eq!(owned, Ok(Message::Data {
                    id: d.id,
                    chunk: d.chunk,
                    total_size: d.total_size,
                    payload: d.payload.to_vec(),
                }));
            }
            Some(Err(e)) => prop_assert_eq!(owned, Err(e)),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..=MAX_MESSAGE_SIZE + 16)) {
        if let Ok(m) = decode(&bytes) {
            prop_assert_eq!(encode(&m), bytes);
        }
    }

    #[test]
    fn typed_garbage_never_panics(code in prop_oneof![0x01u8..=0x05, 0x10u8..=0x14, 0x20u8..=0x21],
                                  body in vec(any::<u8>(), 0..64)) {
        let mut bytes = vec![code];
        bytes.extend_from_slice(&body);
        if let Ok(m) = decode(&bytes) {
            prop_assert_eq!(encode(&m), bytes);
        }
    }

    #[test]
    fn truncation_is_rejected(m in valid_message(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&m);
        let keep = cut.index(bytes.len());
        let short = bytes.get(..keep).unwrap_or_default();
        match decode(short) {
            Err(_) => {}
            Ok(d) => {
                prop_assert!(!length_is_self_described(&m), "{:?} accepted after truncation", m);
                prop_assert_eq!(encode(&d), short.to_vec());
            }
        }
    }

    #[test]
    fn extension_is_rejected(m in valid_message(), extra in vec(any::<u8>(), 1..32)) {
        let mut bytes = encode(&m);
        bytes.extend_from_slice(&extra);
        match decode(&bytes) {
            Err(_) => {}
            Ok(d) => {
                prop_assert!(!length_is_self_described(&m), "{:?} accepted after extension", m);
                prop_assert_eq!(encode(&d), bytes);
            }
        }
    }

    #[test]
    fn mutation_never_panics(m in valid_message(), at in any::<prop::sample::Index>(), x in 1u8..) {
        let mut bytes = encode(&m);
        let i = at.index(bytes.len());
        if let Some(b) = bytes.get_mut(i) {
            *b ^= x;
        }
        if let Ok(d) = decode(&bytes) {
            prop_assert_eq!(encode(&d), bytes);
        }
    }
}

#[test]
fn limits_are_consistent() {
    // A full chunk plus the Data header fits one data-channel message.
    let biggest = Message::Data {
        id: 0,
        chunk: 0,
        total_size: CHUNK_SIZE as u32,
        payload: vec![0; CHUNK_SIZE],
    };
    assert!(biggest.encoded_len() <= MAX_MESSAGE_SIZE);
    assert_eq!(biggest.validate(), Ok(()));
    let full_bitfield = Message::Bitfield {
        base: 0,
        bits: vec![0xff; MAX_BITFIELD_BYTES],
    };
    assert_eq!(full_bitfield.validate(), Ok(()));
    assert_eq!(chunk_count(MAX_SEGMENT_SIZE), MAX_CHUNKS_PER_SEGMENT);
    assert_eq!(chunk_len(MAX_SEGMENT_SIZE, MAX_CHUNKS_PER_SEGMENT), None);
    assert!(chunk_len(MAX_SEGMENT_SIZE, MAX_CHUNKS_PER_SEGMENT - 1).is_some());
}

#[test]
fn edge_cases_report_the_documented_error() {
    let last = MAX_CHUNKS_PER_SEGMENT - 1;
    let cases: Vec<(Message, WireError)> = vec![
        (
            Message::Bitfield {
                base: 0,
                bits: vec![],
            },
            WireError::BadLength {
                kind: kind::BITFIELD,
                len: 8,
            },
        ),
        (
            Message::Bitfield {
                base: 0,
                bits: vec![0; MAX_BITFIELD_BYTES + 1],
            },
            WireError::BadLength {
                kind: kind::BITFIELD,
                len: 8 + MAX_BITFIELD_BYTES + 1,
            },
        ),
        (
            Message::Bitfield {
                base: u64::MAX - 6,
                bits: vec![1],
            },
            WireError::BadField("base"),
        ),
        (
            Message::Have { seq: 1, size: 0 },
            WireError::BadField("size"),
        ),
        (
            Message::Downloading {
                seq: 1,
                size: MAX_SEGMENT_SIZE + 1,
            },
            WireError::BadField("size"),
        ),
        (
            Message::Request {
                id: 1,
                seq: 1,
                first_chunk: 0,
                count: 0,
            },
            WireError::BadField("count"),
        ),
        (
            Message::Request {
                id: 1,
                seq: 1,
                first_chunk: u32::MAX,
                count: 1,
            },
            WireError::BadField("chunk_range"),
        ),
        (
            Message::Request {
                id: 1,
                seq: 1,
                first_chunk: last,
                count: 2,
            },
            WireError::BadField("chunk_range"),
        ),
        (
            Message::Data {
                id: 1,
                chunk: 0,
                total_size: 5,
                payload: vec![],
            },
            WireError::BadLength {
                kind: kind::DATA,
                len: 12,
            },
        ),
        (
            Message::Data {
                id: 1,
                chunk: 0,
                total_size: 0,
                payload: vec![1],
            },
            WireError::BadField("total_size"),
        ),
        (
            Message::Data {
                id: 1,
                chunk: 1,
                total_size: CHUNK_SIZE as u32,
                payload: vec![1],
            },
            WireError::BadField("chunk"),
        ),
        (
            Message::Data {
                id: 1,
                chunk: 0,
                total_size: 5,
                payload: vec![1; 4],
            },
            WireError::BadField("payload_len"),
        ),
        (
            Message::Data {
                id: 1,
                chunk: 0,
                total_size: 1,
                payload: vec![0; MAX_MESSAGE_SIZE],
            },
            WireError::TooLarge(13 + MAX_MESSAGE_SIZE),
        ),
    ];
    for (m, err) in cases {
        assert_eq!(m.validate(), Err(err.clone()), "{m:?}");
        assert_eq!(decode(&encode(&m)), Err(err), "{m:?}");
    }
    assert_eq!(
        Message::Request {
            id: 1,
            seq: 1,
            first_chunk: last,
            count: 1
        }
        .validate(),
        Ok(())
    );
    assert_eq!(decode(&[]), Err(WireError::Empty));
    assert_eq!(decode(&[0x00]), Err(WireError::UnknownType(0)));
    assert_eq!(decode(&[0xff, 1, 2]), Err(WireError::UnknownType(0xff)));
}

#[test]
fn handshake_rejects_foreign_magic() {
    let m = Message::Handshake {
        version: 1,
        swarm: SwarmId([7; 20]),
        peer: PeerId([9; 20]),
        capabilities: 0,
    };
    let mut bytes = encode(&m);
    assert_eq!(bytes.get(1..5), Some(&MAGIC[..]));
    if let Some(b) = bytes.get_mut(1) {
        *b = b'X';
    }
    assert_eq!(decode(&bytes), Err(WireError::BadField("magic")));
    // A BitTorrent handshake starts with 0x13 (Absent here) and is rejected by its length.
    assert_eq!(
        decode(b"\x13BitTorrent protocol"),
        Err(WireError::BadLength {
            kind: 0x13,
            len: 19
        })
    );
}

#[test]
fn kind_names_cover_all_codes() {
    let named = (0u8..=255).filter(|&c| kind_name(c).is_some()).count();
    assert_eq!(named, 13);
    for c in 0u8..=255 {
        assert_eq!(
            kind_name(c).is_some(),
            codec::fixed_body_len(c).is_some(),
            "code {c:#04x}"
        );
    }
}
