//! Source choice for each download: wait, peers (ranked holders, chunk plan) or HTTP;
//! urgent segments, the join wait, pacing against the deadline, giving up on stalled
//! peers, and prefetch from peers. `scheduler::{picker, live_edge}` hold the pure math.

use super::*;

impl Engine {
    /// Something changed that may change a plan: schedule before this input returns.
    pub(super) fn reschedule(&mut self) {
        self.schedule_pending = true;
    }

    /// Runs the scheduling an input or timeout asked for, once.
    pub(super) fn schedule_if_pending(&mut self, now: Instant) {
        if std::mem::take(&mut self.schedule_pending) {
            self.schedule_all(now);
        }
    }

    fn schedule_all(&mut self, now: Instant) {
        let keys: Vec<SegmentKey> = self.downloads.keys().copied().collect();
        for key in keys {
            self.plan_download(now, key);
        }
        self.prefetch(now);
        self.pump_uploads(now);
        self.pump_spot_check(now);
    }

    /// Peers that can serve `key` now, best first, with the request windows each may
    /// still take for it.
    pub(super) fn holders(&self, now: Instant, key: SegmentKey) -> Vec<picker::Holder> {
        let mut out: Vec<picker::Holder> = self.unranked_holders(now, key).collect();
        picker::rank(&mut out);
        out
    }

    /// Whether any peer can serve `key` now (`holders` non-empty, without ranking them).
    pub(super) fn has_holder(&self, now: Instant, key: SegmentKey) -> bool {
        self.unranked_holders(now, key).next().is_some()
    }

