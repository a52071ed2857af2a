//! Player requests and their answers: a request joins or starts a download; a complete
//! download is verified (manifest hash, container check) and delivered to every request
//! for it, cached, announced and spot-checked; peer bytes that fail are discarded.

use super::*;

pub(super) fn timing_of(d: &Download, now: Instant) -> DeliveryTiming {
    let start = d.transfer_start.unwrap_or(now);
    DeliveryTiming {
        http_bytes: d.http_bytes.min(d.data.len() as u64),
        p2p_bytes: d.p2p_bytes,
        transfer_start: start,
        first_byte: d.first_byte.unwrap_or(start),
        transfer_end: now,
        from_cache: false,
    }
}

pub(super) fn verify_whole(entry: &ManifestEntry, data: &[u8]) -> Result<(), String> {
    integrity::verify_against(entry, data).map_err(|e| format!("{e:?}"))
}

/// `Ok(true)`: matched the chunk hash; `Ok(false)`: no chunk hash to check against.
pub(super) fn verify_one_chunk(
    entry: &ManifestEntry,
    chunk: u32,
    payload: &[u8],
) -> Result<bool, String> {
    match integrity::verify_chunk(entry, CHUNK_SIZE as u32, chunk, payload) {
        Some(true) => Ok(true),
        Some(false) => Err(format!("chunk {chunk} sha256 mismatch")),
        None => Ok(false),
    }
}

