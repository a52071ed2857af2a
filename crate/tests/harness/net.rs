//! Fake network between engines, and the adversaries that sit on a viewer's uplink.
//!
//! Invariants: a connection exists once the tracker introduced both sides; it opens only
//! after both engines said `ConnectPeer`, and closes for good when either side closes it
//! (the other side then gets exactly one `PeerClosed`, after every message already in
//! flight to it). Messages on one direction of a connection arrive in order; each message
//! occupies the sender's uplink for `len / bandwidth`, so a busy uplink delays everything
//! behind it.

use shoal::wire::{self, Message};
use shoal::{ConnId, Seq};
use std::collections::HashMap;

/// How a viewer treats the bytes its (honest) engine sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    Honest,
    /// From `from_ms` on, inverts every payload byte of the `Data` messages it sends:
    /// well-formed messages with wrong content.
    Corrupter {
        from_ms: u64,
    },
    /// From `from_ms` on, flips one bit inside a TS packet (never a sync byte) of every
    /// `Data` message: structurally perfect, caught only by hashes.
    SubtleCorrupter {
        from_ms: u64,
    },
    /// From `from_ms` on, lets `pass_chunks` `Data` messages of each request through and
    /// silently drops the rest: it stops sending mid-segment while staying connected.
    Staller {
        from_ms: u64,
        pass_chunks: u32,
    },
}

/// What the adversary did, for the tests to check against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tamper {
    pub at_ms: u64,
    pub victim: usize,
    pub seq: Option<Seq>,
}

#[derive(Default)]
pub struct AdversaryLog {
    pub corrupted: Vec<Tamper>,
    pub dropped: Vec<Tamper>,
}

pub struct Link {
    pub viewer: [usize; 2],
    pub conn: [ConnId; 2],
    pub accepted: [bool; 2],
    /// When each side was (or will be) told about the link.
    pub candidate_at: [u64; 2],
    pub connected: bool,
    /// Side has been handed `PeerConnected`: only then may it send.
    pub open_seen: [bool; 2],
    pub open: bool,
    /// Side closed the connection itself: nothing more is delivered to it.
    pub closed_self: [bool; 2],
    /// Side has been (or will be, after what is in flight) handed `PeerClosed`.
    pub told_closed: [bool; 2],
    /// Arrival time of the last message scheduled towards each side.
    pub last_arrival: [u64; 2],
    /// Requests made by each side: wire request id -> segment.
    pub requests: [HashMap<u32, Seq>; 2],
    /// Data messages each side's adversary let through, per request id.
    pub passed: [HashMap<u32, u32>; 2],
    pub created_ms: u64,
}

impl Link {
    pub fn latency(&self, net: &Net) -> u64 {
        net.latency_ms[self.viewer[0]] + net.latency_ms[self.viewer[1]]
    }
}

pub struct Net {
    pub links: Vec<Link>,
    pub by_conn: HashMap<ConnId, (usize, usize)>,
    next_conn: u32,
    /// Per viewer: uplink bytes/s, one-way latency contribution, when the uplink is free (µs).
    pub uplink_bps: Vec<u64>,
    pub latency_ms: Vec<u64>,
    uplink_free_us: Vec<u64>,
    pub behavior: Vec<Behavior>,
    pub log: AdversaryLog,
}

/// A message leaving a viewer, after its adversary (if any) had its way.
pub struct Outgoing {
    pub to: usize,
    pub conn: ConnId,
    pub arrive_ms: u64,
    pub data: Vec<u8>,
    pub payload: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    NoSuchConn,
    NotOpen,
    /// The engine sent before it was told `PeerConnected`.
    BeforeConnected,
    Undecodable(wire::WireError),
}

impl Net {
    pub fn new(uplink_bps: Vec<u64>, latency_ms: Vec<u64>, behavior: Vec<Behavior>) -> Self {
        let n = uplink_bps.len();
        Net {
            links: Vec::new(),
            by_conn: HashMap::new(),
            next_conn: 1,
            uplink_bps,
            latency_ms,
            uplink_free_us: vec![0; n],
            behavior,
            log: AdversaryLog::default(),
        }
    }

