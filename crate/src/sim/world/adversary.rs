//! Misbehaving viewers: liars, floods, tampered bytes.

use super::*;

/// A message for the trace log.
pub(super) fn describe(data: &[u8]) -> String {
    format!(
        "{:?}",
        wire::decode(data).map(|m| match m {
            Message::Data { id, chunk, .. } => format!("Data id {id} chunk {chunk}"),
            m => format!("{m:?}"),
        })
    )
}

/// Corrupts a `Data` message's payload in place. Plain: inverts every byte (breaks the
/// MPEG-TS sync bytes). Stealth: flips one content byte, keeping the structure valid.
pub(super) fn tamper(data: &mut [u8], stealth: bool) {
    if data.len() <= DATA_HEADER_LEN {
        return;
    }
    if !stealth {
        for b in data.iter_mut().skip(DATA_HEADER_LEN) {
            *b = !*b;
        }
        return;
    }
    let chunk = data
        .get(5..9)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes) as usize;
    let base = chunk * CHUNK_SIZE;
    let payload_len = data.len() - DATA_HEADER_LEN;
    if let Some(i) = (0..payload_len).find(|i| (base + i) % crate::sim::media::TS_PACKET > 3) {
        data[DATA_HEADER_LEN + i] ^= 0x5A;
    }
}

impl World<'_> {
    /// A liar announces the newest live segment to all its peers, without having it.
    pub(super) fn lie(&mut self, v: u32) {
        let Some((_, newest)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let rend = self.viewers[v as usize].pl.rend;
        let size = self.media.size(rend, newest) as u32;
        let msg = wire::encode(&Message::Have { seq: newest, size });
        let conns = self.open_conns(v);
        for c in conns {
            self.send_msg(v, c, Frame::Bytes(msg.clone()));
        }
    }

    /// One burst of a flooder to each open connection: 64 requests (ids reused, chunks out of
    /// range included), 64 `Have` for future segments with absurd sizes, 16 unsolicited chunks.
    pub(super) fn flood(&mut self, v: u32) {
        let Some((_, newest)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let mut burst = Vec::with_capacity(144);
        for i in 0..64u32 {
            burst.push(wire::encode(&Message::Request {
                id: i % 8,
                seq: newest.saturating_sub(32) + u64::from(i),
                first_chunk: i * 7,
                count: 1 + i,
            }));
            burst.push(wire::encode(&Message::Have {
                seq: newest + 1 + u64::from(i),
                size: u32::MAX - i,
            }));
        }
        for i in 0..16u32 {
            burst.push(wire::encode(&Message::Data {
                id: 1_000 + i,
                chunk: i,
                total_size: 16 * wire::CHUNK_SIZE as u32,
                payload: vec![0x47; wire::CHUNK_SIZE],
            }));
        }
        let conns = self.open_conns(v);
        for c in conns {
            for m in &burst {
                self.send_msg(v, c, Frame::Bytes(m.clone()));
            }
        }
    }
}
