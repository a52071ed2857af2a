//! Byte layout of each message and the checks shared by `decode` and `Message::validate`.
//!
//! Invariants: the reader never indexes; every length is checked before it is trusted; the
//! order of checks is the same for decoded bytes and for an in-memory `Message`, so both
//! paths report the same `WireError`.

use super::{
    kind, Message, WireError, CHUNK_SIZE, MAGIC, MAX_BITFIELD_BYTES, MAX_CHUNKS_PER_SEGMENT,
    MAX_MESSAGE_SIZE, MAX_SEGMENT_SIZE,
};
use crate::types::{PeerId, SwarmId};

/// Body bytes (after the type byte) of the fixed part of each message type; for `Bitfield`
/// and `Data` the variable part follows.
pub(super) fn fixed_body_len(code: u8) -> Option<usize> {
    Some(match code {
        kind::HANDSHAKE => 4 + 2 + 20 + 20 + 4,
        kind::BITFIELD => 8,
        kind::HAVE | kind::DOWNLOADING => 8 + 4,
        kind::LOST => 8,
        kind::INCOMING => 8 + 1,
        kind::REQUEST => 4 + 8 + 4 + 4,
        kind::CANCEL | kind::ABSENT | kind::PING | kind::PONG => 4,
        kind::DATA => 4 + 4 + 4,
        kind::BUSY => 4 + 2,
        _ => return None,
    })
}

fn data_body(out: &mut Vec<u8>, id: u32, chunk: u32, total_size: u32, payload: &[u8]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&chunk.to_be_bytes());
    out.extend_from_slice(&total_size.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The first `DATA_HEADER_LEN` bytes of `encode_data(d)`: type, id, chunk, total size.
pub(super) fn data_header(d: &super::DataRef<'_>) -> [u8; super::DATA_HEADER_LEN] {
    let mut out = [0u8; super::DATA_HEADER_LEN];
    out[0] = kind::DATA;
    out[1..5].copy_from_slice(&d.id.to_be_bytes());
    out[5..9].copy_from_slice(&d.chunk.to_be_bytes());
    out[9..13].copy_from_slice(&d.total_size.to_be_bytes());
    out
}

/// `encode` of a `Data` message from a borrowed payload (one copy, not two).
pub(super) fn encode_data(d: &super::DataRef<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 12 + d.payload.len());
    out.push(kind::DATA);
    data_body(&mut out, d.id, d.chunk, d.total_size, d.payload);
    out
}

pub(super) fn encode(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.encoded_len());
    out.push(msg.kind());
    match msg {
        Message::Handshake {
            version,
            swarm,
            peer,
            capabilities,
        } => {
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&version.to_be_bytes());
            out.extend_from_slice(&swarm.0);
            out.extend_from_slice(&peer.0);
            out.extend_from_slice(&capabilities.to_be_bytes());
        }
        Message::Bitfield { base, bits } => {
            out.extend_from_slice(&base.to_be_bytes());
            out.extend_from_slice(bits);
        }
        Message::Have { seq, size } | Message::Downloading { seq, size } => {
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&size.to_be_bytes());
        }
        Message::Lost { seq } => out.extend_from_slice(&seq.to_be_bytes()),
        Message::Incoming { seq, hops } => {
            out.extend_from_slice(&seq.to_be_bytes());
            out.push(*hops);
        }
        Message::Request {
            id,
            seq,
            first_chunk,
            count,
        } => {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(&first_chunk.to_be_bytes());
            out.extend_from_slice(&count.to_be_bytes());
        }
        Message::Cancel { id } | Message::Absent { id } => out.extend_from_slice(&id.to_be_bytes()),
        Message::Data {
            id,
            chunk,
            total_size,
            payload,
        } => data_body(&mut out, *id, *chunk, *total_size, payload),
        Message::Busy { id, retry_after_ms } => {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&retry_after_ms.to_be_bytes());
        }
        Message::Ping { nonce } | Message::Pong { nonce } => {
            out.extend_from_slice(&nonce.to_be_bytes())
        }
    }
    out
}

/// Consumes a body front to back; any shortfall is the message's `BadLength`.
struct Reader<'a> {
    rest: &'a [u8],
    err: WireError,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or_else(|| self.err.clone())?;
        self.rest = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        self.array().map(u8::from_be_bytes)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        self.array().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_be_bytes)
    }
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rest).to_vec()
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let (&code, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let fixed = fixed_body_len(code).ok_or(WireError::UnknownType(code))?;
    let bad_len = WireError::BadLength {
        kind: code,
        len: body.len(),
    };
    let variable = matches!(code, kind::BITFIELD | kind::DATA);
    if body.len() < fixed || (!variable && body.len() != fixed) {
        return Err(bad_len);
    }
    let mut r = Reader {
        rest: body,
        err: bad_len,
    };
    let msg = match code {
        kind::HANDSHAKE => {
            if r.array::<4>()? != MAGIC {
                return Err(WireError::BadField("magic"));
            }
            Message::Handshake {
                version: r.u16()?,
                swarm: SwarmId(r.array()?),
                peer: PeerId(r.array()?),
                capabilities: r.u32()?,
            }
        }
        kind::BITFIELD => Message::Bitfield {
            base: r.u64()?,
            bits: r.rest(),
        },
        kind::HAVE => Message::Have {
            seq: r.u64()?,
            size: r.u32()?,
        },
        kind::DOWNLOADING => Message::Downloading {
            seq: r.u64()?,
            size: r.u32()?,
        },
        kind::LOST => Message::Lost { seq: r.u64()? },
        kind::INCOMING => Message::Incoming {
            seq: r.u64()?,
            hops: r.u8()?,
        },
        kind::REQUEST => Message::Request {
            id: r.u32()?,
            seq: r.u64()?,
            first_chunk: r.u32()?,
            count: r.u32()?,
        },
        kind::CANCEL => Message::Cancel { id: r.u32()? },
        kind::DATA => Message::Data {
            id: r.u32()?,
            chunk: r.u32()?,
            total_size: r.u32()?,
            payload: r.rest(),
        },
        kind::ABSENT => Message::Absent { id: r.u32()? },
        kind::BUSY => Message::Busy {
            id: r.u32()?,
            retry_after_ms: r.u16()?,
        },
        kind::PING => Message::Ping { nonce: r.u32()? },
        kind::PONG => Message::Pong { nonce: r.u32()? },
        other => return Err(WireError::UnknownType(other)),
    };
    check(&msg)?;
    Ok(msg)
}

