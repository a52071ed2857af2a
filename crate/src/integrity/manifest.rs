//! Integrity manifest v1: a line-based text list of segment sizes and SHA-256 hashes.
//!
//! Invariants: the parser is strict and total (never panics, bounded by
//! `MAX_MANIFEST_BYTES` / `MAX_MANIFEST_ENTRIES`), keys are unique, every entry's chunk
//! hash list is empty or has exactly one hash per `chunk_size` chunk. The format, its
//! forward-compatibility rules and its test vectors are in docs/MANIFEST.md; the unit
//! tests load the vectors from there.

use super::{sha256, CheckError};
use crate::types::ByteRange;
use std::collections::HashMap;
use std::fmt;

/// First token of the first line.
pub const MANIFEST_MAGIC: &str = "shoal-manifest";
/// The only version this parser reads.
pub const MANIFEST_VERSION: u32 = 1;
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_MANIFEST_ENTRIES: usize = 100_000;
pub const MAX_KEY_LEN: usize = 255;
/// Largest segment a manifest may describe. The engine may size buffers from `size`, so
/// a manifest must not be able to make it reserve gigabytes.
pub const MAX_SEGMENT_SIZE: u64 = 256 * 1024 * 1024;

/// Version 1 ties chunk hashes to the wire protocol's chunk size, so a chunk as it
/// arrives from a peer can be checked on its own.
const V1_CHUNK_SIZE: u32 = crate::wire::CHUNK_SIZE as u32;
const _: () = assert!(crate::wire::CHUNK_SIZE as u64 == V1_CHUNK_SIZE as u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestEntry {
    pub size: u64,
    pub sha256: [u8; 32],
    /// SHA-256 of each `chunk_size` chunk, possibly empty (then only the whole hash is known).
    pub chunk_hashes: Vec<[u8; 32]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub version: u32,
    pub chunk_size: u32,
    pub entries: HashMap<String, ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    NotAManifest,
    UnsupportedVersion(u32),
    /// `line` is 1-based.
    BadLine {
        line: usize,
        detail: &'static str,
    },
    TooLarge,
    /// `parse_signed`: the last line is not a `signature` line.
    MissingSignature,
    /// `parse_signed`/`sign_manifest`: the signature line is malformed or does not verify.
    BadSignature(&'static str),
    /// The configured public key is unusable (see `parse_public_key`).
    BadPublicKey(&'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::NotAManifest => {
                write!(f, "not a shoal manifest (first line must be `{MANIFEST_MAGIC} <version>`)")
            }
            ManifestError::UnsupportedVersion(v) => write!(f, "unsupported manifest version {v}"),
            ManifestError::BadLine { line, detail } => write!(f, "manifest line {line}: {detail}"),
            ManifestError::TooLarge => write!(
                f,
                "manifest too large (limits: {MAX_MANIFEST_BYTES} bytes, {MAX_MANIFEST_ENTRIES} entries)"
            ),
            ManifestError::MissingSignature => write!(
                f,
                "manifest is not signed (its last line must be `signature ed25519 <base64>`)"
            ),
            ManifestError::BadSignature(d) => write!(f, "manifest signature rejected: {d}"),
            ManifestError::BadPublicKey(d) => write!(f, "bad manifest public key: {d}"),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        // A final LF terminates the last line rather than starting an empty one.
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut lines = body
            .split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l));

        let version = match lines.next() {
            Some((_, first)) => parse_header(first)?,
            None => return Err(ManifestError::NotAManifest),
        };

        let mut chunk_size: Option<u32> = None;
        let mut entries: HashMap<String, ManifestEntry> = HashMap::new();
        let mut signed = false;
        for (line, text) in lines {
            let bad = |detail| ManifestError::BadLine { line, detail };
            check_line_bytes(text).map_err(bad)?;
            if signed {
                return Err(bad("nothing may follow the signature line"));
            }
            if text.is_empty() || text.first() == Some(&b'#') {
                continue;
            }
            // Printable ASCII was checked, so this cannot fail; stay total anyway.
            let text = std::str::from_utf8(text).map_err(|_| bad("not ASCII"))?;
            let mut fields = text.split(' ');
            let directive = fields.next().unwrap_or("");
            let args: Vec<&str> = fields.collect();
            if directive.is_empty() || args.iter().any(|a| a.is_empty()) {
                return Err(bad(
                    "empty field (fields are separated by exactly one space)",
                ));
            }
            match directive {
                "chunk-size" => {
                    if chunk_size.is_some() {
                        return Err(bad("duplicate chunk-size"));
                    }
                    if !entries.is_empty() {
                        return Err(bad("chunk-size must precede the segment lines"));
                    }
                    let [value] = args.as_slice() else {
                        return Err(bad("chunk-size takes one field"));
                    };
                    let n = parse_decimal(value)
                        .ok_or_else(|| bad("chunk-size is not a decimal number"))?;
                    if n != u64::from(V1_CHUNK_SIZE) {
                        return Err(bad("chunk-size must be 15360 (the wire protocol's chunk size) in version 1"));
                    }
                    chunk_size = Some(V1_CHUNK_SIZE);
                }
                "segment" => {
                    let cs = chunk_size.ok_or_else(|| bad("segment before chunk-size"))?;
                    let (key, entry) = parse_segment(&args, cs).map_err(bad)?;
                    if entries.len() >= MAX_MANIFEST_ENTRIES {
                        return Err(ManifestError::TooLarge);
                    }
                    if entries.contains_key(key) {
                        return Err(bad("duplicate segment key"));
                    }
                    entries.insert(key.to_owned(), entry);
                }
                "signature" => {
                    // `parse_signed` verifies it before calling this; here only its shape
                    // and position (last line) are checked.
                    if args.len() != 2 {
                        return Err(bad("signature takes two fields: algorithm and value"));
                    }
                    signed = true;
                }
                other => {
                    if !is_directive_name(other) {
                        return Err(bad("malformed directive name"));
                    }
                    // Unknown directive: ignored, see "Forward compatibility" in
                    // docs/MANIFEST.md.
                }
            }
        }
        let chunk_size = chunk_size.ok_or(ManifestError::BadLine {
            line: count_lines(body),
            detail: "missing chunk-size",
        })?;
        Ok(Manifest {
            version,
            chunk_size,
            entries,
        })
    }

    /// The entry for a segment URL (and byte range), keyed as in docs/MANIFEST.md.
    pub fn lookup(&self, url: &str, range: Option<ByteRange>) -> Option<&ManifestEntry> {
        self.entries.get(&manifest_key(url, range))
    }

    /// The canonical text of this manifest (entries sorted by key, no comments, no
    /// signature), which `parse` reads back to an equal value.
    pub fn to_text(&self) -> String {
        let mut keys: Vec<&String> = self.entries.keys().collect();
        keys.sort();
        let mut out = format!(
            "{MANIFEST_MAGIC} {}\nchunk-size {}\n",
            self.version, self.chunk_size
        );
        for key in keys {
            let Some(e) = self.entries.get(key) else {
                continue;
            };
            out.push_str(&format!(
                "segment {key} {} {}",
                e.size,
                hex::encode(e.sha256)
            ));
            if !e.chunk_hashes.is_empty() {
                let list: Vec<String> = e.chunk_hashes.iter().map(hex::encode).collect();
                out.push(' ');
                out.push_str(&list.join(","));
            }
            out.push('\n');
        }
        out
    }
}

