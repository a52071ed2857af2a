//! Serving peers: admitting `Request`s into upload slots and pumping chunks within the
//! upload budget (`peers::Uploads` decides who is served next).

use super::*;

/// Where chunk `chunk` of `key` is: the cache, else a relayed download's trusted chunks.
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
        let Some(s) = self.peers.get(&conn) else {
            return;
        };
        if count == 0 || s.up.iter().any(|u| u.id == id) {
            self.strike_and_replan(conn);
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
            self.strike_and_replan(conn);
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
        if new_uploader && self.uploads.serving() >= self.config.upload_slots {
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
        if let Some(s) = self.peers.get_mut(&conn) {
            s.up.push(UpRequest {
                id,
                key,
                next_chunk: first,
                end_chunk: end,
                pinned: stored,
            });
        }
        self.uploads.enqueue(conn);
        self.pump_uploads(now);
    }

    /// Sends chunks round-robin over the peers we serve, within the byte-rate budget
    /// (`peers::Uploads::pump`).
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        let Engine {
            uploads,
            peers,
            store,
            downloads,
            out,
            tally,
            share_uploads,
            ..
        } = self;
        let unpins = uploads.pump(
            now,
            peers.sessions_mut(),
            |key, chunk| chunk_source(store, downloads, key, chunk),
            |served| match served {
                Served::Data { conn, msg, shared } => {
                    tally.uploaded(msg.payload.len() as u64);
                    out.push_back(match shared.filter(|_| *share_uploads) {
                        Some((buf, start)) => Output::SendData {
                            conn,
                            frame: DataFrame {
                                head: msg.header(),
                                data: buf.clone(),
                                start,
                                end: start + msg.payload.len(),
                            },
                        },
                        None => Output::SendToPeer {
                            conn,
                            data: msg.encode(),
                        },
                    });
                }
                Served::Absent { conn, id } => out.push_back(Output::SendToPeer {
                    conn,
                    data: wire::encode(&Message::Absent { id }),
                }),
            },
        );
        for key in unpins {
            self.store.unpin(&key);
        }
    }
}
