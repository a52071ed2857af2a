use super::*;
use crate::testkit::ts_segment;

proptest::proptest! {
    /// Pieces written in any order, overlapping or not, assemble the same bytes as one
    /// pass, whether the host offered no shared copy (mode 0), an equal one (1: used,
    /// never copied), one differing in a byte (2) or one of another size (3); writes
    /// past the end are refused whole.
    #[test]
    fn assembly_buffer_takes_pieces_in_any_order(
        size in 1u64..5_000,
        cuts in proptest::collection::vec(0u64..5_000, 0..12),
        order in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..12),
        mode in 0u8..4,
        flip in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let truth: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        let mut bounds: Vec<u64> = cuts.into_iter().map(|c| c % size).collect();
        bounds.extend([0, size]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut pieces: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        for ix in order {
            let n = pieces.len();
            pieces.swap(0, ix.index(n));
            // An overlapping rewrite of a neighbour's bytes, as HTTP and peers may do.
            let (a, b) = pieces[0];
            pieces.push((a.saturating_sub(3), b));
        }
        let shared: Option<SegmentBytes> = match mode {
            0 => None,
            1 => Some(Rc::new(truth.clone())),
            2 => {
                let mut other = truth.clone();
                other[flip.index(truth.len())] ^= 0x10;
                Some(Rc::new(other))
            }
            _ => Some(Rc::new(vec![0; size as usize + 1])),
        };
        let mut d = Download::new(String::new(), None, Some(size), shared.clone());
        let mut furthest = 0;
        for (a, b) in pieces {
            proptest::prop_assert!(d.write_at(a, &truth[a as usize..b as usize], None));
            // Whatever was written reads back (relays serve chunks mid-download).
            furthest = furthest.max(b as usize);
            proptest::prop_assert_eq!(d.data.len(), furthest);
            proptest::prop_assert_eq!(d.data.get(a as usize..b as usize), Some(&truth[a as usize..b as usize]));
        }
        proptest::prop_assert!(!d.write_at(size, &[1], None));
        proptest::prop_assert!(!d.write_at(size - 1, &[1, 2], None));
        proptest::prop_assert_eq!(d.data.as_slice(), &truth[..]);
        let bytes = std::mem::take(&mut d.data).into_bytes();
        proptest::prop_assert_eq!(&bytes[..], &truth[..]);
        let used_shared = shared.as_ref().is_some_and(|s| Rc::ptr_eq(s, &bytes));
        proptest::prop_assert_eq!(used_shared, mode == 1);
    }
}

const SW: SwarmId = SwarmId([7; 20]);
const SEG_MS: u32 = 2_000;

fn url(seq: u64) -> String {
    format!("https://cdn.test/live/s{seq}.ts")
}

fn playlist(n: u64) -> Input {
    playlist_at(n, 0)
}

/// `playlist(n)` with a nominal bitrate (bit/s).
fn playlist_at(n: u64, bitrate: u32) -> Input {
    Input::Playlist {
        swarm: SW,
        live: true,
        container: Container::Ts,
        bitrate,
        segments: (0..n)
            .map(|i| SegmentInfo {
                seq: i,
                start_ms: i * SEG_MS as u64,
                duration_ms: SEG_MS,
                url: url(i),
                range: None,
            })
            .collect(),
    }
}

/// A playing player at `pos` whose buffer reaches far ahead (no gap before any segment,
/// so a segment's deadline is the time until its start).
fn playhead(pos: u64) -> Input {
    Input::Playhead {
        swarm: SW,
        position_ms: pos,
        buffered_ahead_ms: NO_GAP_MS,
        rate: 1.0,
    }
}

const NO_GAP_MS: u64 = 600_000;

/// Paused at 0 with no gap: deadlines stay the time until each segment's start.
fn paused_at_0() -> Input {
    Input::Playhead {
        swarm: SW,
        position_ms: 0,
        buffered_ahead_ms: NO_GAP_MS,
        rate: 0.0,
    }
}

fn request(req: u32, seq: u64) -> Input {
    Input::SegmentRequested {
        req: RequestId(req),
        swarm: SW,
        seq,
        url: url(seq),
        range: None,
        timeout_ms: None,
    }
}

/// A sample of one segment fetched over HTTP: 94 KB in `ms` milliseconds.
fn http_sample(ms: u64) -> Input {
    Input::HttpSample { bytes: 94_000, ms }
}

/// The tracker's count of the others in `SW`.
fn counted(peers: u32) -> Input {
    Input::SwarmPeers { swarm: SW, peers }
}

/// `msg` arriving from the peer on `conn`.
fn from_peer(conn: ConnId, msg: &Message) -> Input {
    Input::PeerMessage {
        conn,
        data: wire::encode(msg),
    }
}

/// How many peers `outs` close for `reason`, and how many `Stopped` announces they hold.
fn closes_and_stops(outs: &[Output], reason: CloseReason) -> (usize, usize) {
    let closes = outs
        .iter()
        .filter(|o| matches!(o, Output::ClosePeer { reason: r, .. } if *r == reason))
        .count();
    let stops = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Announce {
                    event: AnnounceEvent::Stopped,
                    ..
                }
            )
        })
        .count();
    (closes, stops)
}

/// Whether `outs` hold an announce of `event`.
fn announced(outs: &[Output], event: AnnounceEvent) -> bool {
    outs.iter()
        .any(|o| matches!(o, Output::Announce { event: e, .. } if *e == event))
}

type Tamper = Box<dyn FnMut(usize, &Message) -> Option<Message>>;

/// Engines wired back to back with zero latency, a CDN, and a clock.
struct Mesh {
    engines: Vec<Engine>,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    now: Instant,
    cdn: BTreeMap<String, Vec<u8>>,
    /// Serve HTTP at once (whole body) instead of leaving it pending.
    auto_http: bool,
    pending_http: Vec<(usize, HttpId, String, Option<ByteRange>)>,
    started_http: Vec<(usize, String, Option<ByteRange>)>,
    delivered: Vec<(usize, RequestId, Vec<u8>, DeliveryTiming, Instant)>,
    failed: Vec<(usize, RequestId)>,
    events: Vec<(usize, Event)>,
    closes: Vec<(usize, ConnId, CloseReason)>,
    cancelled: Vec<(usize, HttpId)>,
    sent: Vec<(usize, Message)>,
    /// Rewrites (or drops, with `None`) messages sent by engine `usize`.
    tamper: Option<Tamper>,
    /// `Output::SendData` frames passed on (`share`).
    frames: usize,
}

impl Mesh {
    fn new(configs: Vec<Config>) -> Self {
        let now = Instant::from_millis(1_000);
        Mesh {
            engines: configs
                .into_iter()
                .enumerate()
                .map(|(i, c)| Engine::new(c, now, 42 + i as u64))
                .collect(),
            links: BTreeMap::new(),
            now,
            cdn: BTreeMap::new(),
            auto_http: true,
            pending_http: Vec::new(),
            started_http: Vec::new(),
            delivered: Vec::new(),
            failed: Vec::new(),
            events: Vec::new(),
            closes: Vec::new(),
            cancelled: Vec::new(),
            sent: Vec::new(),
            tamper: None,
            frames: 0,
        }
    }

    /// Engine `i` sends `Data` as shared-buffer frames and assembles over `offered`
    /// (its shared copies, by URL).
    fn share(&mut self, i: usize, offered: BTreeMap<String, SegmentBytes>) {
        self.engines[i].share_upload_buffers(true);
        self.engines[i].set_shared_copies(Box::new(move |u, range| {
            range.is_none().then(|| offered.get(u).cloned()).flatten()
        }));
    }

