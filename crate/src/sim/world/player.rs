//! The player model: playhead, playlist refreshes, rendition choice (ABR), requests and
//! deliveries, stalls.

use super::*;

impl World<'_> {
    /// Moves the playhead to `now`, detecting the moment the buffer ran dry.
    pub(super) fn advance(&mut self, v: u32) {
        let now = self.now;
        let live = self.media.is_live();
        let total_ms = if live {
            u64::MAX
        } else {
            self.sc.stream.vod_segments * self.media.segment_ms()
        };
        let p = &mut self.viewers[v as usize];
        let pl = &mut p.pl;
        let elapsed = now.saturating_sub(pl.last_us);
        pl.last_us = now;
        if pl.started && (pl.playing || pl.stalled_since.is_some()) {
            p.watch_us += elapsed;
        }
        if !pl.playing {
            return;
        }
        let ahead_ms = pl.buf_end_ms as f64 - pl.pos_ms;
        let el_ms = elapsed as f64 / MS as f64;
        if el_ms < ahead_ms {
            pl.pos_ms += el_ms;
            return;
        }
        pl.pos_ms = pl.buf_end_ms as f64;
        pl.playing = false;
        if pl.buf_end_ms >= total_ms {
            pl.ended = true;
            return;
        }
        let dry_at = now.saturating_sub(((el_ms - ahead_ms) * MS as f64) as u64);
        pl.stalled_since = Some(dry_at);
        p.stalls += 1;
        if self.trace == Some(v) {
            self.log(v, "STALL");
        }
    }

    pub(super) fn send_playhead(&mut self, v: u32) {
        let p = &self.viewers[v as usize];
        if !p.pl.initialized {
            return;
        }
        let input = Input::Playhead {
            swarm: self.swarms[p.pl.rend],
            position_ms: p.pl.pos_ms as u64,
            buffered_ahead_ms: p.pl.buf_end_ms.saturating_sub(p.pl.pos_ms as u64),
            rate: if p.pl.playing { 1.0 } else { 0.0 },
        };
        self.input(v, input);
    }

    pub(super) fn send_playlist(&mut self, v: u32, rend: usize) {
        let Some((lo, hi)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let seg_ms = self.media.segment_ms();
        let segments: Vec<SegmentInfo> = (lo..=hi)
            .map(|seq| SegmentInfo {
                seq,
                start_ms: seq * seg_ms,
                duration_ms: seg_ms as u32,
                url: Media::url(rend, seq),
                range: None,
            })
            .collect();
        self.viewers[v as usize].pl.playlist_sent[rend] = true;
        let input = Input::Playlist {
            swarm: self.swarms[rend],
            live: self.media.is_live(),
            container: Container::Ts,
            bitrate: self.media.bitrate(rend).min(u32::MAX as u64) as u32,
            segments,
        };
        self.input(v, input);
    }

    /// The origin's integrity manifest for the current window (all renditions), as the
    /// viewer would fetch it beside the playlist.
    pub(super) fn send_manifest(&mut self, v: u32) {
        let Some((lo, hi)) = self.viewers[v as usize].pl.known else {
            return;
        };
        let fresh = self.manifest.as_ref().is_some_and(|(w, _)| *w == (lo, hi));
        if !fresh {
            let mut text = testkit::media::manifest_header();
            for r in 0..self.media.renditions() {
                for seq in lo..=hi {
                    if let Some(line) = self.manifest_lines.get(&(r, seq)) {
                        text.push_str(line);
                        continue;
                    }
                    let data = self.media.bytes(r, seq);
                    let key = crate::integrity::manifest_key(&Media::url(r, seq), None);
                    let line = testkit::manifest_line(&key, &data, true);
                    text.push_str(&line);
                    self.manifest_lines.insert((r, seq), line);
                }
            }
            self.manifest_lines.retain(|&(_, s), _| s >= lo);
            self.manifest = Some(((lo, hi), text.into_bytes()));
        }
        let Some((_, data)) = self.manifest.as_ref() else {
            return;
        };
        let data = data.clone();
        self.input(v, Input::IntegrityManifest { data });
    }

    pub(super) fn playlist_tick(&mut self, v: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        let now_ms = self.now / MS;
        let window = self.media.window(now_ms);
        let seg_ms = self.media.segment_ms();
        let live = self.media.is_live();
        let sync = self.sc.player.live_sync_segments;
        let p = &mut self.viewers[v as usize];
        p.pl.known = window;
        if !p.pl.initialized {
            if let Some((lo, hi)) = window {
                p.pl.initialized = true;
                let start = if live {
                    (hi + 1).saturating_sub(sync.max(1)).max(lo)
                } else {
                    0
                };
                p.pl.next_seq = start;
                p.pl.pos_ms = (start * seg_ms) as f64;
                p.pl.buf_end_ms = start * seg_ms;
            }
        }
        let rend = p.pl.rend;
        let resend = live || !p.pl.playlist_sent[rend];
        if live {
            self.push(self.now + seg_ms * MS, Ev::PlaylistTick(v));
            self.media.prune(now_ms);
        }
        if resend {
            self.send_playlist(v, rend);
            if self.sc.manifest {
                self.send_manifest(v);
            }
        }
        match self.viewers[v as usize].role {
            Role::Liar => self.lie(v),
            Role::Flooder => self.flood(v),
            _ => {}
        }
        self.send_playhead(v);
        self.maybe_request(v);
    }

    pub(super) fn player_tick(&mut self, v: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        self.advance(v);
        let tick = self.sc.player.playhead_interval_ms * MS;
        self.push(self.now + tick, Ev::PlayerTick(v));
        self.send_playhead(v);
        self.maybe_request(v);
        if self.now >= self.viewers[v as usize].next_stats_check {
            self.viewers[v as usize].next_stats_check = self.now + STATS_CHECK_EVERY;
            let budget = self.viewers[v as usize].cache_budget;
            if let Some(st) = self.viewers[v as usize].engine.as_ref().map(|e| e.stats()) {
                self.totals.max_cache_bytes = self.totals.max_cache_bytes.max(st.cache_bytes);
                if st.cache_bytes > budget {
                    self.violation(format!(
                        "t={}ms viewer {v}: cache {} above budget {budget}",
                        self.now / MS,
                        st.cache_bytes
                    ));
                }
            }
        }
    }

    pub(super) fn choose_rendition(&self, v: u32) -> usize {
        let p = &self.viewers[v as usize];
        let cur = p.pl.rend;
        if !self.sc.player.abr || p.pl.bw_slow <= 0.0 {
            return cur;
        }
        let est = p.pl.bw_fast.min(p.pl.bw_slow) * 8.0 / self.sc.byte_scale;
        let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
        let mut best = 0;
        for r in 0..self.media.renditions() {
            let factor = if r > cur { 0.7 } else { 0.95 };
            if self.media.bitrate(r) as f64 <= est * factor {
                best = r;
            }
        }
        if best > cur && ahead < 8_000.0 {
            return cur;
        }
        best
    }

    pub(super) fn maybe_request(&mut self, v: u32) {
        let seg_ms = self.media.segment_ms();
        let live = self.media.is_live();
        let max_buf = self.sc.player.max_buffer_ms;
        let vod_n = self.sc.stream.vod_segments;
        {
            let p = &mut self.viewers[v as usize];
            if !p.alive || !p.pl.initialized || p.pl.pending.is_some() || p.pl.ended {
                return;
            }
            let Some((lo, hi)) = p.pl.known else {
                return;
            };
            if live && p.pl.next_seq < lo {
                // Fell out of the live window: jump forward, as hls.js does.
                p.skipped += (lo - p.pl.next_seq) as u32;
                p.pl.next_seq = lo;
                p.pl.pos_ms = (lo * seg_ms) as f64;
                p.pl.buf_end_ms = lo * seg_ms;
            }
            if p.pl.next_seq > hi || (!live && p.pl.next_seq >= vod_n) {
                return;
            }
            let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
            if ahead >= max_buf as f64 {
                return;
            }
        }
        let rend = self.choose_rendition(v);
        if rend != self.viewers[v as usize].pl.rend {
            self.viewers[v as usize].pl.rend = rend;
            self.send_playlist(v, rend);
            self.send_playhead(v);
        }
        let p = &mut self.viewers[v as usize];
        if !p.alive {
            return;
        }
        let seq = p.pl.next_seq;
        let req = p.pl.next_req;
        p.pl.next_req = p.pl.next_req.wrapping_add(1).max(1);
        p.pl.pending = Some(Pending {
            req,
            seq,
            rend,
            direct: None,
        });
        if self.trace == Some(v) {
            self.log(v, &format!("REQUEST req {req} r{rend}/{seq}"));
        }
        let input = Input::SegmentRequested {
            req: RequestId(req),
            swarm: self.swarms[rend],
            seq,
            url: Media::url(rend, seq),
            range: None,
            timeout_ms: None,
        };
        self.input(v, input);
    }

    /// A segment reached the player: from the engine (`data`, `timing`) or from its own
    /// fallback load (`None`: the origin's bytes).
    pub(super) fn on_delivered(
        &mut self,
        v: u32,
        req: u32,
        data: Option<&SegmentBytes>,
        timing: Option<&DeliveryTiming>,
    ) {
        let matches = self.viewers[v as usize]
            .pl
            .pending
            .as_ref()
            .is_some_and(|p| p.req == req);
        if !matches {
            self.violation(format!(
                "t={}ms viewer {v}: delivery for request {req} not pending",
                self.now / MS
            ));
            return;
        }
        self.advance(v);
        let Some(pend) = self.viewers[v as usize].pl.pending.take() else {
            return;
        };
        if let Some(data) = data {
            let truth = self.media.bytes(pend.rend, pend.seq);
            // The engine hands out the shared copy when its bytes equal it (`set_shared_copies`).
            if !Rc::ptr_eq(data, &truth) && data.as_slice() != truth.as_slice() {
                self.viewers[v as usize].corrupted += 1;
                self.violation(format!(
                    "t={}ms viewer {v}: corrupted segment r{}/{} delivered",
                    self.now / MS,
                    pend.rend,
                    pend.seq
                ));
            }
        }
        let seg_ms = self.media.segment_ms();
        let now = self.now;
        let resume = self.sc.player.resume_buffer_ms;
        let vod_end = self.sc.stream.vod_segments * seg_ms;
        let live = self.media.is_live();
        let size = self.media.size(pend.rend, pend.seq) as f64;
        let p = &mut self.viewers[v as usize];
        p.pl.buf_end_ms = (pend.seq + 1) * seg_ms;
        p.pl.next_seq = pend.seq + 1;
        if let Some(t) = timing {
            if !t.from_cache {
                let dur_ms = t
                    .transfer_end
                    .as_millis()
                    .saturating_sub(t.transfer_start.as_millis())
                    .max(1) as f64;
                let sample = size * 1000.0 / dur_ms;
                if p.pl.bw_slow <= 0.0 {
                    p.pl.bw_fast = sample;
                    p.pl.bw_slow = sample;
                } else {
                    p.pl.bw_fast += 0.5 * (sample - p.pl.bw_fast);
                    p.pl.bw_slow += 0.1 * (sample - p.pl.bw_slow);
                }
            }
        }
        if !p.pl.started {
            p.pl.started = true;
            p.pl.playing = true;
            p.startup_us = Some(now.saturating_sub(p.join_us));
        } else if let Some(since) = p.pl.stalled_since {
            let ahead = p.pl.buf_end_ms as f64 - p.pl.pos_ms;
            let at_end = !live && p.pl.buf_end_ms >= vod_end;
            if ahead >= resume as f64 || at_end {
                p.stall_us += now.saturating_sub(since);
                p.pl.stalled_since = None;
                p.pl.playing = true;
            }
        }
        self.send_playhead(v);
        self.maybe_request(v);
    }

    /// The engine gave up on the request: the player loads it over plain HTTP.
    pub(super) fn on_engine_failed(&mut self, v: u32, req: u32) {
        let Some(pend) = self.viewers[v as usize].pl.pending.as_ref() else {
            return;
        };
        if pend.req != req {
            return;
        }
        let (rend, seq) = (pend.rend, pend.seq);
        let x = self.start_xfer(v, Owner::Player(req), rend, seq, None);
        if let Some(p) = self.viewers[v as usize].pl.pending.as_mut() {
            p.direct = Some(x);
        }
    }
}
