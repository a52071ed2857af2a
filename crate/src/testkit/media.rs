//! Test media: MPEG-TS segments and the integrity manifest (docs/MANIFEST.md) that lists
//! them.
//!
//! Invariants: the bytes depend only on the arguments, so a copy delivered to a player can
//! be compared with a freshly generated one; a segment is whole 188-byte packets each
//! starting with the sync byte 0x47, so honest data passes the engine's structural checks.

use crate::integrity::sha256;
use crate::wire::CHUNK_SIZE;

/// The size of an MPEG-TS packet.
pub const TS_PACKET: usize = 188;

/// `packets` TS packets, distinct per `seq`: a sync byte, then a counting pattern salted
/// by `seq`.
pub fn ts_segment(seq: u64, packets: usize) -> Vec<u8> {
    let salt = seq.wrapping_mul(131);
    let mut out: Vec<u8> = (0..packets * TS_PACKET)
        .map(|i| (i as u64 ^ salt) as u8)
        .collect();
    for packet in out.chunks_mut(TS_PACKET) {
        packet[0] = 0x47;
    }
    out
}

/// A segment of `size` bytes (whole packets; a remainder is dropped) of one rendition, as
/// the simulator and the swarm harness publish it: per packet a TS header (sync byte, PID
/// 0x100, continuity counter) and a fill drawn from `(rendition, seq)` and the packet index.
pub fn rendition_segment(rendition: u64, seq: u64, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size / TS_PACKET * TS_PACKET];
    let mut state = rendition.wrapping_mul(0x9E37_79B9) ^ seq.wrapping_mul(0x85EB_CA6B);
    for (k, p) in out.chunks_mut(TS_PACKET).enumerate() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let fill = (state >> 33) as u8;
        p[0] = 0x47;
        p[1] = 0x01;
        p[2] = 0x00;
        p[3] = 0x10 | (k as u8 & 0x0f);
        for (i, b) in p.iter_mut().enumerate().skip(4) {
            *b = fill.wrapping_add(i as u8);
        }
    }
    out
}

/// One `segment` line of a manifest: key, size, SHA-256 and, with `chunks`, one hash per
/// wire chunk.
pub fn manifest_line(key: &str, body: &[u8], chunks: bool) -> String {
    let mut line = format!("segment {key} {} {}", body.len(), hex::encode(sha256(body)));
    if chunks && !body.is_empty() {
        let list: Vec<String> = body
            .chunks(CHUNK_SIZE)
            .map(|c| hex::encode(sha256(c)))
            .collect();
        line.push(' ');
        line.push_str(&list.join(","));
    }
    line.push('\n');
    line
}

/// The header every manifest starts with.
pub fn manifest_header() -> String {
    format!("shoal-manifest 1\nchunk-size {CHUNK_SIZE}\n")
}

/// A whole manifest for `(key, body)` pairs.
pub fn manifest<'a>(
    segments: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    chunks: bool,
) -> Vec<u8> {
    let mut text = manifest_header();
    for (key, body) in segments {
        text.push_str(&manifest_line(key, body, chunks));
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Manifest;

    #[test]
    fn segments_are_ts_and_distinct_per_seq() {
        let a = ts_segment(3, 90);
        assert_eq!(a.len(), 90 * TS_PACKET);
        assert!(a.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        assert_ne!(a, ts_segment(4, 90));
        assert_eq!(a[1], (1 ^ 3u64.wrapping_mul(131)) as u8);
    }

    #[test]
    fn rendition_segments_are_ts_and_distinct() {
        let a = rendition_segment(1, 42, 50 * TS_PACKET + 7);
        assert_eq!(a.len(), 50 * TS_PACKET);
        assert!(a.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        assert_ne!(a, rendition_segment(1, 43, 50 * TS_PACKET));
        assert_ne!(a, rendition_segment(0, 42, 50 * TS_PACKET));
    }

    #[test]
    fn the_engine_parses_the_manifest() {
        let a = ts_segment(1, 200);
        let b = ts_segment(2, 90);
        let text = manifest([("a.ts", &a[..]), ("b.ts", &b[..])], true);
        let m = Manifest::parse(&text).expect("manifest parses");
        let e = m
            .lookup("https://cdn.test/v/a.ts", None)
            .expect("a.ts listed");
        assert_eq!((e.size, e.sha256), (a.len() as u64, sha256(&a)));
        assert_eq!(e.chunk_hashes.len(), a.len().div_ceil(CHUNK_SIZE));
        assert!(m.lookup("https://cdn.test/v/b.ts", None).is_some());
    }
}
