//! Integrity checks for bytes that came from peers.
//!
//! Invariants: nothing here panics on any input. A check either proves the bytes are what
//! the origin published (hash from the integrity manifest) or, without a manifest, that
//! they are at least structurally valid for the container (MPEG-TS sync bytes, fMP4 box
//! walk). The manifest format is in docs/MANIFEST.md.
//!
//! The structural checks are deliberately shallow: a false alarm bans an honest peer, so
//! they only reject what no encoder writes (a TS packet without its sync byte, ISO-BMFF
//! boxes that do not tile the data). Proof of content needs the manifest; without one,
//! `spot_check` compares a sample of peer-delivered segments with the CDN's copy after the
//! fact.

mod manifest;
mod signature;
pub mod spot_check;

pub use manifest::{
    manifest_key, verify_against, verify_chunk, Manifest, ManifestEntry, ManifestError,
    MANIFEST_MAGIC, MANIFEST_VERSION, MAX_KEY_LEN, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES,
    MAX_SEGMENT_SIZE,
};
pub use signature::{
    format_public_key, parse_public_key, public_key_of, sign_manifest, PUBLIC_KEY_PREFIX,
    SIGNATURE_ALGORITHM, SIGNING_CONTEXT,
};

use crate::types::Container;
use std::fmt;

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// MPEG-TS packet at this segment offset does not start with 0x47.
    TsSync {
        offset: u64,
    },
    /// ISO-BMFF box walk failed at this offset.
    Mp4Box {
        offset: u64,
        detail: &'static str,
    },
    /// Wrong length. For a manifest check `expected` is the published size; for a
    /// structural check it is the nearest acceptable length above `got` (e.g. the next
    /// multiple of 188 for a TS segment, 1 for an empty segment).
    Size {
        expected: u64,
        got: u64,
    },
    HashMismatch,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::TsSync { offset } => write!(f, "no MPEG-TS sync byte at offset {offset}"),
            CheckError::Mp4Box { offset, detail } => {
                write!(f, "bad ISO-BMFF box at offset {offset}: {detail}")
            }
            CheckError::Size { expected, got } => {
                write!(f, "wrong size: expected {expected} bytes, got {got}")
            }
            CheckError::HashMismatch => write!(f, "SHA-256 does not match the manifest"),
        }
    }
}

impl std::error::Error for CheckError {}

pub const TS_PACKET: u64 = 188;
pub const TS_SYNC: u8 = 0x47;

/// Checks one chunk placed at `offset` inside a segment of the given container: every
/// 188-byte TS packet boundary that falls inside the chunk must hold 0x47. fMP4 and
/// unknown containers pass (they are checked whole by `check_segment`).
pub fn check_chunk(container: Container, offset: u64, chunk: &[u8]) -> Result<(), CheckError> {
    match container {
        Container::Ts => check_ts_sync(offset, chunk),
        Container::Fmp4 | Container::Unknown => Ok(()),
    }
}

fn check_ts_sync(offset: u64, chunk: &[u8]) -> Result<(), CheckError> {
    let rem = offset % TS_PACKET;
    let first = if rem == 0 { 0 } else { TS_PACKET - rem };
    let Ok(first) = usize::try_from(first) else {
        return Ok(());
    };
    for (i, b) in chunk
        .iter()
        .enumerate()
        .skip(first)
        .step_by(TS_PACKET as usize)
    {
        if *b != TS_SYNC {
            return Err(CheckError::TsSync {
                offset: offset.saturating_add(i as u64),
            });
        }
    }
    Ok(())
}

/// Checks a complete segment's structure (TS: length multiple of 188 and every sync byte;
/// fMP4: boxes tile the data exactly, sizes sane, types printable ASCII).
pub fn check_segment(container: Container, data: &[u8]) -> Result<(), CheckError> {
    let len = data.len() as u64;
    match container {
        Container::Ts => {
            check_ts_sync(0, data)?;
            if len == 0 || len % TS_PACKET != 0 {
                return Err(CheckError::Size {
                    expected: (len / TS_PACKET + 1).saturating_mul(TS_PACKET),
                    got: len,
                });
            }
            Ok(())
        }
        Container::Fmp4 => check_fmp4(data),
        Container::Unknown => {
            if data.is_empty() {
                Err(CheckError::Size {
                    expected: 1,
                    got: 0,
                })
            } else {
                Ok(())
            }
        }
    }
}

/// Boxes whose payload is nothing but child boxes (ISO/IEC 14496-12), so their children
/// must tile them too. Boxes with a version/flags header or mixed payload (`meta`, `stsd`,
/// `udta` with iTunes atoms...) are not entered: vendors fill those loosely.
const PURE_CONTAINERS: [&[u8; 4]; 10] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts", b"dinf",
];