    fn with_cdn(mut self, n: u64, packets: usize) -> Self {
        for i in 0..n {
            self.cdn.insert(url(i), ts_segment(i, packets));
        }
        self
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut queue = VecDeque::from([(i, input)]);
        while let Some((i, input)) = queue.pop_front() {
            self.engines[i].handle_input(self.now, input);
            self.drain(i, &mut queue);
        }
    }

    fn drain(&mut self, i: usize, queue: &mut VecDeque<(usize, Input)>) {
        while let Some(out) = self.engines[i].poll_output() {
            match out {
                Output::SendToPeer { conn, data } => {
                    let Ok(msg) = wire::decode(&data) else {
                        panic!("engine {i} sent undecodable bytes");
                    };
                    self.sent.push((i, msg.clone()));
                    let msg = match self.tamper.as_mut() {
                        Some(t) => t(i, &msg),
                        None => Some(msg),
                    };
                    if let (Some(msg), Some(&(j, c))) = (msg, self.links.get(&(i, conn))) {
                        queue.push_back((j, from_peer(c, &msg)));
                    }
                }
                Output::SendData { conn, frame } => {
                    self.frames += 1;
                    let Ok(msg) = wire::decode(&frame.to_vec()) else {
                        panic!("engine {i} sent an undecodable frame");
                    };
                    self.sent.push((i, msg.clone()));
                    // Untouched, the frame goes on as it is; a rewrite goes as bytes.
                    let tampered = self.tamper.as_mut().map(|t| t(i, &msg));
                    if let Some(&(j, c)) = self.links.get(&(i, conn)) {
                        let input = match tampered {
                            None => Some(Input::PeerData { conn: c, frame }),
                            Some(m) => m.map(|m| from_peer(c, &m)),
                        };
                        queue.extend(input.map(|input| (j, input)));
                    }
                }
                Output::StartHttp { id, url, range } => {
                    self.started_http.push((i, url.clone(), range));
                    if self.auto_http {
                        self.http_body(i, id, &url, range, queue);
                    } else {
                        self.pending_http.push((i, id, url, range));
                    }
                }
                Output::DeliverSegment { req, data, timing } => {
                    self.delivered
                        .push((i, req, data.to_vec(), timing, self.now))
                }
                Output::FailSegment { req, .. } => self.failed.push((i, req)),
                Output::CancelHttp { id } => self.cancelled.push((i, id)),
                Output::Event(e) => self.events.push((i, e)),
                Output::ClosePeer { conn, reason } => {
                    self.closes.push((i, conn, reason));
                    if let Some((j, c)) = self.links.remove(&(i, conn)) {
                        self.links.remove(&(j, c));
                        queue.push_back((j, Input::PeerClosed { conn: c }));
                    }
                }
                _ => {}
            }
        }
    }

    fn http_body(
        &mut self,
        i: usize,
        id: HttpId,
        url: &str,
        range: Option<ByteRange>,
        queue: &mut VecDeque<(usize, Input)>,
    ) {
        let Some(body) = self.cdn.get(url) else {
            queue.push_back((
                i,
                Input::HttpFailed {
                    id,
                    status: 404,
                    reason: "not found".into(),
                },
            ));
            return;
        };
        let body = match range {
            Some(r) => body[r.start as usize..r.end as usize].to_vec(),
            None => body.clone(),
        };
        let total = Some(body.len() as u64);
        queue.push_back((
            i,
            Input::HttpProgress {
                id,
                data: body,
                total,
            },
        ));
        queue.push_back((i, Input::HttpDone { id }));
    }

    /// Serves `bytes` more of a pending transfer (all of it with `usize::MAX`).
    fn serve_pending(&mut self, k: usize, from: usize, bytes: usize) {
        let (i, id, url, range) = self.pending_http[k].clone();
        let body = self.cdn[&url].clone();
        let body = match range {
            Some(r) => body[r.start as usize..r.end as usize].to_vec(),
            None => body,
        };
        let to = from.saturating_add(bytes).min(body.len());
        let total = (from == 0).then_some(body.len() as u64);
        self.input(
            i,
            Input::HttpProgress {
                id,
                data: body[from..to].to_vec(),
                total,
            },
        );
        if to == body.len() {
            self.input(i, Input::HttpDone { id });
        }
    }

    fn connect(&mut self, a: usize, b: usize) {
        let (ca, cb) = (ConnId(100 + b as u32), ConnId(100 + a as u32));
        self.links.insert((a, ca), (b, cb));
        self.links.insert((b, cb), (a, ca));
        let (pa, pb) = (self.engines[a].peer_id(), self.engines[b].peer_id());
        self.input(
            a,
            Input::PeerCandidate {
                conn: ca,
                swarm: SW,
                peer: pb,
                inbound: false,
            },
        );
        self.input(
            b,
            Input::PeerCandidate {
                conn: cb,
                swarm: SW,
                peer: pa,
                inbound: true,
            },
        );
        self.input(a, Input::PeerConnected { conn: ca });
        self.input(b, Input::PeerConnected { conn: cb });
    }

