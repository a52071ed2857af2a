//! Checks the test vectors in docs/PROTOCOL.md against the codec, reading them from the
//! document itself so the spec and the code cannot drift apart.
//!
//! A vector is a fenced block tagged `vector` with `name:`, one or more `hex:` lines
//! (concatenated, spaces ignored) and either `message:` (the expected message, written like
//! its `Debug` output except that swarm and peer ids are 40 hex digits) or `error:` (the
//! expected `WireError`'s `Debug` output).

use shoal::wire::{self, Message};
use shoal::{PeerId, SwarmId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

struct Vector {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

enum Expect {
    Message(String),
    Error(String),
}

fn load() -> Vec<Vector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PROTOCOL.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut block, line.trim()) {
            (None, "```vector") => block = Some(Vec::new()),
            (Some(lines), "```") => {
                out.push(parse_block(lines));
                block = None;
            }
            (Some(lines), l) => lines.push(l),
            (None, _) => {}
        }
    }
    assert!(block.is_none(), "unterminated vector block");
    out
}

fn parse_block(lines: &[&str]) -> Vector {
    let mut name = None;
    let mut hex = String::new();
    let mut expect = None;
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("vector line without a key: {line:?}"));
        let value = value.trim().to_string();
        match key {
            "name" => name = Some(value),
            "hex" => hex.extend(value.chars().filter(|c| !c.is_whitespace())),
            "message" => expect = Some(Expect::Message(value)),
            "error" => expect = Some(Expect::Error(value)),
            other => panic!("unknown vector key {other:?}"),
        }
    }
    let name = name.expect("vector without name");
    let bytes = hex::decode(&hex).unwrap_or_else(|e| panic!("{name}: bad hex: {e}"));
    let expect = expect.unwrap_or_else(|| panic!("{name}: needs message: or error:"));
    Vector {
        name,
        bytes,
        expect,
    }
}

/// Splits `a: 1, b: [1, 2], c: 3` at the commas outside brackets.
fn fields(body: &str) -> BTreeMap<String, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once(':')
                .unwrap_or_else(|| panic!("field without value: {p:?}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn int<T: TryFrom<u64>>(s: &str) -> T {
    let n = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.replace('_', "").parse(),
    }
    .unwrap_or_else(|e| panic!("bad integer {s:?}: {e}"));
    T::try_from(n).unwrap_or_else(|_| panic!("integer {s} out of range"))
}

fn bytes(s: &str) -> Vec<u8> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("expected a byte list, got {s:?}"));
    inner
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(int::<u8>)
        .collect()
}

fn id20(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    hex::decode_to_slice(s, &mut out)
        .unwrap_or_else(|e| panic!("expected 40 hex digits, got {s:?}: {e}"));
    out
}

/// Builds the message a `message:` line describes, insisting on exactly the variant's fields.
fn parse_message(text: &str) -> Message {
    let (name, rest) = text
        .split_once('{')
        .unwrap_or_else(|| panic!("bad message {text:?}"));
    let body = rest
        .trim_end()
        .strip_suffix('}')
        .unwrap_or_else(|| panic!("bad message {text:?}"));
    let mut f = fields(body);
    let mut take = |k: &str| {
        f.remove(k)
            .unwrap_or_else(|| panic!("{text}: missing field {k}"))
    };
    let msg = match name.trim() {
        "Handshake" => Message::Handshake {
            version: int(&take("version")),
            swarm: SwarmId(id20(&take("swarm"))),
            peer: PeerId(id20(&take("peer"))),
            capabilities: int(&take("capabilities")),
        },
        "Bitfield" => Message::Bitfield {
            base: int(&take("base")),
            bits: bytes(&take("bits")),
        },
        "Have" => Message::Have {
            seq: int(&take("seq")),
            size: int(&take("size")),
        },
        "Downloading" => Message::Downloading {
            seq: int(&take("seq")),
            size: int(&take("size")),
        },
        "Lost" => Message::Lost {
            seq: int(&take("seq")),
        },
        "Incoming" => Message::Incoming {
            seq: int(&take("seq")),
            hops: int(&take("hops")),
        },
        "Request" => Message::Request {
            id: int(&take("id")),
            seq: int(&take("seq")),
            first_chunk: int(&take("first_chunk")),
            count: int(&take("count")),
        },
        "Cancel" => Message::Cancel {
            id: int(&take("id")),
        },
        "Data" => Message::Data {
            id: int(&take("id")),
            chunk: int(&take("chunk")),
            total_size: int(&take("total_size")),
            payload: bytes(&take("payload")),
        },
        "Absent" => Message::Absent {
            id: int(&take("id")),
        },
        "Busy" => Message::Busy {
            id: int(&take("id")),
            retry_after_ms: int(&take("retry_after_ms")),
        },
        "Ping" => Message::Ping {
            nonce: int(&take("nonce")),
        },
        "Pong" => Message::Pong {
            nonce: int(&take("nonce")),
        },
        other => panic!("unknown message kind {other:?}"),
    };
    assert!(
        f.is_empty(),
        "{text}: unexpected fields {:?}",
        f.keys().collect::<Vec<_>>()
    );
    msg
}

#[test]
fn protocol_md_vectors_hold() {
    let vectors = load();
    let mut names = BTreeSet::new();
    let mut kinds_seen = BTreeSet::new();
    let mut errors = 0;
    for v in &vectors {
        assert!(
            names.insert(v.name.clone()),
            "duplicate vector name {}",
            v.name
        );
        let decoded = wire::decode(&v.bytes);
        match &v.expect {
            Expect::Message(text) => {
                let expected = parse_message(text);
                assert_eq!(decoded.as_ref(), Ok(&expected), "vector {}", v.name);
                assert_eq!(
                    wire::encode(&expected),
                    v.bytes,
                    "vector {}: re-encoding",
                    v.name
                );
                assert_eq!(expected.validate(), Ok(()), "vector {}", v.name);
                // Apart from the abbreviated ids, the line is the Debug output verbatim.
                if !matches!(expected, Message::Handshake { .. }) {
                    assert_eq!(
                        &format!("{expected:?}"),
                        text,
                        "vector {}: Debug form",
                        v.name
                    );
                }
                kinds_seen.insert(expected.kind());
            }
            Expect::Error(text) => {
                match decoded {
                    Err(e) => assert_eq!(&format!("{e:?}"), text, "vector {}", v.name),
                    Ok(m) => panic!("vector {}: expected {text}, decoded {m:?}", v.name),
                }
                errors += 1;
            }
        }
    }
    let all: BTreeSet<u8> = (0..=255u8)
        .filter(|&c| wire::kind_name(c).is_some())
        .collect();
    assert_eq!(kinds_seen, all, "every message type needs a valid vector");
    assert!(errors >= 10, "only {errors} invalid vectors");
}

/// The fuzzer's seed corpus is the vector set: one file per non-empty vector, same bytes.
#[test]
fn fuzz_seeds_match_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate/fuzz/seeds/wire_decode");
    let vectors: Vec<Vector> = load().into_iter().filter(|v| !v.bytes.is_empty()).collect();
    for v in &vectors {
        let file = dir.join(format!("{}.bin", v.name));
        let seed = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(seed, v.bytes, "seed {} differs from its vector", v.name);
    }
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, vectors.len(), "stray files in {}", dir.display());
}
