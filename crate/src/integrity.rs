//! Integrity checks for bytes that came from peers.
//!
//! Invariants: nothing here panics on any input. A check either proves the bytes are what
//! the origin published (hash from the integrity manifest) or, without a manifest, that
//! they are at least structurally valid for the container (MPEG-TS sync bytes, fMP4 box
//! walk). The manifest format is in docs/MANIFEST.md.

use crate::types::{ByteRange, Container};
use std::collections::HashMap;

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
    TsSync { offset: u64 },
    /// ISO-BMFF box walk failed at this offset.
    Mp4Box { offset: u64, detail: &'static str },
    Size { expected: u64, got: u64 },
    HashMismatch,
}

/// Checks one chunk placed at `offset` inside a segment of the given container: every
/// 188-byte TS packet boundary that falls inside the chunk must hold 0x47. fMP4 and
/// unknown containers pass (they are checked whole by `check_segment`).
pub fn check_chunk(_container: Container, _offset: u64, _chunk: &[u8]) -> Result<(), CheckError> {
    todo!("integrity helper")
}

/// Checks a complete segment's structure (TS: length multiple of 188 and every sync byte;
/// fMP4: boxes tile the data exactly, sizes sane, types printable ASCII).
pub fn check_segment(_container: Container, _data: &[u8]) -> Result<(), CheckError> {
    todo!("integrity helper")
}

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
    BadLine { line: usize, detail: &'static str },
    TooLarge,
}

impl Manifest {
    pub fn parse(_bytes: &[u8]) -> Result<Manifest, ManifestError> {
        todo!("integrity helper")
    }
    /// The entry for a segment URL (and byte range), keyed as in docs/MANIFEST.md.
    pub fn lookup(&self, url: &str, range: Option<ByteRange>) -> Option<&ManifestEntry> {
        self.entries.get(&manifest_key(url, range))
    }
}

/// Manifest key of a segment: the last path component of the URL without query or
/// fragment, plus `@start-end` (end exclusive) for a byte range.
pub fn manifest_key(_url: &str, _range: Option<ByteRange>) -> String {
    todo!("integrity helper")
}