    /// Runs timers up to `to`.
    fn advance(&mut self, to: u64) {
        let to = Instant::from_millis(to);
        loop {
            let next = self.engines.iter().filter_map(|e| e.poll_timeout()).min();
            match next {
                Some(t) if t <= to => {
                    self.now = self.now.max(t);
                    for i in 0..self.engines.len() {
                        if self.engines[i]
                            .poll_timeout()
                            .is_some_and(|t| t <= self.now)
                        {
                            self.engines[i].handle_timeout(self.now);
                            let mut q = VecDeque::new();
                            self.drain(i, &mut q);
                            while let Some((j, input)) = q.pop_front() {
                                self.engines[j].handle_input(self.now, input);
                                self.drain(j, &mut q);
                            }
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = self.now.max(to);
    }

    fn banned(&self, i: usize) -> Vec<BanReason> {
        self.events
            .iter()
            .filter(|(j, _)| *j == i)
            .filter_map(|(_, e)| match e {
                Event::PeerBanned { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn http_urls(&self, i: usize) -> Vec<String> {
        self.started_http
            .iter()
            .filter(|(j, ..)| *j == i)
            .map(|(_, u, _)| u.clone())
            .collect()
    }
}

/// No start hold: its end announces too (engine/offers.rs has its tests).
fn no_hold() -> Config {
    Config {
        start_hold_ms: 0,
        ..Config::default()
    }
}

/// Prefetch off, so a test controls exactly what each viewer asks for.
fn quiet() -> Config {
    Config {
        prefetch_window_ms: 0,
        ..Config::default()
    }
}

fn two(cfg: Config) -> Mesh {
    let mut m = Mesh::new(vec![cfg.clone(), cfg]).with_cdn(20, 500);
    let t = m.now.as_millis();
    for i in 0..2 {
        m.input(i, playlist(20));
        // Paused at 0 with no gap: deadlines stay the time until each segment's start.
        m.input(i, paused_at_0());
    }
    m.connect(0, 1);
    assert_eq!(m.now.as_millis(), t);
    m
}

#[test]
fn without_peers_everything_comes_over_http_and_is_cached() {
    let mut m = Mesh::new(vec![Config::default()]).with_cdn(10, 500);
    m.input(0, playlist(10));
    m.input(0, playhead(0));
    // Past the join window nobody is being connected: no wait.
    m.advance(m.now.as_millis() + live_edge::JOIN_WAIT_MS);
    m.input(0, request(1, 4));
    assert_eq!(m.http_urls(0), vec![url(4)], "no peers: no live-edge wait");
    let (_, req, data, timing, _) = m.delivered[0].clone();
    assert_eq!(req, RequestId(1));
    assert_eq!(data, m.cdn[&url(4)]);
    assert_eq!(timing.http_bytes, data.len() as u64);
    assert_eq!(timing.p2p_bytes, 0);
    assert!(!timing.from_cache);
    let s = m.engines[0].stats();
    assert_eq!(
        (s.http_down, s.p2p_down, s.segments_http),
        (data.len() as u64, 0, 1)
    );
    assert_eq!(s.cache_bytes, data.len() as u64);

    m.now = Instant::from_millis(5_000);
    m.input(0, request(2, 4));
    let (_, req, again, t2, _) = m.delivered[1].clone();
    assert_eq!((req, again), (RequestId(2), data));
    assert!(t2.from_cache);
    assert_eq!(t2.transfer_start, timing.transfer_start);
    assert_eq!(m.http_urls(0).len(), 1);
    assert!(m
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::SegmentLoaded { seq: 4, .. })));
}

#[test]
fn p2p_disabled_never_announces_or_connects() {
    let cfg = Config {
        p2p_enabled: false,
        ..Config::default()
    };
    let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
    e.handle_input(Instant::from_millis(0), playlist(5));
    e.handle_input(
        Instant::from_millis(0),
        Input::PeerCandidate {
            conn: ConnId(1),
            swarm: SW,
            peer: PeerId([9; 20]),
            inbound: true,
        },
    );
    e.handle_input(Instant::from_millis(0), request(1, 3));
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::Announce { .. } | Output::ConnectPeer { .. })));
    assert!(outs.contains(&Output::ClosePeer {
        conn: ConnId(1),
        reason: CloseReason::P2pDisabled
    }));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::StartHttp { url: u, .. } if *u == url(3))));
}

#[test]
fn swarm_start_announces_and_reannounces() {
    let cfg = no_hold();
    let interval = cfg.announce_interval_ms;
    let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
    e.handle_input(Instant::from_millis(0), playlist(5));
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(announced(&outs, AnnounceEvent::Started));
    let t = e.poll_timeout().map(|t| t.as_millis());
    assert_eq!(t, Some(interval));
    e.handle_timeout(Instant::from_millis(interval));
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(announced(&outs, AnnounceEvent::Update));
}

#[test]
fn reannounce_asks_only_for_peers_the_tracker_counted_and_we_lack() {
    let cfg = no_hold();
    let interval = cfg.announce_interval_ms;
    let numwant_at = |e: &mut Engine, t: u64| {
        e.handle_timeout(Instant::from_millis(t));
        std::iter::from_fn(|| e.poll_output())
            .find_map(|o| match o {
                Output::Announce {
                    event: AnnounceEvent::Update,
                    numwant,
                    ..
                } => Some(numwant),
                _ => None,
            })
            .expect("a periodic announce")
    };
    let mut e = Engine::new(cfg.clone(), Instant::from_millis(0), 1);
    e.handle_input(Instant::from_millis(0), playlist(5));
    // Not heard from the tracker: ask for the configured number.
    assert_eq!(numwant_at(&mut e, interval), cfg.announce_numwant);
    // The tracker counts 3 others, none connected: ask for 3, then none when it counts 0.
    e.handle_input(Instant::from_millis(interval + 1), counted(3));
    assert_eq!(numwant_at(&mut e, 2 * interval + 1), 3);
    e.handle_input(Instant::from_millis(2 * interval + 2), counted(0));
    assert_eq!(numwant_at(&mut e, 3 * interval + 2), 0);
}

#[test]
fn peers_handshake_and_join() {
    let m = two(Config::default());
    for i in 0..2 {
        assert_eq!(m.engines[i].stats().peers, 1);
        assert!(m
            .events
            .iter()
            .any(|(j, e)| *j == i && matches!(e, Event::PeerJoined { .. })));
    }
    assert!(m
        .sent
        .iter()
        .any(|(_, msg)| matches!(msg, Message::Handshake { version: 1, .. })));
}

#[test]
fn duplicate_and_banned_candidates_are_refused() {
    let mut m = two(Config::default());
    let p1 = m.engines[1].peer_id();
    m.input(
        0,
        Input::PeerCandidate {
            conn: ConnId(555),
            swarm: SW,
            peer: p1,
            inbound: true,
        },
    );
    assert!(m.closes.contains(&(0, ConnId(555), CloseReason::Duplicate)));
    // Garbage bytes: malformed message, immediate ban.
    m.input(
        0,
        Input::PeerMessage {
            conn: ConnId(101),
            data: vec![0xee, 1, 2],
        },
    );
    assert_eq!(m.banned(0), vec![BanReason::ProtocolViolation]);
    m.input(
        0,
        Input::PeerCandidate {
            conn: ConnId(556),
            swarm: SW,
            peer: p1,
            inbound: true,
        },
    );
    assert!(m.closes.contains(&(0, ConnId(556), CloseReason::Banned)));
    assert_eq!(m.engines[0].stats().peers_banned, 1);
}

#[test]
fn live_edge_waits_then_fetches_announces_and_relays() {
    let mut m = two(quiet());
    m.auto_http = false;
    // Segment 5 starts 10 s ahead of a paused playhead: non-urgent, nobody has it.
    m.input(0, request(1, 5));
    assert!(
        m.http_urls(0).is_empty(),
        "should wait before fetching from the CDN"
    );
    let wake = m.engines[0]
        .poll_timeout()
        .map(|t| t.as_millis())
        .unwrap_or(u64::MAX);
    let cap = live_edge::delay_cap(quiet().live_edge_delay_max_ms, 3_000, Some(10_000), 1);
    assert!(
        wake <= m.now.as_millis() + cap,
        "wake {wake} beyond cap {cap}"
    );
    // Step to the fetch (waiting longer would let the CDN look slow to this viewer).
    let last = m.now.as_millis() + cap;
    while m.http_urls(0).is_empty() && m.now.as_millis() < last {
        m.advance((m.now.as_millis() + 50).min(last));
    }
    assert_eq!(m.http_urls(0), vec![url(5)]);
    // First bytes with the size: peer 1 learns it is downloading.
    m.serve_pending(0, 0, 40_000);
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 0 && matches!(msg, Message::Downloading { seq: 5, .. })));
    // Viewer 1 asks: it requests from viewer 0 instead of the CDN.
    m.input(1, request(7, 5));
    assert!(m.http_urls(1).is_empty());
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 5, .. })));
    // Chunks already here were relayed; the rest follow the HTTP body.
    let relayed_early = m
        .sent
        .iter()
        .filter(|(i, msg)| *i == 0 && matches!(msg, Message::Data { .. }))
        .count();
    assert!(relayed_early >= 2, "relayed {relayed_early}");
    m.serve_pending(0, 40_000, usize::MAX);
    let want = m.cdn[&url(5)].clone();
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].2, want);
    assert_eq!(d1[0].3.p2p_bytes, want.len() as u64);
    assert_eq!(d1[0].3.http_bytes, 0);
    assert_eq!(m.engines[1].stats().p2p_down, want.len() as u64);
    assert_eq!(m.engines[0].stats().p2p_up, want.len() as u64);
    assert_eq!(m.engines[1].stats().segments_p2p, 1);
}