fn count_lines(body: &[u8]) -> usize {
    body.iter().filter(|b| **b == b'\n').count() + 1
}

fn parse_header(first: &[u8]) -> Result<u32, ManifestError> {
    let rest = first
        .strip_prefix(MANIFEST_MAGIC.as_bytes())
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or(ManifestError::NotAManifest)?;
    let bad = |detail| ManifestError::BadLine { line: 1, detail };
    check_line_bytes(rest).map_err(bad)?;
    let text = std::str::from_utf8(rest).map_err(|_| bad("not ASCII"))?;
    let version = parse_decimal(text).ok_or_else(|| bad("version is not a decimal number"))?;
    let version = u32::try_from(version).map_err(|_| bad("version out of range"))?;
    if version != MANIFEST_VERSION {
        return Err(ManifestError::UnsupportedVersion(version));
    }
    Ok(version)
}

/// Lines hold printable ASCII only: no tabs, no CR, no UTF-8.
fn check_line_bytes(line: &[u8]) -> Result<(), &'static str> {
    for b in line {
        match b {
            b'\r' => return Err("carriage return (use LF line endings)"),
            0x20..=0x7e => {}
            _ => return Err("byte outside printable ASCII"),
        }
    }
    Ok(())
}

/// Canonical decimal: digits only, no sign, no leading zero (except "0"), fits in u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// 64 lowercase hex digits.
fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn is_directive_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A key is what `manifest_key` produces: one path component, so never `/`, `?` or `#`.
fn valid_key(key: &str) -> Result<(), &'static str> {
    if key.len() > MAX_KEY_LEN {
        return Err("key longer than 255 bytes");
    }
    if key.bytes().any(|b| matches!(b, b'/' | b'?' | b'#')) {
        return Err("key contains '/', '?' or '#' (keys are the last path component)");
    }
    Ok(())
}

