//! The CDN model: per-viewer bandwidth, outages and throttling, HTTP transfers in pieces.

use super::*;

impl World<'_> {
    /// The failing outage hitting viewer `v` now (a throttle is not a failure).
    pub(super) fn outage(&self, v: u32) -> Option<OutageKind> {
        self.active_outage(v, false).map(|o| o.kind)
    }

    pub(super) fn active_outage(&self, v: u32, throttle: bool) -> Option<&Outage> {
        let t = self.now as f64 / SEC as f64;
        let vw = &self.viewers[v as usize];
        self.sc.cdn.outages.iter().enumerate().find_map(|(i, o)| {
            (t >= o.from_s
                && t < o.from_s + o.duration_s
                && self.outage_hits(i, vw)
                && (o.kind == OutageKind::Throttle) == throttle)
                .then_some(o)
        })
    }

    /// The viewer's CDN throughput now, simulated bytes/s.
    pub(super) fn cdn_bps(&self, v: u32) -> f64 {
        let base = self.viewers[v as usize].cdn_bps;
        match self.active_outage(v, true) {
            Some(o) => base.min(scale_bps(o.mbps, self.sc.byte_scale)),
            None => base,
        }
    }

    pub(super) fn start_xfer(
        &mut self,
        v: u32,
        owner: Owner,
        rend: usize,
        seq: u64,
        range: Option<ByteRange>,
    ) -> u64 {
        let x = self.next_xfer;
        self.next_xfer += 1;
        let data = self.media.bytes(rend, seq);
        let (pos, end) = match range {
            Some(r) => (
                (r.start as usize).min(data.len()),
                (r.end as usize).min(data.len()),
            ),
            None => (0, data.len()),
        };
        let ttfb = {
            let vw = &mut self.viewers[v as usize];
            vw.rng.range_u64(vw.ttfb_us.0, vw.ttfb_us.1)
        };
        self.xfers.insert(
            x,
            Xfer {
                v,
                owner,
                rend,
                seq,
                data,
                pos,
                end,
                first: true,
                last: self.now + ttfb,
            },
        );
        let served = self.media.served(seq, self.now / MS);
        match (served, self.outage(v)) {
            (false, _) => self.push(self.now + ttfb, Ev::HttpFail { x, status: 404 }),
            (true, Some(OutageKind::Error)) => {
                self.push(self.now + ttfb, Ev::HttpFail { x, status: 503 })
            }
            (true, Some(OutageKind::Stall)) => {
                let to = self.sc.player.http_timeout_ms * MS;
                self.push(self.now + to, Ev::HttpFail { x, status: 0 })
            }
            (true, None | Some(OutageKind::Throttle)) => self.schedule_piece(x),
        }
        x
    }

    pub(super) fn schedule_piece(&mut self, x: u64) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let n = (t.end - t.pos).min(HTTP_PIECE);
        let cdn_bps = self.cdn_bps(t.v);
        let vw = &mut self.viewers[t.v as usize];
        let server = t.last + tx_us(n, cdn_bps);
        let arrive = server.max(vw.down_busy.max(self.now) + tx_us(n, vw.down_bps));
        vw.down_busy = arrive;
        self.push(arrive, Ev::HttpPiece(x));
    }

    pub(super) fn http_piece(&mut self, x: u64) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let v = t.v;
        if !self.viewers[v as usize].alive {
            self.xfers.remove(&x);
            return;
        }
        if let Some(kind) = self.outage(v) {
            let (at, status) = match kind {
                OutageKind::Error | OutageKind::Throttle => (self.now, 0),
                OutageKind::Stall => (self.now + self.sc.player.http_timeout_ms * MS, 0),
            };
            self.push(at, Ev::HttpFail { x, status });
            return;
        }
        let Some(t) = self.xfers.get_mut(&x) else {
            return;
        };
        let n = (t.end - t.pos).min(HTTP_PIECE);
        let piece = t
            .data
            .get(t.pos..t.pos + n)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let total = t.first.then_some((t.end - t.pos) as u64);
        t.first = false;
        t.pos += n;
        t.last = self.now;
        let done = t.pos >= t.end;
        let owner = t.owner;
        self.account_cdn(v, n as u64);
        match owner {
            Owner::Engine(id) => {
                self.input(
                    v,
                    Input::HttpProgress {
                        id,
                        data: piece,
                        total,
                    },
                );
                if done {
                    self.forget_http(v, id, x);
                    self.input(v, Input::HttpDone { id });
                } else if self.xfers.contains_key(&x) {
                    self.schedule_piece(x);
                }
            }
            Owner::Player(req) => {
                if done {
                    self.xfers.remove(&x);
                    self.on_delivered(v, req, None, None);
                } else {
                    self.schedule_piece(x);
                }
            }
        }
    }

    pub(super) fn forget_http(&mut self, v: u32, id: HttpId, x: u64) {
        self.xfers.remove(&x);
        let vw = &mut self.viewers[v as usize];
        if let Some(i) = vw.http.iter().position(|(h, _)| *h == id) {
            vw.http.swap_remove(i);
        }
    }

    pub(super) fn http_fail(&mut self, x: u64, status: u16) {
        let Some(t) = self.xfers.get(&x) else {
            return;
        };
        let (v, owner) = (t.v, t.owner);
        match owner {
            Owner::Engine(id) => {
                self.forget_http(v, id, x);
                self.input(
                    v,
                    Input::HttpFailed {
                        id,
                        status,
                        reason: "simulated CDN failure".into(),
                    },
                );
            }
            Owner::Player(_) => {
                self.xfers.remove(&x);
                let retry = self.sc.player.retry_ms * MS;
                let p = &mut self.viewers[v as usize];
                if p.alive {
                    p.pl.pending = None;
                    self.push(self.now + retry, Ev::PlayerRetry(v));
                }
            }
        }
    }

    pub(super) fn account_cdn(&mut self, v: u32, n: u64) {
        self.totals.cdn_bytes += n;
        self.sample_cdn += n;
        self.viewers[v as usize].cdn_bytes += n;
        let s = (self.now / SEC) as usize;
        if let Some(b) = self.cdn_per_s.get_mut(s) {
            *b += n;
        }
    }
}