/// `share_upload_buffers`: chunks relayed mid-download and from the finished copy go
/// out as frames over the sender's buffer; the receiver gets the sender's bytes whether
/// its shared-copy source offers the very same buffer (kept, no comparison) or a copy differing
/// in one byte (not used).
#[test]
fn shared_buffer_frames_deliver_the_senders_bytes() {
    for offer_same in [true, false] {
        let mut m = two(quiet());
        m.auto_http = false;
        let truth = m.cdn[&url(5)].clone();
        let published: SegmentBytes = Rc::new(truth.clone());
        let offer: SegmentBytes = if offer_same {
            published.clone()
        } else {
            let mut other = truth.clone();
            other[1_000] ^= 1;
            Rc::new(other)
        };
        m.share(0, BTreeMap::from([(url(5), published.clone())]));
        m.share(1, BTreeMap::from([(url(5), offer.clone())]));
        m.input(0, request(1, 5));
        m.advance(m.now.as_millis() + 3_000);
        assert_eq!(m.http_urls(0), vec![url(5)]);
        m.serve_pending(0, 0, 40_000);
        m.input(1, request(7, 5));
        assert!(m.http_urls(1).is_empty());
        m.serve_pending(0, 40_000, usize::MAX);
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1.len(), 1, "offer_same {offer_same}");
        assert_eq!(d1[0].2, truth, "offer_same {offer_same}");
        assert_eq!(d1[0].3.p2p_bytes, truth.len() as u64);
        assert_eq!(
            m.frames,
            truth.len().div_ceil(CHUNK_SIZE),
            "all chunks as frames"
        );
        assert_eq!(m.engines[1].stats().peers_banned, 0);
        // The cache holds the offered buffer only if its bytes were the ones received.
        let key = SegmentKey { swarm: SW, seq: 5 };
        let cached = m.engines[1].store.get_buffer(&key);
        assert_eq!(cached.is_some_and(|c| Rc::ptr_eq(c, &offer)), offer_same);
        assert_eq!(cached.map(|c| c.as_slice()), Some(&truth[..]));
    }
}

#[test]
fn urgent_request_goes_http_even_if_a_peer_has_it() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    assert_eq!(m.http_urls(0), vec![url(1)]);
    // Seg 1 starts 2 s ahead: urgent for viewer 1 too.
    m.input(1, request(2, 1));
    assert_eq!(m.http_urls(1), vec![url(1)]);
}

#[test]
fn non_urgent_request_taken_from_holder() {
    let mut m = two(quiet());
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    assert_eq!(m.http_urls(0), vec![url(6)]);
    m.input(1, request(2, 6));
    assert!(m.http_urls(1).is_empty());
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].2, m.cdn[&url(6)]);
}

#[test]
fn corrupt_chunk_bans_sender_and_refetches_over_http() {
    let mut m = two(quiet());
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    m.tamper = Some(Box::new(|from, msg| flip_from_viewer_0(from, msg, 0, 0xff)));
    m.input(1, request(2, 6));
    assert_eq!(m.banned(1), vec![BanReason::CorruptData]);
    assert!(m
        .events
        .iter()
        .any(|(i, e)| *i == 1 && matches!(e, Event::VerificationFailed { seq: 6, .. })));
    assert_eq!(m.http_urls(1), vec![url(6)]);
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].2, m.cdn[&url(6)]);
    let s = m.engines[1].stats();
    assert!(s.p2p_discarded > 0);
    assert_eq!(s.p2p_down, 0);
}

/// `msg` as viewer `from` sends it: from viewer 0, a `Data` payload with byte `at` xored with
/// `mask` (when it has that byte).
fn flip_from_viewer_0(from: usize, msg: &Message, at: usize, mask: u8) -> Option<Message> {
    match msg {
        Message::Data {
            id,
            chunk,
            total_size,
            payload,
        } if from == 0 && payload.len() > at => {
            let mut p = payload.clone();
            p[at] ^= mask;
            Some(Message::Data {
                id: *id,
                chunk: *chunk,
                total_size: *total_size,
                payload: p,
            })
        }
        other => Some(other.clone()),
    }
}

/// Flips one payload byte that is not a TS sync byte: the structural checks pass it.
fn subtle_flip(from: usize, msg: &Message) -> Option<Message> {
    flip_from_viewer_0(from, msg, 100, 0x01)
}

#[test]
fn spot_check_bans_a_subtle_corrupter_after_delivery() {
    let cfg = Config {
        spot_check_ratio: 1.0,
        ..quiet()
    };
    let mut m = two(cfg);
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    m.tamper = Some(Box::new(subtle_flip));
    let http_before = m.engines[1].stats().http_down;
    m.input(1, request(2, 6));
    m.advance(m.now.as_millis() + 1_000);
    // The flips pass the structural checks: the player got the altered bytes (the
    // weakness of a check after delivery) ...
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_ne!(d1[0].2, m.cdn[&url(6)]);
    assert!(d1[0].3.p2p_bytes > 0);
    // ... then the spot check fetched the CDN's copy, which differs: the sender is banned.
    assert_eq!(m.http_urls(1), vec![url(6)]);
    let peer0 = m.engines[0].peer_id();
    assert!(m.events.iter().any(|(i, e)| *i == 1
        && matches!(e, Event::SpotCheckFailed { seq: 6, peers, .. } if *peers == vec![peer0])));
    assert_eq!(m.banned(1), vec![BanReason::CorruptData]);
    let s = m.engines[1].stats();
    assert_eq!(s.peers_banned, 1);
    // Spot-check bytes are CDN bytes, but not a delivery.
    assert_eq!(s.http_down - http_before, m.cdn[&url(6)].len() as u64);
    assert_eq!(s.segments_http, 0);
    // The altered copy is no longer offered to other peers.
    assert!(!m.engines[1]
        .store
        .contains(&SegmentKey { swarm: SW, seq: 6 }));
}

#[test]
fn spot_check_of_honest_bytes_changes_nothing_and_waits_for_an_idle_cdn() {
    let cfg = Config {
        spot_check_ratio: 1.0,
        ..quiet()
    };
    let mut m = two(cfg.clone());
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    // Viewer 1 is also loading segment 0 over HTTP (held): the spot check must wait.
    m.auto_http = false;
    m.input(1, request(3, 0));
    assert_eq!(m.http_urls(1), vec![url(0)]);
    m.input(1, request(2, 6));
    assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
    assert_eq!(
        m.http_urls(1),
        vec![url(0)],
        "spot check started beside a player transfer"
    );
    m.serve_pending(0, 0, usize::MAX);
    assert_eq!(m.http_urls(1), vec![url(0), url(6)]);
    let k = m.pending_http.len() - 1;
    m.serve_pending(k, 0, usize::MAX);
    assert!(m
        .events
        .iter()
        .all(|(_, e)| !matches!(e, Event::SpotCheckFailed { .. })));
    assert!(m.banned(1).is_empty());
    assert!(m.engines[1]
        .store
        .contains(&SegmentKey { swarm: SW, seq: 6 }));

    // Ratio 0: never.
    let mut m = two(Config {
        spot_check_ratio: 0.0,
        ..quiet()
    });
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    m.input(1, request(2, 6));
    m.advance(m.now.as_millis() + 1_000);
    assert!(m.http_urls(1).is_empty());
}

#[test]
fn stalled_peer_is_abandoned_for_http_before_the_deadline() {
    let mut m = two(quiet());
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    // Viewer 0 answers nothing any more.
    m.tamper = Some(Box::new(
        |from, msg| if from == 0 { None } else { Some(msg.clone()) },
    ));
    let start = m.now.as_millis();
    for i in 0..2 {
        m.input(
            i,
            Input::Playhead {
                swarm: SW,
                position_ms: 4_000,
                buffered_ahead_ms: 6_000,
                rate: 1.0,
            },
        );
    }
    // Segment 6 starts at 12 s: 8 s away.
    m.input(1, request(2, 6));
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 6, .. })));
    m.advance(start + 8_000);
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert!(
        d1[0].4.as_millis() < start + 8_000,
        "delivered at {}",
        d1[0].4.as_millis()
    );
    assert_eq!(m.http_urls(1), vec![url(6)]);
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 1 && matches!(msg, Message::Cancel { .. })));
    // Stalling is not misbehaviour: a stall mark and a lower score, no strike.
    let p = m.engines[1].stats().per_peer.first().cloned();
    assert_eq!(p.as_ref().map(|p| (p.strikes, p.stalls)), Some((0, 1)));
    let fresh = crate::peers::score(None, None, 0);
    assert!(p.is_some_and(|p| p.score < fresh));
}

