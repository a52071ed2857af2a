//! HTTP transfers the engine runs: start (the whole segment or the chunks peers cannot
//! bring), body pieces written into the download as they arrive, completion and failure.

use super::*;

pub(super) struct HttpXfer {
    pub(super) key: SegmentKey,
    /// Byte offset inside the segment where the body starts.
    pub(super) offset: u64,
    /// Whole segment (size learned from the body).
    pub(super) full: bool,
    pub(super) received: u64,
    /// Start, then last progress: the stall clock.
    pub(super) last_at: Instant,
    /// Already reported to the CDN health check (once per transfer).
    pub(super) flagged: bool,
    pub(super) started: Instant,
    /// First body piece (its bytes measure latency, not rate).
    pub(super) first_at: Option<Instant>,
    /// Body time and bytes after the first piece, silences capped (`health::GAP_MS`).
    pub(super) flow_ms: u64,
    pub(super) flow_bytes: u64,
}

/// The HTTP transfers running for downloads, and the ids of every transfer the engine
/// starts (the spot checker's too), so that no two share one.
pub(super) struct HttpTransfers {
    running: BTreeMap<HttpId, HttpXfer>,
    next_id: u32,
}

impl Default for HttpTransfers {
    fn default() -> Self {
        HttpTransfers {
            running: BTreeMap::new(),
            next_id: 1,
        }
    }
}

impl HttpTransfers {
    /// The id the next transfer gets (`take_id` claims it).
    pub(super) fn next_id(&self) -> HttpId {
        HttpId(self.next_id)
    }

