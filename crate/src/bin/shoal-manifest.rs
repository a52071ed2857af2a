//! `shoal-manifest`: makes signed integrity manifests (docs/MANIFEST.md) for an HLS or
//! DASH output folder. Usage and layout decisions: docs/PROTECT.md.
//!
//! Invariants: every manifest written has been produced by `Manifest::to_text`, signed by
//! `sign_manifest` and checked with `parse_signed` before an atomic rename puts it in
//! place, so a reader never sees a partial or unverifiable file. Only files that a playlist
//! references are hashed, and only inside the folder given on the command line.

#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(native::main());
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use shoal::integrity::{
        format_public_key, manifest_key, public_key_of, sha256, sign_manifest, Manifest,
        ManifestEntry, MANIFEST_VERSION, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES,
    };
    use shoal::types::ByteRange;
    use shoal::wire::CHUNK_SIZE;
    use std::collections::{BTreeMap, HashMap};
    use std::fs;
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant, SystemTime};

    const USAGE: &str = "\
usage:
  shoal-manifest keygen --out KEYFILE [--force]
      Writes a new Ed25519 secret key to KEYFILE (mode 0600) and prints the public key
      (`ed25519:<base64>`) to configure in the player.
  shoal-manifest pubkey --key KEYFILE
      Prints the public key of KEYFILE.
  shoal-manifest sign --key KEYFILE [--watch] [--interval SECS] [--grace SECS]
                      [--no-chunk-hashes] DIR
      Writes a signed manifest beside every playlist in DIR: `<media playlist>.shoal` for
      each HLS media playlist, `<master>.shoal` for each HLS master, `<mpd>.shoal` and
      `<mpd>.<representation id>.shoal` for each DASH MPD. With --watch, rescans every
      SECS (default 1) and rewrites changed manifests atomically; segments that left the
      playlists stay listed for --grace SECS (default 60).
  shoal-manifest verify --public-key KEY MANIFEST [--dir DIR]
      Checks MANIFEST's signature; with --dir, also that every entry's file in DIR matches.
