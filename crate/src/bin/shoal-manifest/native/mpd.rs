//! DASH MPDs (roxmltree): one target per Representation and one for the whole MPD, the
//! segments by `shoal::dash`'s addressing.

use super::*;

pub(super) type Node<'a> = roxmltree::Node<'a, 'a>;

pub(super) fn child<'a>(n: Node<'a>, name: &str) -> Option<Node<'a>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

pub(super) fn children<'a>(n: Node<'a>, name: &'a str) -> impl Iterator<Item = Node<'a>> + 'a {
    n.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

pub(super) fn base_url(n: Node<'_>) -> &str {
    child(n, "BaseURL")
        .and_then(|b| b.text())
        .map(str::trim)
        .unwrap_or("")
}

pub(super) fn sanitize(id: &str) -> String {
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
pub(super) fn dash_targets(mpd_path: &Path, text: &str) -> Result<Vec<Target>, String> {
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
pub(super) fn inherited<'a>(
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

pub(super) fn number_attr<T: std::str::FromStr>(n: Node<'_>, k: &str) -> Result<Option<T>, String> {
    n.attribute(k)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("bad {}@{k} {v:?}", n.tag_name().name()))
        })
        .transpose()
}

pub(super) fn representation_segments(
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
