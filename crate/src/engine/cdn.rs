//! Reactions to the CDN's health: stalled or slow transfers mark it degraded (`CdnDegraded`)
//! and hand urgent segments to peers; a good transfer after the probe time recovers it.
//! `crate::health::CdnHealth` owns the path's state and decides; this file routes and acts.

use super::*;

impl Engine {
    /// No HTTP bytes for `peer_stall_timeout_ms`: if peers hold the segment, drop the
    /// transfer and take the rest from them (the chunks already here are kept). Without
    /// holders the transfer is left running and checked again one period later.
    pub(super) fn on_http_stall(&mut self, now: Instant, id: HttpId) {
        let Some(key) = self.http.get(&id).map(|x| x.key) else {
            return;
        };
        let usable = self
            .downloads
            .get(&key)
            .is_some_and(|d| !d.reqs.is_empty() && !d.force_http);
        if !usable || !self.has_holder(now, key) {
            if let Some(x) = self.http.get_mut(&id) {
                x.last_at = now;
            }
            return;
        }
        self.http.remove(&id);
        self.out.push_back(Output::CancelHttp { id });
        let avoid = now
            + ms(self
                .config
                .peer_stall_timeout_ms
                .saturating_mul(4)
                .max(2_000));
        if let Some(d) = self.downloads.get_mut(&key) {
            d.http = None;
            d.http_chunks = (0, 0);
            d.avoid_http_until = Some(avoid);
        }
        // Our relays cannot continue from untrusted peer bytes: withdraw the announce.
        self.withdraw_downloading(key);
        if !self.p2p_rescue(now, key) {
            self.plan_download(now, key);
        }
    }

    /// The CDN path failed or stalled: report it once, and from now on take urgent
    /// segments from peers first (`plan_download`) until an HTTP transfer completes again.
    pub(super) fn cdn_trouble(&mut self, now: Instant, reason: String) {
        if self.cdn.trouble(now) {
            self.event(Event::CdnDegraded { reason });
            // Peers waiting on our relay of a CDN fetch would wait on a bad path: withdraw
            // those announcements so they fetch elsewhere (running relays continue).
            let withdrawn: Vec<SegmentKey> = self
                .downloads
                .iter()
                .filter(|(_, d)| d.announced && d.http.is_some())
                .map(|(k, _)| *k)
                .collect();
            for key in withdrawn {
                self.withdraw_downloading(key);
            }
        }
    }

    pub(super) fn cdn_ok(&mut self) {
        if self.cdn.ok() {
            self.event(Event::CdnRecovered {});
        }
    }

    /// Rate at which `key` plays, bit/s: its origin-known size over its duration, else the
    /// playlist's nominal bitrate. `None` when neither is known.
    pub(super) fn play_rate_bps(&self, key: SegmentKey) -> Option<f64> {
        let swarm = self.swarms.get(&key.swarm)?;
        let dur = swarm.segment(key.seq).map_or(0, |s| s.duration_ms);
        let size = self
            .downloads
            .get(&key)
            .filter(|d| d.size_src == SizeSrc::Origin)
            .and_then(|d| d.size);
        match size {
            Some(size) if dur > 0 => Some(size as f64 * 8_000.0 / dur as f64),
            _ => (swarm.bitrate > 0).then_some(swarm.bitrate as f64),
        }
    }

    /// Tells the goodput window how long HTTP bodies flowed since the last input, and for
    /// which play rate (state is constant between inputs, so this is exact).
    pub(super) fn note_http_flow(&mut self, now: Instant) {
        let need = self
            .http
            .values()
            .filter(|x| x.first_at.is_some())
            .filter_map(|x| self.play_rate_bps(x.key))
            .reduce(f64::max);
        self.cdn.goodput().advance(now, need);
    }

    /// HTTP bodies arrive slower than the media plays: the CDN path is degraded even though
    /// every transfer is moving.
    pub(super) fn check_goodput(&mut self, now: Instant) {
        if let Some(slow) = self.cdn.slow_goodput(now) {
            self.cdn_trouble(
                now,
                // Whole kbit/s: formatting an `f64` would ship float printing in the wasm.
                format!(
                    "throughput {} kbit/s below the {} kbit/s the media plays at",
                    (slow.goodput_bps / 1e3) as u64,
                    (slow.need_bps / 1e3) as u64
                ),
            );
        }
    }

    /// While the CDN is degraded, an urgent segment still arriving over a slow HTTP transfer
    /// is raced: peers holding it take the chunks the transfer will not reach before the
    /// deadline (at its measured rate), HTTP keeps the front; the first copy of each chunk
    /// wins and `finalize` cancels whatever still runs.
    pub(super) fn race_http(&mut self, now: Instant, key: SegmentKey) {
        if !self.cdn.is_degraded() || !self.config.p2p_enabled {
            return;
        }
        let deadline = self.deadline_ms(now, key);
        if !self.is_urgent(deadline) {
            return;
        }
        let Some(d) = self.downloads.get(&key) else {
            return;
        };
        let vouched = self.config.integrity_public_key.is_none()
            || self.manifest_entry(&d.url, d.range).is_some();
        if d.reqs.is_empty() || d.force_http || !vouched {
            return;
        }
        let (Some(size), Some(x)) = (d.size, d.http.and_then(|id| self.http.get(&id))) else {
            return;
        };
        let pos = x.offset.saturating_add(x.received).min(size);
        let rate = x.flow_bytes as f64 * 1_000.0 / x.flow_ms.max(1) as f64;
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        let budget_ms =
            (deadline.unwrap_or(0).saturating_sub(urgent::PACE_MARGIN_MS)).max(0) as f64;
        let reach = pos.saturating_add((rate * budget_ms / 1_000.0 / playback) as u64);
        let reach_chunk = n_chunks(reach.min(size)).max(n_chunks(pos.saturating_add(1)));
        let (a, b) = d.http_chunks;
        if reach_chunk < b {
            if let Some(d) = self.downloads.get_mut(&key) {
                d.http_chunks = (a, reach_chunk.max(a));
            }
        }
        // Also hands chunks given up earlier to holders that were busy then.
        let holders = self.holders(now, key);
        self.assign(now, key, &holders);
    }

    /// `Timer::CdnSlow`: an HTTP transfer silent for `CDN_SLOW_MS` is reported to the CDN
    /// health check, once per transfer.
    pub(super) fn flag_slow_http(&mut self, now: Instant) {
        let slow: Vec<HttpId> = self
            .http
            .iter()
            .filter(|(_, x)| !x.flagged && now >= x.last_at + ms(CDN_SLOW_MS))
            .map(|(id, _)| *id)
            .collect();
        for id in slow {
            let first = match self.http.get_mut(&id) {
                Some(x) => {
                    x.flagged = true;
                    x.received == 0
                }
                None => continue,
            };
            self.cdn_trouble(
                now,
                if first {
                    format!("no first byte within {CDN_SLOW_MS} ms")
                } else {
                    format!("transfer stalled for {CDN_SLOW_MS} ms")
                },
            );
        }
    }

    /// `Timer::HttpStall`: HTTP transfers silent for `peer_stall_timeout_ms` are handed to
    /// peers where they can take over (`on_http_stall`).
    pub(super) fn rescue_stalled_http(&mut self, now: Instant) {
        let stall = ms(self.config.peer_stall_timeout_ms);
        let http_stalled: Vec<HttpId> = self
            .http
            .iter()
            .filter(|(_, x)| now >= x.last_at + stall)
            .map(|(id, _)| *id)
            .collect();
        for id in http_stalled {
            self.on_http_stall(now, id);
        }
    }
}
