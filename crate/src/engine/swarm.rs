//! Swarms the viewer is in: the playlist's segment list, joining and leaving, the P2P and
//! upload policy, and the periodic tracker announce.

use super::*;

pub(super) struct Swarm {
    pub(super) container: Container,
    /// Sorted by seq, as last listed.
    pub(super) segments: Vec<SegmentInfo>,
    pub(super) conns: Vec<ConnId>,
    pub(super) next_announce: Option<Instant>,
    pub(super) max_requested: Option<Seq>,
    /// When this viewer last announced `Started` in the swarm (its peers are being connected).
    pub(super) joined_at: Option<Instant>,
    /// Other viewers in the swarm by the tracker's last count (`None`: not heard yet).
    pub(super) tracker_peers: Option<u32>,
    /// Nominal bitrate from the playlist, bit/s (0 = unknown).
    pub(super) bitrate: u32,
    /// The playlist is live (segments appear at its end).
    pub(super) live: bool,
}

impl Swarm {
    pub(super) fn segment(&self, seq: Seq) -> Option<&SegmentInfo> {
        let i = self.segments.partition_point(|s| s.seq < seq);
        self.segments.get(i).filter(|s| s.seq == seq)
    }
    pub(super) fn seq_at(&self, position_ms: u64) -> Option<Seq> {
        let i = self.segments.partition_point(|s| s.start_ms <= position_ms);
        i.checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map(|s| s.seq)
    }
}

