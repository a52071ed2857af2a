//! Between the simulator and each viewer's engine: inputs in, outputs drained and carried out
//! (HTTP transfers, peer messages, tracker announces, deliveries), the engine's wake kept in the queue.

use super::*;

impl World<'_> {
    pub(super) fn input(&mut self, v: u32, input: Input) {
        let now = Instant(self.now / MS);
        let vw = &mut self.viewers[v as usize];
        if !vw.alive {
            return;
        }
        if let Some(e) = vw.engine.as_mut() {
            e.handle_input(now, input);
        }
        self.drain(v);
    }

    pub(super) fn drain(&mut self, v: u32) {
        let mut outs = std::mem::take(&mut self.scratch);
        {
            let vw = &mut self.viewers[v as usize];
            let Some(e) = vw.engine.as_mut() else {
                self.scratch = outs;
                return;
            };
            while let Some(o) = e.poll_output() {
                outs.push(o);
            }
        }
        for o in outs.drain(..) {
            self.on_output(v, o);
        }
        self.scratch = outs;
        self.sync_wake(v);
    }

    pub(super) fn sync_wake(&mut self, v: u32) {
        let now_ms = self.now / MS;
        let vw = &mut self.viewers[v as usize];
        let Some(t) = vw.engine.as_ref().and_then(|e| e.poll_timeout()) else {
            return;
        };
        // A wake at or before now has just been served: the engine wants to be called
        // again, so give it the next millisecond rather than spin.
        let t = t.as_millis().max(now_ms + 1);
        if vw.wake.is_none_or(|w| t < w || w <= now_ms) {
            vw.wake = Some(t);
            self.push(t * MS, Ev::Wake(v));
        } else if vw.wake != Some(t) {
            // Later than the wake already queued: that one will find a mismatch and be
            // dropped, so queue this one too.
            vw.wake = Some(t);
            self.push(t * MS, Ev::Wake(v));
        }
    }

    pub(super) fn on_output(&mut self, v: u32, o: Output) {
        if self.trace == Some(v) {
            let text = match &o {
                Output::SendToPeer { conn, data } => format!("send c{} {}", conn.0, describe(data)),
                Output::SendData { conn, frame } => {
                    format!("send c{} {}", conn.0, describe(&frame.to_vec()))
                }
                Output::DeliverSegment { req, timing, .. } => {
                    format!("deliver req {} {timing:?}", req.0)
                }
                o => format!("{o:?}"),
            };
            self.log(v, &text);
        }
        match o {
            Output::StartHttp { id, url, range } => {
                let Some((rend, seq)) = Media::parse_url(&url) else {
                    self.violation(format!("viewer {v}: StartHttp for unknown url {url}"));
                    return;
                };
                let dup = self.viewers[v as usize].http.iter().any(|(_, x)| {
                    self.xfers
                        .get(x)
                        .is_some_and(|t| t.rend == rend && t.seq == seq)
                });
                if dup {
                    self.violation(format!(
                        "t={}ms viewer {v}: two HTTP downloads of r{rend}/{seq}",
                        self.now / MS
                    ));
                }
                let x = self.start_xfer(v, Owner::Engine(id), rend, seq, range);
                self.viewers[v as usize].http.push((id, x));
            }
            Output::CancelHttp { id } => {
                let vw = &mut self.viewers[v as usize];
                if let Some(i) = vw.http.iter().position(|(h, _)| *h == id) {
                    let (_, x) = vw.http.swap_remove(i);
                    self.xfers.remove(&x);
                }
            }
            Output::Announce {
                swarm,
                event,
                numwant,
                ..
            } => {
                let Some(r) = self.swarms.iter().position(|s| *s == swarm) else {
                    return;
                };
                match event {
                    AnnounceEvent::Stopped => self.tracker[r].remove(v),
                    _ => {
                        self.tracker[r].add(v);
                        let delay = self.sc.tracker.announce_delay_ms * MS;
                        self.push(
                            self.now + delay,
                            Ev::TrackerReply {
                                v,
                                r: r as u16,
                                numwant,
                            },
                        );
                    }
                }
            }
            Output::ConnectPeer { conn } => self.conn_answer(v, conn.0, true),
            Output::ClosePeer { conn, .. } => self.conn_answer(v, conn.0, false),
            Output::SendToPeer { conn, data } => self.send_msg(v, conn.0, Frame::Bytes(data)),
            Output::SendData { conn, frame } => self.send_msg(v, conn.0, Frame::Data(frame)),
            Output::SegmentProgress { .. } => {}
            Output::DeliverSegment { req, data, timing } => {
                self.on_delivered(v, req.0, Some(&data), Some(&timing))
            }
            Output::FailSegment { req, .. } => {
                self.totals.fail_segments += 1;
                self.on_engine_failed(v, req.0);
            }
            Output::Event(Event::PeerBanned { peer, reason, .. }) => {
                self.totals.bans += 1;
                *self
                    .totals
                    .ban_reasons
                    .entry(format!("{reason:?}"))
                    .or_insert(0) += 1;
                let who = self.peer_index.get(&peer).copied();
                let honest = who.is_some_and(|p| self.viewers[p as usize].role == Role::Honest);
                if honest {
                    self.totals.bans_of_honest += 1;
                } else if let Some(p) = who {
                    self.banned_adversaries.insert(p);
                }
            }
            Output::Event(Event::VerificationFailed { .. }) => {
                self.totals.verification_failures += 1;
            }
            Output::Event(_) => {}
        }
    }
}