#[test]
fn prefetch_only_uses_peers() {
    let mut m = two(Config::default());
    for seq in 1..6 {
        m.input(0, request(seq as u32, seq));
        m.advance(m.now.as_millis() + 2_000);
    }
    assert_eq!(m.http_urls(0).len(), 5);
    // Viewer 1 plays from 0: asks for segment 0 (urgent, HTTP); prefetches the rest from 0.
    m.input(
        1,
        Input::Playhead {
            swarm: SW,
            position_ms: 0,
            buffered_ahead_ms: 0,
            rate: 0.0,
        },
    );
    m.input(1, request(50, 0));
    assert_eq!(m.http_urls(1), vec![url(0)]);
    m.advance(m.now.as_millis() + 1_000);
    let s = m.engines[1].stats();
    assert_eq!(s.p2p_down, 5 * m.cdn[&url(1)].len() as u64, "{s:?}");
    // The player then gets them from the cache.
    m.input(1, request(51, 3));
    let last = m
        .delivered
        .last()
        .map(|d| (d.0, d.3.from_cache, d.3.p2p_bytes > 0));
    assert_eq!(last, Some((1, true, true)));
    assert_eq!(m.http_urls(1).len(), 1);
}

#[test]
fn prefetch_skips_segments_the_player_holds_in_another_rendition() {
    let mut m = two(Config::default());
    for seq in 1..6 {
        m.input(0, request(seq as u32, seq));
        m.advance(m.now.as_millis() + 2_000);
    }
    // Viewer 1 just switched to this rendition: it asked for nothing here yet, and its
    // buffer already holds segments 0..=2 (from another rendition).
    m.input(
        1,
        Input::Playhead {
            swarm: SW,
            position_ms: 0,
            buffered_ahead_ms: 3 * SEG_MS as u64,
            rate: 0.0,
        },
    );
    m.advance(m.now.as_millis() + 1_000);
    let got: Vec<Seq> = m
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::SegmentLoaded { seq, .. } if *i == 1 => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![3, 4, 5]);
}

#[test]
fn zero_upload_budget_announces_nothing_and_answers_busy() {
    let cfg = Config {
        upload_bytes_per_sec: 0,
        ..Config::default()
    };
    let mut m = two(cfg);
    m.input(0, request(1, 1));
    assert!(!m
        .sent
        .iter()
        .any(|(_, msg)| matches!(msg, Message::Have { .. } | Message::Downloading { .. })));
    m.input(
        0,
        from_peer(
            ConnId(101),
            &Message::Request {
                id: 1,
                seq: 1,
                first_chunk: 0,
                count: 1,
            },
        ),
    );
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 0 && matches!(msg, Message::Busy { id: 1, .. })));
    assert_eq!(m.engines[0].stats().p2p_up, 0);
}

#[test]
fn upload_is_paced_by_the_budget() {
    let cfg = Config {
        upload_bytes_per_sec: 100_000,
        ..quiet()
    };
    let mut m = two(cfg);
    m.input(0, request(1, 6));
    m.advance(m.now.as_millis() + 2_000);
    let t0 = m.now.as_millis();
    m.input(1, request(2, 6));
    let size = m.cdn[&url(6)].len() as u64;
    // Burst is 4 chunks (61440 B) at this rate; the remaining ~32.6 KB take ~330 ms.
    assert!(m.engines[0].stats().p2p_up < size);
    m.advance(t0 + 200);
    assert!(m.engines[0].stats().p2p_up < size);
    m.advance(t0 + 1_000);
    assert_eq!(m.engines[0].stats().p2p_up, size);
    assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
}

#[test]
fn aborted_urgent_http_is_cancelled() {
    let mut e = Engine::new(Config::default(), Instant::from_millis(0), 3);
    let now = Instant::from_millis(0);
    e.handle_input(now, playlist(5));
    e.handle_input(now, playhead(0));
    e.handle_input(now, request(1, 0));
    let id = std::iter::from_fn(|| e.poll_output()).find_map(|o| match o {
        Output::StartHttp { id, .. } => Some(id),
        _ => None,
    });
    let Some(id) = id else { panic!("no http") };
    e.handle_input(now, Input::SegmentAborted { req: RequestId(1) });
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(outs.contains(&Output::CancelHttp { id }));
    assert!(!outs.iter().any(|o| matches!(
        o,
        Output::FailSegment { .. } | Output::DeliverSegment { .. }
    )));
    // Late inputs for the cancelled transfer are harmless.
    e.handle_input(
        now,
        Input::HttpProgress {
            id,
            data: vec![1, 2, 3],
            total: Some(3),
        },
    );
    e.handle_input(now, Input::HttpDone { id });
}

#[test]
fn aborted_http_is_cancelled_unless_peers_read_it() {
    // Far ahead of the playhead (not urgent), no peers: fetched at once, then aborted
    // (a seek): nobody needs it, so the transfer stops.
    let mut e = Engine::new(Config::default(), Instant::from_millis(0), 3);
    let now = Instant::from_millis(0);
    e.handle_input(now, playlist(20));
    e.handle_input(now, playhead(0));
    e.handle_input(now, request(1, 10));
    let mut id = None;
    let mut now = now;
    for _ in 0..10 {
        id = std::iter::from_fn(|| e.poll_output()).find_map(|o| match o {
            Output::StartHttp { id, .. } => Some(id),
            _ => None,
        });
        match (id, e.poll_timeout()) {
            (None, Some(t)) => {
                now = t;
                e.handle_timeout(t);
            }
            _ => break,
        }
    }
    let Some(id) = id else { panic!("no http") };
    e.handle_input(now, Input::SegmentAborted { req: RequestId(1) });
    let outs: Vec<Output> = std::iter::from_fn(|| e.poll_output()).collect();
    assert!(outs.contains(&Output::CancelHttp { id }), "{outs:?}");

    // A peer reads our relay of the transfer: it runs on for the peer.
    let mut m = two(quiet());
    m.auto_http = false;
    m.input(0, request(1, 10));
    m.advance(m.now.as_millis() + 1_000);
    assert_eq!(m.pending_http.len(), 1, "viewer 0 did not fetch");
    m.serve_pending(0, 0, 20_000);
    m.input(1, request(2, 10));
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 1 && matches!(msg, Message::Request { seq: 10, .. })));
    m.input(0, Input::SegmentAborted { req: RequestId(1) });
    assert!(m.cancelled.is_empty(), "{:?}", m.cancelled);
    m.serve_pending(0, 20_000, usize::MAX);
    m.advance(m.now.as_millis() + 1_000);
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].2, m.cdn[&url(10)]);
    assert!(
        !m.delivered.iter().any(|d| d.0 == 0),
        "aborted request answered"
    );
}