fn parse_segment<'a>(
    args: &[&'a str],
    chunk_size: u32,
) -> Result<(&'a str, ManifestEntry), &'static str> {
    let (key, size, hash, chunks) = match *args {
        [k, s, h] => (k, s, h, None),
        [k, s, h, c] => (k, s, h, Some(c)),
        _ => return Err("segment takes 3 or 4 fields: key size sha256 [chunk-hashes]"),
    };
    valid_key(key)?;
    let size = parse_decimal(size).ok_or("size is not a decimal number")?;
    if size > MAX_SEGMENT_SIZE {
        return Err("size above the 256 MiB limit");
    }
    let sha256 = parse_hash(hash).ok_or("sha256 is not 64 lowercase hex digits")?;
    let mut chunk_hashes = Vec::new();
    if let Some(list) = chunks {
        let expected = size.div_ceil(u64::from(chunk_size.max(1)));
        // Bound the work before splitting: each hash takes 65 bytes with its comma.
        if (list.len() as u64).saturating_add(1) != expected.saturating_mul(65) {
            return Err("chunk hash list does not have one hash per chunk");
        }
        for item in list.split(',') {
            chunk_hashes.push(parse_hash(item).ok_or("chunk hash is not 64 lowercase hex digits")?);
        }
        if chunk_hashes.len() as u64 != expected {
            return Err("chunk hash list does not have one hash per chunk");
        }
    }
    Ok((
        key,
        ManifestEntry {
            size,
            sha256,
            chunk_hashes,
        },
    ))
}

/// Manifest key of a segment: the last path component of the URL without query or
/// fragment, plus `@start-end` (end exclusive) for a byte range.
///
/// No percent-decoding and no URL parsing beyond that: `https://cdn/a/seg-1.ts?tok=9`
/// and `seg-1.ts` both give `seg-1.ts`. A URL ending in `/` gives the empty component.
pub fn manifest_key(url: &str, range: Option<ByteRange>) -> String {
    // The fragment starts at the first '#'; '?' may occur inside it, never the reverse.
    let url = url.split('#').next().unwrap_or("");
    let path = url.split('?').next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    match range {
        Some(r) => format!("{last}@{}-{}", r.start, r.end),
        None => last.to_owned(),
    }
}

/// Checks a whole segment against its manifest entry: size, then SHA-256.
pub fn verify_against(entry: &ManifestEntry, data: &[u8]) -> Result<(), CheckError> {
    let got = data.len() as u64;
    if got != entry.size {
        return Err(CheckError::Size {
            expected: entry.size,
            got,
        });
    }
    if sha256(data) != entry.sha256 {
        return Err(CheckError::HashMismatch);
    }
    Ok(())
}

/// Checks chunk `index` (of `chunk_size` bytes; the last one may be shorter) of a segment.
/// `None` when the entry has no chunk hashes, `chunk_size` is 0 or `index` is out of
/// range: the caller then falls back to the whole-segment check.
pub fn verify_chunk(
    entry: &ManifestEntry,
    chunk_size: u32,
    index: u32,
    chunk: &[u8],
) -> Option<bool> {
    if chunk_size == 0 {
        return None;
    }
    let expected_hash = entry.chunk_hashes.get(usize::try_from(index).ok()?)?;
    let start = u64::from(index).checked_mul(u64::from(chunk_size))?;
    let expected_len = entry.size.checked_sub(start)?.min(u64::from(chunk_size));
    Some(chunk.len() as u64 == expected_len && sha256(chunk) == *expected_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/MANIFEST.md"));

    fn bad_line(r: Result<Manifest, ManifestError>) -> (usize, &'static str) {
        match r {
            Err(ManifestError::BadLine { line, detail }) => (line, detail),
            other => panic!("expected BadLine, got {other:?}"),
        }
    }

    const HDR: &str = "shoal-manifest 1\nchunk-size 15360\n";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn parse(s: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(s.as_bytes())
    }

    #[test]
    fn minimal_manifest() {
        let m = parse(&format!("{HDR}segment a.ts 3 {ABC}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.version, 1);
        assert_eq!(m.chunk_size, 15360);
        let e = m.lookup("https://cdn.example/x/a.ts?token=1#t=3", None);
        assert_eq!(e.map(|e| e.size), Some(3));
        assert_eq!(e.map(|e| verify_against(e, b"abc")), Some(Ok(())));
        assert_eq!(
            e.map(|e| verify_against(e, b"abd")),
            Some(Err(CheckError::HashMismatch))
        );
        assert_eq!(
            e.map(|e| verify_against(e, b"abcd")),
            Some(Err(CheckError::Size {
                expected: 3,
                got: 4
            }))
        );
        assert_eq!(e.map(|e| verify_chunk(e, 15360, 0, b"abc")), Some(None));
        // Without a final newline, and with comments and blank lines.
        assert!(parse(&format!("{HDR}\n# c\nsegment a.ts 3 {ABC}")).is_ok());
    }

    #[test]
    fn header_errors() {
        assert_eq!(parse(""), Err(ManifestError::NotAManifest));
        assert_eq!(parse("\n"), Err(ManifestError::NotAManifest));
        assert_eq!(parse("#EXTM3U\n"), Err(ManifestError::NotAManifest));
        assert_eq!(parse("shoal-manifest\n"), Err(ManifestError::NotAManifest));
        assert_eq!(
            parse("\u{feff}shoal-manifest 1\n"),
            Err(ManifestError::NotAManifest)
        );
        assert_eq!(
            parse("shoal-manifest 2\nchunk-size 15360\n"),
            Err(ManifestError::UnsupportedVersion(2))
        );
        assert_eq!(bad_line(parse("shoal-manifest 01\n")).0, 1);
        assert_eq!(bad_line(parse("shoal-manifest 1 x\n")).0, 1);
        assert_eq!(
            bad_line(parse("shoal-manifest 99999999999\n")).1,
            "version out of range"
        );
        assert_eq!(
            bad_line(parse("shoal-manifest 1\r\nchunk-size 15360\n")).1,
            "carriage return (use LF line endings)"
        );
        assert_eq!(
            bad_line(parse("shoal-manifest 1\n")),
            (1, "missing chunk-size")
        );
        assert_eq!(
            bad_line(parse("shoal-manifest 1\n\n# x\n")),
            (3, "missing chunk-size")
        );
    }

    #[test]
    fn line_errors_carry_line_numbers() {
        let cases: &[(&str, usize)] = &[
            ("shoal-manifest 1\nsegment a.ts 3 {ABC}\n", 2),
            ("shoal-manifest 1\nchunk-size 1024\n", 2),
            ("shoal-manifest 1\nchunk-size 015360\n", 2),
            ("{HDR}chunk-size 15360\n", 3),
            ("{HDR}segment a.ts 3 {ABC}\nsegment a.ts 3 {ABC}\n", 4),
            ("{HDR}segment a.ts 3 {ABC}\nchunk-size 15360\n", 4),
            ("{HDR}segment  a.ts 3 {ABC}\n", 3),
            ("{HDR}segment a.ts 3 {ABC} \n", 3),
            ("{HDR}segment a.ts\t3 {ABC}\n", 3),
            ("{HDR}segment a/b.ts 3 {ABC}\n", 3),
            ("{HDR}segment a.ts -3 {ABC}\n", 3),
            ("{HDR}segment a.ts 268435457 {ABC}\n", 3),
            ("{HDR}segment a.ts 3 BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n", 3),
            ("{HDR}segment a.ts 3 {ABC} {ABC},{ABC}\n", 3),
            ("{HDR}segment a.ts 3 {ABC} {ABC},\n", 3),
            ("{HDR}segment a.ts 0 {ABC} {ABC}\n", 3),
            ("{HDR}segment a.ts 3\n", 3),
            ("{HDR}Segment a.ts 3 {ABC}\n", 3),
            ("{HDR}signature ed25519\n", 3),
            ("{HDR}signature ed25519 AAAA\nsegment a.ts 3 {ABC}\n", 4),
            ("{HDR}signature ed25519 AAAA\n\n", 4),
            ("{HDR}# caf\u{e9}\n", 3),
        ];
        for (text, line) in cases {
            let text = text.replace("{HDR}", HDR).replace("{ABC}", ABC);
            assert_eq!(bad_line(parse(&text)).0, *line, "{text:?}");
        }
        let long = "k".repeat(256);
        assert_eq!(
            bad_line(parse(&format!("{HDR}segment {long} 3 {ABC}\n"))).1,
            "key longer than 255 bytes"
        );
        assert!(parse(&format!("{HDR}segment {} 3 {ABC}\n", &long[1..])).is_ok());
    }

    #[test]
    fn unknown_directives_and_signature() {
        let m = parse(&format!(
            "{HDR}x-generator shoal-manifest-tool 0.1\nsegment a.ts 3 {ABC}\nsignature ed25519 c2ln\n"
        ));
        assert_eq!(m.map(|m| m.entries.len()), Ok(1));
    }

    #[test]
    fn limits() {
        let mut big = Vec::from(HDR.as_bytes());
        big.resize(MAX_MANIFEST_BYTES + 1, b'#');
        assert_eq!(Manifest::parse(&big), Err(ManifestError::TooLarge));
        let mut many = String::from(HDR);
        for i in 0..=MAX_MANIFEST_ENTRIES {
            many.push_str(&format!("segment {i} 3 {ABC}\n"));
        }
        assert_eq!(parse(&many), Err(ManifestError::TooLarge));
    }

    #[test]
    fn chunk_verification() {
        let data: Vec<u8> = (0..20000u32).map(|i| (i % 251) as u8).collect();
        let cs = 15360usize;
        let hashes: Vec<[u8; 32]> = data.chunks(cs).map(sha256).collect();
        let entry = ManifestEntry {
            size: data.len() as u64,
            sha256: sha256(&data),
            chunk_hashes: hashes,
        };
        assert_eq!(verify_chunk(&entry, 15360, 0, &data[..cs]), Some(true));
        assert_eq!(verify_chunk(&entry, 15360, 1, &data[cs..]), Some(true));
        assert_eq!(
            verify_chunk(&entry, 15360, 1, &data[cs..19999]),
            Some(false)
        );
        let mut bad = data[..cs].to_vec();
        bad[77] ^= 1;
        assert_eq!(verify_chunk(&entry, 15360, 0, &bad), Some(false));
        assert_eq!(verify_chunk(&entry, 15360, 2, &[]), None);
        assert_eq!(verify_chunk(&entry, 0, 0, &data[..cs]), None);
        assert_eq!(verify_chunk(&entry, 15360, u32::MAX, &[]), None);
        assert_eq!(verify_against(&entry, &data), Ok(()));
    }

    #[test]
    fn keys() {
        let r = |start, end| Some(ByteRange { start, end });
        assert_eq!(
            manifest_key("https://cdn.example/live/720p/seg-00042.ts", None),
            "seg-00042.ts"
        );
        assert_eq!(
            manifest_key("seg-00042.ts?token=abc#frag", None),
            "seg-00042.ts"
        );
        assert_eq!(manifest_key("../v/seg%2042.m4s", None), "seg%2042.m4s");
        assert_eq!(manifest_key("/a/b.mp4#x?y/z", r(0, 1000)), "b.mp4@0-1000");
        assert_eq!(manifest_key("https://h/p/", None), "");
        assert_eq!(manifest_key("", r(5, 5)), "@5-5");
        assert_eq!(
            manifest_key("https://h/a.mp4", r(u64::MAX - 1, u64::MAX)),
            format!("a.mp4@{}-{}", u64::MAX - 1, u64::MAX)
        );
    }

    /// Test vectors from docs/MANIFEST.md: fenced blocks tagged `shoal-manifest valid`
    /// (followed by an `expect` block) or `shoal-manifest invalid <error>`.
    #[test]
    fn doc_vectors() {
        let mut blocks: Vec<(String, String)> = Vec::new();
        let mut lines = DOC.lines();
        while let Some(l) = lines.next() {
            if let Some(info) = l.strip_prefix("```") {
                if info.is_empty() {
                    continue;
                }
                let mut body = String::new();
                for b in lines.by_ref() {
                    if b == "```" {
                        break;
                    }
                    body.push_str(b);
                    body.push('\n');
                }
                blocks.push((info.to_owned(), body));
            }
        }
        let (mut valid, mut invalid) = (0, 0);
        for (i, (info, body)) in blocks.iter().enumerate() {
            let words: Vec<&str> = info.split(' ').collect();
            match words.as_slice() {
                ["shoal-manifest", "valid"] => {
                    let m = parse(body).unwrap_or_else(|e| panic!("doc vector {i}: {e}"));
                    let (einfo, expect) = blocks
                        .get(i + 1)
                        .unwrap_or_else(|| panic!("no expect block"));
                    assert_eq!(einfo, "expect");
                    check_expectation(&m, expect);
                    valid += 1;
                }
                ["shoal-manifest", "invalid", err] => {
                    let got = parse(body);
                    let want = match err.split_once(':') {
                        Some(("line", n)) => {
                            assert_eq!(
                                Some(bad_line(got).0),
                                n.parse().ok(),
                                "doc vector {i}: {body}"
                            );
                            invalid += 1;
                            continue;
                        }
                        Some(("unsupported-version", v)) => {
                            ManifestError::UnsupportedVersion(v.parse().unwrap_or(0))
                        }
                        None if *err == "not-a-manifest" => ManifestError::NotAManifest,
                        _ => panic!("unknown error tag {err}"),
                    };
                    assert_eq!(got, Err(want), "doc vector {i}");
                    invalid += 1;
                }
                _ => {}
            }
        }
        assert!(
            valid >= 2 && invalid >= 5,
            "doc vectors found: {valid} valid, {invalid} invalid"
        );
    }

    /// `expect` lines: `version N`, `chunk-size N`, `entries N`, and per entry
    /// `entry <key> <size> <sha256> <chunk-count> <content>` where content describes the
    /// bytes (`ascii:<text>` or `mod251:<len>`, byte i = i mod 251), so the hashes in the
    /// doc are checked against real data.
    fn check_expectation(m: &Manifest, expect: &str) {
        for line in expect.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["version", v] => assert_eq!(m.version.to_string(), *v),
                ["chunk-size", v] => assert_eq!(m.chunk_size.to_string(), *v),
                ["entries", v] => assert_eq!(m.entries.len().to_string(), *v),
                ["entry", key, size, hash, chunks, content] => {
                    let e = m
                        .entries
                        .get(*key)
                        .unwrap_or_else(|| panic!("no entry {key}"));
                    assert_eq!(e.size.to_string(), *size);
                    assert_eq!(hex::encode(e.sha256), *hash);
                    assert_eq!(e.chunk_hashes.len().to_string(), *chunks);
                    let data: Vec<u8> = match content.split_once(':') {
                        Some(("ascii", t)) => t.as_bytes().to_vec(),
                        Some(("mod251", n)) => (0..n.parse::<u32>().unwrap_or(0))
                            .map(|i| (i % 251) as u8)
                            .collect(),
                        _ => panic!("bad content {content}"),
                    };
                    assert_eq!(verify_against(e, &data), Ok(()), "{key}");
                    for (i, c) in data.chunks(m.chunk_size as usize).enumerate() {
                        let v = verify_chunk(e, m.chunk_size, i as u32, c);
                        assert_eq!(
                            v,
                            if e.chunk_hashes.is_empty() {
                                None
                            } else {
                                Some(true)
                            }
                        );
                    }
                }
                _ => panic!("bad expect line {line:?}"),
            }
        }
    }

    fn entry_strategy() -> impl Strategy<Value = (String, ManifestEntry)> {
        (
            "[a-zA-Z0-9._%@-]{0,40}",
            0u64..40_000,
            any::<[u8; 32]>(),
            any::<bool>(),
            any::<u64>(),
        )
            .prop_map(|(key, size, sha256, with_chunks, seed)| {
                let n = if with_chunks { size.div_ceil(15360) } else { 0 };
                let chunk_hashes = (0..n)
                    .map(|i| sha256_of_u64(seed.wrapping_add(i)))
                    .collect();
                (
                    key,
                    ManifestEntry {
                        size,
                        sha256,
                        chunk_hashes,
                    },
                )
            })
    }

    fn sha256_of_u64(x: u64) -> [u8; 32] {
        sha256(&x.to_le_bytes())
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::parse(&data);
            let mut with_header = HDR.as_bytes().to_vec();
            with_header.extend_from_slice(&data);
            let _ = Manifest::parse(&with_header);
        }

        #[test]
        fn arbitrary_lines_never_panic(lines in proptest::collection::vec("[ -~]{0,80}", 0..20)) {
            let text = format!("{HDR}{}", lines.join("\n"));
            let _ = parse(&text);
        }

        #[test]
        fn to_text_round_trips(entries in proptest::collection::vec(entry_strategy(), 0..8)) {
            let m = Manifest {
                version: 1,
                chunk_size: 15360,
                entries: entries.into_iter().filter(|(k, _)| !k.is_empty()).collect(),
            };
            prop_assert_eq!(parse(&m.to_text()), Ok(m));
        }

        #[test]
        fn manifest_key_never_panics(url in ".{0,100}", start in any::<u64>(), end in any::<u64>()) {
            let k = manifest_key(&url, None);
            prop_assert!(!k.contains('/') && !k.contains('?') && !k.contains('#'));
            let kr = manifest_key(&url, Some(ByteRange { start, end }));
            prop_assert_eq!(kr, format!("{k}@{start}-{end}"));
        }
    }
}
