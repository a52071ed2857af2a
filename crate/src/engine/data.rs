//! Chunks arriving from peers: checked against the request they answer and the manifest's
//! chunk hashes, written into the download; a peer that lies is banned.

use super::*;

impl Engine {
    /// `origin`: where `payload` lies in a shared buffer (`Input::PeerData`).
    pub(super) fn on_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        d: wire::DataRef<'_>,
        origin: Option<Src<'_>>,
    ) {
        let wire::DataRef {
            id,
            chunk,
            total_size,
            payload,
        } = d;
        let Some(r) = self.p2p_reqs.get(conn, id) else {
            // Late data for one of our ended requests to this peer is normal and simply not
            // used; data for any other id was never asked for: a violation (unrequested
            // chunks would otherwise fill the link for free).
            let late = self.peers.get(&conn).is_some_and(|s| s.was_released(id));
            if !late {
                self.strike_and_replan(conn);
            }
            return;
        };
        let key = r.key;
        let (first, end) = (r.first, r.end);
        let container = self
            .swarms
            .get(&key.swarm)
            .map_or(Container::Unknown, |s| s.container);
        let Some(peer) = self.peers.get(&conn).map(|s| s.peer) else {
            return;
        };
        if total_size == 0 || total_size > MAX_SEGMENT_SIZE || chunk < first || chunk >= end {
            self.strike_and_replan(conn);
            return;
        }
        // Only contradicting its own announcement proves a peer wrong (PROTOCOL.md).
        let own = self
            .peers
            .get(&conn)
            .and_then(|s| s.holds(key.seq))
            .and_then(|a| a.size);
        if own.is_some_and(|o| o != total_size) {
            self.strike_and_replan(conn);
            return;
        }
        let Some((size, src)) = self.downloads.get(&key).map(|d| (d.size, d.size_src)) else {
            return;
        };
        let adopt = match (size, src) {
            (None, _) => true,
            (Some(s), _) if s == total_size as u64 => false,
            (Some(_), SizeSrc::Announced) => {
                // Another peer's `Have` (maybe a lie) set the size; the bytes win. Requests
                // planned with the old size are withdrawn without blame.
                let others: Vec<(ConnId, u32)> = self
                    .downloads
                    .get(&key)
                    .map(|d| d.p2p.iter().copied().filter(|x| *x != (conn, id)).collect())
                    .unwrap_or_default();
                for (c, i) in others {
                    self.release_p2p(c, i);
                    self.send(c, &Message::Cancel { id: i });
                }
                true
            }
            (Some(_), _) => {
                let in_manifest = self
                    .downloads
                    .get(&key)
                    .and_then(|d| self.manifest_entry(&d.url, d.range))
                    .is_some();
                if in_manifest {
                    self.reject_corrupt_chunk(key, conn, peer, "size differs from the manifest");
                } else {
                    // Disagrees with the origin or with the first peer's bytes: without a
                    // manifest there is no proof who is wrong, so only stop asking it.
                    self.abandon_p2p(now, conn, id, false);
                }
                return;
            }
        };
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        if adopt {
            d.set_size(total_size as u64);
            d.size_src = SizeSrc::Data;
            let n = d.slots.len() as u32;
            for slot in d.slots.iter_mut() {
                *slot = Slot::Missing;
            }
            for slot in d
                .slots
                .iter_mut()
                .take(end.min(n) as usize)
                .skip(first as usize)
            {
                *slot = Slot::Asked(conn);
            }
            if let Some(r) = self.p2p_reqs.get_mut(conn, id) {
                r.end = r.end.min(n);
            }
        } else if d.size_src == SizeSrc::Announced {
            d.size_src = SizeSrc::Data;
        }
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let size = total_size as u64;
        let (a, b) = chunk_bounds(size, chunk);
        if chunk as usize >= d.slots.len() || payload.len() as u64 != b - a {
            self.strike_and_replan(conn);
            return;
        }
        if let Some(s) = self.peers.get_mut(&conn) {
            s.data_received(payload.len() as u64, now);
        }
        if let Some(r) = self.p2p_reqs.get_mut(conn, id) {
            if r.received == 0 {
                let ttfb = now.as_millis().saturating_sub(r.started.as_millis());
                self.tally.p2p_ttfb(ttfb);
            }
            r.received = r.received.saturating_add(1);
            r.bytes = r.bytes.saturating_add(payload.len() as u64);
            r.last_at = now;
        }
        let already = matches!(d.slots.get(chunk as usize), Some(Slot::Got { .. }));
        if !already {
            let mut check =
                integrity::check_chunk(container, a, payload).map_err(|e| format!("{e:?}"));
            let mut trusted = false;
            if check.is_ok() {
                if let Some(m) = self.manifest.as_ref() {
                    if let Some(entry) = m.lookup(&d.url, d.range) {
                        if entry.size != size {
                            check = Err(format!("size {size} != manifest {}", entry.size));
                        } else if !entry.chunk_hashes.is_empty()
                            && m.chunk_size as usize == CHUNK_SIZE
                        {
                            match verify_one_chunk(entry, chunk, payload) {
                                Ok(v) => trusted = v,
                                Err(e) => check = Err(e),
                            }
                        }
                    }
                }
            }
            if let Err(detail) = check {
                self.tally.p2p_discarded(payload.len() as u64);
                self.reject_corrupt_chunk(key, conn, peer, &detail);
                return;
            }
            let from = d.contributor(conn, peer);
            let fits = payload.len() as u64 == b.saturating_sub(a)
                && (chunk as usize) < d.slots.len()
                && d.write_at(a, payload, origin);
            if let Some(slot) = d.slots.get_mut(chunk as usize).filter(|_| fits) {
                *slot = Slot::Got { from, trusted };
                d.got_chunks = d.got_chunks.saturating_add(1);
                d.got_bytes = d.got_bytes.saturating_add(b - a);
                d.p2p_bytes = d.p2p_bytes.saturating_add(b - a);
                d.first_byte.get_or_insert(now);
            }
        }
        // Request finished when every chunk of its range is here.
        let done = self.downloads.get(&key).is_some_and(|d| {
            let hi = (end as usize).min(d.slots.len());
            d.slots
                .iter()
                .take(hi)
                .skip(first as usize)
                .all(|s| matches!(s, Slot::Got { .. }))
        });
        if done {
            if let Some(r) = self.release_p2p(conn, id) {
                if let Some(s) = self.peers.get_mut(&conn) {
                    let elapsed =
                        now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
                    s.throughput.sample(r.bytes as f64 * 1000.0 / elapsed);
                    s.completed_request();
                }
            }
        }
        self.report_progress(key);
        if self.downloads.get(&key).is_some_and(|d| d.is_complete()) {
            self.finalize(now, key);
            self.reschedule();
        } else if done {
            self.reschedule();
        }
    }

    /// A chunk from `conn` failed its check: ban it, drop everything it sent for this
    /// segment, refetch over HTTP if the player wants the segment.
    pub(super) fn reject_corrupt_chunk(
        &mut self,
        key: SegmentKey,
        conn: ConnId,
        peer: PeerId,
        detail: &str,
    ) {
        self.event(Event::VerificationFailed {
            swarm: key.swarm,
            seq: key.seq,
            peer,
            detail: detail.to_string(),
        });
        self.ban(conn, BanReason::CorruptData);
        if let Some(d) = self.downloads.get_mut(&key) {
            let idx = d
                .contributors
                .iter()
                .position(|c| c.0 == conn)
                .map(|i| i as u16);
            if let Some(idx) = idx {
                let dropped = d.discard_from(|f| f == idx);
                d.p2p_bytes = d.p2p_bytes.saturating_sub(dropped);
                self.tally.p2p_discarded(dropped);
            }
            if !d.reqs.is_empty() {
                d.force_http = true;
            }
        }
        self.reschedule();
    }
}
