//! Fake WebTorrent tracker: remembers who announced which swarm and, on each announce,
//! introduces the announcer to up to `numwant` other members (the offers it would relay).
//!
//! Invariants: a viewer is never introduced to itself, nor to a viewer it already has an
//! open connection with; `Stopped` removes the announcer from the swarm.

use super::media::splitmix64;
use super::net::Net;
use shoal::{AnnounceEvent, SwarmId};
use std::collections::BTreeMap;

pub struct Tracker {
    pub members: BTreeMap<SwarmId, Vec<usize>>,
    pub delay_ms: u64,
    /// Announces received per viewer.
    pub announces: Vec<u32>,
}

impl Tracker {
    pub fn new(viewers: usize, delay_ms: u64) -> Self {
        Tracker {
            members: BTreeMap::new(),
            delay_ms,
            announces: vec![0; viewers],
        }
    }

    /// Forgets a viewer that left without saying so.
    pub fn remove(&mut self, viewer: usize) {
        for m in self.members.values_mut() {
            m.retain(|&v| v != viewer);
        }
    }

    /// Handles an announce and returns whom to introduce the announcer to.
    /// Viewers in `swarm` other than `viewer` (what a tracker's announce answer counts).
    pub fn others(&self, swarm: SwarmId, viewer: usize) -> u32 {
        self.members
            .get(&swarm)
            .map_or(0, |m| m.iter().filter(|&&v| v != viewer).count() as u32)
    }

    pub fn announce(
        &mut self,
        viewer: usize,
        swarm: SwarmId,
        event: AnnounceEvent,
        numwant: u32,
        net: &Net,
        rng: &mut u64,
    ) -> Vec<usize> {
        self.announces[viewer] += 1;
        let members = self.members.entry(swarm).or_default();
        if event == AnnounceEvent::Stopped {
            members.retain(|&m| m != viewer);
            return Vec::new();
        }
        let mut others: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&m| m != viewer && !net.linked(viewer, m))
            .collect();
        if !members.contains(&viewer) {
            members.push(viewer);
        }
        // Fisher-Yates with the harness's seeded generator.
        for i in (1..others.len()).rev() {
            let j = (splitmix64(rng) % (i as u64 + 1)) as usize;
            others.swap(i, j);
        }
        others.truncate(numwant as usize);
        others
    }
}
