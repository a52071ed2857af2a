//! Every deadline the engine keeps, by name (quinn-proto's `TimerTable`, str0m's `Reason`).
//!
//! The table is re-armed from the engine's state at the end of every input and timeout
//! (`Engine::arm_timers`), so `poll_timeout` is a lookup and `handle_timeout` acts on the
//! timers that expired, in the order of [`Timer::VALUES`].

use crate::types::Instant;

/// Why the engine wants to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// A request to a peer made no progress for `peer_stall_timeout_ms`: give its chunks up.
    PeerStall,
    /// An HTTP transfer brought nothing for `CDN_SLOW_MS`: the CDN may be in trouble.
    CdnSlow,
    /// An HTTP transfer brought nothing for `peer_stall_timeout_ms`: let peers take over.
    HttpStall,
    /// A swarm's next tracker announce is due.
    Announce,
    /// A session is due for a `Ping`.
    Ping,
    /// The upload budget has refilled for the next chunk.
    Upload,
    /// A download's wait or HTTP avoidance ends, its deadline enters the urgent window, or
    /// its peers' pace needs a check: schedule again.
    Schedule,
    /// The start hold (`Config::start_hold_ms`) ends: announce with offers.
    StartHold,
    /// A pending request's player limit brings its segment into the urgent window.
    PlayerLimit,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` acts on them.
    pub(crate) const VALUES: [Timer; 9] = [
        Timer::PeerStall,
        Timer::CdnSlow,
        Timer::HttpStall,
        Timer::Announce,
        Timer::Ping,
        Timer::Upload,
        Timer::Schedule,
        Timer::StartHold,
        Timer::PlayerLimit,
    ];
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::VALUES.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer as usize] = at;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at[timer as usize]
    }

    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| now >= t)
    }

    /// The earliest deadline and its reason.
    pub(crate) fn next(&self) -> Option<(Timer, Instant)> {
        Timer::VALUES
            .iter()
            .filter_map(|&t| self.get(t).map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.next().map(|(_, at)| at)
    }
}

/// The earliest of `deadlines`.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Instant>) -> Option<Instant> {
    deadlines.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_timeout_is_the_earliest_armed_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Ping, Some(Instant::from_millis(900)));
        t.set(Timer::CdnSlow, Some(Instant::from_millis(300)));
        t.set(Timer::Schedule, Some(Instant::from_millis(500)));
        assert_eq!(t.next(), Some((Timer::CdnSlow, Instant::from_millis(300))));
        assert!(t.is_expired(Timer::CdnSlow, Instant::from_millis(300)));
        assert!(!t.is_expired(Timer::Schedule, Instant::from_millis(300)));
        t.set(Timer::CdnSlow, None);
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(500)));
        assert!(!t.is_expired(Timer::CdnSlow, Instant::from_millis(10_000)));
    }
}
