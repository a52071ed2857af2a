//! `sign`: one manifest per playlist target, rewritten in --watch mode as playlists change.

use super::*;

/// One segment as a playlist references it.
#[derive(Clone, Debug)]
pub(super) struct SegRef {
    pub(super) key: String,
    pub(super) path: PathBuf,
    pub(super) range: Option<ByteRange>,
}

/// One manifest to write: its file and the segments it covers.
pub(super) struct Target {
    pub(super) out: PathBuf,
    pub(super) segments: Vec<SegRef>,
    /// Covers several renditions (HLS master, whole MPD): skipped, not an error, when
    /// renditions reuse segment names.
    pub(super) combined: bool,
}

#[derive(Clone)]
pub(super) struct Cached {
    pub(super) len: u64,
    pub(super) mtime: Option<SystemTime>,
    pub(super) entry: ManifestEntry,
}

/// State kept across scans in --watch mode.
pub(super) struct Signer {
    pub(super) root: PathBuf,
    pub(super) secret: [u8; 32],
    pub(super) public: [u8; 32],
    pub(super) chunk_hashes: bool,
    pub(super) grace: Duration,
    /// Hashes by (file, range), revalidated by length and mtime.
    pub(super) cache: HashMap<(PathBuf, Option<ByteRange>), Cached>,
    /// Per manifest: entries and when each was last listed by a playlist.
    pub(super) listed: HashMap<PathBuf, BTreeMap<String, (ManifestEntry, Instant)>>,
    /// Last text written per manifest, to skip unchanged rewrites.
    pub(super) written: HashMap<PathBuf, Vec<u8>>,
}

pub(super) fn sign(
    key: &Path,
    watch: bool,
    interval: Duration,
    grace: Duration,
    chunk_hashes: bool,
    dir: &Path,
) -> Result<(), Failure> {
    let secret = read_secret(key)?;
    let interval = interval.max(Duration::from_millis(50));
    if !dir.is_dir() {
        return fail(format!("{} is not a directory", dir.display()));
    }
    let mut s = Signer {
        root: dir.to_path_buf(),
        secret,
        public: public_key_of(&secret),
        chunk_hashes,
        grace,
        cache: HashMap::new(),
        listed: HashMap::new(),
        written: HashMap::new(),
    };
    if !watch {
        let n = s.scan(false)?;
        if n == 0 {
            return fail(format!(
                "no HLS (.m3u8) or DASH (.mpd) playlist in {}",
                dir.display()
            ));
        }
        return Ok(());
    }
    eprintln!(
        "shoal-manifest: watching {} every {:?} (public key {})",
        dir.display(),
        interval,
        format_public_key(&s.public)
    );
    loop {
        // A scan can fail while the packager is mid-write; the previous manifests
        // stay in place and the next scan tries again.
        if let Err(Failure(m)) = s.scan(true) {
            eprintln!("shoal-manifest: warning: {m}");
        }
        std::thread::sleep(interval);
    }
}

impl Signer {
    /// Builds and writes every manifest; returns how many playlists were found.
    fn scan(&mut self, live: bool) -> Result<usize, Failure> {
        let mut playlists = Vec::new();
        find_playlists(&self.root, 0, &mut playlists);
        playlists.sort();
        let mut targets = Vec::new();
        let mut errors = Vec::new();
        let mut hls_media = Vec::new();
        for p in &playlists {
            let text = match read_playlist(p) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext.eq_ignore_ascii_case("mpd") {
                match dash_targets(p, &text) {
                    Ok(t) => targets.extend(t),
                    Err(e) => errors.push(format!("{}: {e}", p.display())),
                }
                continue;
            }
            match parse_hls(p, &text) {
                Err(e) => errors.push(e),
                Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => hls_media.push((p.clone(), m)),
                Ok(m3u8_rs::Playlist::MasterPlaylist(master)) => {
                    let mut all = Vec::new();
                    for uri in master_playlist_uris(&master) {
                        match rendition_segments(p, &uri) {
                            Ok(segs) => all.extend(segs),
                            Err(e) => errors.push(e),
                        }
                    }
                    targets.push(Target {
                        out: with_suffix(p, ".shoal"),
                        segments: all,
                        combined: true,
                    });
                }
            }
        }
        for (p, m) in hls_media {
            match hls_media_segments(&p, &m) {
                Ok(segs) => targets.push(Target {
                    out: with_suffix(&p, ".shoal"),
                    segments: segs,
                    combined: false,
                }),
                Err(e) => errors.push(e),
            }
        }
        for t in &targets {
            if let Err(e) = self.write_target(t, live) {
                errors.push(e);
            }
        }
        if !errors.is_empty() {
            return fail(errors.join("\n  "));
        }
        Ok(playlists.len())
    }

