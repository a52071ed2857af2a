//! `shoal-manifest`: makes signed integrity manifests (docs/MANIFEST.md) for an HLS or
//! DASH output folder. Usage and layout decisions: docs/PROTECT.md.
//!
//! Invariants: every manifest written has been produced by `Manifest::to_text`, signed by
//! `sign_manifest` and checked with `parse_signed` before an atomic rename puts it in
//! place, so a reader never sees a partial or unverifiable file. Only files that a playlist
//! references are hashed, and only inside the folder given on the command line.
//!
//! Parsing is the ecosystem's: clap for the arguments, m3u8-rs for HLS playlists, roxmltree
//! for MPDs; DASH segment addressing is the library's `shoal::dash`.

#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(native::main());
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use clap::{Parser, Subcommand};
    use shoal::dash::{self, TemplateVars, TimelineEntry};
    use shoal::integrity::{
        format_public_key, manifest_key, public_key_of, sha256, sign_manifest, Manifest,
        ManifestEntry, MANIFEST_VERSION, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES,
    };
    use shoal::types::ByteRange;
    use shoal::wire::CHUNK_SIZE;
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::fs;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant, SystemTime};

    /// Makes and checks signed integrity manifests for HLS and DASH outputs
    /// (docs/PROTECT.md).
    #[derive(Parser)]
    #[command(
        name = "shoal-manifest",
        version,
        after_help = "Exit status: 0 success, 1 failure (I/O, playlists, signature), 2 usage error."
    )]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Writes a new Ed25519 secret key and prints its public key.
        ///
        /// KEYFILE is created with mode 0600 and holds 64 hex digits; the printed public key
        /// (`ed25519:<base64>`) goes into the player's configuration.
        Keygen {
            /// Where to write the secret key.
            #[arg(long, value_name = "KEYFILE")]
            out: PathBuf,
            /// Replace KEYFILE if it exists.
            #[arg(long)]
            force: bool,
        },
        /// Prints the public key of KEYFILE.
        Pubkey {
            /// The secret key file keygen wrote.
            #[arg(long, value_name = "KEYFILE")]
            key: PathBuf,
        },
        /// Writes a signed manifest beside every playlist in DIR.
        ///
        /// `<media playlist>.shoal` for each HLS media playlist, `<master>.shoal` for each
        /// HLS master, `<mpd>.shoal` and `<mpd>.<representation id>.shoal` for each DASH
        /// MPD. With --watch, segments that left the playlists stay listed for --grace.
        Sign {
            /// The secret key file keygen wrote.
            #[arg(long, value_name = "KEYFILE")]
            key: PathBuf,
            /// Rescan every --interval and rewrite changed manifests atomically.
            #[arg(long)]
            watch: bool,
            /// Seconds between scans with --watch (at least 0.05).
            #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
            interval: Duration,
            /// Seconds a segment that left the playlists stays listed with --watch.
            #[arg(long, value_name = "SECS", default_value = "60", value_parser = seconds)]
            grace: Duration,
            /// Only whole-segment hashes (smaller manifests, bad peers caught later).
            #[arg(long)]
            no_chunk_hashes: bool,
            /// The packager's output folder (playlists with relative URIs).
            dir: PathBuf,
        },
        /// Checks MANIFEST's signature, and with --dir the files it lists.
        Verify {
            /// `ed25519:<base64>`, as keygen prints it.
            #[arg(long, value_name = "KEY", value_parser = public_key)]
            public_key: [u8; 32],
            /// The `.shoal` file to check.
            manifest: PathBuf,
            /// Also check every entry against its file in DIR (whole and per chunk).
            #[arg(long, value_name = "DIR")]
            dir: Option<PathBuf>,
        },
    }

    fn seconds(v: &str) -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("not a number of seconds: {v}"))
    }

    fn public_key(v: &str) -> Result<[u8; 32], String> {
        shoal::integrity::parse_public_key(v).map_err(|e| e.to_string())
    }

    /// Exit status of a failure that is not a usage error (clap exits with 2 for those).
    const EXIT_FAIL: i32 = 1;
    /// Bound on the folder walk, so a symlink loop or a huge tree cannot run forever.
    const MAX_DEPTH: usize = 8;
    const MAX_PLAYLIST_BYTES: u64 = 64 * 1024 * 1024;

    pub fn main() -> i32 {
        let result = match Cli::parse().command {
            Command::Keygen { out, force } => keygen(&out, force),
            Command::Pubkey { key } => pubkey(&key),
            Command::Sign {
                key,
                watch,
                interval,
                grace,
                no_chunk_hashes,
                dir,
            } => sign(&key, watch, interval, grace, !no_chunk_hashes, &dir),
            Command::Verify {
                public_key,
                manifest,
                dir,
            } => verify(&public_key, &manifest, dir.as_deref()),
        };
        match result {
            Ok(()) => 0,
            Err(Failure(m)) => {
                eprintln!("shoal-manifest: error: {m}");
                EXIT_FAIL
            }
        }
    }

    struct Failure(String);

    fn fail<T>(m: impl Into<String>) -> Result<T, Failure> {
        Err(Failure(m.into()))
    }

    // ---- keys ----

    fn keygen(out: &Path, force: bool) -> Result<(), Failure> {
        let mut seed = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut seed) {
            return fail(format!("no OS randomness: {e}"));
        }
        let mut open = fs::OpenOptions::new();
        open.write(true);
        if force {
            open.create(true).truncate(true);
        } else {
            open.create_new(true);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        let mut f = open.open(out).map_err(|e| {
            Failure(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists (use --force to replace it)", out.display())
            } else {
                format!("cannot create {}: {e}", out.display())
            })
        })?;
        f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Failure(format!("cannot write {}: {e}", out.display())))?;
        println!("{}", format_public_key(&public_key_of(&seed)));
        Ok(())
    }

    fn read_secret(path: &Path) -> Result<[u8; 32], Failure> {
        let text = fs::read_to_string(path)
            .map_err(|e| Failure(format!("cannot read key {}: {e}", path.display())))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            Failure(format!(
                "{} is not a shoal-manifest key (64 hex digits)",
                path.display()
            ))
        })?;
        Ok(seed)
    }

    fn pubkey(key: &Path) -> Result<(), Failure> {
        let seed = read_secret(key)?;
        println!("{}", format_public_key(&public_key_of(&seed)));
        Ok(())
    }

    // ---- verify ----

    fn verify(key: &[u8; 32], manifest: &Path, dir: Option<&Path>) -> Result<(), Failure> {
        let shown = manifest.display();
        let bytes = fs::read(manifest).map_err(|e| Failure(format!("cannot read {shown}: {e}")))?;
        let m =
            Manifest::parse_signed(&bytes, key).map_err(|e| Failure(format!("{shown}: {e}")))?;
        let mut checked = 0usize;
        if let Some(dir) = dir {
            let mut keys: Vec<&String> = m.entries.keys().collect();
            keys.sort();
            for k in keys {
                let Some(e) = m.entries.get(k) else { continue };
                let (name, range) = split_key(k);
                let data = read_range(&dir.join(percent_decode(name)?), range)
                    .map_err(|e| Failure(format!("{k}: {e}")))?;
                shoal::integrity::verify_against(e, &data)
                    .map_err(|err| Failure(format!("{k}: {err}")))?;
                for (i, c) in data.chunks(CHUNK_SIZE).enumerate() {
                    let i = u32::try_from(i).unwrap_or(u32::MAX);
                    if shoal::integrity::verify_chunk(e, m.chunk_size, i, c) == Some(false) {
                        return fail(format!("{k}: chunk {i} does not match"));
                    }
                }
                checked += 1;
            }
        }
        println!(
            "{shown}: signature ok, {} entries{}",
            m.entries.len(),
            if dir.is_some() {
                format!(", {checked} files match")
            } else {
                String::new()
            }
        );
        Ok(())
    }

    /// `name@start-end` → (`name`, range); keys without a valid suffix are whole files.
    fn split_key(key: &str) -> (&str, Option<ByteRange>) {
        if let Some((name, r)) = key.rsplit_once('@') {
            if let Some((a, b)) = r.split_once('-') {
                if let (Ok(start), Ok(end)) = (a.parse(), b.parse()) {
                    return (name, Some(ByteRange { start, end }));
                }
            }
        }
        (key, None)
    }

    // ---- sign ----

    /// One segment as a playlist references it.
    #[derive(Clone, Debug)]
    struct SegRef {
        key: String,
        path: PathBuf,
        range: Option<ByteRange>,
    }

    /// One manifest to write: its file and the segments it covers.
    struct Target {
        out: PathBuf,
        segments: Vec<SegRef>,
        /// Covers several renditions (HLS master, whole MPD): skipped, not an error, when
        /// renditions reuse segment names.
        combined: bool,
    }

    #[derive(Clone)]
    struct Cached {
        len: u64,
        mtime: Option<SystemTime>,
        entry: ManifestEntry,
    }

    /// State kept across scans in --watch mode.
    struct Signer {
        root: PathBuf,
        secret: [u8; 32],
        public: [u8; 32],
        chunk_hashes: bool,
        grace: Duration,
        /// Hashes by (file, range), revalidated by length and mtime.
        cache: HashMap<(PathBuf, Option<ByteRange>), Cached>,
        /// Per manifest: entries and when each was last listed by a playlist.
        listed: HashMap<PathBuf, BTreeMap<String, (ManifestEntry, Instant)>>,
        /// Last text written per manifest, to skip unchanged rewrites.
        written: HashMap<PathBuf, Vec<u8>>,
    }

    fn sign(
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
            let meta =
                fs::metadata(&seg.path).map_err(|e| format!("{}: {e}", seg.path.display()))?;
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
                write_atomically(&t.out, &signed)
                    .map_err(|e| format!("{}: {e}", t.out.display()))?;
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

    fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }

    fn find_playlists(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if depth > MAX_DEPTH {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                find_playlists(&p, depth + 1, out);
            } else if ft.is_file() {
                let lower = name.to_ascii_lowercase();
                if lower.ends_with(".m3u8") || lower.ends_with(".mpd") {
                    out.push(p);
                }
            }
        }
    }

    fn read_playlist(p: &Path) -> Result<String, String> {
        let meta = fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.len() > MAX_PLAYLIST_BYTES {
            return Err(format!("{}: playlist larger than 64 MiB", p.display()));
        }
        let bytes = fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", p.display()))
    }

    fn read_range(path: &Path, range: Option<ByteRange>) -> Result<Vec<u8>, String> {
        let mut f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = f
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        let Some(r) = range else {
            if len > shoal::integrity::MAX_SEGMENT_SIZE {
                return Err(format!("{}: larger than 256 MiB", path.display()));
            }
            let mut v = Vec::new();
            f.read_to_end(&mut v)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(v);
        };
        if r.end < r.start || r.end > len {
            return Err(format!(
                "{}: byte range {}-{} outside the file ({len} bytes)",
                path.display(),
                r.start,
                r.end
            ));
        }
        let n = r.end - r.start;
        if n > shoal::integrity::MAX_SEGMENT_SIZE {
            return Err(format!(
                "{}: byte range larger than 256 MiB",
                path.display()
            ));
        }
        f.seek(SeekFrom::Start(r.start))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut v = vec![0u8; usize::try_from(n).unwrap_or(0)];
        f.read_exact(&mut v)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(v)
    }

    fn percent_decode(s: &str) -> Result<String, Failure> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            if c == b'%' {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => return fail(format!("bad percent-encoding in {s}")),
                }
            }
            out.push(c);
            i += 1;
        }
        String::from_utf8(out).map_err(|_| Failure(format!("{s}: not UTF-8 once decoded")))
    }

    /// The local file a relative URI in `playlist` names. Absolute URLs and paths cannot
    /// be mapped to this folder and are reported.
    fn local_path(playlist: &Path, uri: &str) -> Result<PathBuf, String> {
        let path = uri.split('#').next().unwrap_or("");
        let path = path.split('?').next().unwrap_or("");
        if path.contains("://") || path.starts_with('/') || path.is_empty() {
            return Err(format!(
                "cannot map URI {uri:?} to a local file (only relative URIs)"
            ));
        }
        let decoded = percent_decode(path).map_err(|Failure(m)| m)?;
        let dir = playlist.parent().unwrap_or(Path::new("."));
        Ok(dir.join(decoded))
    }

    // ---- HLS ----

    /// The segments of the media playlist `uri` that the master playlist `master` names.
    fn rendition_segments(master: &Path, uri: &str) -> Result<Vec<SegRef>, String> {
        let path = local_path(master, uri).map_err(|e| format!("{}: {e}", master.display()))?;
        let text = read_playlist(&path)?;
        match parse_hls(&path, &text)? {
            m3u8_rs::Playlist::MediaPlaylist(m) => hls_media_segments(&path, &m),
            m3u8_rs::Playlist::MasterPlaylist(_) => Err(format!(
                "{}: names another master playlist, {uri}",
                master.display()
            )),
        }
    }

    /// Parses an HLS playlist with m3u8-rs. Its parser stops without an error at a line it
    /// cannot read, so input left over is reported rather than silently dropped.
    fn parse_hls(path: &Path, text: &str) -> Result<m3u8_rs::Playlist, String> {
        let ctx = |e: String| format!("{}: {e}", path.display());
        if !text.starts_with("#EXTM3U") {
            return Err(ctx("not an HLS playlist (no #EXTM3U)".into()));
        }
        let Ok((rest, playlist)) = m3u8_rs::parse_playlist(text.as_bytes()) else {
            return Err(ctx("not a valid HLS playlist".into()));
        };
        let rest = String::from_utf8_lossy(rest);
        match rest.lines().map(str::trim).find(|l| !l.is_empty()) {
            None => Ok(playlist),
            Some(line) => Err(ctx(format!("cannot parse the line {line:?}"))),
        }
    }

    /// Media playlists a master references: variant and I-frame stream URIs, and the URIs
    /// of `#EXT-X-MEDIA` renditions; each once, in the playlist's order per kind.
    fn master_playlist_uris(m: &m3u8_rs::MasterPlaylist) -> Vec<String> {
        let variants = m.variants.iter().map(|v| v.uri.trim());
        let media = m.alternatives.iter().filter_map(|a| a.uri.as_deref());
        let mut seen = HashSet::new();
        variants
            .chain(media.map(str::trim))
            .filter(|u| !u.is_empty() && seen.insert(*u))
            .map(str::to_owned)
            .collect()
    }

    /// `n[@o]`; without `o` the range continues where the previous one of the same
    /// resource ended.
    fn hls_range(
        r: &m3u8_rs::ByteRange,
        uri: &str,
        last_end: &HashMap<String, u64>,
    ) -> Result<ByteRange, String> {
        let start = match r.offset {
            Some(o) => o,
            None => last_end.get(uri).copied().ok_or_else(|| {
                format!(
                    "BYTERANGE {} without offset and no previous range of {uri}",
                    r.length
                )
            })?,
        };
        let end = start
            .checked_add(r.length)
            .ok_or_else(|| format!("BYTERANGE {}@{start} overflows", r.length))?;
        Ok(ByteRange { start, end })
    }

    /// Segments of an HLS media playlist: `#EXT-X-MAP` init segments and media segments
    /// (with `#EXT-X-BYTERANGE`). LL-HLS parts are not listed: hls.js loads them itself,
    /// never from peers, and the segment they make up is listed once complete.
    fn hls_media_segments(
        playlist: &Path,
        m: &m3u8_rs::MediaPlaylist,
    ) -> Result<Vec<SegRef>, String> {
        let ctx = |e: String| format!("{}: {e}", playlist.display());
        let mut out: Vec<SegRef> = Vec::new();
        let mut seen: HashSet<(String, PathBuf)> = HashSet::new();
        let mut last_end: HashMap<String, u64> = HashMap::new();
        let mut push = |uri: &str, range: Option<ByteRange>| {
            let path = local_path(playlist, uri).map_err(ctx)?;
            let key = manifest_key(uri, range);
            if seen.insert((key.clone(), path.clone())) {
                out.push(SegRef { key, path, range });
            }
            Ok::<(), String>(())
        };
        for seg in &m.segments {
            if let Some(map) = &seg.map {
                let uri = map.uri.trim();
                // A map's range does not start a chain of ranges.
                let range = map
                    .byte_range
                    .as_ref()
                    .map(|r| hls_range(r, uri, &last_end))
                    .transpose()
                    .map_err(ctx)?;
                push(uri, range)?;
            }
            let uri = seg.uri.trim();
            let range = seg
                .byte_range
                .as_ref()
                .map(|r| hls_range(r, uri, &last_end))
                .transpose()
                .map_err(ctx)?;
            if let Some(r) = range {
                last_end.insert(uri.to_owned(), r.end);
            }
            push(uri, range)?;
        }
        Ok(out)
    }

    // ---- DASH ----

    type Node<'a> = roxmltree::Node<'a, 'a>;

    fn child<'a>(n: Node<'a>, name: &str) -> Option<Node<'a>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
    }

    fn children<'a>(n: Node<'a>, name: &'a str) -> impl Iterator<Item = Node<'a>> + 'a {
        n.children()
            .filter(move |c| c.is_element() && c.tag_name().name() == name)
    }

    fn base_url(n: Node<'_>) -> &str {
        child(n, "BaseURL")
            .and_then(|b| b.text())
            .map(str::trim)
            .unwrap_or("")
    }

    fn sanitize(id: &str) -> String {
        id.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// One target per Representation and one for the whole MPD.
    fn dash_targets(mpd_path: &Path, text: &str) -> Result<Vec<Target>, String> {
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(text, options)
            .map_err(|e| format!("not a valid MPD: {e}"))?;
        let mpd = doc.root_element();
        if mpd.tag_name().name() != "MPD" {
            return Err("no MPD root element".into());
        }
        let mut targets = Vec::new();
        let mut all = Vec::new();
        for (pi, period) in children(mpd, "Period").enumerate() {
            let p_base = format!("{}{}", base_url(mpd), base_url(period));
            for aset in children(period, "AdaptationSet") {
                let a_base = format!("{p_base}{}", base_url(aset));
                for rep in children(aset, "Representation") {
                    let id = rep.attribute("id").unwrap_or("");
                    let base = format!("{a_base}{}", base_url(rep));
                    let segs = representation_segments(mpd_path, [period, aset, rep], &base)
                        .map_err(|e| format!("Representation {id:?}: {e}"))?;
                    let suffix = if pi == 0 {
                        format!(".{}.shoal", sanitize(id))
                    } else {
                        format!(".p{pi}.{}.shoal", sanitize(id))
                    };
                    all.extend(segs.iter().cloned());
                    targets.push(Target {
                        out: with_suffix(mpd_path, &suffix),
                        segments: segs,
                        combined: false,
                    });
                }
            }
        }
        targets.push(Target {
            out: with_suffix(mpd_path, ".shoal"),
            segments: all,
            combined: true,
        });
        Ok(targets)
    }

    /// The `name` elements (SegmentTemplate, SegmentList, SegmentBase) at Period,
    /// AdaptationSet and Representation level, outermost first, and their attributes
    /// merged (the innermost wins). `None` when no level has one.
    fn inherited<'a>(
        levels: [Node<'a>; 3],
        name: &str,
    ) -> Option<(HashMap<&'a str, &'a str>, Vec<Node<'a>>)> {
        let found: Vec<Node<'a>> = levels.iter().filter_map(|l| child(*l, name)).collect();
        if found.is_empty() {
            return None;
        }
        let attrs = found
            .iter()
            .flat_map(|n| n.attributes().map(|a| (a.name(), a.value())))
            .collect();
        Some((attrs, found))
    }

    fn number_attr<T: std::str::FromStr>(n: Node<'_>, k: &str) -> Result<Option<T>, String> {
        n.attribute(k)
            .map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("bad {}@{k} {v:?}", n.tag_name().name()))
            })
            .transpose()
    }

    fn representation_segments(
        mpd_path: &Path,
        levels: [Node<'_>; 3],
        base: &str,
    ) -> Result<Vec<SegRef>, String> {
        let rep = levels[2];
        let vars = TemplateVars {
            representation_id: rep.attribute("id").unwrap_or(""),
            bandwidth: rep
                .attribute("bandwidth")
                .and_then(|b| b.trim().parse().ok()),
        };
        let expand =
            |t: &str, number, time| dash::expand_template(t, &vars, number, time).map_err(|e| e.0);
        let range = |s: &str| dash::parse_range(s).map_err(|e| e.0);
        let mut out = Vec::new();
        let push = |rel: &str, range: Option<ByteRange>, out: &mut Vec<SegRef>| {
            let uri = format!("{base}{rel}");
            let path = local_path(mpd_path, &uri)?;
            out.push(SegRef {
                key: manifest_key(&uri, range),
                path,
                range,
            });
            Ok::<(), String>(())
        };
        if let Some((attrs, nodes)) = inherited(levels, "SegmentTemplate") {
            if let Some(init) = attrs.get("initialization") {
                push(&expand(init, None, None)?, None, &mut out)?;
            }
            let media = attrs.get("media").ok_or("SegmentTemplate without media")?;
            let start_number: u64 = match attrs.get("startNumber") {
                None => 1,
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad SegmentTemplate@startNumber {v:?}"))?,
            };
            if let Some(tl) = nodes
                .iter()
                .rev()
                .find_map(|n| child(*n, "SegmentTimeline"))
            {
                let entries = children(tl, "S")
                    .map(|s| {
                        Ok(TimelineEntry {
                            t: number_attr(s, "t")?,
                            d: number_attr(s, "d")?.ok_or("S without d")?,
                            r: number_attr(s, "r")?.unwrap_or(0),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                // No end: an open-ended repeat (S@r = -1) must be bounded by the next S@t.
                let segs = dash::timeline(&entries, start_number, None, MAX_MANIFEST_ENTRIES)
                    .map_err(|e| e.0)?;
                for s in segs {
                    push(
                        &expand(media, Some(s.number), Some(s.time))?,
                        None,
                        &mut out,
                    )?;
                }
            } else {
                // Duration-based $Number$: take the numbers whose files exist, from
                // startNumber on (a live window may have started later).
                if media.contains("$Time") {
                    return Err("$Time$ without SegmentTimeline".into());
                }
                let mut number = start_number;
                let mut misses = 0;
                while misses < 1000 && out.len() <= MAX_MANIFEST_ENTRIES {
                    let rel = expand(media, Some(number), None)?;
                    if local_path(mpd_path, &format!("{base}{rel}"))?.is_file() {
                        push(&rel, None, &mut out)?;
                        misses = 0;
                    } else {
                        misses += 1;
                    }
                    number = number.saturating_add(1);
                }
            }
        } else if let Some((_, nodes)) = inherited(levels, "SegmentList") {
            let list = *nodes.last().ok_or("empty SegmentList")?;
            if let Some(init) = child(list, "Initialization") {
                let r = init.attribute("range").map(range).transpose()?;
                push(init.attribute("sourceURL").unwrap_or(""), r, &mut out)?;
            }
            for su in children(list, "SegmentURL") {
                let r = su.attribute("mediaRange").map(range).transpose()?;
                push(su.attribute("media").unwrap_or(""), r, &mut out)?;
            }
        } else if let Some((attrs, nodes)) = inherited(levels, "SegmentBase") {
            let sb = *nodes.last().ok_or("empty SegmentBase")?;
            if let Some(r) = child(sb, "Initialization")
                .and_then(|i| i.attribute("range"))
                .map(range)
                .transpose()?
            {
                push("", Some(r), &mut out)?;
            }
            let index = range(
                attrs
                    .get("indexRange")
                    .ok_or("SegmentBase without indexRange")?,
            )?;
            push("", Some(index), &mut out)?;
            let sidx = read_range(&local_path(mpd_path, base)?, Some(index))?;
            for r in dash::sidx_ranges(&sidx, index, MAX_MANIFEST_ENTRIES).map_err(|e| e.0)? {
                push("", Some(r), &mut out)?;
            }
        } else {
            // A single-segment Representation: the BaseURL is the media.
            push("", None, &mut out)?;
        }
        Ok(out)
    }
}