exit status: 0 success, 1 failure (I/O, playlists, signature), 2 usage error";

    /// Exit statuses.
    const EXIT_FAIL: i32 = 1;
    const EXIT_USAGE: i32 = 2;
    /// Bound on the folder walk, so a symlink loop or a huge tree cannot run forever.
    const MAX_DEPTH: usize = 8;
    const MAX_PLAYLIST_BYTES: u64 = 64 * 1024 * 1024;

    pub fn main() -> i32 {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let result = match args.first().map(String::as_str) {
            Some("keygen") => keygen(&args[1..]),
            Some("pubkey") => pubkey(&args[1..]),
            Some("sign") => sign(&args[1..]),
            Some("verify") => verify(&args[1..]),
            Some("-h" | "--help" | "help") => {
                println!("{USAGE}");
                return 0;
            }
            _ => Err(Failure::Usage("expected a command".into())),
        };
        match result {
            Ok(()) => 0,
            Err(Failure::Usage(m)) => {
                eprintln!("shoal-manifest: {m}\n{USAGE}");
                EXIT_USAGE
            }
            Err(Failure::Fail(m)) => {
                eprintln!("shoal-manifest: error: {m}");
                EXIT_FAIL
            }
        }
    }

    enum Failure {
        Usage(String),
        Fail(String),
    }

    fn fail<T>(m: impl Into<String>) -> Result<T, Failure> {
        Err(Failure::Fail(m.into()))
    }

    /// Minimal option parsing: `--flag`, `--opt VALUE`, positionals.
    struct Opts {
        flags: Vec<String>,
        values: HashMap<String, String>,
        positional: Vec<String>,
    }

    fn parse_opts(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Opts, Failure> {
        let mut o = Opts {
            flags: Vec::new(),
            values: HashMap::new(),
            positional: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if with_value.contains(&a.as_str()) {
                let v = it
                    .next()
                    .ok_or_else(|| Failure::Usage(format!("{a} needs a value")))?;
                o.values.insert(a.clone(), v.clone());
            } else if flags.contains(&a.as_str()) {
                o.flags.push(a.clone());
            } else if a.starts_with("--") {
                return Err(Failure::Usage(format!("unknown option {a}")));
            } else {
                o.positional.push(a.clone());
            }
        }
        Ok(o)
    }

    fn required<'a>(o: &'a Opts, name: &str) -> Result<&'a str, Failure> {
        o.values
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Failure::Usage(format!("{name} is required")))
    }

    fn seconds(o: &Opts, name: &str, default: f64) -> Result<Duration, Failure> {
        match o.values.get(name) {
            None => Ok(Duration::from_secs_f64(default)),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| Failure::Usage(format!("{name}: not a number of seconds: {v}"))),
        }
    }

    // ---- keys ----

    fn keygen(args: &[String]) -> Result<(), Failure> {
        let o = parse_opts(args, &["--out"], &["--force"])?;
        if !o.positional.is_empty() {
            return Err(Failure::Usage("keygen takes no positional argument".into()));
        }
        let out = Path::new(required(&o, "--out")?);
        let mut seed = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut seed) {
            return fail(format!("no OS randomness: {e}"));
        }
        let mut open = fs::OpenOptions::new();
        open.write(true);
        if o.flags.iter().any(|f| f == "--force") {
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
            Failure::Fail(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!("{} exists (use --force to replace it)", out.display())
            } else {
                format!("cannot create {}: {e}", out.display())
            })
        })?;
        f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Failure::Fail(format!("cannot write {}: {e}", out.display())))?;
        println!("{}", format_public_key(&public_key_of(&seed)));
        Ok(())
    }

    fn read_secret(path: &Path) -> Result<[u8; 32], Failure> {
        let text = fs::read_to_string(path)
            .map_err(|e| Failure::Fail(format!("cannot read key {}: {e}", path.display())))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| {
            Failure::Fail(format!(
                "{} is not a shoal-manifest key (64 hex digits)",
                path.display()
            ))
        })?;
        Ok(seed)
    }

    fn pubkey(args: &[String]) -> Result<(), Failure> {
        let o = parse_opts(args, &["--key"], &[])?;
        let seed = read_secret(Path::new(required(&o, "--key")?))?;
        println!("{}", format_public_key(&public_key_of(&seed)));
        Ok(())
    }

    // ---- verify ----

    fn verify(args: &[String]) -> Result<(), Failure> {
        let o = parse_opts(args, &["--public-key", "--dir"], &[])?;
        let [manifest] = o.positional.as_slice() else {
            return Err(Failure::Usage("verify takes one MANIFEST".into()));
        };
        let key = shoal::integrity::parse_public_key(required(&o, "--public-key")?)
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let bytes = fs::read(manifest)
            .map_err(|e| Failure::Fail(format!("cannot read {manifest}: {e}")))?;
        let m = Manifest::parse_signed(&bytes, &key)
            .map_err(|e| Failure::Fail(format!("{manifest}: {e}")))?;
        let mut checked = 0usize;
        if let Some(dir) = o.values.get("--dir") {
            let mut keys: Vec<&String> = m.entries.keys().collect();
            keys.sort();
            for k in keys {
                let Some(e) = m.entries.get(k) else { continue };
                let (name, range) = split_key(k);
                let data = read_range(&Path::new(dir).join(percent_decode(name)?), range)
                    .map_err(|e| Failure::Fail(format!("{k}: {e}")))?;
                shoal::integrity::verify_against(e, &data)
                    .map_err(|err| Failure::Fail(format!("{k}: {err}")))?;
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
            "{manifest}: signature ok, {} entries{}",
            m.entries.len(),
            if o.values.contains_key("--dir") {
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

    fn sign(args: &[String]) -> Result<(), Failure> {
        let o = parse_opts(
            args,
            &["--key", "--interval", "--grace"],
            &["--watch", "--no-chunk-hashes"],
        )?;
        let [dir] = o.positional.as_slice() else {
            return Err(Failure::Usage("sign takes one DIR".into()));
        };
        let secret = read_secret(Path::new(required(&o, "--key")?))?;
        let watch = o.flags.iter().any(|f| f == "--watch");
        let interval = seconds(&o, "--interval", 1.0)?.max(Duration::from_millis(50));
        let root = PathBuf::from(dir);
        if !root.is_dir() {
            return fail(format!("{dir} is not a directory"));
        }
        let mut s = Signer {
            root,
            secret,
            public: public_key_of(&secret),
            chunk_hashes: !o.flags.iter().any(|f| f == "--no-chunk-hashes"),
            grace: seconds(&o, "--grace", 60.0)?,
            cache: HashMap::new(),
            listed: HashMap::new(),
            written: HashMap::new(),
        };
        if !watch {
            let n = s.scan(false)?;
            if n == 0 {
                return fail(format!("no HLS (.m3u8) or DASH (.mpd) playlist in {dir}"));
            }
            return Ok(());
        }
        eprintln!(
            "shoal-manifest: watching {dir} every {:?} (public key {})",
            interval,
            format_public_key(&s.public)
        );
        loop {
            // A scan can fail while the packager is mid-write; the previous manifests
            // stay in place and the next scan tries again.
            if let Err(Failure::Fail(m) | Failure::Usage(m)) = s.scan(true) {
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
                } else if is_hls_master(&text) {
                    let mut all = Vec::new();
                    for uri in master_playlist_uris(&text) {
                        match local_path(p, &uri) {
                            Ok(mp) => {
                                match read_playlist(&mp).and_then(|t| hls_media_segments(&mp, &t)) {
                                    Ok(segs) => all.extend(segs),
                                    Err(e) => errors.push(e),
                                }
                            }
                            Err(e) => errors.push(format!("{}: {e}", p.display())),
                        }
                    }
                    targets.push(Target {
                        out: with_suffix(p, ".shoal"),
                        segments: all,
                        combined: true,
                    });
                } else {
                    hls_media.push((p.clone(), text));
                }
            }
            for (p, text) in hls_media {
                match hls_media_segments(&p, &text) {
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
        String::from_utf8(out).map_err(|_| Failure::Fail(format!("{s}: not UTF-8 once decoded")))
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
        let decoded = percent_decode(path).map_err(|f| match f {
            Failure::Fail(m) | Failure::Usage(m) => m,
        })?;
        let dir = playlist.parent().unwrap_or(Path::new("."));
        Ok(dir.join(decoded))
    }

    // ---- HLS ----

    fn is_hls_master(text: &str) -> bool {
        text.lines().any(|l| {
            l.starts_with("#EXT-X-STREAM-INF") || l.starts_with("#EXT-X-I-FRAME-STREAM-INF")
        }) && !text.lines().any(|l| l.starts_with("#EXTINF"))
    }

    /// Media playlists a master references: variant URIs (the line after
    /// `#EXT-X-STREAM-INF`), and the URI attributes of `#EXT-X-MEDIA` and
    /// `#EXT-X-I-FRAME-STREAM-INF`.
    fn master_playlist_uris(text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(attrs) = line
                .strip_prefix("#EXT-X-MEDIA:")
                .or_else(|| line.strip_prefix("#EXT-X-I-FRAME-STREAM-INF:"))
            {
                if let Some(u) = attributes(attrs).get("URI") {
                    out.push(u.clone());
                }
            } else if !line.is_empty() && !line.starts_with('#') {
                out.push(line.trim().to_owned());
            }
        }
        out.dedup();
        let mut seen = std::collections::HashSet::new();
        out.retain(|u| seen.insert(u.clone()));
        out
    }

    /// `KEY=VALUE,KEY="quoted,value"` (HLS attribute list).
    fn attributes(s: &str) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let mut rest = s;
        while !rest.is_empty() {
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let (value, next) = if let Some(q) = after.strip_prefix('"') {
                match q.split_once('"') {
                    Some((v, n)) => (v, n.strip_prefix(',').unwrap_or(n)),
                    None => (q, ""),
                }
            } else {
                match after.split_once(',') {
                    Some((v, n)) => (v, n),
                    None => (after, ""),
                }
            };
            out.insert(key.trim().to_owned(), value.to_owned());
            rest = next;
        }
        out
    }

    /// `n[@o]`; without `o` the range continues where the previous one of the same
    /// resource ended.
    fn hls_byterange(
        spec: &str,
        uri: &str,
        last_end: &HashMap<String, u64>,
    ) -> Result<ByteRange, String> {
        let (n, o) = match spec.split_once('@') {
            Some((n, o)) => (n, Some(o)),
            None => (spec, None),
        };
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("bad BYTERANGE {spec:?}"))?;
        let start = match o {
            Some(o) => o
                .trim()
                .parse()
                .map_err(|_| format!("bad BYTERANGE {spec:?}"))?,
            None => last_end.get(uri).copied().ok_or_else(|| {
                format!("BYTERANGE {spec:?} without offset and no previous range of {uri}")
            })?,
        };
        let end = start
            .checked_add(n)
            .ok_or_else(|| format!("BYTERANGE {spec:?} overflows"))?;
        Ok(ByteRange { start, end })
    }

    /// Segments of an HLS media playlist: `#EXT-X-MAP` init segments, media segments
    /// (with `#EXT-X-BYTERANGE`), and LL-HLS `#EXT-X-PART`s.
    fn hls_media_segments(playlist: &Path, text: &str) -> Result<Vec<SegRef>, String> {
        let ctx = |e: String| format!("{}: {e}", playlist.display());
        if !text.starts_with("#EXTM3U") {
            return Err(ctx("not an HLS playlist (no #EXTM3U)".into()));
        }
        let mut out: Vec<SegRef> = Vec::new();
        let mut last_end: HashMap<String, u64> = HashMap::new();
        let mut pending_range: Option<String> = None;
        let push = |uri: &str, range: Option<ByteRange>, out: &mut Vec<SegRef>| {
            let path = local_path(playlist, uri).map_err(ctx)?;
            let key = manifest_key(uri, range);
            if !out.iter().any(|s| s.key == key && s.path == path) {
                out.push(SegRef { key, path, range });
            }
            Ok::<(), String>(())
        };
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(spec) = line.strip_prefix("#EXT-X-BYTERANGE:") {
                pending_range = Some(spec.trim().to_owned());
            } else if let Some(attrs) = line
                .strip_prefix("#EXT-X-MAP:")
                .or_else(|| line.strip_prefix("#EXT-X-PART:"))
            {
                let a = attributes(attrs);
                let Some(uri) = a.get("URI") else {
                    return Err(ctx(format!("{line}: no URI")));
                };
                let range = match a.get("BYTERANGE") {
                    Some(spec) => {
                        let r = hls_byterange(spec, uri, &last_end).map_err(ctx)?;
                        // Parts without an offset continue from the previous part; a
                        // map's range does not start a chain.
                        if line.starts_with("#EXT-X-PART:") {
                            last_end.insert(uri.clone(), r.end);
                        }
                        Some(r)
                    }
                    None => None,
                };
                push(uri, range, &mut out)?;
            } else if !line.is_empty() && !line.starts_with('#') {
                let uri = line.trim();
                let range = match pending_range.take() {
                    Some(spec) => {
                        let r = hls_byterange(&spec, uri, &last_end).map_err(ctx)?;
                        last_end.insert(uri.to_owned(), r.end);
                        Some(r)
                    }
                    None => None,
                };
                push(uri, range, &mut out)?;
            }
        }
        Ok(out)
    }

    // ---- DASH ----

    #[derive(Debug, Default, Clone)]
    struct Node {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
        text: String,
    }

    impl Node {
        fn attr(&self, k: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        }
        fn child(&self, name: &str) -> Option<&Node> {
            self.children.iter().find(|c| c.name == name)
        }
        fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
            self.children.iter().filter(move |c| c.name == name)
        }
    }

    fn local_name(n: &str) -> String {
        n.rsplit(':').next().unwrap_or(n).to_owned()
    }

    fn xml_unescape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let Some(semi) = tail.find(';') else {
                out.push_str(tail);
                return out;
            };
            let ent = &tail[1..semi];
            let ch = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => ent
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            match ch {
                Some(c) => out.push(c),
                None => out.push_str(&tail[..=semi]),
            }
            rest = &tail[semi + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A small XML reader, enough for MPDs: elements, attributes, text; skips the
    /// declaration, comments, CDATA markers and DOCTYPE.
    fn parse_xml(s: &str) -> Result<Node, String> {
        let mut stack: Vec<Node> = vec![Node::default()];
        let mut rest = s;
        while !rest.is_empty() {
            let Some(lt) = rest.find('<') else {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&xml_unescape(rest));
                }
                break;
            };
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&xml_unescape(&rest[..lt]));
            }
            rest = &rest[lt..];
            let skip_to = |rest: &str, end: &str| -> Result<usize, String> {
                rest.find(end).map(|i| i + end.len()).ok_or_else(|| {
                    format!("unterminated {}", rest.chars().take(10).collect::<String>())
                })
            };
            if rest.starts_with("<!--") {
                rest = &rest[skip_to(rest, "-->")?..];
            } else if rest.starts_with("<?") {
                rest = &rest[skip_to(rest, "?>")?..];
            } else if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
                let end = cdata.find("]]>").ok_or("unterminated CDATA")?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&cdata[..end]);
                }
                rest = &cdata[end + 3..];
            } else if rest.starts_with("<!") {
                rest = &rest[skip_to(rest, ">")?..];
            } else if let Some(close) = rest.strip_prefix("</") {
                let end = close.find('>').ok_or("unterminated end tag")?;
                let name = local_name(close[..end].trim());
                let node = stack.pop().ok_or("unbalanced end tag")?;
                if node.name != name {
                    return Err(format!("</{name}> closes <{}>", node.name));
                }
                stack
                    .last_mut()
                    .ok_or("unbalanced end tag")?
                    .children
                    .push(node);
                rest = &close[end + 1..];
            } else {
                // Start tag: find its '>' outside quoted attribute values.
                let bytes = rest.as_bytes();
                let mut i = 1;
                let mut quote: Option<u8> = None;
                while let Some(&c) = bytes.get(i) {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (None, b'"' | b'\'') => quote = Some(c),
                        (None, b'>') => break,
                        _ => {}
                    }
                    i += 1;
                }
                if bytes.get(i) != Some(&b'>') {
                    return Err("unterminated start tag".into());
                }
                let inner = &rest[1..i];
                let (inner, self_closing) = match inner.strip_suffix('/') {
                    Some(x) => (x, true),
                    None => (inner, false),
                };
                let name_end = inner
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(inner.len());
                let mut node = Node {
                    name: local_name(&inner[..name_end]),
                    ..Node::default()
                };
                let mut a = inner[name_end..].trim_start();
                while !a.is_empty() {
                    let eq = a.find('=').ok_or("attribute without value")?;
                    let key = local_name(a[..eq].trim());
                    let v = a[eq + 1..].trim_start();
                    let q = v.chars().next().ok_or("attribute without value")?;
                    if q != '"' && q != '\'' {
                        return Err("unquoted attribute value".into());
                    }
                    let close = v[1..].find(q).ok_or("unterminated attribute value")?;
                    node.attrs.push((key, xml_unescape(&v[1..1 + close])));
                    a = v[close + 2..].trim_start();
                }
                rest = &rest[i + 1..];
                if self_closing {
                    stack
                        .last_mut()
                        .ok_or("unbalanced tags")?
                        .children
                        .push(node);
                } else {
                    stack.push(node);
                }
                if stack.len() > 64 {
                    return Err("XML nested too deeply".into());
                }
            }
        }
        let mut doc = stack.pop().ok_or("empty document")?;
        if !stack.is_empty() {
            return Err(format!("unclosed <{}>", doc.name));
        }
        doc.children
            .pop()
            .filter(|n| n.name == "MPD")
            .ok_or_else(|| "no MPD root element".into())
    }

    /// Expands `$RepresentationID$`, `$Bandwidth$`, `$Number[%0Nd]$`, `$Time[%0Nd]$`, `$$`.
    fn expand_template(
        t: &str,
        rep_id: &str,
        bandwidth: &str,
        number: Option<u64>,
        time: Option<u64>,
    ) -> Result<String, String> {
        let mut out = String::new();
        let mut parts = t.split('$');
        out.push_str(parts.next().unwrap_or(""));
        while let Some(ident) = parts.next() {
            let Some(after) = parts.next() else {
                return Err(format!("unbalanced $ in template {t:?}"));
            };
            let (name, fmt) = match ident.split_once('%') {
                Some((n, f)) => (n, Some(f)),
                None => (ident, None),
            };
            let width = match fmt {
                None => 0,
                Some(f) => f
                    .strip_prefix('0')
                    .unwrap_or(f)
                    .strip_suffix('d')
                    .and_then(|w| w.parse::<usize>().ok())
                    .filter(|w| *w <= 32)
                    .ok_or_else(|| format!("unsupported format {f:?} in {t:?}"))?,
            };
            match name {
                "" => out.push('$'),
                "RepresentationID" => out.push_str(rep_id),
                "Bandwidth" => {
                    let bw: u64 = bandwidth
                        .parse()
                        .map_err(|_| format!("$Bandwidth$ in {t:?} needs a numeric bandwidth"))?;
                    out.push_str(&format!("{bw:0width$}"));
                }
                "Number" => out.push_str(&format!(
                    "{:0width$}",
                    number.ok_or_else(|| format!("$Number$ unavailable in {t:?}"))?
                )),
                "Time" => out.push_str(&format!(
                    "{:0width$}",
                    time.ok_or_else(|| format!("$Time$ unavailable in {t:?}"))?
                )),
                other => return Err(format!("unsupported identifier ${other}$ in {t:?}")),
            }
            out.push_str(after);
        }
        Ok(out)
    }

    /// The inclusive DASH range `a-b` as an exclusive `ByteRange`.
    fn dash_range(s: &str) -> Result<ByteRange, String> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| format!("bad range {s:?}"))?;
        let start: u64 = a.trim().parse().map_err(|_| format!("bad range {s:?}"))?;
        let last: u64 = b.trim().parse().map_err(|_| format!("bad range {s:?}"))?;
        if last < start {
            return Err(format!("bad range {s:?}"));
        }
        Ok(ByteRange {
            start,
            end: last.saturating_add(1),
        })
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
        let mpd = parse_xml(text)?;
        let base_of = |n: &Node| n.child("BaseURL").map(|b| b.text.trim().to_owned());
        let mut targets = Vec::new();
        let mut all = Vec::new();
        let mpd_base = base_of(&mpd).unwrap_or_default();
        for (pi, period) in mpd.children_named("Period").enumerate() {
            let p_base = format!("{mpd_base}{}", base_of(period).unwrap_or_default());
            for aset in period.children_named("AdaptationSet") {
                let a_base = format!("{p_base}{}", base_of(aset).unwrap_or_default());
                for rep in aset.children_named("Representation") {
                    let id = rep.attr("id").unwrap_or("");
                    let base = format!("{a_base}{}", base_of(rep).unwrap_or_default());
                    let segs = representation_segments(mpd_path, period, aset, rep, &base)
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

    /// Merged attributes of the SegmentTemplate/SegmentList/SegmentBase at Period,
    /// AdaptationSet and Representation level (the innermost wins), with the innermost
    /// element that has the given child.
    fn inherited<'a>(levels: [&'a Node; 3], name: &str) -> Option<(Attrs, Vec<&'a Node>)> {
        let found: Vec<&Node> = levels.iter().filter_map(|l| l.child(name)).collect();
        if found.is_empty() {
            return None;
        }
        let mut attrs: Vec<(String, String)> = Vec::new();
        for n in &found {
            for (k, v) in &n.attrs {
                attrs.retain(|(k2, _)| k2 != k);
                attrs.push((k.clone(), v.clone()));
            }
        }
        Some((attrs, found))
    }

    type Attrs = Vec<(String, String)>;

    fn get<'a>(attrs: &'a [(String, String)], k: &str) -> Option<&'a str> {
        attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    fn representation_segments(
        mpd_path: &Path,
        period: &Node,
        aset: &Node,
        rep: &Node,
        base: &str,
    ) -> Result<Vec<SegRef>, String> {
        let id = rep.attr("id").unwrap_or("");
        let bw = rep.attr("bandwidth").unwrap_or("");
        let levels = [period, aset, rep];
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
            if let Some(init) = get(&attrs, "initialization") {
                push(&expand_template(init, id, bw, None, None)?, None, &mut out)?;
            }
            let media = get(&attrs, "media").ok_or("SegmentTemplate without media")?;
            let start_number: u64 = get(&attrs, "startNumber")
                .map(|s| s.parse().map_err(|_| "bad startNumber"))
                .transpose()?
                .unwrap_or(1);
            let timeline = nodes.iter().rev().find_map(|n| n.child("SegmentTimeline"));
            if let Some(tl) = timeline {
                let mut number = start_number;
                let mut time = 0u64;
                for s in tl.children_named("S") {
                    let num = |k: &str| -> Result<Option<i64>, String> {
                        s.attr(k)
                            .map(|v| v.parse::<i64>().map_err(|_| format!("bad S@{k} {v:?}")))
                            .transpose()
                    };
                    if let Some(t) = num("t")? {
                        time = u64::try_from(t).map_err(|_| "negative S@t")?;
                    }
                    let d = num("d")?.ok_or("S without d")?;
                    let d = u64::try_from(d).map_err(|_| "negative S@d")?;
                    let r = num("r")?.unwrap_or(0);
                    if r < 0 {
                        return Err("S@r = -1 (open-ended repeat) is not supported".into());
                    }
                    for _ in 0..=r {
                        push(
                            &expand_template(media, id, bw, Some(number), Some(time))?,
                            None,
                            &mut out,
                        )?;
                        number = number.saturating_add(1);
                        time = time.saturating_add(d);
                    }
                    if out.len() > MAX_MANIFEST_ENTRIES {
                        return Err("SegmentTimeline lists too many segments".into());
                    }
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
                    let rel = expand_template(media, id, bw, Some(number), None)?;
                    let uri = format!("{base}{rel}");
                    if local_path(mpd_path, &uri)?.is_file() {
                        push(&rel, None, &mut out)?;
                        misses = 0;
                    } else {
                        misses += 1;
                    }
                    number = number.saturating_add(1);
                }
            }
        } else if let Some((_, nodes)) = inherited(levels, "SegmentList") {
            let list = nodes.last().ok_or("empty SegmentList")?;
            if let Some(init) = list.child("Initialization") {
                let rel = init.attr("sourceURL").unwrap_or("");
                let range = init.attr("range").map(dash_range).transpose()?;
                push(rel, range, &mut out)?;
            }
            for su in list.children_named("SegmentURL") {
                let rel = su.attr("media").unwrap_or("");
                let range = su.attr("mediaRange").map(dash_range).transpose()?;
                push(rel, range, &mut out)?;
            }
        } else if let Some((attrs, nodes)) = inherited(levels, "SegmentBase") {
            let sb = nodes.last().ok_or("empty SegmentBase")?;
            let path = local_path(mpd_path, base)?;
            if let Some(r) = sb
                .child("Initialization")
                .and_then(|i| i.attr("range"))
                .map(dash_range)
                .transpose()?
            {
                push("", Some(r), &mut out)?;
            }
            let index = get(&attrs, "indexRange").ok_or("SegmentBase without indexRange")?;
            let index = dash_range(index)?;
            push("", Some(index), &mut out)?;
            for r in sidx_ranges(&path, index)? {
                push("", Some(r), &mut out)?;
            }
        } else {
            // A single-segment Representation: the BaseURL is the media.
            push("", None, &mut out)?;
        }
        Ok(out)
    }

    fn be(b: &[u8], at: usize, n: usize) -> Result<u64, String> {
        let s = b.get(at..at + n).ok_or("sidx truncated")?;
        Ok(s.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    /// Media subsegment ranges from the `sidx` box at `index` (ISO/IEC 14496-12 8.16.3);
    /// they start right after the box, shifted by `first_offset`.
    fn sidx_ranges(path: &Path, index: ByteRange) -> Result<Vec<ByteRange>, String> {
        let b = read_range(path, Some(index))?;
        if b.get(4..8) != Some(b"sidx") {
            return Err("indexRange does not hold a sidx box".into());
        }
        let box_size = be(&b, 0, 4)?;
        let version = be(&b, 8, 1)?;
        // Full box header (12), reference_ID (4), timescale (4), then
        // earliest_presentation_time and first_offset, 32-bit in version 0, 64-bit after.
        let (first_offset, mut at) = if version == 0 {
            (be(&b, 24, 4)?, 28usize)
        } else {
            (be(&b, 28, 8)?, 36usize)
        };
        let count = be(&b, at + 2, 2)?;
        at += 4;
        let mut pos = index
            .start
            .checked_add(box_size)
            .and_then(|p| p.checked_add(first_offset))
            .ok_or("sidx offsets overflow")?;
        let mut out = Vec::new();
        for _ in 0..count {
            let word = be(&b, at, 4)?;
            if word & 0x8000_0000 != 0 {
                return Err("hierarchical sidx (reference_type 1) is not supported".into());
            }
            let size = word & 0x7fff_ffff;
            let end = pos.checked_add(size).ok_or("sidx sizes overflow")?;
            out.push(ByteRange { start: pos, end });
            pos = end;
            at += 12;
        }
        Ok(out)
    }
}