impl Engine {
    /// Forgets a swarm the host no longer needs: `Stopped` to the tracker, its connections
    /// closed (pending ones too), its downloads dropped (player requests fail open). The
    /// segments it cached stay until evicted, so the player can still be served from them.
    pub(super) fn leave_swarm(&mut self, swarm: SwarmId) {
        if !self.swarms.contains_key(&swarm) {
            return;
        }
        // Downloads first, while the sessions exist: peers get `Cancel` / `Lost`.
        let keys: Vec<SegmentKey> = self
            .downloads
            .range(
                SegmentKey { swarm, seq: 0 }..=SegmentKey {
                    swarm,
                    seq: Seq::MAX,
                },
            )
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.drop_download(key);
        }
        let conns: Vec<ConnId> = self
            .peers
            .values()
            .filter(|s| s.swarm == swarm)
            .map(|s| s.conn)
            .collect();
        for conn in conns {
            self.out.push_back(Output::ClosePeer {
                conn,
                reason: CloseReason::SwarmLeft,
            });
            self.remove_session(conn);
        }
        self.swarms.remove(&swarm);
        if self.config.p2p_enabled {
            self.out.push_back(Self::stopped_output(swarm));
        }
        self.reschedule();
    }

    pub(super) fn set_policy(&mut self, now: Instant, p2p: bool, upload: u64) {
        let was = self.config.p2p_enabled;
        self.config.p2p_enabled = p2p;
        if upload != self.config.upload_bytes_per_sec {
            self.config.upload_bytes_per_sec = upload;
            self.uploads.set_rate(upload, now);
        }
        if was && !p2p {
            let conns: Vec<ConnId> = self.peers.keys().copied().collect();
            for conn in conns {
                self.out.push_back(Output::ClosePeer {
                    conn,
                    reason: CloseReason::P2pDisabled,
                });
                self.remove_session(conn);
            }
            let swarms: Vec<SwarmId> = self.swarms.keys().copied().collect();
            for swarm in swarms {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.next_announce = None;
                }
                self.out.push_back(Self::stopped_output(swarm));
            }
            self.forget_announcements();
        } else if !was && p2p {
            let interval = ms(self.config.announce_interval_ms.max(1_000));
            let swarms: Vec<SwarmId> = self.swarms.keys().copied().collect();
            for swarm in swarms {
                if let Some(s) = self.swarms.get_mut(&swarm) {
                    s.next_announce = Some(now + interval);
                    s.joined_at = Some(now);
                }
                self.announce(now, swarm, AnnounceEvent::Started);
            }
        }
        if !self.sharing() {
            // Stop serving: every queued upload is answered Busy.
            let mut ended = Vec::new();
            for s in self.peers.values_mut() {
                for u in std::mem::take(&mut s.up) {
                    ended.push((s.conn, u));
                }
            }
            self.uploads.clear();
            for (conn, u) in ended {
                if u.pinned {
                    self.store.unpin(&u.key);
                }
                self.send(
                    conn,
                    &Message::Busy {
                        id: u.id,
                        retry_after_ms: u16::MAX,
                    },
                );
            }
        }
        self.reschedule();
    }

    pub(super) fn ready_conns(&self, swarm: SwarmId) -> Vec<ConnId> {
        self.swarms
            .get(&swarm)
            .map(|s| {
                s.conns
                    .iter()
                    .copied()
                    .filter(|c| {
                        self.peers
                            .get(c)
                            .is_some_and(|s| s.state == PeerState::Ready)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn on_playlist(
        &mut self,
        now: Instant,
        swarm: SwarmId,
        live: bool,
        container: Container,
        mut segments: Vec<SegmentInfo>,
    ) {
        segments.sort_by_key(|s| s.seq);
        segments.dedup_by_key(|s| s.seq);
        let is_new = !self.swarms.contains_key(&swarm);
        if is_new {
            let next_announce = self
                .config
                .p2p_enabled
                .then(|| now + ms(self.config.announce_interval_ms.max(1_000)));
            self.swarms.insert(
                swarm,
                Swarm {
                    container,
                    segments: Vec::new(),
                    conns: Vec::new(),
                    next_announce,
                    max_requested: None,
                    joined_at: self.config.p2p_enabled.then_some(now),
                    tracker_peers: None,
                    bitrate: 0,
                    live,
                },
            );
            if self.config.p2p_enabled {
                self.announce(now, swarm, AnnounceEvent::Started);
            }
        }
        let min_seq = segments.first().map(|s| s.seq);
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.container = container;
            s.segments = segments;
            s.live = live;
        }
        self.learn_urls(swarm);
        if live {
            if let Some(min_seq) = min_seq {
                self.store.set_window_start(swarm, min_seq);
                // What peers announced below the window is of no use any more (and with
                // `Lost` sent only where needed, would otherwise pile up to the cap).
                for s in self.peers.values_mut().filter(|s| s.swarm == swarm) {
                    s.forget_below(min_seq);
                }
                let stale: Vec<SegmentKey> = self
                    .downloads
                    .range(
                        SegmentKey { swarm, seq: 0 }..SegmentKey {
                            swarm,
                            seq: min_seq,
                        },
                    )
                    .filter(|(_, d)| d.reqs.is_empty())
                    .map(|(k, _)| *k)
                    .collect();
                for key in stale {
                    self.drop_download(key);
                }
            }
        }
        self.reschedule();
    }

    /// `Timer::Announce`: the periodic tracker announce of every swarm that is due.
    pub(super) fn announce_due(&mut self, now: Instant) {
        if !self.config.p2p_enabled {
            return;
        }
        let interval = ms(self.config.announce_interval_ms.max(1_000));
        let mut announces = Vec::new();
        for (id, s) in self.swarms.iter_mut() {
            if let Some(t) = s.next_announce {
                if now >= t {
                    s.next_announce = Some(now + interval);
                    if s.conns.len() < self.config.max_peers {
                        // Each wanted peer costs the host an offer (a peer connection and
                        // its ICE gathering): ask only for viewers the tracker counted that
                        // we are not connected to. Newcomers offer to us.
                        let unmet = s.tracker_peers.map_or(u32::MAX, |n| {
                            n.saturating_sub(s.conns.len().min(u32::MAX as usize) as u32)
                        });
                        announces.push((*id, self.config.announce_numwant.min(unmet)));
                    }
                }
            }
        }
        for (swarm, numwant) in announces {
            let out = self.announce_output(now, swarm, AnnounceEvent::Update, numwant);
            self.out.push_back(out);
        }
    }
}
