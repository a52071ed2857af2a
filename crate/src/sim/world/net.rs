//! The peer network and the tracker: offers and answers, connections, messages on the wire
//! with their transmission time.

use super::*;

impl World<'_> {
    pub(super) fn tracker_reply(&mut self, v: u32, r: u16, numwant: u32) {
        if !self.viewers[v as usize].alive {
            return;
        }
        let n = numwant.min(50) as usize;
        let picks = self.tracker[r as usize].pick(v, n, &mut self.rng);
        for p in picks {
            if !self.viewers[p as usize].alive {
                continue;
            }
            let c = self.conns.len() as u32;
            let (va, vb) = (&self.viewers[v as usize], &self.viewers[p as usize]);
            let blocked = (va.nat && vb.nat) || self.rng.chance(self.sc.tracker.connect_fail);
            let (owd_us, cross) = self.path(va, vb);
            let (pa, pb) = (va.peer, vb.peer);
            self.conns.push(Conn {
                a: v,
                b: p,
                ok: [false; 2],
                open: false,
                closed: false,
                owd_us,
                last_arrival: [0; 2],
                blocked,
                cross,
            });
            self.viewers[v as usize].conns.push(c);
            self.viewers[p as usize].conns.push(c);
            let swarm = self.swarms[r as usize];
            self.input(
                p,
                Input::PeerCandidate {
                    conn: ConnId(c),
                    swarm,
                    peer: pa,
                    inbound: true,
                },
            );
            if self.conns[c as usize].closed {
                continue;
            }
            self.input(
                v,
                Input::PeerCandidate {
                    conn: ConnId(c),
                    swarm,
                    peer: pb,
                    inbound: false,
                },
            );
        }
    }

    /// One-way delay between two viewers, and their networks if the path crosses from one
    /// to another.
    fn path(&self, va: &Viewer, vb: &Viewer) -> (u64, Option<(u16, u16)>) {
        let access = va.lat_us + vb.lat_us;
        match (va.net, vb.net) {
            (Some(x), Some(y)) if x == y => {
                (access + self.sc.networks[x as usize].latency_ms * MS, None)
            }
            (Some(x), Some(y)) => {
                let nets = &self.sc.networks;
                let inter = nets[x as usize].inter_latency_ms + nets[y as usize].inter_latency_ms;
                (access + inter * MS, Some((x, y)))
            }
            _ => (access, None),
        }
    }

    pub(super) fn conn_answer(&mut self, v: u32, c: u32, yes: bool) {
        let Some(conn) = self.conns.get_mut(c as usize) else {
            return;
        };
        if conn.closed {
            return;
        }
        let side_b = conn.b == v;
        if !yes {
            conn.closed = true;
            let other_told = conn.ok[usize::from(!side_b)] || conn.open;
            let owd = conn.owd_us;
            if other_told {
                self.push(self.now + owd, Ev::Closed { c, to_b: !side_b });
            }
            return;
        }
        conn.ok[usize::from(side_b)] = true;
        if conn.ok[0] && conn.ok[1] {
            let rtt = 2 * conn.owd_us;
            if conn.blocked {
                let t = self.sc.tracker.connect_timeout_ms * MS;
                self.push(self.now + t, Ev::ConnFail(c));
            } else {
                let t = self.sc.tracker.connect_ms * MS + 2 * rtt;
                self.push(self.now + t, Ev::ConnOpen(c));
            }
        }
    }

    pub(super) fn conn_open(&mut self, c: u32) {
        let conn = &mut self.conns[c as usize];
        if conn.closed {
            return;
        }
        conn.open = true;
        let (a, b) = (conn.a, conn.b);
        self.input(a, Input::PeerConnected { conn: ConnId(c) });
        if !self.conns[c as usize].closed {
            self.input(b, Input::PeerConnected { conn: ConnId(c) });
        }
    }

    pub(super) fn send_msg(&mut self, v: u32, c: u32, mut frame: Frame) {
        let Some(conn) = self.conns.get(c as usize) else {
            return;
        };
        if conn.closed {
            return;
        }
        if !conn.open {
            self.violation(format!(
                "t={}ms viewer {v}: send on conn {c} before it opened",
                self.now / MS
            ));
            return;
        }
        let to_b = conn.a == v;
        let to = if to_b { conn.b } else { conn.a };
        let owd = conn.owd_us;
        match self.viewers[v as usize].role {
            Role::Corrupter | Role::StealthCorrupter if frame.kind() == Some(kind::DATA) => {
                let stealth = self.viewers[v as usize].role == Role::StealthCorrupter;
                let mut data = frame.into_vec();
                tamper(&mut data, stealth);
                frame = Frame::Bytes(data);
            }
            _ => {}
        }
        let len = frame.len() + MSG_OVERHEAD;
        let now = self.now;
        let sender = &mut self.viewers[v as usize];
        let dep = sender.up_busy.max(now) + tx_us(len, sender.up_bps);
        sender.up_busy = dep;
        // The receiver's downlink is booked for this message's transmission time from now,
        // not until its arrival: a message held back by a slow (or flooding) sender's uplink
        // must not keep the receiver's link busy for other senders meanwhile.
        let recv = &mut self.viewers[to as usize];
        recv.down_busy = recv.down_busy.max(now) + tx_us(len, recv.down_bps);
        let mut arrive = (dep + owd).max(recv.down_busy);
        let dir = usize::from(to_b);
        // Between networks the message is also booked on the sender's network link out and
        // the receiver's network link in (each a shared "busy until", booked from now like
        // the receiver's downlink).
        if let Some((na, nb)) = self.conns[c as usize].cross {
            let (from, into) = if to_b { (na, nb) } else { (nb, na) };
            for (n, out) in [(from, true), (into, false)] {
                let link = &mut self.nets[n as usize];
                let busy = if out {
                    &mut link.out_busy
                } else {
                    &mut link.in_busy
                };
                *busy = (*busy).max(now) + tx_us(len, link.bps);
                arrive = arrive.max(*busy);
            }
        }
        let conn = &mut self.conns[c as usize];
        arrive = arrive.max(conn.last_arrival[dir]);
        conn.last_arrival[dir] = arrive;
        self.push(arrive, Ev::Msg { c, to_b, frame });
    }

    pub(super) fn deliver_msg(&mut self, c: u32, to_b: bool, frame: Frame) {
        let conn = &self.conns[c as usize];
        if conn.closed {
            return;
        }
        let to = if to_b { conn.b } else { conn.a };
        if self.trace == Some(to) {
            let text = match &frame {
                Frame::Bytes(b) => describe(b),
                Frame::Data(f) => describe(&f.to_vec()),
            };
            self.log(to, &format!("recv c{c} {text}"));
        }
        if let Some(k) = frame.kind() {
            *self.totals.msg_kinds.entry(k).or_insert(0) += 1;
            if k == kind::DATA {
                let n = frame.len().saturating_sub(DATA_HEADER_LEN) as u64;
                self.totals.p2p_wire_bytes += n;
                self.sample_p2p += n;
                let cross = conn.cross.is_some();
                let vw = &mut self.viewers[to as usize];
                vw.p2p_in += n;
                if cross {
                    vw.p2p_in_cross += n;
                    self.totals.p2p_cross_bytes += n;
                }
            }
        }
        let conn = ConnId(c);
        let input = match frame {
            Frame::Bytes(data) => Input::PeerMessage { conn, data },
            Frame::Data(frame) => Input::PeerData { conn, frame },
        };
        self.input(to, input);
    }

    /// Viewer `v`'s connections that are open and not closed.
    pub(super) fn open_conns(&self, v: u32) -> Vec<u32> {
        self.viewers[v as usize]
            .conns
            .iter()
            .copied()
            .filter(|&c| self.is_live_conn(c))
            .collect()
    }

    pub(super) fn is_live_conn(&self, c: u32) -> bool {
        self.conns[c as usize].open && !self.conns[c as usize].closed
    }
}