/// Deepest nesting that the pure containers allow (moov/trak/mdia/minf/stbl/...).
const MAX_DEPTH: u32 = 8;

struct BoxHeader {
    kind: [u8; 4],
    header_len: u64,
    /// Total box size including the header.
    size: u64,
}

/// Reads the box header at `pos` of `data` (`base` is `data`'s offset in the segment,
/// for error reporting). `top_level` allows size 0 ("to the end").
fn read_box(data: &[u8], pos: usize, base: u64, top_level: bool) -> Result<BoxHeader, CheckError> {
    let at = base.saturating_add(pos as u64);
    let err = |detail| CheckError::Mp4Box { offset: at, detail };
    let rest = data.get(pos..).ok_or_else(|| err("offset past end"))?;
    let (Some(size_bytes), Some(kind_bytes)) = (rest.get(0..4), rest.get(4..8)) else {
        return Err(err("truncated box header"));
    };
    let mut kind = [0u8; 4];
    kind.copy_from_slice(kind_bytes);
    if !kind.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(err("box type is not printable ASCII"));
    }
    let mut size32 = [0u8; 4];
    size32.copy_from_slice(size_bytes);
    let remaining = rest.len() as u64;
    let (mut header_len, size) = match u32::from_be_bytes(size32) {
        0 if top_level => (8u64, remaining),
        0 => return Err(err("size 0 (to end) inside a container box")),
        1 => {
            let large = rest
                .get(8..16)
                .ok_or_else(|| err("truncated 64-bit box size"))?;
            let mut b = [0u8; 8];
            b.copy_from_slice(large);
            (16u64, u64::from_be_bytes(b))
        }
        n => (8u64, u64::from(n)),
    };
    if &kind == b"uuid" {
        header_len += 16;
    }
    if size < header_len || remaining < header_len {
        return Err(err("box size smaller than its header"));
    }
    if size > remaining {
        return Err(err("box extends past the end of the data"));
    }
    Ok(BoxHeader {
        kind,
        header_len,
        size,
    })
}

/// Walks boxes that must tile `data` exactly, descending into pure containers; reports
/// the types of top-level boxes to `seen`.
fn walk_boxes(
    data: &[u8],
    base: u64,
    depth: u32,
    seen: &mut dyn FnMut(&[u8; 4]),
) -> Result<(), CheckError> {
    let mut pos = 0usize;
    while pos < data.len() {
        let h = read_box(data, pos, base, depth == 0)?;
        // `size <= remaining` was checked, so these conversions and additions fit.
        let size = usize::try_from(h.size).map_err(|_| CheckError::Mp4Box {
            offset: base.saturating_add(pos as u64),
            detail: "box too large",
        })?;
        let end = pos.saturating_add(size);
        if depth == 0 {
            seen(&h.kind);
        }
        if PURE_CONTAINERS.contains(&&h.kind) && depth < MAX_DEPTH {
            let hl = usize::try_from(h.header_len).unwrap_or(usize::MAX);
            let body = data.get(pos.saturating_add(hl)..end).unwrap_or(&[]);
            let body_base = base.saturating_add(pos as u64).saturating_add(h.header_len);
            walk_boxes(body, body_base, depth + 1, &mut |_| {})?;
        }
        pos = end;
    }
    Ok(())
}