#[test]
fn set_policy_p2p_off_closes_peers_and_goes_http() {
    let mut m = two(Config::default());
    m.engines[1].handle_input(
        m.now,
        Input::SetPolicy {
            p2p_enabled: false,
            upload_bytes_per_sec: 0,
        },
    );
    let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
    assert_eq!(closes_and_stops(&outs, CloseReason::P2pDisabled), (1, 1));
    assert_eq!(m.engines[1].stats().peers, 0);
    let now = m.now;
    m.engines[1].handle_input(now, request(9, 3));
    let mut http = false;
    while let Some(o) = m.engines[1].poll_output() {
        http |= matches!(o, Output::StartHttp { .. });
        assert!(!matches!(o, Output::SendToPeer { .. }), "{o:?}");
    }
    assert!(http);
}

#[test]
fn leaving_a_swarm_closes_its_peers_fails_its_requests_and_forgets_it() {
    let mut m = two(Config::default());
    let now = m.now;
    m.engines[1].handle_input(now, request(9, 12));
    while m.engines[1].poll_output().is_some() {}
    m.engines[1].handle_input(now, Input::LeaveSwarm { swarm: SW });
    let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
    assert_eq!(closes_and_stops(&outs, CloseReason::SwarmLeft), (1, 1));
    let failed: Vec<RequestId> = outs
        .iter()
        .filter_map(|o| match o {
            Output::FailSegment { req, .. } => Some(*req),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![RequestId(9)]);
    assert_eq!(m.engines[1].stats().peers, 0);
    // Unknown now: a candidate for it is refused, leaving again does nothing.
    m.engines[1].handle_input(
        now,
        Input::PeerCandidate {
            conn: ConnId(77),
            swarm: SW,
            peer: PeerId([7; 20]),
            inbound: true,
        },
    );
    m.engines[1].handle_input(now, Input::LeaveSwarm { swarm: SW });
    let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
    assert_eq!(
        outs,
        vec![Output::ClosePeer {
            conn: ConnId(77),
            reason: CloseReason::Rejected
        }]
    );
    // A playlist joins it again.
    m.engines[1].handle_input(now, playlist(20));
    let outs: Vec<Output> = std::iter::from_fn(|| m.engines[1].poll_output()).collect();
    assert!(announced(&outs, AnnounceEvent::Started));
}

#[test]
fn signed_manifest_required_when_a_key_is_configured() {
    let secret = [42u8; 32];
    let key = integrity::format_public_key(&integrity::public_key_of(&secret));
    let cfg = Config {
        integrity_public_key: Some(key),
        ..Config::default()
    };
    let mut e = Engine::new(cfg, Instant::from_millis(0), 1);
    let text = b"shoal-manifest 1\nchunk-size 15360\nsegment a.ts 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";
    let rejected = |e: &mut Engine| {
        let mut n = 0;
        while let Some(o) = e.poll_output() {
            n += usize::from(matches!(o, Output::Event(Event::ManifestRejected { .. })));
        }
        n
    };
    let now = Instant::from_millis(1);
    e.handle_input(
        now,
        Input::IntegrityManifest {
            data: text.to_vec(),
        },
    );
    assert_eq!(rejected(&mut e), 1, "unsigned manifest accepted");
    assert!(e.manifest.is_none());
    let signed = integrity::sign_manifest(text, &secret).unwrap_or_default();
    e.handle_input(now, Input::IntegrityManifest { data: signed });
    assert_eq!(rejected(&mut e), 0);
    assert!(e.manifest.is_some());
    let other = integrity::sign_manifest(text, &[7u8; 32]).unwrap_or_default();
    e.handle_input(now, Input::IntegrityManifest { data: other });
    assert_eq!(
        rejected(&mut e),
        1,
        "manifest signed by another key accepted"
    );
    assert!(e.manifest.is_some(), "the verified manifest must stay");
}

#[test]
fn a_joining_viewer_waits_for_its_first_peers_not_for_urgent_segments() {
    let mut m = Mesh::new(vec![Config::default(), Config::default()]).with_cdn(20, 500);
    m.input(0, playlist(20));
    m.input(0, playhead(0));
    m.input(0, request(1, 0));
    m.input(0, request(2, 8));
    // Segment 0 is needed now: HTTP at once. Segment 8 (16 s away) waits for peers.
    assert_eq!(m.http_urls(0), vec![url(0)]);
    // Viewer 1 holds segment 8 and connects within the join window: 8 comes from it.
    m.input(1, playlist(20));
    m.input(1, playhead(16_000));
    m.input(1, request(9, 8));
    m.advance(m.now.as_millis() + 1_000);
    assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(9)));
    m.connect(0, 1);
    m.advance(m.now.as_millis() + 1_000);
    assert_eq!(
        m.http_urls(0),
        vec![url(0)],
        "segment 8 must not be fetched over HTTP"
    );
    let got: Vec<_> = m
        .delivered
        .iter()
        .filter(|d| d.0 == 0)
        .map(|d| d.1)
        .collect();
    assert_eq!(got, vec![RequestId(1), RequestId(2)]);
    assert!(m.engines[0].stats().p2p_down > 0);
}

#[test]
fn urgent_segment_comes_from_a_complete_holder_when_http_has_time_to_spare() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    assert_eq!(m.http_urls(0), vec![url(1)]);
    // Segment 1 is 2 s away (urgent) for viewer 1 too. Having seen a segment come over
    // HTTP in 50 ms, it keeps 600 ms for HTTP and asks the holder for the rest.
    m.input(1, http_sample(50));
    m.input(1, request(2, 1));
    assert!(m.http_urls(1).is_empty());
    m.advance(m.now.as_millis() + 500);
    assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(2)));
    assert!(m.http_urls(1).is_empty());
    assert!(m.engines[1].stats().p2p_down > 0);
}

#[test]
fn urgent_segment_comes_from_a_peer_known_only_by_its_bitfield() {
    let mut m = Mesh::new(vec![quiet(), quiet()]).with_cdn(20, 500);
    let with_bitrate = |i: Input| match i {
        Input::Playlist {
            swarm,
            live,
            container,
            segments,
            ..
        } => Input::Playlist {
            swarm,
            live,
            container,
            bitrate: 400_000,
            segments,
        },
        other => other,
    };
    for i in 0..2 {
        m.input(i, with_bitrate(playlist(20)));
        m.input(i, playhead(0));
    }
    m.input(0, request(1, 1));
    assert_eq!(m.http_urls(0), vec![url(1)]);
    // Viewer 1 meets viewer 0 only now: it learns what 0 holds from a Bitfield (no sizes).
    m.connect(0, 1);
    m.input(1, http_sample(50));
    m.input(1, request(2, 1));
    m.advance(m.now.as_millis() + 500);
    assert!(m.delivered.iter().any(|d| d.0 == 1 && d.1 == RequestId(2)));
    assert!(m.http_urls(1).is_empty(), "{:?}", m.http_urls(1));
}

#[test]
fn a_slow_http_sample_keeps_urgent_segments_on_http() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    // The last segment took 1.5 s over HTTP: 2 s is not enough to try a peer first.
    m.input(
        1,
        Input::HttpSample {
            bytes: 94_000,
            ms: 1_500,
        },
    );
    m.input(1, request(2, 1));
    assert_eq!(m.http_urls(1), vec![url(1)]);
}

#[test]
fn a_joining_viewer_holds_an_urgent_segment_for_counted_peers_while_http_has_time() {
    let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
    m.input(0, playlist(20));
    m.input(0, http_sample(50));
    m.input(0, counted(2));
    m.input(0, playhead(0));
    let t0 = m.now.as_millis();
    // Segment 1 is 2 s away: 600 ms kept for HTTP and ~520 ms for a peer to deliver
    // leave about 870 ms to wait for the peers the tracker counted.
    m.input(0, request(1, 1));
    assert!(m.http_urls(0).is_empty());
    m.advance(t0 + 800);
    assert!(m.http_urls(0).is_empty());
    m.advance(t0 + 1_000);
    assert_eq!(m.http_urls(0), vec![url(1)]);
    // Without the sample (no idea how fast HTTP is) it would not have waited at all.
    let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
    m.input(0, playlist(20));
    m.input(0, counted(2));
    m.input(0, playhead(0));
    m.input(0, request(1, 1));
    assert_eq!(m.http_urls(0), vec![url(1)]);
}

