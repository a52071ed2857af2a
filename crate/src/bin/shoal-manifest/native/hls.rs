//! HLS playlists (m3u8-rs): a master's renditions and a media playlist's segments.

use super::*;

/// The segments of the media playlist `uri` that the master playlist `master` names.
pub(super) fn rendition_segments(master: &Path, uri: &str) -> Result<Vec<SegRef>, String> {
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
pub(super) fn parse_hls(path: &Path, text: &str) -> Result<m3u8_rs::Playlist, String> {
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
pub(super) fn master_playlist_uris(m: &m3u8_rs::MasterPlaylist) -> Vec<String> {
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
pub(super) fn hls_range(
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
pub(super) fn hls_media_segments(
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