    fn hash(&mut self, seg: &SegRef) -> Result<ManifestEntry, String> {
        let meta = fs::metadata(&seg.path).map_err(|e| format!("{}: {e}", seg.path.display()))?;
        let (len, mtime) = (meta.len(), meta.modified().ok());
        let ck = (seg.path.clone(), seg.range);
        if let Some(c) = self.cache.get(&ck) {
            if c.len == len && c.mtime == mtime && mtime.is_some() {
                return Ok(c.entry.clone());
            }
        }
        let data = read_range(&seg.path, seg.range)?;
        let entry = ManifestEntry {
            size: data.len() as u64,
            sha256: sha256(&data),
            chunk_hashes: if self.chunk_hashes {
                data.chunks(CHUNK_SIZE).map(sha256).collect()
            } else {
                Vec::new()
            },
        };
        self.cache.insert(
            ck,
            Cached {
                len,
                mtime,
                entry: entry.clone(),
            },
        );
        Ok(entry)
    }

    fn write_target(&mut self, t: &Target, live: bool) -> Result<(), String> {
        let now = Instant::now();
        let mut fresh: BTreeMap<String, (ManifestEntry, Instant)> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut clash = None;
        for seg in &t.segments {
            match self.hash(seg) {
                Ok(entry) => {
                    if fresh.get(&seg.key).is_some_and(|(old, _)| *old != entry) {
                        clash = Some(seg.key.clone());
                    }
                    fresh.insert(seg.key.clone(), (entry, now));
                }
                Err(e) => errors.push(e),
            }
        }
        if let Some(key) = clash {
            if t.combined {
                // Keys are last path components, so renditions that reuse file
                // names cannot share a manifest; theirs are per rendition.
                if self.written.insert(t.out.clone(), Vec::new()).is_none() {
                    eprintln!(
                        "shoal-manifest: not writing {}: renditions reuse the segment name {key}; use the per-rendition manifests (docs/PROTECT.md)",
                        t.out.display()
                    );
                }
                return Ok(());
            }
            errors.push(format!(
                "{}: key {key} names two different contents (segment file names must be unique within a manifest)",
                t.out.display()
            ));
            return Err(errors.join("\n  "));
        }
        if !errors.is_empty() && !live {
            return Err(errors.join("\n  "));
        }
        let mut merged = fresh;
        if live {
            // Keep what left the playlist for the grace period: players that loaded
            // the previous playlist may still be fetching it from peers.
            if let Some(prev) = self.listed.get(&t.out) {
                for (k, (e, seen)) in prev {
                    if !merged.contains_key(k) && now.duration_since(*seen) <= self.grace {
                        merged.insert(k.clone(), (e.clone(), *seen));
                    }
                }
            }
        }
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            chunk_size: CHUNK_SIZE as u32,
            entries: merged
                .iter()
                .map(|(k, (e, _))| (k.clone(), e.clone()))
                .collect(),
        };
        self.listed.insert(t.out.clone(), merged);
        if manifest.entries.len() > MAX_MANIFEST_ENTRIES {
            return Err(format!(
                "{}: {} segments, above the {MAX_MANIFEST_ENTRIES} limit",
                t.out.display(),
                manifest.entries.len()
            ));
        }
        let text = manifest.to_text();
        if text.len() > MAX_MANIFEST_BYTES - 200 {
            return Err(format!(
                "{}: manifest would exceed {MAX_MANIFEST_BYTES} bytes; use --no-chunk-hashes or shorter renditions",
                t.out.display()
            ));
        }
        let signed = sign_manifest(text.as_bytes(), &self.secret)
            .map_err(|e| format!("{}: {e}", t.out.display()))?;
        // Never publish something a player would reject.
        Manifest::parse_signed(&signed, &self.public)
            .map_err(|e| format!("{}: self-check failed: {e}", t.out.display()))?;
        if self.written.get(&t.out) != Some(&signed) {
            write_atomically(&t.out, &signed).map_err(|e| format!("{}: {e}", t.out.display()))?;
            eprintln!(
                "shoal-manifest: wrote {} ({} segments)",
                t.out.display(),
                manifest.entries.len()
            );
            self.written.insert(t.out.clone(), signed);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n  "))
        }
    }
}