#[test]
fn a_tracker_count_of_zero_ends_the_join_wait() {
    // Segment 8 (16 s away) waits for peers until the tracker answers; so does the urgent
    // segment 1 while HTTP has time to spare (a fast HTTP sample).
    for (seq, sample) in [(8, None), (1, Some(50))] {
        let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
        m.input(0, playlist(20));
        if let Some(ms) = sample {
            m.input(0, http_sample(ms));
        }
        m.input(0, playhead(0));
        m.input(0, request(1, seq));
        // Not heard from the tracker yet: peers may come, the segment waits.
        assert!(m.http_urls(0).is_empty());
        m.advance(m.now.as_millis() + 100);
        assert!(m.http_urls(0).is_empty());
        m.input(0, counted(0));
        assert_eq!(m.http_urls(0), vec![url(seq)]);
    }
}

#[test]
fn a_joining_viewer_alone_fetches_over_http_when_the_join_window_ends() {
    let mut m = Mesh::new(vec![Config::default()]).with_cdn(20, 500);
    m.input(0, playlist(20));
    m.input(0, playhead(0));
    m.input(0, request(1, 8));
    assert!(m.http_urls(0).is_empty());
    m.advance(m.now.as_millis() + live_edge::JOIN_WAIT_MS - 10);
    assert!(m.http_urls(0).is_empty());
    m.advance(m.now.as_millis() + 20);
    assert_eq!(m.http_urls(0), vec![url(8)]);
}

#[test]
fn http_failure_fails_the_request_open() {
    let mut m = Mesh::new(vec![Config::default()]);
    m.input(0, playlist(5));
    m.input(0, playhead(0));
    m.input(0, request(1, 1));
    assert_eq!(m.failed, vec![(0, RequestId(1))]);
}

#[test]
fn unknown_segment_fetched_by_its_url() {
    let mut m = Mesh::new(vec![Config::default()]);
    m.cdn
        .insert("https://elsewhere/x.ts".into(), ts_segment(1, 10));
    m.input(
        0,
        Input::SegmentRequested {
            req: RequestId(9),
            swarm: SwarmId([1; 20]),
            seq: 77,
            url: "https://elsewhere/x.ts".into(),
            range: None,
            timeout_ms: None,
        },
    );
    assert_eq!(m.delivered.len(), 1);
    assert_eq!(m.delivered[0].2, ts_segment(1, 10));
}

#[test]
fn cdn_fetch_yields_to_a_peer_that_announced_first() {
    let mut m = two(quiet());
    m.auto_http = false;
    m.input(0, request(1, 8));
    m.advance(m.now.as_millis() + 2_000);
    assert_eq!(m.http_urls(0), vec![url(8)]);
    let id = m.pending_http[0].1;
    // Before our first byte, the peer says it is downloading segment 8 too.
    let size = m.cdn[&url(8)].len() as u32;
    m.input(
        0,
        from_peer(ConnId(101), &Message::Downloading { seq: 8, size }),
    );
    assert_eq!(m.cancelled, vec![(0, id)]);
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 0 && matches!(msg, Message::Request { seq: 8, .. })));
    // Once bytes flowed (and we announced), we keep our transfer.
    let mut m = two(quiet());
    m.auto_http = false;
    m.input(0, request(1, 8));
    m.advance(m.now.as_millis() + 2_000);
    m.serve_pending(0, 0, 1_000);
    m.input(
        0,
        from_peer(ConnId(101), &Message::Downloading { seq: 8, size }),
    );
    assert!(m.cancelled.is_empty());
}

#[test]
fn stalled_cdn_transfer_is_replaced_by_peers() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    m.auto_http = false;
    // Urgent for viewer 1 (2 s ahead): HTTP at once, but the CDN sends nothing.
    m.input(1, request(2, 1));
    assert_eq!(m.http_urls(1), vec![url(1)]);
    let id = m.pending_http[0].1;
    let t0 = m.now.as_millis();
    m.advance(t0 + 1_400);
    assert!(m.cancelled.is_empty(), "abandoned before the stall timeout");
    m.advance(t0 + 1_600);
    assert_eq!(m.cancelled, vec![(1, id)]);
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].2, m.cdn[&url(1)]);
    assert_eq!(d1[0].3.p2p_bytes, d1[0].2.len() as u64);
    // Without holders a stalled transfer is kept (nothing better to do).
    let mut m = Mesh::new(vec![quiet()]).with_cdn(5, 100);
    m.auto_http = false;
    m.input(0, playlist(5));
    m.input(0, playhead(0));
    m.input(0, request(1, 1));
    m.advance(m.now.as_millis() + 10_000);
    assert!(m.cancelled.is_empty());
    m.serve_pending(0, 0, usize::MAX);
    assert_eq!(m.delivered.len(), 1);
}

#[test]
fn slow_cdn_is_degraded_for_throughput_and_raced_by_peers() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    m.auto_http = false;
    m.input(1, playhead(0));
    // Urgent for viewer 1: HTTP at once. The body trickles at about a third of the rate
    // the segment plays at (94 kB per 2 s = 47 kB/s), never silent long enough to stall.
    m.input(1, request(2, 1));
    assert_eq!(m.http_urls(1), vec![url(1)]);
    let (id, size) = (m.pending_http[0].1, m.cdn[&url(1)].len());
    let t0 = m.now.as_millis();
    let mut sent = 0;
    let mut degraded_at = None;
    for k in 1..=20u64 {
        m.advance(t0 + 100 + k * 250);
        m.now = Instant::from_millis(t0 + 100 + k * 250);
        m.serve_pending(0, sent, 4_000);
        sent += 4_000;
        if degraded_at.is_none() {
            degraded_at = m.events.iter().find_map(|(i, e)| match e {
                Event::CdnDegraded { reason } if *i == 1 => Some((m.now, reason.clone())),
                _ => None,
            });
        }
        if !m.delivered.iter().any(|d| d.0 == 1) {
            continue;
        }
        let (at, reason) = degraded_at.expect("delivered without a degraded CDN");
        assert!(reason.starts_with("throughput"), "{reason}");
        // First piece at t0+350 (latency only), then 500 ms of evidence.
        assert!(at.as_millis() <= t0 + 350 + 500, "noticed at {at:?}");
        let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
        assert_eq!(d1[0].2, m.cdn[&url(1)]);
        assert!(
            d1[0].3.http_bytes > 0 && d1[0].3.p2p_bytes > 0,
            "{:?}",
            d1[0].3
        );
        assert!(sent < size, "peers did not finish first");
        // Peers won the race: the transfer is stopped.
        assert_eq!(m.cancelled, vec![(1, id)]);
        assert!(m.engines[1].stats().cdn_degraded);
        return;
    }
    panic!("segment not delivered; events {:?}", m.events);
}

