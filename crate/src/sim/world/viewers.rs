//! Viewers arriving and leaving: joining the swarm, churn replacements, their final outcome.

use super::*;

impl World<'_> {
    pub(super) fn add_viewer(
        &mut self,
        group: usize,
        join_s: f64,
        leave_s: Option<f64>,
        mut r: Rng,
    ) -> u32 {
        let sc = self.sc;
        let g = &sc.groups[group];
        let total: f64 = sc.links.iter().map(|l| l.weight).sum();
        let mut pick = r.f64() * total;
        let mut link = &sc.links[0];
        for l in &sc.links {
            if pick < l.weight {
                link = l;
                break;
            }
            pick -= l.weight;
        }
        let spread = r.range_f64(0.75, 1.25);
        let down_bps = scale_bps(link.down_mbps * spread, sc.byte_scale);
        let up_bps = scale_bps(link.up_mbps * spread, sc.byte_scale).max(1.0);
        let lat_us = link.latency_ms * MS + r.range_u64(0, link.latency_ms * MS / 2);
        let nat = r.chance(sc.nat_fraction);
        let isp_draw = r.f64();
        let join_us = (join_s * SEC as f64) as u64;
        let mut leave_us = leave_s.map(|s| (s * SEC as f64) as u64);
        if g.churn_per_min > 0.0 {
            let session = r.exp(60.0 / g.churn_per_min);
            let l = join_us + (session * SEC as f64) as u64;
            leave_us = Some(leave_us.map_or(l, |x| x.min(l)));
        }
        let v = self.viewers.len() as u32;
        let cache_budget = (sc.engine.cache_bytes as f64 * sc.byte_scale) as u64;
        self.viewers.push(Viewer {
            role: g.role,
            engine: None,
            alive: false,
            peer: PeerId([0; 20]),
            down_bps,
            up_bps,
            lat_us,
            nat,
            isp_draw,
            net: sc.network_of(isp_draw),
            p2p_in: 0,
            p2p_in_cross: 0,
            cdn_bps: scale_bps(sc.cdn.mbps, sc.byte_scale),
            ttfb_us: (sc.cdn.ttfb_ms_min * MS, sc.cdn.ttfb_ms_max * MS),
            up_busy: 0,
            down_busy: 0,
            wake: None,
            http: Vec::new(),
            conns: Vec::new(),
            pl: Player {
                rend: sc.player.start_rendition,
                known: None,
                next_seq: 0,
                initialized: false,
                pos_ms: 0.0,
                buf_end_ms: 0,
                last_us: join_us,
                started: false,
                playing: false,
                ended: false,
                stalled_since: None,
                pending: None,
                next_req: 1,
                bw_fast: 0.0,
                bw_slow: 0.0,
                playlist_sent: vec![false; sc.stream.bitrates.len()],
            },
            join_us,
            leave_us,
            churn: g.churn_per_min > 0.0,
            group,
            rng: r,
            cache_budget,
            next_stats_check: 0,
            startup_us: None,
            watch_us: 0,
            stall_us: 0,
            stalls: 0,
            cdn_bytes: 0,
            corrupted: 0,
            skipped: 0,
            final_stats: None,
        });
        if join_us < self.end_us {
            self.push(join_us, Ev::Join(v));
        }
        v
    }

    pub(super) fn join(&mut self, v: u32) {
        let sc = self.sc;
        let vi = v as usize;
        let mut cfg = sc.engine.clone();
        cfg.p2p_enabled = self.p2p && cfg.p2p_enabled;
        cfg.cache_bytes = self.viewers[vi].cache_budget;
        // The simulated tracker introduces peers by `numwant` and models no WebRTC offers,
        // so the start hold (quiet announces, queued offers) has nothing to act on.
        cfg.start_hold_ms = 0;
        cfg.upload_bytes_per_sec = match sc.upload_fraction_of_uplink {
            Some(f) => (self.viewers[vi].up_bps * f) as u64,
            None => (cfg.upload_bytes_per_sec as f64 * sc.byte_scale) as u64,
        };
        if self.viewers[vi].role == Role::FreeRider {
            cfg.upload_bytes_per_sec = 0;
        }
        let seed = Rng::derive(sc.seed, 2_000_000 + v as u64).next_u64();
        let mut engine = Engine::new(cfg, Instant(self.now / MS), seed);
        // Downloads and caches use the published buffer instead of their own copy while
        // the bytes they receive are the same (the engine compares them): memory
        // O(segments), not O(viewers x cache).
        let published = self.media.published();
        engine.share_upload_buffers(true);
        engine.set_shared_copies(Box::new(move |url, range| {
            let (r, seq) = Media::parse_url(url)?;
            range
                .is_none()
                .then(|| published.borrow().get(&(r, seq)).cloned())
                .flatten()
        }));
        let peer = engine.peer_id();
        self.peer_index.insert(peer, v);
        let vw = &mut self.viewers[vi];
        vw.engine = Some(Box::new(engine));
        vw.peer = peer;
        vw.alive = true;
        vw.pl.last_us = self.now;
        vw.next_stats_check = self.now + STATS_CHECK_EVERY;
        let ttfb = vw.rng.range_u64(vw.ttfb_us.0, vw.ttfb_us.1);
        let tick = sc.player.playhead_interval_ms * MS;
        if let Some(l) = vw.leave_us {
            self.push(l, Ev::Leave(v));
        }
        self.push(self.now + ttfb, Ev::PlaylistTick(v));
        self.push(self.now + tick, Ev::PlayerTick(v));
    }

    /// A churned viewer is replaced by a newcomer a few seconds later.
    pub(super) fn replace(&mut self, v: u32) {
        let g = self.viewers[v as usize].group;
        let mut r = Rng::derive(self.sc.seed, 3_000_000 + v as u64);
        let join_s = self.now as f64 / SEC as f64 + r.range_f64(1.0, 10.0);
        let idx = self.viewers.len() as u64;
        let vr = Rng::derive(self.sc.seed, 1_000_000 + idx);
        self.add_viewer(g, join_s, None, vr);
    }

    pub(super) fn finish_viewer(&mut self, v: u32) {
        self.advance(v);
        let now = self.now;
        let vi = v as usize;
        let conns: Vec<u32> = std::mem::take(&mut self.viewers[vi].conns);
        for c in conns {
            let conn = &mut self.conns[c as usize];
            if conn.closed {
                continue;
            }
            conn.closed = true;
            let to_b = conn.a == v;
            let owd = conn.owd_us;
            let other = if to_b { conn.b } else { conn.a };
            let told = conn.ok[usize::from(to_b)] || conn.open;
            if told && self.viewers[other as usize].alive {
                self.push(now + owd, Ev::Closed { c, to_b });
            }
        }
        for t in self.tracker.iter_mut() {
            t.remove(v);
        }
        let vw = &mut self.viewers[vi];
        if let Some(since) = vw.pl.stalled_since.take() {
            vw.stall_us += now.saturating_sub(since);
        }
        if let Some(e) = vw.engine.take() {
            vw.final_stats = Some(e.stats());
        }
        vw.alive = false;
        vw.leave_us = Some(now);
        let http: Vec<(HttpId, u64)> = std::mem::take(&mut vw.http);
        for (_, x) in http {
            self.xfers.remove(&x);
        }
        if let Some(Pending {
            direct: Some(x), ..
        }) = self.viewers[vi].pl.pending.take()
        {
            self.xfers.remove(&x);
        }
    }
}
