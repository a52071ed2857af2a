//! The viewer's peers: one [`Session`] per connection, the peers banned for good, and the
//! liveness probes (`Ping`) that measure RTT.
//!
//! Invariants: a banned peer id stays banned for the engine's life (it is refused on every
//! later connection); sessions are ordered by connection id, so a walk over them is
//! deterministic; a Ready session is probed once per `PING_INTERVAL_MS`, and a Ping still
//! unanswered is replaced only after `PING_REPLACE_MS`.

use crate::peers::{PeerState, Session};
use crate::types::{ConnId, Instant, PeerId};
use std::collections::{btree_map, BTreeMap, BTreeSet};
use std::time::Duration;

/// RTT probes per session. Only the score uses the RTT (the browser's ICE consent checks
/// keep the connection alive), so a slow probe rate is enough and keeps idle swarms quiet:
/// one at the handshake, then one a minute (at 15 s, Ping/Pong were a third of all messages
/// in a steady live swarm).
pub const PING_INTERVAL_MS: u64 = 60_000;
/// A Ping still unanswered after this long is replaced; before that a new Ping is not sent,
/// so a Pong queued behind a busy uplink still matches and is never taken for a violation.
pub const PING_REPLACE_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub struct Peers {
    sessions: BTreeMap<ConnId, Session>,
    banned: BTreeSet<PeerId>,
    next_nonce: u32,
    /// No Ready session is due for a Ping before this (a lower bound, tightened by
    /// `due_pings`), so the engine's timer need not walk the sessions after every input.
    ping_at: Option<Instant>,
}

impl Peers {
    pub fn new() -> Self {
        Peers {
            next_nonce: 1,
            ..Peers::default()
        }
    }

    pub fn get(&self, conn: &ConnId) -> Option<&Session> {
        self.sessions.get(conn)
    }

    pub fn get_mut(&mut self, conn: &ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(conn)
    }

    pub fn contains_key(&self, conn: &ConnId) -> bool {
        self.sessions.contains_key(conn)
    }

    pub fn insert(&mut self, session: Session) {
        self.sessions.insert(session.conn, session);
    }

    pub fn remove(&mut self, conn: &ConnId) -> Option<Session> {
        self.sessions.remove(conn)
    }

    pub fn keys(&self) -> btree_map::Keys<'_, ConnId, Session> {
        self.sessions.keys()
    }

    pub fn values(&self) -> btree_map::Values<'_, ConnId, Session> {
        self.sessions.values()
    }

    pub fn values_mut(&mut self) -> btree_map::ValuesMut<'_, ConnId, Session> {
        self.sessions.values_mut()
    }

    /// The sessions themselves, for a pass that serves them in turn (`Uploads::pump`).
    pub fn sessions_mut(&mut self) -> &mut BTreeMap<ConnId, Session> {
        &mut self.sessions
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains(peer)
    }

    /// Bans `peer` for good. True if it was not banned yet.
    pub fn ban(&mut self, peer: PeerId) -> bool {
        self.banned.insert(peer)
    }

    /// `conn` completed its handshake at `now`: probe it at once.
    pub fn ready(&mut self, conn: ConnId, now: Instant) -> Option<&mut Session> {
        let s = self.sessions.get_mut(&conn)?;
        s.state = PeerState::Ready;
        s.next_ping = now;
        self.ping_at = Some(self.ping_at.map_or(now, |t| t.min(now)));
        Some(s)
    }

    /// When the next probe may be due.
    pub fn ping_at(&self) -> Option<Instant> {
        self.ping_at
    }

    /// The probes to send now, as `(conn, nonce)`. Once one session is due, every session
    /// due within half an interval is probed too: N peers cost one wake per half interval,
    /// not N.
    pub fn due_pings(&mut self, now: Instant) -> Vec<(ConnId, u32)> {
        let ms = Duration::from_millis;
        let mut pings = Vec::new();
        let horizon = now + ms(PING_INTERVAL_MS / 2);
        let mut next: Option<Instant> = None;
        for s in self.sessions.values_mut() {
            if s.state != PeerState::Ready {
                continue;
            }
            if s.next_ping <= horizon {
                s.next_ping = now + ms(PING_INTERVAL_MS);
                let waiting = s
                    .ping
                    .is_some_and(|(_, sent)| now < sent + ms(PING_REPLACE_MS));
                if !waiting {
                    let nonce = self.next_nonce;
                    self.next_nonce = self.next_nonce.wrapping_add(1);
                    s.ping = Some((nonce, now));
                    pings.push((s.conn, nonce));
                }
            }
            next = Some(next.map_or(s.next_ping, |t| t.min(s.next_ping)));
        }
        self.ping_at = next;
        pings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SwarmId;

    #[test]
    fn a_ready_session_is_probed_at_once_then_once_per_interval_and_bans_stay() {
        let t = Instant::from_millis;
        let mut p = Peers::new();
        p.insert(Session::new(
            ConnId(1),
            SwarmId([1; 20]),
            PeerId([2; 20]),
            false,
            t(0),
        ));
        assert!(p.due_pings(t(0)).is_empty(), "not Ready: no probe");
        assert!(p.ready(ConnId(1), t(10)).is_some());
        assert_eq!(p.ping_at(), Some(t(10)));
        assert_eq!(p.due_pings(t(10)), vec![(ConnId(1), 1)]);
        assert_eq!(p.ping_at(), Some(t(10 + PING_INTERVAL_MS)));
        assert!(
            p.due_pings(t(20)).is_empty(),
            "not due again before the interval"
        );
        assert!(p.ban(PeerId([2; 20])));
        assert!(!p.ban(PeerId([2; 20])), "banned once");
        p.remove(&ConnId(1));
        assert!(p.is_banned(&PeerId([2; 20])), "a ban outlives the session");
    }
}