impl Engine {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        req: RequestId,
        swarm: SwarmId,
        seq: Seq,
        url: String,
        range: Option<ByteRange>,
    ) {
        let key = SegmentKey { swarm, seq };
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.max_requested = Some(s.max_requested.map_or(seq, |m| m.max(seq)));
        }
        if let Some(data) = self.store.get_shared(&key) {
            let mut timing = self.store.timing(&key).cloned().unwrap_or(DeliveryTiming {
                transfer_start: now,
                first_byte: now,
                transfer_end: now,
                ..Default::default()
            });
            timing.from_cache = true;
            self.tally.delivered(&timing);
            self.mark_filled();
            self.out
                .push_back(Output::DeliverSegment { req, data, timing });
            return;
        }
        self.requests.insert(req, key);
        match self.downloads.get(&key) {
            None => {
                let d = self.new_download(key, url, range);
                self.downloads.insert(key, d);
            }
            // Learned from peers before the playlist listed it: the player names it.
            Some(d) if d.url.is_empty() => self.name_download(key, url, range),
            Some(_) => {}
        }
        let mut progress = None;
        if let Some(d) = self.downloads.get_mut(&key) {
            d.reqs.push(req);
            if d.got_bytes > 0 {
                progress = Some((d.got_bytes, d.size));
            }
        }
        if let Some((loaded, total)) = progress {
            self.out
                .push_back(Output::SegmentProgress { req, loaded, total });
        }
        self.reschedule();
    }

    pub(super) fn new_download(
        &self,
        key: SegmentKey,
        url: String,
        range: Option<ByteRange>,
    ) -> Download {
        let (url, range) = match self.swarms.get(&key.swarm).and_then(|s| s.segment(key.seq)) {
            Some(seg) => (seg.url.clone(), seg.range),
            None => (url, range),
        };
        let size = self
            .manifest_entry(&url, range)
            .map(|e| e.size)
            .or(range.map(|r| r.len()));
        let shared = self.shared_copies.as_ref().and_then(|f| f(&url, range));
        Download::new(url, range, size, shared)
    }

    pub(super) fn on_abort(&mut self, req: RequestId) {
        let Some(key) = self.requests.remove(&req) else {
            return;
        };
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        d.reqs.retain(|r| *r != req);
        if !d.reqs.is_empty() {
            return;
        }
        // Nobody wants it any more (a seek or level switch): stop its transfers, unless
        // peers are reading our HTTP relay of it, which then completes for them. Peers that
        // only saw it announced are told it is lost (`drop_download`). The player's position
        // is no guide here: the abort often arrives before the playhead of the seek.
        let relayed = d.http.is_some()
            && self
                .peers
                .values()
                .any(|s| s.up.iter().any(|u| u.key == key));
        if !relayed {
            self.drop_download(key);
        }
        self.reschedule();
    }

    /// Forgets a download: cancels its transfers, tells peers it is gone.
    pub(super) fn drop_download(&mut self, key: SegmentKey) {
        let Some(d) = self.downloads.remove(&key) else {
            return;
        };
        let told = d.told_peers();
        if let Some(id) = d.http {
            self.http.remove(&id);
            self.out.push_back(Output::CancelHttp { id });
        }
        // The download is gone already: `release_p2p` only frees the requests and the
        // peers' request budgets.
        for (conn, id) in d.p2p {
            if self.release_p2p(conn, id).is_some() {
                self.send(conn, &Message::Cancel { id });
            }
        }
        for req in d.reqs {
            self.requests.remove(&req);
            self.out.push_back(Output::FailSegment {
                req,
                reason: "download abandoned".into(),
            });
        }
        if told {
            self.announce_lost(key);
        }
    }

    /// The engine cannot serve this segment: requests fail over to the host's own HTTP.
    pub(super) fn fail_download(&mut self, key: SegmentKey, reason: &str) {
        if let Some(d) = self.downloads.get_mut(&key) {
            for req in std::mem::take(&mut d.reqs) {
                self.requests.remove(&req);
                self.out.push_back(Output::FailSegment {
                    req,
                    reason: reason.to_string(),
                });
            }
        }
        self.drop_download(key);
    }

    pub(super) fn report_progress(&mut self, key: SegmentKey) {
        if let Some(d) = self.downloads.get(&key) {
            let loaded = if d.size.is_some() {
                d.got_bytes
            } else {
                d.data.len() as u64
            };
            for &req in &d.reqs {
                self.out.push_back(Output::SegmentProgress {
                    req,
                    loaded,
                    total: d.size,
                });
            }
        }
    }

    pub(super) fn finalize(&mut self, now: Instant, key: SegmentKey) {
        let container = self
            .swarms
            .get(&key.swarm)
            .map_or(Container::Unknown, |s| s.container);
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        let mut verdict =
            integrity::check_segment(container, d.data.as_slice()).map_err(|e| format!("{e:?}"));
        let vouched = self.manifest_entry(&d.url, d.range).is_some();
        if verdict.is_ok() {
            if let Some(entry) = self.manifest_entry(&d.url, d.range) {
                verdict = verify_whole(entry, d.data.as_slice());
            }
        }
        let peer_chunks = d.slots.iter().any(|s| {
            matches!(
                s,
                Slot::Got {
                    from: Sender::Peer(_),
                    ..
                }
            )
        });
        if let Err(detail) = verdict {
            if peer_chunks {
                self.reject_peer_bytes(now, key, &detail);
                return;
            }
            // Origin bytes: the player would have received exactly these without us.
            // Deliver them, but never keep or share them.
            self.warn(format!(
                "segment {} from origin failed checks: {detail}",
                key.seq
            ));
            let Some(d) = self.downloads.remove(&key) else {
                return;
            };
            let timing = timing_of(&d, now);
            if d.told_peers() {
                self.announce_lost(key);
            }
            self.deliver_all(&d.reqs, &d.data.into_bytes(), &timing);
            return;
        }
        let Some(mut d) = self.downloads.remove(&key) else {
            return;
        };
        if let Some(id) = d.http {
            // Peers won a race with a slow transfer (`race_http`): stop it.
            self.http.remove(&id);
            self.out.push_back(Output::CancelHttp { id });
        }
        let timing = timing_of(&d, now);
        self.tally.p2p_accepted(d.p2p_bytes);
        for (conn, id) in &d.p2p {
            self.release_p2p(*conn, *id);
            self.send(*conn, &Message::Cancel { id: *id });
        }
        self.event(Event::SegmentLoaded {
            swarm: key.swarm,
            seq: key.seq,
            http_bytes: d.http_bytes,
            p2p_bytes: d.p2p_bytes,
        });
        // One buffer for the player and the cache: the host's shared copy of these bytes
        // (`set_shared_copies`) if they are equal, else this download's own.
        let data = std::mem::take(&mut d.data);
        let bytes = match data.whole_shared() {
            Some(shared) => shared.clone(),
            None => {
                // The offer was looked up when the download began (`new_download`).
                let own = data.into_vec();
                d.shared
                    .take()
                    .filter(|b| b.as_slice() == own.as_slice())
                    .unwrap_or_else(|| Rc::new(own))
            }
        };
        self.deliver_all(&d.reqs, &bytes, &timing);
        if !vouched {
            self.spot_offer(key, &d, &bytes);
        }
        let size = bytes.len() as u64;
        let evicted = self.store.insert_shared(key, bytes);
        let kept = !evicted.contains(&key);
        if kept {
            self.store.set_timing(key, timing);
            // Requests being relayed keep reading it from the store.
            let relays: usize = self
                .peers
                .values()
                .map(|s| s.up.iter().filter(|u| u.key == key).count())
                .sum();
            for s in self.peers.values_mut() {
                for u in s.up.iter_mut().filter(|u| u.key == key) {
                    u.pinned = true;
                }
            }
            for _ in 0..relays {
                self.store.pin(key);
            }
        }
        for ev in evicted {
            if self.sharing() && (ev != key || d.told_peers()) {
                self.announce_lost(ev);
            }
        }
        if kept && self.sharing() && size <= MAX_SEGMENT_SIZE as u64 {
            self.announce_have(key, size as u32);
        }
        self.pump_uploads(now);
    }

    pub(super) fn mark_filled(&mut self) {
        if let Some(p) = self.playhead.as_mut() {
            p.filled = true;
        }
    }

    pub(super) fn deliver_all(
        &mut self,
        reqs: &[RequestId],
        data: &SegmentBytes,
        timing: &DeliveryTiming,
    ) {
        if !reqs.is_empty() {
            self.mark_filled();
        }
        for &req in reqs {
            self.requests.remove(&req);
            self.tally.delivered(timing);
            self.out.push_back(Output::DeliverSegment {
                req,
                data: Rc::clone(data),
                timing: timing.clone(),
            });
        }
    }

    /// The assembled segment failed a whole-segment check and peers contributed: discard
    /// their bytes, strike them (ban a sole contributor), refetch over HTTP.
    pub(super) fn reject_peer_bytes(&mut self, now: Instant, key: SegmentKey, detail: &str) {
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let mut from_set: Vec<u16> = d
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Got {
                    from: Sender::Peer(i),
                    ..
                } => Some(*i),
                _ => None,
            })
            .collect();
        from_set.sort_unstable();
        from_set.dedup();
        let culprits: Vec<(ConnId, PeerId)> = from_set
            .iter()
            .filter_map(|i| d.contributors.get(usize::from(*i)).copied())
            .collect();
        let dropped = d.discard_from(|_| true);
        d.p2p_bytes = 0;
        d.force_http = true;
        self.tally.p2p_discarded(dropped);
        let sole = culprits.len() == 1;
        for (conn, peer) in culprits {
            self.event(Event::VerificationFailed {
                swarm: key.swarm,
                seq: key.seq,
                peer,
                detail: detail.to_string(),
            });
            if sole {
                self.ban(conn, BanReason::CorruptData);
            } else {
                self.strike(conn);
            }
        }
        if self.downloads.get(&key).is_some_and(|d| d.reqs.is_empty()) {
            self.drop_download(key);
        } else {
            self.plan_download(now, key);
        }
    }
}
