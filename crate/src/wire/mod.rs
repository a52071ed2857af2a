//! Shoal's peer wire protocol, version 1 (see docs/PROTOCOL.md).
//!
//! Invariants: `decode` never panics and rejects anything not exactly as specified
//! (unknown type, short/long body, over-limit lengths); `encode(decode(b)) == b` for every
//! accepted `b`. One message per data-channel message; nothing is ever larger than
//! `MAX_MESSAGE_SIZE`.

use crate::types::{PeerId, Seq, SwarmId};

pub const PROTOCOL_VERSION: u16 = 1;
/// Payload bytes per `Data` message (the last chunk of a segment may be shorter).
pub const CHUNK_SIZE: usize = 15 * 1024;
/// No wire message may exceed this (one RTCDataChannel message).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024;
/// Largest `Bitfield` bitmap, in bytes (8192 segments).
pub const MAX_BITFIELD_BYTES: usize = 1024;
/// Largest segment a peer may announce or serve.
pub const MAX_SEGMENT_SIZE: u32 = 64 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// First message on a channel, both ways.
    Handshake { version: u16, swarm: SwarmId, peer: PeerId, capabilities: u32 },
    /// Complete segments held: bit i (MSB first) of `bits` = segment `base + i`.
    Bitfield { base: Seq, bits: Vec<u8> },
    /// A segment became complete (and verified) here.
    Have { seq: Seq, size: u32 },
    /// A segment is being downloaded here with known size; its chunks may be requested and
    /// are sent as they arrive.
    Downloading { seq: Seq, size: u32 },
    /// A segment announced earlier is no longer available (evicted or download abandoned).
    Lost { seq: Seq },
    /// Ask for chunks `first_chunk .. first_chunk + count` of a segment.
    Request { id: u32, seq: Seq, first_chunk: u32, count: u32 },
    /// Stop sending for request `id`.
    Cancel { id: u32 },
    /// One chunk for request `id`; `total_size` is the whole segment's length.
    Data { id: u32, chunk: u32, total_size: u32, payload: Vec<u8> },
    /// The requested segment is not here.
    Absent { id: u32 },
    /// No upload slot now; try again later.
    Busy { id: u32, retry_after_ms: u16 },
    Ping { nonce: u32 },
    Pong { nonce: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    Empty,
    TooLarge(usize),
    UnknownType(u8),
    /// Body length does not match the message type.
    BadLength { kind: u8, len: usize },
    /// A field is out of its allowed range.
    BadField(&'static str),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for WireError {}

pub fn encode(_msg: &Message) -> Vec<u8> {
    todo!("wire helper")
}

pub fn decode(_bytes: &[u8]) -> Result<Message, WireError> {
    todo!("wire helper")
}