/// `Data`'s rules beyond the byte layout; `Err(None)` is a bad length.
fn check_data(chunk: u32, total_size: u32, payload_len: usize) -> Result<(), Option<WireError>> {
    if payload_len == 0 || payload_len > CHUNK_SIZE {
        return Err(None);
    }
    if !(1..=MAX_SEGMENT_SIZE).contains(&total_size) {
        return Err(Some(WireError::BadField("total_size")));
    }
    let Some(expected) = super::chunk_len(total_size, chunk) else {
        return Err(Some(WireError::BadField("chunk")));
    };
    if payload_len != expected {
        return Err(Some(WireError::BadField("payload_len")));
    }
    Ok(())
}

/// `decode` for a `Data` message, borrowing the payload; `None` for any other type.
pub(super) fn decode_data(bytes: &[u8]) -> Option<Result<super::DataRef<'_>, WireError>> {
    let (head, payload) = bytes.split_at(bytes.len().min(super::DATA_HEADER_LEN));
    decode_data_parts(head, payload)
}

/// `decode_data` of the message `head ++ payload` where `head` holds no payload byte (at
/// most `DATA_HEADER_LEN` bytes, fewer only if nothing follows).
pub(super) fn decode_data_parts<'a>(
    head: &[u8],
    payload: &'a [u8],
) -> Option<Result<super::DataRef<'a>, WireError>> {
    let (&code, head_body) = head.split_first()?;
    if code != kind::DATA {
        return None;
    }
    let body_len = head_body.len() + payload.len();
    Some((|| {
        if 1 + body_len > MAX_MESSAGE_SIZE {
            return Err(WireError::TooLarge(1 + body_len));
        }
        let bad_len = || WireError::BadLength {
            kind: code,
            len: body_len,
        };
        let fixed = fixed_body_len(code).ok_or(WireError::UnknownType(code))?;
        if head_body.len() != fixed {
            return Err(bad_len());
        }
        let mut r = Reader {
            rest: head_body,
            err: bad_len(),
        };
        let (id, chunk, total_size) = (r.u32()?, r.u32()?, r.u32()?);
        check_data(chunk, total_size, payload.len()).map_err(|e| e.unwrap_or_else(bad_len))?;
        Ok(super::DataRef {
            id,
            chunk,
            total_size,
            payload,
        })
    })())
}

/// Length and range rules that hold beyond the byte layout. Called on every decoded message
/// and by `Message::validate`; `TooLarge` is checked by the callers, before this.
pub(super) fn check(msg: &Message) -> Result<(), WireError> {
    let body_len = msg.encoded_len().saturating_sub(1);
    let bad_len = || WireError::BadLength {
        kind: msg.kind(),
        len: body_len,
    };
    match msg {
        Message::Bitfield { base, bits } => {
            if bits.is_empty() || bits.len() > MAX_BITFIELD_BYTES {
                return Err(bad_len());
            }
            // The last bit must name a representable segment, so `base + i` never overflows.
            let last_bit = (bits.len() as u64).saturating_mul(8).saturating_sub(1);
            if base.checked_add(last_bit).is_none() {
                return Err(WireError::BadField("base"));
            }
        }
        Message::Have { size, .. } | Message::Downloading { size, .. } => {
            if !(1..=MAX_SEGMENT_SIZE).contains(size) {
                return Err(WireError::BadField("size"));
            }
        }
        Message::Incoming { hops, .. } => {
            if !(1..=super::MAX_INCOMING_HOPS).contains(hops) {
                return Err(WireError::BadField("hops"));
            }
        }
        Message::Request {
            first_chunk, count, ..
        } => {
            if *count == 0 {
                return Err(WireError::BadField("count"));
            }
            match first_chunk.checked_add(*count) {
                Some(end) if end <= MAX_CHUNKS_PER_SEGMENT => {}
                _ => return Err(WireError::BadField("chunk_range")),
            }
        }
        Message::Data {
            chunk,
            total_size,
            payload,
            ..
        } => {
            check_data(*chunk, *total_size, payload.len()).map_err(|e| e.unwrap_or_else(bad_len))?
        }
        Message::Handshake { .. }
        | Message::Lost { .. }
        | Message::Cancel { .. }
        | Message::Absent { .. }
        | Message::Busy { .. }
        | Message::Ping { .. }
        | Message::Pong { .. } => {}
    }
    Ok(())
}
