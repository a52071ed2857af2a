//! Shoal's peer wire protocol, version 1 (see docs/PROTOCOL.md).
//!
//! Invariants: `decode` never panics and rejects anything not exactly as specified
//! (unknown type, short/long body, over-limit lengths); `encode(decode(b)) == b` for every
//! accepted `b`. One message per data-channel message; nothing is ever larger than
//! `MAX_MESSAGE_SIZE`.
//!
//! `encode` is total: it writes whatever it is given, so an invalid `Message` (say a
//! `Data` whose payload does not fit its chunk) produces bytes that `decode` rejects.
//! [`Message::validate`] tells, without encoding, exactly which error the receiver would
//! report; senders call it on anything built from untrusted state. For every `m`,
//! `m.validate() == decode(&encode(&m)).map(|_| ())`, and for every valid `m`,
//! `decode(&encode(&m)) == Ok(m)`.

mod codec;
#[cfg(test)]
mod tests;

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

/// The four bytes after a `Handshake`'s type byte: "SHOL". Anything else is not a Shoal peer.
pub const MAGIC: [u8; 4] = *b"SHOL";
/// Chunks in a segment of `MAX_SEGMENT_SIZE` bytes; no chunk index reaches it.
pub const MAX_CHUNKS_PER_SEGMENT: u32 = MAX_SEGMENT_SIZE.div_ceil(CHUNK_SIZE as u32);

/// Capability bit: the sender answers `Request`s (it has an upload budget). A peer without
/// it may still be asked, but will answer `Busy` or `Absent`.
pub const CAP_UPLOAD: u32 = 1 << 0;
/// Capability bit: the sender announces segments with `Downloading` and serves their
/// chunks while the segment is still arriving.
pub const CAP_PARTIAL: u32 = 1 << 1;
/// Capability bit: the sender understands `Incoming` (only peers with it are sent one).
pub const CAP_INCOMING: u32 = 1 << 2;

/// Most hops an `Incoming` may carry (a longer relay chain would miss the deadlines).
pub const MAX_INCOMING_HOPS: u8 = 8;

/// Receiver-enforced limit (not a decoding rule): `Request`s a peer may have outstanding
/// towards one receiver; more is a protocol violation (strike).
pub const MAX_OUTSTANDING_REQUESTS: usize = 16;
/// Receiver-enforced limit: segments a receiver tracks as announced by one peer
/// (`Bitfield` + `Have` + `Downloading` minus `Lost`); beyond it the oldest are forgotten.
pub const MAX_ANNOUNCED_SEGMENTS: usize = 8 * MAX_BITFIELD_BYTES;

/// Type codes, the first byte of every message.
pub mod kind {
    pub const HANDSHAKE: u8 = 0x01;
    pub const BITFIELD: u8 = 0x02;
    pub const HAVE: u8 = 0x03;
    pub const DOWNLOADING: u8 = 0x04;
    pub const LOST: u8 = 0x05;
    pub const INCOMING: u8 = 0x06;
    pub const REQUEST: u8 = 0x10;
    pub const CANCEL: u8 = 0x11;
    pub const DATA: u8 = 0x12;
    pub const ABSENT: u8 = 0x13;
    pub const BUSY: u8 = 0x14;
    pub const PING: u8 = 0x20;
    pub const PONG: u8 = 0x21;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// First message on a channel, both ways.
    Handshake {
        version: u16,
        swarm: SwarmId,
        peer: PeerId,
        capabilities: u32,
    },
    /// Complete segments held: bit i (MSB first) of `bits` = segment `base + i`.
    Bitfield {
        base: Seq,
        bits: Vec<u8>,
    },
    /// A segment became complete (and verified) here.
    Have {
        seq: Seq,
        size: u32,
    },
    /// A segment is being downloaded here with known size; its chunks may be requested and
    /// are sent as they arrive.
    Downloading {
        seq: Seq,
        size: u32,
    },
    /// A segment announced earlier is no longer available (evicted or download abandoned).
    Lost {
        seq: Seq,
    },
    /// A segment is on its way here from peers: `Have` (or `Lost`) follows. Its chunks are
    /// not offered yet (they are served once verified), but a receiver that wants it may
    /// wait for it rather than fetch it from the CDN.
    Incoming {
        seq: Seq,
        /// Peer hops between the sender and a copy: 1 when the sender is fetching it from a
        /// holder, `h + 1` when it waits for a peer's `Incoming` with `hops = h`.
        hops: u8,
    },
    /// Ask for chunks `first_chunk .. first_chunk + count` of a segment.
    Request {
        id: u32,
        seq: Seq,
        first_chunk: u32,
        count: u32,
    },
    /// Stop sending for request `id`.
    Cancel {
        id: u32,
    },
    /// One chunk for request `id`; `total_size` is the whole segment's length.
    Data {
        id: u32,
        chunk: u32,
        total_size: u32,
        payload: Vec<u8>,
    },
    /// The requested segment is not here.
    Absent {
        id: u32,
    },
    /// No upload slot now; try again later.
    Busy {
        id: u32,
        retry_after_ms: u16,
    },
    Ping {
        nonce: u32,
    },
    Pong {
        nonce: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    Empty,
    TooLarge(usize),
    UnknownType(u8),
    /// Body length does not match the message type.
    BadLength {
        kind: u8,
        len: usize,
    },
    /// A field is out of its allowed range.
    BadField(&'static str),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for WireError {}

/// Serializes `msg` (type byte, big-endian fixed fields, variable part last). Total: see the
/// module docs for what happens to invalid messages.
pub fn encode(msg: &Message) -> Vec<u8> {
    codec::encode(msg)
}

/// Parses one whole data-channel message. Never panics; see docs/PROTOCOL.md for the rules.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    codec::decode(bytes)
}

/// A decoded `Data` message whose payload still lies in the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataRef<'a> {
    pub id: u32,
    pub chunk: u32,
    pub total_size: u32,
    pub payload: &'a [u8],
}

impl DataRef<'_> {
    /// The message's bytes: `encode` of the same `Data`, without an owned payload first.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode_data(self)
    }

    /// The message's first `DATA_HEADER_LEN` bytes; the payload follows them.
    pub fn header(&self) -> [u8; DATA_HEADER_LEN] {
        codec::data_header(self)
    }
}