#[test]
fn slow_but_sufficient_cdn_is_not_degraded() {
    let mut m = two(quiet());
    m.input(0, request(1, 1));
    m.auto_http = false;
    m.input(1, request(2, 1));
    let size = m.cdn[&url(1)].len();
    let t0 = m.now.as_millis();
    // 1.5x the rate the segment plays at: 94 kB in about 1.4 s.
    let mut sent = 0;
    let mut k = 0;
    while sent < size {
        k += 1;
        m.advance(t0 + 100 + k * 57);
        m.now = Instant::from_millis(t0 + 100 + k * 57);
        m.serve_pending(0, sent, 4_000);
        sent += 4_000;
    }
    assert_eq!(m.delivered.iter().filter(|d| d.0 == 1).count(), 1);
    assert!(m
        .events
        .iter()
        .all(|(_, e)| !matches!(e, Event::CdnDegraded { .. })));
    assert!(!m.engines[1].stats().cdn_degraded);
}

/// The fuzz target's spin check (crate/fuzz engine_peer, `CHECK_SPIN`): a wake that acts
/// on nothing must push its timer forward. The engine's commonest idle wake is a stalled
/// HTTP transfer nobody else holds (`Timer::HttpStall`, nothing to hand over): it comes
/// back once per `peer_stall_timeout_ms`, also after the host's clock stepped back, and
/// never at or before the time it fired (a host would call again at once: a busy loop).
#[test]
fn a_stalled_transfer_nobody_can_take_over_wakes_once_per_stall_timeout() {
    let cfg = quiet();
    let stall = cfg.peer_stall_timeout_ms;
    let mut m = Mesh::new(vec![cfg]).with_cdn(5, 100);
    m.auto_http = false;
    m.input(0, playlist(5));
    m.input(0, playhead(0));
    m.input(0, request(1, 1));
    assert_eq!(m.http_urls(0), vec![url(1)]);
    let mut wakes = Vec::new();
    let mut idle = 0u64;
    let mut now = m.now;
    let span = 30_000;
    let end = now + std::time::Duration::from_millis(span);
    let mut stepped_back = false;
    while let Some(t) = m.engines[0].poll_timeout().filter(|&t| t <= end) {
        assert!(
            wakes.last().is_none_or(|&last| t > last),
            "wake at {t:?} after a wake at {:?}: busy loop",
            wakes.last()
        );
        now = now.max(t);
        wakes.push(t);
        m.engines[0].handle_timeout(now);
        let mut q = VecDeque::new();
        let before = m.cancelled.len() + m.events.len() + m.delivered.len();
        m.drain(0, &mut q);
        assert!(q.is_empty());
        idle += u64::from(m.cancelled.len() + m.events.len() + m.delivered.len() == before);
        if !stepped_back && now >= end - std::time::Duration::from_millis(span / 2) {
            // The host's clock steps back 5 s; a wake is still never a repeat.
            stepped_back = true;
            now = Instant::from_millis(now.as_millis() - 5_000);
            m.engines[0].handle_timeout(now);
            m.drain(0, &mut q);
            wakes.clear();
        }
    }
    assert!(stepped_back);
    assert!(
        m.cancelled.is_empty() && m.delivered.is_empty(),
        "kept: nothing better"
    );
    // One wake per stall timeout (plus the CDN-slow flag and the step back).
    let most = span / stall + 4;
    assert!(
        idle >= span / stall / 2,
        "{idle} idle wakes: the stall is not checked"
    );
    assert!(
        idle <= most,
        "{idle} idle wakes in {span} ms, at most {most} expected"
    );
}

#[test]
fn an_incoming_copy_is_waited_for_until_its_sender_withdraws_it() {
    let mut m = two(quiet());
    m.auto_http = false;
    // The peer is getting segment 9 (18 s ahead) from its own peers.
    m.input(
        0,
        Input::PeerMessage {
            conn: ConnId(101),
            data: wire::encode(&Message::Incoming { seq: 9, hops: 1 }),
        },
    );
    m.input(0, request(1, 9));
    // Far beyond any live-edge draw, still before the urgent window: no CDN fetch.
    let t0 = m.now.as_millis();
    m.advance(t0 + 8_000);
    assert!(
        m.http_urls(0).is_empty(),
        "fetched a segment a peer has coming"
    );
    // We wait on a copy one hop away: we do not tell the peer it comes from us.
    assert!(!m
        .sent
        .iter()
        .any(|(i, msg)| *i == 0 && matches!(msg, Message::Incoming { .. })));
    // The peer gives up on it: the ordinary live-edge wait applies, then the CDN.
    m.input(
        0,
        Input::PeerMessage {
            conn: ConnId(101),
            data: wire::encode(&Message::Lost { seq: 9 }),
        },
    );
    let cap = live_edge::delay_cap(quiet().live_edge_delay_max_ms, 3_000, Some(10_000), 1);
    m.advance(m.now.as_millis() + cap);
    assert_eq!(m.http_urls(0), vec![url(9)]);
}

#[test]
fn a_segment_fetched_from_a_peer_is_announced_incoming_and_then_had() {
    let mut cfg = quiet();
    cfg.upload_bytes_per_sec = 1_000_000;
    let mut m = Mesh::new(vec![cfg.clone(), cfg.clone(), cfg]).with_cdn(20, 500);
    for i in 0..3 {
        m.input(i, playlist_at(20, 1_000_000));
        m.input(i, paused_at_0());
    }
    // A line: 0 - 1 - 2. Viewer 0 holds segment 9; viewer 1 takes it from 0.
    m.connect(0, 1);
    m.connect(1, 2);
    m.input(0, request(1, 9));
    m.advance(m.now.as_millis() + 20_000);
    assert!(m.delivered.iter().any(|d| d.0 == 0));
    m.input(1, request(2, 9));
    let incoming: Vec<_> = m
        .sent
        .iter()
        .filter(|(i, msg)| *i == 1 && matches!(msg, Message::Incoming { seq: 9, hops: 1 }))
        .collect();
    assert_eq!(
        incoming.len(),
        1,
        "viewer 1 tells viewer 2 (not its source) once"
    );
    m.advance(m.now.as_millis() + 5_000);
    let d1: Vec<_> = m.delivered.iter().filter(|d| d.0 == 1).collect();
    assert_eq!(d1.len(), 1);
    assert_eq!(d1[0].3.http_bytes, 0);
    assert!(m
        .sent
        .iter()
        .any(|(i, msg)| *i == 1 && matches!(msg, Message::Have { seq: 9, .. })));
}
#[test]
fn a_live_segment_announced_past_the_playlist_end_is_fetched_from_the_peer() {
    let mesh = |cfg: Config| {
        let mut m = Mesh::new(vec![cfg.clone(), cfg]).with_cdn(20, 500);
        for i in 0..2 {
            m.input(i, playlist(10));
            m.input(
                i,
                Input::Playhead {
                    swarm: SW,
                    position_ms: 0,
                    buffered_ahead_ms: NO_GAP_MS,
                    rate: 0.0,
                },
            );
        }
        m.connect(0, 1);
        m.input(
            0,
            Input::PeerMessage {
                conn: ConnId(101),
                data: wire::encode(&Message::Have {
                    seq: 10,
                    size: 9_000,
                }),
            },
        );
        m
    };
    let asked = |m: &Mesh| {
        m.sent
            .iter()
            .any(|(i, msg)| *i == 0 && matches!(msg, Message::Request { seq: 10, .. }))
    };
    // Our playlist ends at segment 9; the peer has segment 10: we take it ahead of our
    // next playlist refresh.
    assert!(asked(&mesh(Config::default())));
    // Not beyond the prefetch window.
    assert!(!asked(&mesh(Config {
        prefetch_window_ms: 0,
        ..Config::default()
    })));
    // Not when peers' segments are checked against a manifest (it names them by URL).
    let public = integrity::format_public_key(&integrity::public_key_of(&[42u8; 32]));
    assert!(!asked(&mesh(Config {
        integrity_public_key: Some(public),
        ..Config::default()
    })));
}