    /// Is there a link between `a` and `b` that is still open?
    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.links
            .iter()
            .any(|l| l.open && ((l.viewer == [a, b]) || (l.viewer == [b, a])))
    }

    /// Creates a link; side 0 is the offerer (`a`), side 1 receives the offer.
    pub fn create(&mut self, now_ms: u64, a: usize, b: usize) -> usize {
        let ca = ConnId(self.next_conn);
        let cb = ConnId(self.next_conn + 1);
        self.next_conn += 2;
        let idx = self.links.len();
        self.links.push(Link {
            viewer: [a, b],
            conn: [ca, cb],
            accepted: [false; 2],
            candidate_at: [u64::MAX; 2],
            connected: false,
            open_seen: [false; 2],
            open: true,
            closed_self: [false; 2],
            told_closed: [false; 2],
            last_arrival: [0; 2],
            requests: [HashMap::new(), HashMap::new()],
            passed: [HashMap::new(), HashMap::new()],
            created_ms: now_ms,
        });
        self.by_conn.insert(ca, (idx, 0));
        self.by_conn.insert(cb, (idx, 1));
        idx
    }

    pub fn side(&self, conn: ConnId) -> Option<(usize, usize)> {
        self.by_conn.get(&conn).copied()
    }

    /// Puts one engine message on the wire.
    pub fn send(
        &mut self,
        now_ms: u64,
        jitter_ms: u64,
        conn: ConnId,
        mut data: Vec<u8>,
    ) -> Result<Option<Outgoing>, SendError> {
        let (li, side) = self.side(conn).ok_or(SendError::NoSuchConn)?;
        let other = 1 - side;
        let (from, to, to_conn, open) = {
            let l = &self.links[li];
            (
                l.viewer[side],
                l.viewer[other],
                l.conn[other],
                l.open && l.connected,
            )
        };
        if !open {
            return Err(SendError::NotOpen);
        }
        let msg = wire::decode(&data).map_err(SendError::Undecodable)?;
        let mut payload = 0;
        match msg {
            Message::Request { id, seq, .. } => {
                self.links[li].requests[side].insert(id, seq);
            }
            Message::Data {
                id,
                chunk,
                total_size,
                payload: mut bytes,
            } => {
                let seq = self.links[li].requests[other].get(&id).copied();
                match self.behavior[from] {
                    Behavior::Corrupter { from_ms } if now_ms >= from_ms => {
                        for b in bytes.iter_mut() {
                            *b ^= 0xFF;
                        }
                        data = wire::encode(&Message::Data {
                            id,
                            chunk,
                            total_size,
                            payload: bytes.clone(),
                        });
                        self.log.corrupted.push(Tamper {
                            at_ms: now_ms,
                            victim: to,
                            seq,
                        });
                    }
                    Behavior::SubtleCorrupter { from_ms } if now_ms >= from_ms => {
                        let base = chunk as u64 * wire::CHUNK_SIZE as u64;
                        let at = (1..bytes.len()).find(|p| (base + *p as u64) % 188 > 3);
                        if let Some(p) = at {
                            bytes[p] ^= 0x01;
                            data = wire::encode(&Message::Data {
                                id,
                                chunk,
                                total_size,
                                payload: bytes.clone(),
                            });
                            self.log.corrupted.push(Tamper {
                                at_ms: now_ms,
                                victim: to,
                                seq,
                            });
                        }
                    }
                    Behavior::Staller {
                        from_ms,
                        pass_chunks,
                    } if now_ms >= from_ms => {
                        let n = self.links[li].passed[side].entry(id).or_insert(0);
                        if *n >= pass_chunks {
                            self.log.dropped.push(Tamper {
                                at_ms: now_ms,
                                victim: to,
                                seq,
                            });
                            return Ok(None);
                        }
                        *n += 1;
                    }
                    _ => {}
                }
                payload = bytes.len();
            }
            _ => {}
        }
        let start = self.uplink_free_us[from].max(now_ms * 1000);
        let busy = (data.len() as u64 * 1_000_000).div_ceil(self.uplink_bps[from].max(1));
        self.uplink_free_us[from] = start + busy;
        let latency = self.links[li].latency(self);
        let arrive = (start + busy).div_ceil(1000) + latency + jitter_ms;
        let arrive = arrive.max(self.links[li].last_arrival[other]);
        self.links[li].last_arrival[other] = arrive;
        Ok(Some(Outgoing {
            to,
            conn: to_conn,
            arrive_ms: arrive,
            data,
            payload,
        }))
    }
}
