//! The peer protocol: candidates and handshakes, message dispatch, announcements from peers,
//! and discipline (strikes, bans, removing a session).

use super::*;

impl Engine {
    pub(super) fn on_candidate(
        &mut self,
        now: Instant,
        conn: ConnId,
        swarm: SwarmId,
        peer: PeerId,
        inbound: bool,
    ) {
        let reason = if !self.config.p2p_enabled {
            Some(CloseReason::P2pDisabled)
        } else if self.peers.contains_key(&conn) {
            Some(CloseReason::Duplicate)
        } else if self.peers.is_banned(&peer) {
            Some(CloseReason::Banned)
        } else if peer == self.our_id {
            Some(CloseReason::Rejected)
        } else {
            match self.swarms.get(&swarm) {
                None => Some(CloseReason::Rejected),
                Some(s)
                    if s.conns
                        .iter()
                        .any(|c| self.peers.get(c).is_some_and(|x| x.peer == peer)) =>
                {
                    Some(CloseReason::Duplicate)
                }
                Some(s) if s.conns.len() >= self.config.max_peers => {
                    Some(CloseReason::TooManyPeers)
                }
                Some(_) => None,
            }
        };
        if let Some(reason) = reason {
            self.out.push_back(Output::ClosePeer { conn, reason });
            return;
        }
        self.peers
            .insert(Session::new(conn, swarm, peer, inbound, now));
        if let Some(s) = self.swarms.get_mut(&swarm) {
            s.conns.push(conn);
        }
        self.out.push_back(Output::ConnectPeer { conn });
    }

    pub(super) fn on_connected(&mut self, _now: Instant, conn: ConnId) {
        let Some(s) = self.peers.get_mut(&conn) else {
            self.warn(format!("connected for unknown conn {}", conn.0));
            return;
        };
        if s.state != PeerState::Connecting {
            return;
        }
        s.opened();
        let swarm = s.swarm;
        let capabilities = if self.sharing() {
            wire::CAP_UPLOAD | wire::CAP_PARTIAL | wire::CAP_INCOMING
        } else {
            0
        };
        let hs = Message::Handshake {
            version: PROTOCOL_VERSION,
            swarm,
            peer: self.our_id,
            capabilities,
        };
        self.send(conn, &hs);
        if self.sharing() {
            let (base, bits) = self.store.bitfield(swarm, MAX_BITFIELD_BYTES);
            if bits.iter().any(|b| *b != 0) {
                let told = self.store.seqs(swarm);
                if let Some(s) = self.peers.get_mut(&conn) {
                    for seq in told.into_iter().filter(|q| *q >= base) {
                        s.note_told(seq);
                    }
                }
                self.send(conn, &Message::Bitfield { base, bits });
            }
            let downloading: Vec<(Seq, u32)> = self
                .downloads
                .range(
                    SegmentKey { swarm, seq: 0 }..=SegmentKey {
                        swarm,
                        seq: Seq::MAX,
                    },
                )
                .filter(|(_, d)| d.announced)
                .filter_map(|(k, d)| d.size.map(|s| (k.seq, s as u32)))
                .collect();
            for (seq, size) in downloading {
                if let Some(s) = self.peers.get_mut(&conn) {
                    s.note_told(seq);
                }
                self.send(conn, &Message::Downloading { seq, size });
            }
        }
    }

    /// Counts a message against the peer's rate limit: its session's state, or `None` if
    /// there is no session or the peer was just banned for exceeding the limit.
    pub(super) fn admit_message(&mut self, now: Instant, conn: ConnId) -> Option<PeerState> {
        let s = self.peers.get_mut(&conn)?;
        if !s.count_message(now) {
            self.ban(conn, BanReason::LimitExceeded);
            self.reschedule();
            return None;
        }
        Some(s.state)
    }

