//! The folder: atomic writes, the playlist walk, reading files and byte ranges, and
//! mapping a playlist's relative URIs to local paths.

use super::*;

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

pub(super) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(super) fn find_playlists(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
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

pub(super) fn read_playlist(p: &Path) -> Result<String, String> {
    let meta = fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.len() > MAX_PLAYLIST_BYTES {
        return Err(format!("{}: playlist larger than 64 MiB", p.display()));
    }
    let bytes = fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8", p.display()))
}

pub(super) fn read_range(path: &Path, range: Option<ByteRange>) -> Result<Vec<u8>, String> {
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

pub(super) fn percent_decode(s: &str) -> Result<String, Failure> {
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
pub(super) fn local_path(playlist: &Path, uri: &str) -> Result<PathBuf, String> {
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
