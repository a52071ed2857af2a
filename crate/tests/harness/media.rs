//! Deterministic media the fake CDN serves.
//!
//! Invariants: the bytes of segment `(rendition, seq)` depend only on those two numbers,
//! so any copy delivered to a player can be compared with what the CDN published. Every
//! segment is a whole number of 188-byte MPEG-TS packets starting with 0x47, so
//! structural checks pass on honest data and fail on most tampering.

use std::collections::HashMap;
use std::rc::Rc;

pub use shoal::testkit::{splitmix64, TS_PACKET};

/// Mixes several numbers into one seed.
pub fn mix(parts: &[u64]) -> u64 {
    let mut s = 0x5348_4f41_4c00_0001u64;
    for p in parts {
        s ^= *p;
        splitmix64(&mut s);
        s = splitmix64(&mut s);
    }
    s
}

/// Size in bytes of a segment: about `bitrate * duration`, varied by ±15 % per segment
/// (encoders do not produce constant sizes), rounded to whole TS packets.
pub fn segment_size(bitrate_bps: u64, duration_ms: u64, rendition: u32, seq: u64) -> usize {
    let nominal = bitrate_bps * duration_ms / 8_000;
    let jitter = mix(&[rendition as u64, seq, 0x5123]) % 31; // 0..=30
    let bytes = nominal * (85 + jitter) / 100;
    let packets = (bytes as usize / TS_PACKET).max(1);
    packets * TS_PACKET
}

/// What the CDN publishes for one stream: rendition bitrates and a segment duration.
pub struct Media {
    pub stream: String,
    pub duration_ms: u64,
    pub bitrates: Vec<u64>,
    cache: HashMap<(u32, u64), Rc<[u8]>>,
}

impl Media {
    pub fn new(stream: &str, duration_ms: u64, bitrates: Vec<u64>) -> Self {
        Media {
            stream: stream.to_string(),
            duration_ms,
            bitrates,
            cache: HashMap::new(),
        }
    }

    /// The full body of a segment (cached: the same `Rc` every time).
    pub fn segment(&mut self, rendition: u32, seq: u64) -> Option<Rc<[u8]>> {
        let bitrate = *self.bitrates.get(rendition as usize)?;
        let dur = self.duration_ms;
        let data = self.cache.entry((rendition, seq)).or_insert_with(|| {
            let size = segment_size(bitrate, dur, rendition, seq);
            Rc::from(shoal::testkit::rendition_segment(
                u64::from(rendition),
                seq,
                size,
            ))
        });
        Some(data.clone())
    }

    pub fn segment_url(&self, rendition: u32, seq: u64) -> String {
        format!(
            "https://cdn.test/{}/r{}/seg{}.ts",
            self.stream, rendition, seq
        )
    }

    pub fn stream_key(&self) -> String {
        format!("https://cdn.test/{}/master.m3u8", self.stream)
    }

    pub fn rendition_key(&self, rendition: u32) -> String {
        format!("https://cdn.test/{}/r{}/index.m3u8", self.stream, rendition)
    }

    /// An integrity manifest (docs/MANIFEST.md, version 1) listing segments `seqs` of a
    /// rendition with their SHA-256 and, if `chunks`, one hash per wire chunk.
    pub fn manifest(
        &mut self,
        rendition: u32,
        seqs: std::ops::Range<u64>,
        chunks: bool,
    ) -> Vec<u8> {
        let mut text = shoal::testkit::media::manifest_header();
        for seq in seqs {
            let Some(body) = self.segment(rendition, seq) else {
                continue;
            };
            let key = format!("seg{seq}.ts");
            text.push_str(&shoal::testkit::manifest_line(&key, &body, chunks));
        }
        text.into_bytes()
    }

    /// Inverse of `segment_url`; `None` for anything this CDN does not publish.
    pub fn parse_url(&self, url: &str) -> Option<(u32, u64)> {
        let rest = url.strip_prefix("https://cdn.test/")?;
        let rest = rest.strip_prefix(self.stream.as_str())?;
        let rest = rest.strip_prefix("/r")?;
        let (rendition, rest) = rest.split_once('/')?;
        let seq = rest.strip_prefix("seg")?.strip_suffix(".ts")?;
        Some((rendition.parse().ok()?, seq.parse().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_ts_and_distinct() {
        let mut m = Media::new("s", 2_000, vec![1_000_000]);
        let a = m.segment(0, 3).unwrap();
        let b = m.segment(0, 4).unwrap();
        assert_eq!(a.len() % TS_PACKET, 0);
        assert!(a.chunks(TS_PACKET).all(|p| p[0] == 0x47));
        assert_ne!(a[..], b[..]);
        assert_eq!(m.parse_url(&m.segment_url(0, 42)), Some((0, 42)));
    }
}