    pub(super) fn unranked_holders(
        &self,
        now: Instant,
        key: SegmentKey,
    ) -> impl Iterator<Item = picker::Holder> + '_ {
        let known = self.swarms.contains_key(&key.swarm);
        let d = self.downloads.get(&key);
        // The swarm's sessions are its `conns`; one pass over the map beats a lookup each.
        self.peers
            .values()
            .filter(move |s| known && s.swarm == key.swarm && s.can_request(now))
            .filter_map(move |s| {
                let complete = s.holds_complete(key.seq)?;
                let busy =
                    d.map_or(0, |d| d.p2p.iter().filter(|(c, _)| *c == s.conn).count()) as u32;
                let slots = MAX_DOWN_REQUESTS
                    .saturating_sub(s.down_reqs())
                    .min(picker::WINDOWS_PER_HOLDER.saturating_sub(busy));
                (slots > 0).then(|| picker::Holder {
                    conn: s.conn,
                    score: s.score(),
                    complete,
                    slots,
                })
            })
    }

    /// The fewest hops of the `Incoming`s that connected peers of `key`'s swarm announced
    /// for `key`, if any did.
    pub(super) fn incoming_from_peers(&self, key: SegmentKey) -> Option<u8> {
        let s = self.swarms.get(&key.swarm)?;
        s.conns
            .iter()
            .filter_map(|c| self.peers.get(c))
            .filter(|p| p.state == PeerState::Ready)
            .filter_map(|p| p.incoming_hops(key.seq))
            .min()
    }

    /// We wait for a peer's `Incoming` copy of `key`: tell our own peers it is coming, one
    /// hop further, so that they wait for ours rather than fetch it from the CDN.
    pub(super) fn relay_incoming(&mut self, key: SegmentKey) {
        if let Some(h) = self.incoming_from_peers(key) {
            if h < wire::MAX_INCOMING_HOPS && self.sharing() {
                self.announce_incoming(key, h + 1);
            }
        }
    }

    /// A peer withdrew its `Incoming` for `key` (`Lost`): a wait that counted on it is
    /// planned afresh, and our own `Incoming` that relayed it is withdrawn.
    pub(super) fn incoming_withdrawn(&mut self, key: SegmentKey) {
        if self.incoming_from_peers(key).is_some() {
            return;
        }
        if let Some(d) = self
            .downloads
            .get_mut(&key)
            .filter(|d| d.http.is_none() && d.p2p.is_empty())
        {
            d.wait_until = None;
            self.withdraw_incoming(key);
            self.reschedule();
        }
    }

    /// Hands missing chunks to `holders` (one probe chunk to the best one while the size is
    /// unknown). Returns whether anything was requested.
    pub(super) fn assign(
        &mut self,
        now: Instant,
        key: SegmentKey,
        holders: &[picker::Holder],
    ) -> bool {
        if holders.is_empty() {
            return false;
        }
        if let Some(size) = holders.iter().find_map(|h| self.holder_size(key, h.conn)) {
            if let Some(d) = self.downloads.get_mut(&key).filter(|d| d.size.is_none()) {
                d.set_size(size);
            }
        }
        let Some(d) = self.downloads.get(&key) else {
            return false;
        };
        let plan = if d.size.is_none() {
            // Only a Bitfield told us it is there: one chunk tells us its size.
            if d.p2p.is_empty() {
                vec![picker::Assignment {
                    conn: holders[0].conn,
                    first: 0,
                    count: 1,
                }]
            } else {
                Vec::new()
            }
        } else {
            picker::plan_chunks(&d.missing_runs(), holders)
        };
        self.apply_plan(now, key, &plan);
        if let Some(d) = self.downloads.get_mut(&key) {
            d.wait_until = None;
        }
        if !plan.is_empty() && self.sharing() {
            self.announce_incoming(key, 1);
        }
        !plan.is_empty()
    }

    pub(super) fn holder_size(&self, key: SegmentKey, conn: ConnId) -> Option<u64> {
        self.peers.get(&conn)?.holds(key.seq)?.size.map(u64::from)
    }

    /// Plans one download and applies the plan.
    pub(super) fn plan_download(&mut self, now: Instant, key: SegmentKey) {
        let step = self.plan(now, key);
        self.apply_step(now, key, step);
    }

    /// The next step for one download, from the engine's state as it is: reads only (the
    /// live-edge draw is left to `apply_step`, which owns the random source).
    pub(super) fn plan(&self, now: Instant, key: SegmentKey) -> Step {
        let Some(d) = self.downloads.get(&key) else {
            return Step::Nothing;
        };
        if d.is_complete() {
            return Step::Nothing;
        }
        if d.http.is_some() {
            return Step::RaceHttp;
        }
        let wanted = !d.reqs.is_empty();
        // With a signing key, only segments the verified manifest lists may come from peers.
        let vouched = self.config.integrity_public_key.is_none()
            || self.manifest_entry(&d.url, d.range).is_some();
        let p2p = self.config.p2p_enabled && self.swarms.contains_key(&key.swarm) && vouched;
        if !p2p || d.force_http {
            return if wanted {
                Step::Http { cancel_p2p: true }
            } else if d.p2p.is_empty() {
                Step::Drop
            } else {
                Step::Nothing
            };
        }
        let deadline = self.deadline_ms(now, key);
        let urgent = self.is_urgent(deadline);
        let backing_off = d.avoid_http_until.is_some_and(|t| now < t);
        let avoid_http = backing_off || self.cdn.prefers_peers(now);
        if wanted && urgent && avoid_http {
            // The CDN failed or stalled on it: every free holder, whatever the P2P limit.
            let holders = self.holders(now, key);
            if !holders.is_empty() {
                return Step::Assign(holders);
            }
            if !d.p2p.is_empty() {
                // Peers are on it already, and none could take more.
                return Step::Nothing;
            }
        }
        if wanted && d.http_failures > 0 && backing_off && d.p2p.is_empty() {
            // Its HTTP transfer failed: wait for a holder (or the back-off) rather than
            // hammer the CDN.
            return Step::Nothing;
        }
        if wanted && urgent {
            if !d.p2p.is_empty() && self.is_on_pace(now, key, deadline) {
                // Peers will make it: keep them busy with the rest.
                if d.fully_asked() {
                    return Step::Nothing;
                }
                return Step::Assign(self.holders(now, key));
            }
            if d.p2p.is_empty() && d.http_failures == 0 && !avoid_http {
                if let Some(holders) = self.urgent_holders(now, key, deadline) {
                    return Step::Assign(holders);
                }
                let wait = self.urgent_join_wait(now, key, deadline);
                if wait > 0 {
                    return Step::Wait(now + ms(wait));
                }
            }
            return Step::Http { cancel_p2p: true };
        }
        if d.fully_asked() {
            // Peers are fetching every chunk left: nothing to plan.
            return Step::Nothing;
        }
        let holders = self.holders(now, key);
        if !holders.is_empty() {
            if d.p2p.is_empty() && self.p2p_active() >= self.config.max_p2p {
                return Step::Nothing;
            }
            return Step::Assign(holders);
        }
        if !d.p2p.is_empty() {
            return Step::Nothing;
        }
        if !wanted {
            return Step::Drop;
        }
        match d.wait_until {
            None => {
                let candidates = self.ready_conns(key.swarm).len();
                // Peers are coming if connecting, or counted by the tracker (unknown until it
                // answers). The first viewer of a swarm hears 0 and must not hold back its own
                // buffer.
                let since_join = self.swarms.get(&key.swarm).and_then(|s| {
                    let expected = s.tracker_peers.is_none_or(|n| n > 0)
                        || s.conns.iter().any(|c| {
                            self.peers
                                .get(c)
                                .is_some_and(|x| x.state != PeerState::Ready)
                        });
                    s.joined_at
                        .filter(|_| expected)
                        .map(|t| now.as_millis().saturating_sub(t.as_millis()))
                });
                Step::Fetch(live_edge::fetch_delay(
                    avoid_http,
                    candidates,
                    self.incoming_from_peers(key).is_some(),
                    since_join,
                    deadline,
                    self.config.live_edge_delay_max_ms,
                    self.config.urgent_window_ms,
                ))
            }
            Some(t) if now >= t => {
                // A peer announced it on its way since the wait began: wait for its `Have`.
                let wait = if avoid_http || self.incoming_from_peers(key).is_none() {
                    0
                } else {
                    live_edge::incoming_wait(self.config.urgent_window_ms, deadline)
                };
                if wait > 0 {
                    Step::Wait(now + ms(wait))
                } else if self.http.len() < self.config.max_http {
                    Step::Http { cancel_p2p: false }
                } else {
                    Step::Nothing
                }
            }
            Some(_) => Step::Nothing,
        }
    }

    /// Carries out a download's planned step.
    pub(super) fn apply_step(&mut self, now: Instant, key: SegmentKey, step: Step) {
        match step {
            Step::Nothing => {}
            Step::RaceHttp => self.race_http(now, key),
            Step::Http { cancel_p2p } => {
                if cancel_p2p {
                    self.cancel_p2p(key);
                }
                self.start_http(now, key);
            }
            Step::Drop => self.drop_download(key),
            Step::Assign(holders) => {
                self.assign(now, key, &holders);
            }
            Step::Wait(until) => {
                if let Some(d) = self.downloads.get_mut(&key) {
                    d.wait_until = Some(until);
                }
                self.relay_incoming(key);
            }
            Step::Fetch(delay) => {
                let delay = match delay {
                    live_edge::FetchDelay::Wait(ms) => ms,
                    live_edge::FetchDelay::Draw(cap) => {
                        let bitrate = self.swarms.get(&key.swarm).map_or(0, |s| s.bitrate);
                        let cap = live_edge::relay_scaled_cap(
                            cap,
                            u64::from(bitrate),
                            self.config.upload_bytes_per_sec,
                        );
                        live_edge::draw(cap, self.rng.next_u64())
                    }
                };
                if delay == 0 {
                    self.start_http(now, key);
                } else {
                    self.apply_step(now, key, Step::Wait(now + ms(delay)));
                }
            }
        }
    }

    /// Time an urgent segment keeps in hand for HTTP when peers are tried first
    /// (`urgent::http_reserve_ms`).
    pub(super) fn http_reserve_ms(&self) -> Option<i64> {
        urgent::http_reserve_ms(self.cdn.last_transfer_ms())
    }

    /// The segment's size as known (from its transfer, else from `holder`'s announcement),
    /// else at the playlist's nominal bitrate.
    pub(super) fn size_estimate(&self, key: SegmentKey, holder: Option<ConnId>) -> Option<u64> {
        self.downloads
            .get(&key)
            .and_then(|d| d.size)
            .or_else(|| holder.and_then(|c| self.holder_size(key, c)))
            .or_else(|| self.nominal_size(key))
    }

    /// The complete holders an urgent segment may be asked of: the best can deliver it
    /// with the HTTP reserve to spare (the pace check hands it to HTTP if they fall behind).
    pub(super) fn urgent_holders(
        &self,
        now: Instant,
        key: SegmentKey,
        deadline: Option<i64>,
    ) -> Option<Vec<picker::Holder>> {
        let (Some(deadline), Some(reserve)) = (deadline, self.http_reserve_ms()) else {
            return None;
        };
        let holders: Vec<picker::Holder> = self
            .holders(now, key)
            .into_iter()
            .filter(|h| h.complete)
            .collect();
        let best = holders.first()?;
        // A Bitfield does not say sizes: then the playlist's bitrate tells roughly.
        let size = self.size_estimate(key, Some(best.conn))?;
        let rate = self.peers.get(&best.conn).map_or(0.0, |s| {
            s.throughput.get_or(crate::peers::scoring::THROUGHPUT_PRIOR)
        });
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        urgent::peer_makes_it(size, rate, playback, reserve, deadline).then_some(holders)
    }

    /// The segment's size at the playlist's nominal bitrate, if both are known.
    pub(super) fn nominal_size(&self, key: SegmentKey) -> Option<u64> {
        let swarm = self.swarms.get(&key.swarm)?;
        let dur = swarm.segment(key.seq)?.duration_ms as u64;
        (swarm.bitrate > 0 && dur > 0).then(|| swarm.bitrate as u64 * dur / 8_000)
    }

    /// How long a joining viewer may hold an urgent segment for the peers it expects (the
    /// tracker counted some or did not answer yet, or sessions are connecting): while its
    /// join window is open and a peer could still deliver with the HTTP reserve to spare.
    /// 0: fetch it now.
    pub(super) fn urgent_join_wait(
        &self,
        now: Instant,
        key: SegmentKey,
        deadline: Option<i64>,
    ) -> u64 {
        let (Some(deadline), Some(reserve)) = (deadline, self.http_reserve_ms()) else {
            return 0;
        };
        let Some(swarm) = self.swarms.get(&key.swarm) else {
            return 0;
        };
        // Peers still to come: connecting, or ready but not yet told us what they hold
        // (their Bitfield follows the handshake).
        let connecting = swarm.conns.iter().any(|c| {
            self.peers
                .get(c)
                .is_some_and(|x| x.state != PeerState::Ready || !x.announced_any())
        });
        let heard = swarm
            .conns
            .iter()
            .filter(|c| {
                self.peers
                    .get(c)
                    .is_some_and(|x| x.state == PeerState::Ready && x.announced_any())
            })
            .count();
        // Not heard from the tracker yet (a rendition the player just switched to): its
        // answer comes within a round trip, and a count of 0 ends the wait.
        let counted = swarm.tracker_peers.is_none_or(|n| n as usize > heard);
        let since_join = swarm
            .joined_at
            .map(|t| now.as_millis().saturating_sub(t.as_millis()));
        // Leave a peer time to deliver: what the segment takes at the throughput prior.
        let size = self.size_estimate(key, None).unwrap_or(CHUNK * 32);
        urgent::join_hold_ms(
            connecting || counted,
            since_join,
            live_edge::JOIN_WAIT_MS,
            size,
            crate::peers::scoring::THROUGHPUT_PRIOR,
            reserve,
            deadline,
        )
    }

    /// The CDN stalled on an urgent segment: ask every free holder for the missing chunks,
    /// whatever the P2P download limit. False if no peer is (or can be) fetching it.
    pub(super) fn p2p_rescue(&mut self, now: Instant, key: SegmentKey) -> bool {
        let holders = self.holders(now, key);
        self.assign(now, key, &holders);
        self.downloads.get(&key).is_some_and(|d| !d.p2p.is_empty())
    }

    /// Whether the peers delivering `key` will finish before its deadline.
    pub(super) fn is_on_pace(&self, now: Instant, key: SegmentKey, deadline: Option<i64>) -> bool {
        let (Some(d), Some(deadline)) = (self.downloads.get(&key), deadline) else {
            return false;
        };
        let Some(size) = d.size else {
            // A probe for the size (the holder announced it in a Bitfield): on pace while
            // it is young enough to answer.
            return d.p2p.iter().any(|(c, id)| {
                self.p2p_reqs.get(*c, *id).is_some_and(|r| {
                    now.as_millis().saturating_sub(r.started.as_millis())
                        <= urgent::URGENT_FIRST_BYTE_MS
                })
            });
        };
        let remaining = size.saturating_sub(d.got_bytes) as f64;
        let mut rate = 0.0;
        for (conn, id) in &d.p2p {
            let Some(r) = self.p2p_reqs.get(*conn, *id) else {
                continue;
            };
            let elapsed = now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
            rate += if r.bytes > 0 {
                r.bytes as f64 * 1000.0 / elapsed
            } else {
                self.peers.get(conn).map_or(0.0, |s| {
                    s.throughput.get_or(crate::peers::scoring::THROUGHPUT_PRIOR)
                })
            };
        }
        let playback = self.playhead.map_or(1.0, |p| p.rate.max(0.1));
        // Keep in hand what HTTP would need to take over.
        let takeover = urgent::http_takeover_ms(self.cdn.last_transfer_ms()).unwrap_or(0);
        urgent::on_pace(remaining, rate, playback, takeover, deadline)
    }

    pub(super) fn apply_plan(
        &mut self,
        now: Instant,
        key: SegmentKey,
        plan: &[picker::Assignment],
    ) {
        for a in plan {
            let end = a.first.saturating_add(a.count);
            let id = self.p2p_reqs.issue(a.conn, key, a.first, end, now);
            self.send(
                a.conn,
                &Message::Request {
                    id,
                    seq: key.seq,
                    first_chunk: a.first,
                    count: a.count,
                },
            );
            if let Some(s) = self.peers.get_mut(&a.conn) {
                s.request_sent();
            }
            if let Some(d) = self.downloads.get_mut(&key) {
                d.p2p.push((a.conn, id));
                d.transfer_start.get_or_insert(now);
                let hi = (end as usize).min(d.slots.len());
                for slot in d.slots.iter_mut().take(hi).skip(a.first as usize) {
                    if *slot == Slot::Missing {
                        *slot = Slot::Asked(a.conn);
                    }
                }
            }
        }
    }

    /// Cancels every P2P request of a download (no strike: we chose to stop).
    pub(super) fn cancel_p2p(&mut self, key: SegmentKey) {
        let reqs = match self.downloads.get_mut(&key) {
            Some(d) => std::mem::take(&mut d.p2p),
            None => return,
        };
        for (conn, id) in reqs {
            self.release_p2p(conn, id);
            self.send(conn, &Message::Cancel { id });
        }
    }

    /// Forgets one outgoing request: its asked chunks become missing.
    pub(super) fn release_p2p(&mut self, conn: ConnId, id: u32) -> Option<P2pReq> {
        let r = self.p2p_reqs.remove(conn, id)?;
        if let Some(s) = self.peers.get_mut(&conn) {
            s.request_released(id);
        }
        if let Some(d) = self.downloads.get_mut(&r.key) {
            d.p2p.retain(|x| *x != (conn, id));
            let hi = (r.end as usize).min(d.slots.len());
            for slot in d.slots.iter_mut().take(hi).skip(r.first as usize) {
                if *slot == Slot::Asked(conn) {
                    *slot = Slot::Missing;
                }
            }
        }
        Some(r)
    }

    /// Gives up on a peer's request (stall or slow): cancel and back off. A peer that sent
    /// nothing at all for the whole period (`stalled`) also gets a stall mark (lower score,
    /// longer back-off); slowness never strikes (see `peers` module header).
    pub(super) fn abandon_p2p(&mut self, now: Instant, conn: ConnId, id: u32, stalled: bool) {
        let Some(r) = self.release_p2p(conn, id) else {
            return;
        };
        self.send(conn, &Message::Cancel { id });
        let stall = self.config.peer_stall_timeout_ms;
        if let Some(s) = self.peers.get_mut(&conn) {
            let elapsed = now.as_millis().saturating_sub(r.started.as_millis()).max(1) as f64;
            s.gave_up(now, r.bytes, elapsed, stalled, stall);
        }
    }

    /// Fetches segments ahead of the player's latest request from peers only.
    pub(super) fn prefetch(&mut self, now: Instant) {
        if !self.config.p2p_enabled {
            return;
        }
        let Some(ph) = self.playhead else {
            return;
        };
        let mut budget = self.config.max_p2p.saturating_sub(self.p2p_active());
        if budget == 0 {
            return;
        }
        // The player waits for an urgent segment: peers' uplinks are for that one first.
        if self.downloads.iter().any(|(k, d)| {
            !d.reqs.is_empty() && !d.is_complete() && self.is_urgent(self.deadline_ms(now, *k))
        }) {
            return;
        }
        let Some(swarm) = self.swarms.get(&ph.swarm) else {
            return;
        };
        if swarm.conns.is_empty() {
            return;
        }
        let pos = ph.position(now).max(0.0) as u64;
        let horizon = pos.saturating_add(self.config.prefetch_window_ms);
        let from = match swarm.max_requested {
            Some(m) => swarm.segments.partition_point(|s| s.seq <= m),
            None => swarm
                .segments
                .partition_point(|s| s.start_ms.saturating_add(s.duration_ms as u64) <= pos),
        };
        // Segments the player holds already (in another rendition, after a switch: this
        // swarm's own requests lag behind) are not fetched again.
        let buffered_end = ph
            .position_ms
            .saturating_add(ph.buffered_ahead_ms)
            .saturating_add(BUFFERED_SLACK_MS);
        let held = swarm
            .segments
            .partition_point(|s| s.start_ms.saturating_add(s.duration_ms as u64) <= buffered_end);
        let from = if ph.buffered_ahead_ms > 0 {
            from.max(held)
        } else {
            from
        };
        let mut picks = Vec::new();
        for seg in swarm.segments.iter().skip(from).take(PREFETCH_SCAN) {
            if seg.start_ms > horizon || budget == 0 {
                break;
            }
            let key = SegmentKey {
                swarm: ph.swarm,
                seq: seg.seq,
            };
            if self.downloads.contains_key(&key) || self.store.contains(&key) {
                continue;
            }
            if !self.has_holder(now, key) {
                continue;
            }
            picks.push((key, seg.url.clone(), seg.range));
            budget -= 1;
        }
        // Live: segments past the playlist's end that peers announced (our next playlist
        // refresh will list them) are fetched from peers too, so that a new segment spreads
        // through the mesh as fast as transfers allow rather than with each viewer's refresh.
        // Only by viewers that share (the point is to pass it on early; a viewer that does
        // not would only take upload slots from those that do), and only without integrity
        // checks that need the segment's URL (a manifest vouches by URL); the URL is filled
        // in when the playlist or the player names the segment.
        if swarm.live
            && budget > 0
            && self.sharing()
            && self.config.integrity_public_key.is_none()
            && self.manifest.is_none()
        {
            if let Some(last) = swarm.segments.last() {
                let step = u64::from(last.duration_ms.max(1));
                for ahead in 1..=PEER_LEARNED_AHEAD {
                    let start = last.start_ms.saturating_add(step * ahead);
                    if start > horizon || budget == 0 {
                        break;
                    }
                    let key = SegmentKey {
                        swarm: ph.swarm,
                        seq: last.seq.saturating_add(ahead),
                    };
                    if self.downloads.contains_key(&key)
                        || self.store.contains(&key)
                        || !self.has_holder(now, key)
                    {
                        continue;
                    }
                    picks.push((key, String::new(), None));
                    budget -= 1;
                }
            }
        }
        for (key, url, range) in picks {
            let d = self.new_download(key, url, range);
            self.downloads.insert(key, d);
            self.plan_download(now, key);
        }
    }

    /// Downloads of segments learned from peers before the playlist listed them have no URL
    /// yet: take it (and the host's shared copy) from the playlist once it lists them.
    pub(super) fn learn_urls(&mut self, swarm: SwarmId) {
        let Some(s) = self.swarms.get(&swarm) else {
            return;
        };
        let named: Vec<(SegmentKey, String, Option<ByteRange>)> = self
            .unnamed
            .keys()
            .filter(|k| k.swarm == swarm)
            .filter_map(|k| s.segment(k.seq).map(|seg| (*k, seg.url.clone(), seg.range)))
            .collect();
        let mut found = Vec::new();
        for (key, d) in self.downloads.range(
            SegmentKey { swarm, seq: 0 }..=SegmentKey {
                swarm,
                seq: Seq::MAX,
            },
        ) {
            if d.url.is_empty() {
                if let Some(seg) = s.segment(key.seq) {
                    found.push((*key, seg.url.clone(), seg.range));
                }
            }
        }
        for (key, url, range) in named {
            self.spot_offer_named(key, &url, range);
        }
        for (key, url, range) in found {
            self.name_download(key, url, range);
        }
    }

    /// Gives a download learned from peers ahead of the playlist its URL (from the playlist
    /// or the player's request), and the host's shared copy of those bytes.
    pub(super) fn name_download(&mut self, key: SegmentKey, url: String, range: Option<ByteRange>) {
        let shared = self.shared_copies.as_ref().and_then(|f| f(&url, range));
        if let Some(d) = self.downloads.get_mut(&key) {
            d.url = url;
            d.range = range;
            if d.shared.is_none() {
                d.shared = shared;
            }
        }
    }

    /// Live-edge collision: we started fetching `key` from the CDN, but a peer announced it
    /// before our first byte arrived (so before we announced it ourselves). Nobody can be
    /// relying on our copy yet: cancel the transfer and take the peer's, saving the CDN
    /// the whole body. Urgent segments keep their HTTP transfer.
    pub(super) fn yield_untouched_http(&mut self, now: Instant, key: SegmentKey) {
        if self.downloads.get(&key).is_none_or(|d| d.http.is_none())
            || self.is_urgent(self.deadline_ms(now, key))
        {
            return;
        }
        let Some(d) = self.downloads.get_mut(&key) else {
            return;
        };
        let Some(id) = d.http else {
            return;
        };
        let untouched = self
            .http
            .get(&id)
            .is_some_and(|x| x.full && x.received == 0);
        if !untouched || d.announced || d.got_bytes > 0 || d.force_http {
            return;
        }
        d.http = None;
        d.http_chunks = (0, 0);
        self.http.remove(&id);
        self.out.push_back(Output::CancelHttp { id });
    }

    /// `Timer::PeerStall`: requests to peers that made no progress for
    /// `peer_stall_timeout_ms` are given up (their chunks go elsewhere).
    pub(super) fn abandon_stalled_peer_requests(&mut self, now: Instant) {
        let stall = ms(self.config.peer_stall_timeout_ms);
        for (conn, id) in self.p2p_reqs.stalled(now, stall) {
            self.abandon_p2p(now, conn, id, true);
        }
    }

    /// `Timer::Schedule`: when a download's plan may change without an input.
    pub(super) fn next_schedule(&self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        let urgent = self.config.urgent_window_ms.min(i64::MAX as u64) as i64;
        let rate = self.playhead.map_or(1.0, |p| p.rate);
        // Deadlines only shrink once `now` passes the playhead report's time (a host clock
        // that stepped back freezes them), so count the wait from whichever is later:
        // otherwise the engine would wake every millisecond and find nothing urgent.
        let base = self.playhead.map_or(now, |p| p.at.max(now));
        for (key, d) in &self.downloads {
            // A wait that is over but still set found every HTTP slot busy: the transfer
            // that frees one reschedules (`on_http_done`/`failed`/stall), so waking now
            // would only spin.
            if let Some(t) = d.wait_until.filter(|t| *t > now) {
                at(t);
            }
            if let Some(t) = d.avoid_http_until.filter(|t| *t > now) {
                at(t);
            }
            if d.reqs.is_empty() || d.http.is_some() {
                continue;
            }
            match self.deadline_ms(now, *key) {
                Some(dl) if dl >= urgent && rate > 0.0 => {
                    let wall = ((dl - urgent) as f64 / rate).ceil() as u64 + 1;
                    at(base + ms(wall));
                }
                Some(dl) if dl >= urgent => {}
                _ if !d.p2p.is_empty() => at(now + ms(PACE_CHECK_MS)),
                _ => {}
            }
        }
        wake
    }
}