    pub(super) fn on_data_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        state: PeerState,
        d: wire::DataRef<'_>,
        src: Option<Src<'_>>,
    ) {
        if state == PeerState::Ready {
            self.on_data(now, conn, d, src);
        } else {
            self.strike_and_replan(conn);
        }
    }

    /// `Input::PeerData`: exactly `on_peer_message` of the frame's bytes, without joining
    /// them.
    pub(super) fn on_peer_data(&mut self, now: Instant, conn: ConnId, f: &DataFrame) {
        match wire::decode_data_parts(&f.head, f.payload()) {
            Some(Ok(d)) => {
                if let Some(state) = self.admit_message(now, conn) {
                    self.on_data_message(now, conn, state, d, Some((&f.data, f.start)));
                }
            }
            _ => self.on_peer_message(now, conn, &f.to_vec()),
        }
    }

    pub(super) fn on_peer_message(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(mut state) = self.admit_message(now, conn) else {
            return;
        };
        // `Data`, the bulk of the traffic, is read in place rather than copied out.
        let decoded = match wire::decode_data(bytes) {
            Some(Ok(d)) => {
                self.on_data_message(now, conn, state, d, None);
                return;
            }
            Some(Err(e)) => Err(e),
            None => wire::decode(bytes),
        };
        let msg = match decoded {
            Ok(m) => m,
            Err(_) => {
                // A correct implementation never emits a malformed message.
                self.ban(conn, BanReason::ProtocolViolation);
                self.reschedule();
                return;
            }
        };
        if state == PeerState::Connecting && matches!(msg, Message::Handshake { .. }) {
            // The remote's first message can beat our channel-open event.
            self.on_connected(now, conn);
            state = PeerState::Open;
        }
        match (state, msg) {
            (
                PeerState::Open,
                Message::Handshake {
                    version,
                    swarm,
                    peer,
                    capabilities,
                },
            ) => {
                let ok = self
                    .peers
                    .get(&conn)
                    .is_some_and(|s| s.swarm == swarm && s.peer == peer);
                // Version negotiation: v1 speaks v1 to any peer announcing >= 1.
                if version < PROTOCOL_VERSION || !ok {
                    self.out.push_back(Output::ClosePeer {
                        conn,
                        reason: CloseReason::Rejected,
                    });
                    self.remove_session(conn);
                    return;
                }
                if let Some(s) = self.peers.ready(conn, now) {
                    s.set_capabilities(capabilities);
                    let (swarm, peer) = (s.swarm, s.peer);
                    self.event(Event::PeerJoined { swarm, peer });
                }
                self.reschedule();
            }
            (PeerState::Ready, Message::Bitfield { base, bits }) => {
                if let Some(s) = self.peers.get_mut(&conn) {
                    s.announce_bits(base, &bits);
                }
                self.reschedule();
            }
            (PeerState::Ready, Message::Have { seq, size }) => {
                self.on_announce(now, conn, seq, size, true)
            }
            (PeerState::Ready, Message::Downloading { seq, size }) => {
                self.on_announce(now, conn, seq, size, false)
            }
            (PeerState::Ready, Message::Lost { seq }) => {
                if let Some(s) = self.peers.get_mut(&conn) {
                    let waited = s.incoming_hops(seq).is_some();
                    let key = SegmentKey {
                        swarm: s.swarm,
                        seq,
                    };
                    s.forget(seq);
                    if waited {
                        self.incoming_withdrawn(key);
                    }
                }
            }
            (PeerState::Ready, Message::Incoming { seq, hops }) => {
                if let Some(s) = self.peers.get_mut(&conn) {
                    s.announce_incoming(seq, hops);
                }
                self.reschedule();
            }
            (
                PeerState::Ready,
                Message::Request {
                    id,
                    seq,
                    first_chunk,
                    count,
                },
            ) => self.on_up_request(now, conn, id, seq, first_chunk, count),
            (PeerState::Ready, Message::Cancel { id }) => {
                let mut unpin = None;
                if let Some(s) = self.peers.get_mut(&conn) {
                    if let Some(i) = s.up.iter().position(|u| u.id == id) {
                        let u = s.up.remove(i);
                        if u.pinned {
                            unpin = Some(u.key);
                        }
                    }
                }
                if let Some(k) = unpin {
                    self.store.unpin(&k);
                }
            }
            (
                PeerState::Ready,
                Message::Data {
                    id,
                    chunk,
                    total_size,
                    payload,
                },
            ) => self.on_data(
                now,
                conn,
                wire::DataRef {
                    id,
                    chunk,
                    total_size,
                    payload: &payload,
                },
                None,
            ),
            (PeerState::Ready, Message::Absent { id }) => {
                let key = self.p2p_reqs.get(conn, id).map(|r| r.key);
                if let Some(key) = key {
                    self.release_p2p(conn, id);
                    let lying = self
                        .peers
                        .get_mut(&conn)
                        .is_some_and(|s| s.forget(key.seq) && s.absent_after_announce());
                    if lying {
                        self.strike(conn);
                    }
                    self.reschedule();
                }
            }
            (PeerState::Ready, Message::Busy { id, retry_after_ms }) => {
                if self.release_p2p(conn, id).is_some() {
                    if let Some(s) = self.peers.get_mut(&conn) {
                        s.busy(now, retry_after_ms);
                    }
                    self.reschedule();
                }
            }
            (_, Message::Ping { nonce }) => self.send(conn, &Message::Pong { nonce }),
            (_, Message::Pong { nonce }) => {
                let asked = self
                    .peers
                    .get_mut(&conn)
                    .is_some_and(|s| s.pong(nonce, now));
                if !asked {
                    self.strike_and_replan(conn);
                }
            }
            _ => self.strike_and_replan(conn),
        }
    }

    pub(super) fn on_announce(
        &mut self,
        now: Instant,
        conn: ConnId,
        seq: Seq,
        size: u32,
        complete: bool,
    ) {
        if size == 0 || size > MAX_SEGMENT_SIZE {
            self.strike_and_replan(conn);
            return;
        }
        let Some(s) = self.peers.get_mut(&conn) else {
            return;
        };
        s.announce(
            seq,
            Avail {
                size: Some(size),
                complete,
            },
        );
        let key = SegmentKey {
            swarm: s.swarm,
            seq,
        };
        self.yield_untouched_http(now, key);
        self.reschedule();
    }

    pub(super) fn strike_and_replan(&mut self, conn: ConnId) {
        if self.strike(conn) {
            self.reschedule();
        }
    }

    /// Adds a strike; bans at `strikes_to_ban`. Returns true if the peer was banned.
    pub(super) fn strike(&mut self, conn: ConnId) -> bool {
        let limit = self.config.strikes_to_ban.max(1);
        let Some(s) = self.peers.get_mut(&conn) else {
            return false;
        };
        if s.add_strike() >= limit {
            self.ban(conn, BanReason::TooManyStrikes);
            return true;
        }
        false
    }

    pub(super) fn ban(&mut self, conn: ConnId, reason: BanReason) {
        let Some(s) = self.peers.get(&conn) else {
            return;
        };
        let (swarm, peer) = (s.swarm, s.peer);
        if self.peers.ban(peer) {
            self.tally.peer_banned();
        }
        self.event(Event::PeerBanned {
            swarm,
            peer,
            reason,
        });
        self.out.push_back(Output::ClosePeer {
            conn,
            reason: CloseReason::Banned,
        });
        self.remove_session(conn);
    }

    pub(super) fn remove_session(&mut self, conn: ConnId) {
        let Some(s) = self.peers.remove(&conn) else {
            return;
        };
        if let Some(sw) = self.swarms.get_mut(&s.swarm) {
            sw.conns.retain(|c| *c != conn);
        }
        for id in self.p2p_reqs.of_conn(conn) {
            self.release_p2p(conn, id);
        }
        for u in &s.up {
            if u.pinned {
                self.store.unpin(&u.key);
            }
        }
        self.uploads.forget(conn);
        if s.state == PeerState::Ready {
            self.event(Event::PeerLeft {
                swarm: s.swarm,
                peer: s.peer,
            });
        }
    }

    /// `Timer::Ping`: probes the sessions that are due (`Peers::due_pings`).
    pub(super) fn ping_due(&mut self, now: Instant) {
        for (conn, nonce) in self.peers.due_pings(now) {
            self.send(conn, &Message::Ping { nonce });
        }
    }
}
