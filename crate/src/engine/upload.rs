//! Serving peers: admitting `Request`s into upload slots and pumping chunks within the
//! upload budget, round-robin over the peers waiting.

use super::*;

/// Where the next chunk of an upload comes from.
pub(super) enum ChunkSource<'a> {
    /// The chunk, the segment's size, and the shared buffer holding the chunk if any.
    Ready(&'a [u8], u64, Option<Src<'a>>),
    NotYet,
    Gone,
}

pub(super) fn chunk_source<'a>(
    store: &'a Store,
    downloads: &'a BTreeMap<SegmentKey, Download>,
    key: SegmentKey,
    chunk: u32,
) -> ChunkSource<'a> {
    if let Some(buf) = store.get_buffer(&key) {
        let size = buf.len() as u64;
        let (a, b) = chunk_bounds(size, chunk);
        return match buf.get(a as usize..b as usize) {
            Some(bytes) if b > a => ChunkSource::Ready(bytes, size, Some((buf, a as usize))),
            _ => ChunkSource::Gone,
        };
    }
    let Some(d) = downloads.get(&key).filter(|d| d.announced) else {
        return ChunkSource::Gone;
    };
    let Some(size) = d.size else {
        return ChunkSource::NotYet;
    };
    match d.slots.get(chunk as usize) {
        Some(Slot::Got { trusted: true, .. }) => {
            let (a, b) = chunk_bounds(size, chunk);
            match d.data.get(a as usize..b as usize) {
                Some(bytes) => ChunkSource::Ready(bytes, size, d.data.src(a as usize)),
                None => ChunkSource::Gone,
            }
        }
        Some(_) => ChunkSource::NotYet,
        None => ChunkSource::Gone,
    }
}

impl Engine {
    pub(super) fn on_up_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        id: u32,
        seq: Seq,
        first: u32,
        count: u32,
    ) {
        if !self.sharing() {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: u16::MAX,
                },
            );
            return;
        }
        let Some(s) = self.sessions.get(&conn) else {
            return;
        };
        if count == 0 || s.up.iter().any(|u| u.id == id) {
            self.violation(now, conn);
            return;
        }
        if s.up.len() >= MAX_UP_REQUESTS {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: BUSY_RETRY_MS,
                },
            );
            self.violation(now, conn);
            return;
        }
        let key = SegmentKey {
            swarm: s.swarm,
            seq,
        };
        let new_uploader = s.up.is_empty();
        let size = match self.store.get(&key) {
            Some(data) => Some((data.len() as u64, true)),
            None => self
                .downloads
                .get(&key)
                .filter(|d| d.announced)
                .and_then(|d| d.size)
                .map(|s| (s, false)),
        };
        let Some((size, stored)) = size else {
            self.send(conn, &Message::Absent { id });
            return;
        };
        let n = n_chunks(size);
        if first >= n {
            self.send(conn, &Message::Absent { id });
            return;
        }
        if new_uploader && self.uploaders.len() >= self.config.upload_slots {
            self.send(
                conn,
                &Message::Busy {
                    id,
                    retry_after_ms: BUSY_RETRY_MS,
                },
            );
            return;
        }
        let end = first.saturating_add(count).min(n);
        if stored {
            self.store.pin(key);
        }
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.up.push(UpRequest {
                id,
                key,
                next_chunk: first,
                end_chunk: end,
                pinned: stored,
            });
        }
        if !self.uploaders.contains(&conn) {
            self.uploaders.push_back(conn);
        }
        self.pump_uploads(now);
    }

    /// Sends chunks round-robin over the peers we serve, within the byte-rate budget.
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        self.upload_wake = None;
        if self.uploaders.is_empty() {
            return;
        }
        self.bucket.refill(now);
        let mut idle = 0usize;
        while idle < self.uploaders.len() {
            let Some(conn) = self.uploaders.pop_front() else {
                break;
            };
            let Some(s) = self.sessions.get_mut(&conn) else {
                continue;
            };
            let mut sent = false;
            let mut blocked = None;
            let mut unpins = Vec::new();
            let mut absents = Vec::new();
            let mut i = 0;
            while i < s.up.len() {
                let u = &s.up[i];
                if u.next_chunk >= u.end_chunk {
                    let u = s.up.remove(i);
                    if u.pinned {
                        unpins.push(u.key);
                    }
                    continue;
                }
                match chunk_source(&self.store, &self.downloads, u.key, u.next_chunk) {
                    ChunkSource::Gone => {
                        let u = s.up.remove(i);
                        absents.push(u.id);
                        if u.pinned {
                            unpins.push(u.key);
                        }
                    }
                    ChunkSource::NotYet => i += 1,
                    ChunkSource::Ready(bytes, total, src) => {
                        if !self.bucket.try_take(bytes.len() as u64) {
                            blocked = self.bucket.ready_at(now, bytes.len() as u64);
                            break;
                        }
                        let msg = wire::DataRef {
                            id: u.id,
                            chunk: u.next_chunk,
                            total_size: total as u32,
                            payload: bytes,
                        };
                        let out = match src.filter(|_| self.share_uploads) {
                            Some((buf, start)) => Output::SendData {
                                conn,
                                frame: DataFrame {
                                    head: msg.header(),
                                    data: buf.clone(),
                                    start,
                                    end: start + bytes.len(),
                                },
                            },
                            None => Output::SendToPeer {
                                conn,
                                data: msg.encode(),
                            },
                        };
                        let len = bytes.len() as u64;
                        s.up[i].next_chunk += 1;
                        s.up_bytes = s.up_bytes.saturating_add(len);
                        self.tally.uploaded(len);
                        self.out.push_back(out);
                        sent = true;
                        break;
                    }
                }
            }
            let keep = !s.up.is_empty();
            for id in absents {
                self.send(conn, &Message::Absent { id });
            }
            for k in unpins {
                self.store.unpin(&k);
            }
            if keep {
                self.uploaders.push_back(conn);
            }
            if let Some(at) = blocked {
                self.upload_wake = Some(at);
                break;
            }
            if sent {
                idle = 0;
            } else {
                idle += 1;
            }
        }
    }
}