fn check_fmp4(data: &[u8]) -> Result<(), CheckError> {
    if data.is_empty() {
        return Err(CheckError::Mp4Box {
            offset: 0,
            detail: "empty segment",
        });
    }
    let (mut moof, mut mdat, mut moov) = (false, false, false);
    walk_boxes(data, 0, 0, &mut |kind| match kind {
        b"moof" => moof = true,
        b"mdat" => mdat = true,
        b"moov" => moov = true,
        _ => {}
    })?;
    if moof && !mdat {
        return Err(CheckError::Mp4Box {
            offset: data.len() as u64,
            detail: "moof without mdat",
        });
    }
    // moof implies mdat here.
    if !(moov || moof) {
        return Err(CheckError::Mp4Box {
            offset: 0,
            detail: "neither a media segment (moof+mdat) nor an init segment (moov)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TS: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crate/tests/fixtures/media/tiny.ts"
    ));
    const INIT: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crate/tests/fixtures/media/tiny-init.mp4"
    ));
    const SEG: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crate/tests/fixtures/media/tiny-seg.m4s"
    ));

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn media_segment() -> Vec<u8> {
        let traf = bx(b"traf", &bx(b"tfhd", &[0; 8]));
        let moof = bx(b"moof", &[bx(b"mfhd", &[0; 8]), traf].concat());
        [bx(b"styp", b"msdhcmfs"), moof, bx(b"mdat", &[1, 2, 3])].concat()
    }

    fn mp4_detail(r: Result<(), CheckError>) -> (u64, &'static str) {
        match r {
            Err(CheckError::Mp4Box { offset, detail }) => (offset, detail),
            other => panic!("expected an Mp4Box error, got {other:?}"),
        }
    }

    #[test]
    fn real_ts_passes_and_a_flipped_sync_byte_fails() {
        assert!(TS.len() >= 188 * 10, "fixture is real TS output");
        assert_eq!(check_segment(Container::Ts, TS), Ok(()));
        for (i, chunk) in TS.chunks(1000).enumerate() {
            assert_eq!(check_chunk(Container::Ts, i as u64 * 1000, chunk), Ok(()));
        }
        let mut bad = TS.to_vec();
        bad[188 * 7] = 0x48;
        assert_eq!(
            check_segment(Container::Ts, &bad),
            Err(CheckError::TsSync { offset: 188 * 7 })
        );
        // The chunk containing that packet start (chunk 1 covers 1000..2000) fails, with
        // the segment offset; its neighbours pass.
        let chunk = |i: usize| &bad[i * 1000..((i + 1) * 1000).min(bad.len())];
        assert_eq!(
            check_chunk(Container::Ts, 1000, chunk(1)),
            Err(CheckError::TsSync { offset: 188 * 7 })
        );
        assert_eq!(check_chunk(Container::Ts, 0, chunk(0)), Ok(()));
        assert_eq!(check_chunk(Container::Ts, 2000, chunk(2)), Ok(()));
        // fMP4/unknown chunk checks do not look at TS sync bytes.
        assert_eq!(check_chunk(Container::Fmp4, 1000, chunk(1)), Ok(()));
        assert_eq!(check_chunk(Container::Unknown, 1000, chunk(1)), Ok(()));
    }

    #[test]
    fn ts_chunk_boundaries_off_packet_alignment() {
        // A chunk starting at offset 100 has its first packet start at index 88.
        let mut chunk = vec![0u8; 400];
        assert_eq!(
            check_chunk(Container::Ts, 100, &chunk),
            Err(CheckError::TsSync { offset: 188 })
        );
        chunk[88] = TS_SYNC;
        chunk[88 + 188] = TS_SYNC;
        assert_eq!(check_chunk(Container::Ts, 100, &chunk), Ok(()));
        // A chunk containing no packet start passes whatever it holds.
        assert_eq!(check_chunk(Container::Ts, 1, &[0u8; 187]), Ok(()));
        assert!(check_chunk(Container::Ts, u64::MAX, &[0u8; 300]).is_err());
        assert_eq!(check_chunk(Container::Ts, 0, &[]), Ok(()));
    }

    #[test]
    fn ts_length_rules() {
        assert_eq!(
            check_segment(Container::Ts, &[]),
            Err(CheckError::Size {
                expected: 188,
                got: 0
            })
        );
        assert_eq!(
            check_segment(Container::Ts, &TS[..TS.len() - 1]),
            Err(CheckError::Size {
                expected: TS.len() as u64,
                got: TS.len() as u64 - 1
            })
        );
    }

    #[test]
    fn real_fmp4_passes() {
        assert_eq!(check_segment(Container::Fmp4, INIT), Ok(()));
        assert_eq!(check_segment(Container::Fmp4, SEG), Ok(()));
        // Init and media in one body (ffmpeg's single-file fragmented MP4 layout).
        assert_eq!(
            check_segment(Container::Fmp4, &[INIT, SEG].concat()),
            Ok(())
        );
        assert_eq!(check_segment(Container::Fmp4, &media_segment()), Ok(()));
    }

    #[test]
    fn real_fmp4_corruptions_fail() {
        // Truncated: the last box (mdat) extends past the end.
        let (off, detail) = mp4_detail(check_segment(Container::Fmp4, &SEG[..SEG.len() - 1]));
        assert_eq!(detail, "box extends past the end of the data");
        assert!(off > 0 && off < SEG.len() as u64);
        // Trailing garbage that cannot be a box header.
        let (off, _) = mp4_detail(check_segment(
            Container::Fmp4,
            &[SEG, &[0, 0, 1][..]].concat(),
        ));
        assert_eq!(off, SEG.len() as u64);
        // First box's type clobbered.
        let mut bad = SEG.to_vec();
        bad[4] = 0x01;
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &bad)),
            (0, "box type is not printable ASCII")
        );
        // First box's size enlarged by one: the tiling breaks at the next box.
        let mut bad = SEG.to_vec();
        bad[3] = bad[3].wrapping_add(1);
        assert!(check_segment(Container::Fmp4, &bad).is_err());
        // A TS segment is no fMP4.
        assert!(check_segment(Container::Fmp4, TS).is_err());
    }

    #[test]
    fn nested_boxes_must_tile_their_parent() {
        // moof whose child claims more than the moof holds.
        let mut child = bx(b"mfhd", &[0; 8]);
        child[3] = 40;
        let seg = [bx(b"moof", &child), bx(b"mdat", &[])].concat();
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &seg)),
            (8, "box extends past the end of the data")
        );
        // Size 0 is only for the last top-level box.
        let mut child = bx(b"mfhd", &[0; 8]);
        child[..4].copy_from_slice(&[0; 4]);
        let seg = [bx(b"moof", &child), bx(b"mdat", &[])].concat();
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &seg)),
            (8, "size 0 (to end) inside a container box")
        );
        // Boxes that are not pure containers are not entered (stsd has a full-box header).
        let seg = [bx(b"moov", &bx(b"stsd", &[0xff; 9]))].concat();
        assert_eq!(check_segment(Container::Fmp4, &seg), Ok(()));
    }

    #[test]
    fn fmp4_size_forms() {
        // 64-bit largesize mdat.
        let mut big = vec![0, 0, 0, 1];
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&20u64.to_be_bytes());
        big.extend_from_slice(&[9; 4]);
        let seg = [bx(b"moof", &[]), big.clone()].concat();
        assert_eq!(check_segment(Container::Fmp4, &seg), Ok(()));
        // largesize smaller than its 16-byte header.
        let mut bad = big.clone();
        bad[8..16].copy_from_slice(&8u64.to_be_bytes());
        let seg = [bx(b"moof", &[]), bad].concat();
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &seg)),
            (8, "box size smaller than its header")
        );
        // Size 0: last box runs to the end.
        let mut open = vec![0, 0, 0, 0];
        open.extend_from_slice(b"mdat");
        open.extend_from_slice(&[5; 100]);
        let seg = [bx(b"moof", &[]), open].concat();
        assert_eq!(check_segment(Container::Fmp4, &seg), Ok(()));
        // 32-bit size below 8.
        let seg = [bx(b"moof", &[]), vec![0, 0, 0, 7, b'm', b'd', b'a', b't']].concat();
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &seg)),
            (8, "box size smaller than its header")
        );
        // uuid boxes carry a 16-byte extended type in the header.
        let seg = [bx(b"moof", &[]), bx(b"mdat", &[]), bx(b"uuid", &[7; 16])].concat();
        assert_eq!(check_segment(Container::Fmp4, &seg), Ok(()));
        let seg = [bx(b"moof", &[]), bx(b"mdat", &[]), bx(b"uuid", &[7; 15])].concat();
        assert!(check_segment(Container::Fmp4, &seg).is_err());
    }

    #[test]
    fn fmp4_segment_kinds() {
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &bx(b"ftyp", b"isom"))).1,
            "neither a media segment (moof+mdat) nor an init segment (moov)"
        );
        assert_eq!(
            mp4_detail(check_segment(Container::Fmp4, &bx(b"moof", &[]))).1,
            "moof without mdat"
        );
        assert!(check_segment(Container::Fmp4, &bx(b"mdat", &[1])).is_err());
        assert!(check_segment(Container::Fmp4, &[]).is_err());
        assert_eq!(
            check_segment(
                Container::Fmp4,
                &[bx(b"ftyp", b"isom"), bx(b"moov", &[])].concat()
            ),
            Ok(())
        );
    }

    #[test]
    fn unknown_container() {
        assert_eq!(check_segment(Container::Unknown, &[0xde, 0xad]), Ok(()));
        assert!(check_segment(Container::Unknown, &[]).is_err());
    }

    #[test]
    fn check_errors_display() {
        let e = CheckError::Mp4Box {
            offset: 8,
            detail: "x",
        };
        assert_eq!(e.to_string(), "bad ISO-BMFF box at offset 8: x");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600), offset in any::<u64>()) {
            for c in [Container::Ts, Container::Fmp4, Container::Unknown] {
                let _ = check_segment(c, &data);
                let _ = check_chunk(c, offset, &data);
            }
        }

        #[test]
        fn mutated_fixtures_never_panic(
            pos in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            for fixture in [SEG, INIT] {
                let mut d = fixture.to_vec();
                let i = pos.index(d.len());
                d[i] = byte;
                d.truncate(cut.index(d.len() + 1));
                let _ = check_segment(Container::Fmp4, &d);
            }
        }

        #[test]
        fn ts_chunking_agrees_with_whole_check(
            flip in proptest::option::of(any::<prop::sample::Index>()),
            chunk_len in 1usize..2000,
        ) {
            let mut d = TS.to_vec();
            if let Some(f) = flip {
                let p = f.index(d.len() / 188) * 188;
                d[p] ^= 0xff;
            }
            let whole = check_segment(Container::Ts, &d);
            let chunked = d
                .chunks(chunk_len)
                .enumerate()
                .map(|(i, c)| check_chunk(Container::Ts, (i * chunk_len) as u64, c))
                .find(|r| r.is_err())
                .unwrap_or(Ok(()));
            prop_assert_eq!(whole, chunked);
        }
    }
}