/// Bytes of a `Data` message before its payload (type, id, chunk, total size).
pub const DATA_HEADER_LEN: usize = 13;

/// `decode_data` of the message `head ++ payload`, for a host that keeps a `Data` message
/// as its header and a payload slice (`head` holds at most `DATA_HEADER_LEN` bytes, fewer
/// only if no payload follows).
pub fn decode_data_parts<'a>(
    head: &[u8],
    payload: &'a [u8],
) -> Option<Result<DataRef<'a>, WireError>> {
    codec::decode_data_parts(head, payload)
}

/// `decode` for a `Data` message without copying its payload: `None` if `bytes` is another
/// type, else exactly what `decode` would accept or reject.
pub fn decode_data(bytes: &[u8]) -> Option<Result<DataRef<'_>, WireError>> {
    codec::decode_data(bytes)
}

/// Number of chunks of a segment of `total_size` bytes (0 for an empty segment).
pub fn chunk_count(total_size: u32) -> u32 {
    total_size.div_ceil(CHUNK_SIZE as u32)
}

/// Length of chunk `chunk` of a segment of `total_size` bytes, `None` past the end.
pub fn chunk_len(total_size: u32, chunk: u32) -> Option<usize> {
    let start = u64::from(chunk).checked_mul(CHUNK_SIZE as u64)?;
    let left = u64::from(total_size)
        .checked_sub(start)
        .filter(|&n| n > 0)?;
    usize::try_from(left.min(CHUNK_SIZE as u64)).ok()
}

/// Byte offset of chunk `chunk` inside its segment.
pub fn chunk_offset(chunk: u32) -> u64 {
    u64::from(chunk) * CHUNK_SIZE as u64
}

impl Message {
    /// The type byte this message is encoded with.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Handshake { .. } => kind::HANDSHAKE,
            Message::Bitfield { .. } => kind::BITFIELD,
            Message::Have { .. } => kind::HAVE,
            Message::Downloading { .. } => kind::DOWNLOADING,
            Message::Lost { .. } => kind::LOST,
            Message::Incoming { .. } => kind::INCOMING,
            Message::Request { .. } => kind::REQUEST,
            Message::Cancel { .. } => kind::CANCEL,
            Message::Data { .. } => kind::DATA,
            Message::Absent { .. } => kind::ABSENT,
            Message::Busy { .. } => kind::BUSY,
            Message::Ping { .. } => kind::PING,
            Message::Pong { .. } => kind::PONG,
        }
    }

    /// The variant's name, for logs and events.
    pub fn kind_name(&self) -> &'static str {
        kind_name(self.kind()).unwrap_or("?")
    }

    /// Exact length of `encode(self)`.
    pub fn encoded_len(&self) -> usize {
        1 + codec::fixed_body_len(self.kind()).unwrap_or(0)
            + match self {
                Message::Bitfield { bits, .. } => bits.len(),
                Message::Data { payload, .. } => payload.len(),
                _ => 0,
            }
    }

    /// `Ok(())` iff the receiver would accept `encode(self)`; otherwise the error it would
    /// report.
    pub fn validate(&self) -> Result<(), WireError> {
        let len = self.encoded_len();
        if len > MAX_MESSAGE_SIZE {
            return Err(WireError::TooLarge(len));
        }
        codec::check(self)
    }
}

/// Name of the message type with code `kind`, `None` if the code is unassigned.
pub fn kind_name(code: u8) -> Option<&'static str> {
    Some(match code {
        kind::HANDSHAKE => "Handshake",
        kind::BITFIELD => "Bitfield",
        kind::HAVE => "Have",
        kind::DOWNLOADING => "Downloading",
        kind::LOST => "Lost",
        kind::INCOMING => "Incoming",
        kind::REQUEST => "Request",
        kind::CANCEL => "Cancel",
        kind::DATA => "Data",
        kind::ABSENT => "Absent",
        kind::BUSY => "Busy",
        kind::PING => "Ping",
        kind::PONG => "Pong",
        _ => return None,
    })
}