    pub(super) fn take_id(&mut self) -> HttpId {
        let id = self.next_id();
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    pub(super) fn insert(&mut self, id: HttpId, x: HttpXfer) {
        self.running.insert(id, x);
    }

    pub(super) fn remove(&mut self, id: &HttpId) -> Option<HttpXfer> {
        self.running.remove(id)
    }

    pub(super) fn get(&self, id: &HttpId) -> Option<&HttpXfer> {
        self.running.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &HttpId) -> Option<&mut HttpXfer> {
        self.running.get_mut(id)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.running.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&HttpId, &HttpXfer)> {
        self.running.iter()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &HttpXfer> {
        self.running.values()
    }
}

/// Copies an HTTP body piece at segment offset `at` into the chunks not yet received and
/// marks the chunks the HTTP body now fully covers.
pub(super) fn write_http(d: &mut Download, size: u64, at: u64, bytes: &[u8]) {
    let end = at.saturating_add(bytes.len() as u64).min(size);
    if at >= end {
        return;
    }
    let first = (at / CHUNK) as u32;
    let last = ((end - 1) / CHUNK) as u32;
    for c in first..=last {
        let (cs, ce) = chunk_bounds(size, c);
        let got = matches!(d.slots.get(c as usize), Some(Slot::Got { .. }) | None);
        if got {
            continue;
        }
        let s = cs.max(at);
        let e = ce.min(end);
        if let Some(src) = bytes.get((s - at) as usize..(e - at) as usize) {
            d.write_at(s, src, None);
        }
        // The HTTP body is contiguous from its start (a chunk boundary), so reaching the
        // chunk's end means all of it came over HTTP.
        let starts_in_body = cs >= at || d.http_chunks.0 <= c;
        if e == ce && starts_in_body {
            if let Some(slot) = d.slots.get_mut(c as usize) {
                *slot = Slot::Got {
                    from: Sender::Http,
                    trusted: true,
                };
                d.got_chunks = d.got_chunks.saturating_add(1);
                d.got_bytes = d.got_bytes.saturating_add(ce - cs);
            }
        }
    }
}

impl Engine {
    pub(super) fn start_http(&mut self, now: Instant, key: SegmentKey) {
        // A viewer with a degraded CDN path would be a slow relay: it keeps its fetches to
        // itself (peers then fetch from their own CDN) and shares the finished segment.
        let sharing =
            self.sharing() && self.swarms.contains_key(&key.swarm) && !self.cdn.is_degraded();
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        if d.http.is_some() || d.is_complete() {
            return;
        }
        let (offset, end, chunks) = match d.size {
            None => (0, None, (0, MAX_CHUNKS)),
            Some(size) => {
                let Some((a, b)) = d.not_got_span() else {
                    return;
                };
                let start = chunk_bounds(size, a).0;
                let stop = chunk_bounds(size, b.saturating_sub(1)).1;
                (
                    start,
                    if start == 0 && stop == size {
                        None
                    } else {
                        Some(stop)
                    },
                    (a, b),
                )
            }
        };
        let range = match (d.range, end) {
            (Some(r), end) => Some(ByteRange {
                start: r.start.saturating_add(offset),
                end: r.start.saturating_add(end.unwrap_or(r.len())),
            }),
            (None, Some(e)) => Some(ByteRange {
                start: offset,
                end: e,
            }),
            (None, None) => None,
        };
        let id = self.http.take_id();
        self.cdn.transfer_started(now);
        d.http = Some(id);
        d.http_chunks = chunks;
        d.wait_until = None;
        d.transfer_start.get_or_insert(now);
        let full = offset == 0 && end.is_none();
        let url = d.url.clone();
        let announce =
            full && sharing && !d.announced && d.size.is_some_and(|s| s <= MAX_SEGMENT_SIZE as u64);
        let size = d.size;
        self.http.insert(
            id,
            HttpXfer {
                key,
                offset,
                full,
                received: 0,
                last_at: now,
                flagged: false,
                started: now,
                first_at: None,
                flow_ms: 0,
                flow_bytes: 0,
            },
        );
        self.out.push_back(Output::StartHttp { id, url, range });
        if let (true, Some(size)) = (announce, size) {
            self.announce_downloading(key, size as u32);
        }
    }

    pub(super) fn on_http_progress(
        &mut self,
        now: Instant,
        id: HttpId,
        bytes: &[u8],
        total: Option<u64>,
    ) {
        if self.spot.owns(id) {
            self.tally.http_bytes(bytes.len() as u64);
            self.spot.progress(id, bytes, total, now);
            return;
        }
        let Some(x) = self.http.get_mut(&id) else {
            self.warn(format!("progress for unknown http {}", id.0));
            return;
        };
        let key = x.key;
        let offset = x.offset;
        let pos = x.received;
        let full = x.full;
        if pos == 0 && !bytes.is_empty() {
            let ttfb = now.as_millis().saturating_sub(x.last_at.as_millis());
            self.tally.http_ttfb(ttfb);
        }
        let first_piece = !bytes.is_empty() && x.first_at.is_none();
        if first_piece {
            x.first_at = Some(now);
        } else if !bytes.is_empty() {
            let gap = now.as_millis().saturating_sub(x.last_at.as_millis());
            x.flow_ms = x.flow_ms.saturating_add(gap.min(health::GAP_MS));
            x.flow_bytes = x.flow_bytes.saturating_add(bytes.len() as u64);
        }
        x.received = x.received.saturating_add(bytes.len() as u64);
        x.last_at = now;
        if first_piece {
            self.cdn.goodput().first_byte(now);
        } else if !bytes.is_empty() {
            self.cdn.goodput().bytes(now, bytes.len() as u64);
            self.check_goodput(now);
        }
        // A viewer with a degraded CDN path would be a slow relay: it keeps its fetches to
        // itself (peers then fetch from their own CDN) and shares the finished segment.
        let sharing =
            self.sharing() && self.swarms.contains_key(&key.swarm) && !self.cdn.is_degraded();
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        self.tally.http_bytes(bytes.len() as u64);
        d.http_bytes = d.http_bytes.saturating_add(bytes.len() as u64);
        d.first_byte.get_or_insert(now);
        let mut announce = None;
        let mut unsized_restart = false;
        if full {
            match (d.size, total) {
                (_, Some(t)) if t > MAX_SEGMENT_SIZE as u64 && pos == 0 => {
                    // No segment is that large: a broken or hostile origin. Fail open.
                    self.http.remove(&id);
                    self.out.push_back(Output::CancelHttp { id });
                    if let Some(d) = self.downloads.get_mut(&key) {
                        d.http = None;
                    }
                    self.fail_download(key, "http content-length too large");
                    return;
                }
                (None, Some(t)) if t > 0 && pos == 0 => {
                    d.set_size(t);
                    d.size_src = SizeSrc::Origin;
                    d.http_chunks = (0, n_chunks(t));
                    if sharing && !d.announced && t <= MAX_SEGMENT_SIZE as u64 {
                        announce = Some(t as u32);
                    }
                }
                (Some(s), Some(t)) if s != t && pos == 0 => {
                    // The origin is authoritative: restart assembly with its size.
                    let had_peer_bytes = d.contributors.len();
                    d.set_size(t);
                    d.size_src = SizeSrc::Origin;
                    d.http_chunks = (0, n_chunks(t));
                    if had_peer_bytes > 0 {
                        d.contributors.clear();
                    }
                }
                (Some(_), None) if pos == 0 && d.size_src != SizeSrc::Origin => {
                    // Only a peer vouched for that size and the origin sends none: the
                    // body's own length decides (`on_http_done`). Chunks sized by the claim
                    // are dropped, and the requests for them cancelled below.
                    d.size = None;
                    d.size_src = SizeSrc::Announced;
                    d.data = Assembly::default();
                    d.slots = Vec::new();
                    d.got_chunks = 0;
                    d.got_bytes = 0;
                    d.p2p_bytes = 0;
                    d.contributors.clear();
                    d.http_chunks = (0, MAX_CHUNKS);
                    unsized_restart = true;
                }
                _ => {}
            }
        }
        match d.size {
            None => {
                if d.data.len().saturating_add(bytes.len()) > MAX_UNSIZED_BODY {
                    self.fail_download(key, "http body too large");
                    return;
                }
                d.data.own().extend_from_slice(bytes);
            }
            Some(size) => write_http(d, size, offset.saturating_add(pos), bytes),
        }
        if unsized_restart {
            self.cancel_p2p(key);
            self.withdraw_downloading(key);
        }
        if let Some(size) = announce {
            self.announce_downloading(key, size);
        }
        self.report_progress(key);
        if self.downloads.get(&key).is_some_and(|d| d.announced) {
            self.pump_uploads(now);
        }
        if self
            .downloads
            .get(&key)
            .is_some_and(|d| d.is_complete() && d.p2p_bytes > 0)
        {
            // HTTP caught up with peers that raced it (`race_http`): done before its end.
            self.finalize(now, key);
            self.reschedule();
            return;
        }
        self.race_http(now, key);
    }

    pub(super) fn on_http_done(&mut self, now: Instant, id: HttpId) {
        if self.spot.owns(id) {
            if let Some(verdict) = self.spot.done(id) {
                self.on_spot_verdict(verdict);
            } else {
                self.reschedule();
            }
            return;
        }
        let Some(x) = self.http.remove(&id) else {
            return;
        };
        let Some(d) = self.downloads.get_mut(&x.key) else {
            return;
        };
        d.http = None;
        if d.size.is_none() {
            let size = d.data.len() as u64;
            if size == 0 {
                self.fail_download(x.key, "empty http body");
                self.reschedule();
                return;
            }
            let data = std::mem::take(&mut d.data);
            d.set_size(size);
            d.size_src = SizeSrc::Origin;
            d.data = data;
            d.slots.fill(Slot::Got {
                from: Sender::Http,
                trusted: true,
            });
            d.got_chunks = d.slots.len() as u32;
            d.got_bytes = size;
        } else if !d.is_complete() && d.p2p.is_empty() {
            self.fail_download(x.key, "http body shorter than expected");
            self.reschedule();
            return;
        }
        // A transfer that merely finished, slower than the media plays, is no recovery.
        let total_ms = now.as_millis().saturating_sub(x.started.as_millis());
        if x.received > 0 {
            self.cdn.note_transfer_ms(total_ms);
        }
        let flows = ((x.flow_ms, x.flow_bytes), (total_ms, x.received));
        if health::transfer_healthy(flows.0, flows.1, self.play_rate_bps(x.key)) {
            self.cdn_ok();
        }
        if self.downloads.get(&x.key).is_some_and(|d| d.is_complete()) {
            self.finalize(now, x.key);
        }
        self.reschedule();
    }

    pub(super) fn on_http_failed(&mut self, now: Instant, id: HttpId, status: u16, reason: &str) {
        if self.spot.failed(id) {
            self.reschedule();
            return;
        }
        let Some(x) = self.http.remove(&id) else {
            return;
        };
        let detail = format!("http {status}: {reason}");
        self.cdn_trouble(now, detail.clone());
        // Without a connected peer nobody could rescue it: fail open at once.
        let mut usable = !self.ready_conns(x.key.swarm).is_empty();
        if let Some(d) = self.downloads.get_mut(&x.key) {
            d.http = None;
            d.http_chunks = (0, 0);
            d.http_failures = d.http_failures.saturating_add(1);
            usable = usable
                && !d.reqs.is_empty()
                && !d.force_http
                && self.config.p2p_enabled
                && d.http_failures < MAX_HTTP_FAILURES;
            if usable {
                d.avoid_http_until = Some(now + ms(CDN_RETRY_MS));
            }
        }
        if usable {
            self.withdraw_downloading(x.key);
        }
        // Peers holding it (now, or once they announce it) beat failing the player over
        // to the same broken CDN; `plan_download` retries HTTP after the back-off.
        if usable {
            self.p2p_rescue(now, x.key);
        } else {
            self.fail_download(x.key, &detail);
        }
        self.reschedule();
    }
}
