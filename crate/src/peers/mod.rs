//! Peer sessions, measurements, scoring, upload slots and bans.
