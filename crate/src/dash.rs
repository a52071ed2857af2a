//! DASH segment addressing (ISO/IEC 23009-1 §5.3.9): how a Representation's
//! `SegmentTemplate` (`$Number$` with `@duration`, or a `SegmentTimeline` with `$Number$` or
//! `$Time$`), `SegmentList` and `SegmentBase` name its media segments.
//!
//! Pure data in, segments out: no XML and no I/O. `shoal-manifest` fills these types from an
//! MPD it parsed with roxmltree and hashes what they name.
//!
//! Invariants: nothing here panics on any input; every list is bounded by the caller's
//! `limit`; numbers and times never wrap (overflow is an error or saturates at `u64::MAX`).
//!
//! Not in the wasm build yet: the dash.js adapter (`js-shim/src/adapters/dashjs.ts`,
//! `fillTemplate` and `expand`) still has its own copy. To share this one: ungate the module
//! in lib.rs; export `dashExpandTemplate(template, id, bandwidth?, number?, time?)` and
//! `dashTimeline(s: Float64Array of t,d,r (t = -1 when absent), startNumber, end?, limit)
//! -> Float64Array of number,time,duration` from wasm.rs; declare them in `WasmModuleApi`
//! (core-types.ts) and wrap them in the driver like `swarmFor` (a throw fails open); in
//! `expand`, pass `end = round((period duration + presentationTimeOffset) * timescale)`.
//! Measured cost (wasm-bindgen, wasm-opt -Oz, gzip -9): both exports +2,608 B wasm and
//! +620 B glue JS; the timeline alone +1,571 B and +338 B, which leaves template filling in
//! TS, so two models again. Also to settle: the shim fills `$SubNumber$` with 0, this
//! module refuses it.

use crate::types::ByteRange;
use std::fmt;

/// Why an MPD's addressing cannot be followed. The message names the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressingError(pub String);

impl fmt::Display for AddressingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressingError {}

fn err<T>(m: impl Into<String>) -> Result<T, AddressingError> {
    Err(AddressingError(m.into()))
}

/// The values a template's identifiers take for one Representation.
#[derive(Clone, Copy, Debug)]
pub struct TemplateVars<'a> {
    /// `Representation@id`, for `$RepresentationID$`.
    pub representation_id: &'a str,
    /// `Representation@bandwidth`, for `$Bandwidth$` (absent or not a number: `None`).
    pub bandwidth: Option<u64>,
}

/// Expands `$RepresentationID$`, `$Bandwidth$`, `$Number$`, `$Time$` (the last three with an
/// optional `%0Nd` width, `%Nd` accepted too) and `$$` in `template`. `number` and `time` are `None` where the
/// addressing has no such value (an initialization template, `$Time$` without a timeline).
pub fn expand_template(
    template: &str,
    vars: &TemplateVars<'_>,
    number: Option<u64>,
    time: Option<u64>,
) -> Result<String, AddressingError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut parts = template.split('$');
    out.push_str(parts.next().unwrap_or(""));
    while let Some(ident) = parts.next() {
        let Some(after) = parts.next() else {
            return err(format!("unbalanced $ in template {template:?}"));
        };
        let (name, format) = match ident.split_once('%') {
            Some((n, f)) => (n, Some(f)),
            None => (ident, None),
        };
        let width = match format {
            None => 0,
            Some(f) => match f
                .strip_prefix('0')
                .unwrap_or(f)
                .strip_suffix('d')
                .and_then(|w| w.parse::<usize>().ok())
                .filter(|w| *w <= 32)
            {
                Some(w) => w,
                None => return err(format!("unsupported format {f:?} in {template:?}")),
            },
        };
        let value = match name {
            "" if format.is_none() => {
                out.push('$');
                out.push_str(after);
                continue;
            }
            "RepresentationID" if format.is_none() => {
                out.push_str(vars.representation_id);
                out.push_str(after);
                continue;
            }
            "Bandwidth" => vars.bandwidth.ok_or_else(|| {
                AddressingError(format!(
                    "$Bandwidth$ in {template:?} needs a numeric Representation@bandwidth"
                ))
            })?,
            "Number" => number.ok_or_else(|| {
                AddressingError(format!("$Number$ is not available in {template:?}"))
            })?,
            "Time" => time.ok_or_else(|| {
                AddressingError(format!("$Time$ is not available in {template:?}"))
            })?,
            other => return err(format!("unsupported identifier ${other}$ in {template:?}")),
        };
        out.push_str(&format!("{value:0width$}"));
        out.push_str(after);
    }
    Ok(out)
}

/// One `S` element of a `SegmentTimeline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineEntry {
    /// `@t`: start time in timescale units; absent, the entry follows the previous one.
    pub t: Option<u64>,
    /// `@d`: duration of each segment in timescale units.
    pub d: u64,
    /// `@r`: how many more segments of the same duration follow; -1 repeats until the next
    /// entry's `@t` or the end of the period.
    pub r: i64,
}

/// A media segment's place in its Representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPos {
    /// The value of `$Number$`.
    pub number: u64,
    /// The value of `$Time$`: start in timescale units, on the timeline's own origin
    /// (`@presentationTimeOffset` not subtracted).
    pub time: u64,
    /// Duration in timescale units.
    pub duration: u64,
}

/// The segments a `SegmentTimeline` lists, numbered from `start_number`. `end` (timescale
/// units, on the timeline's origin) bounds the open-ended repeats (`@r = -1`); without it,
/// such an entry is an error unless a later entry's `@t` bounds it. More than `limit`
/// segments is an error.
pub fn timeline(
    entries: &[TimelineEntry],
    start_number: u64,
    end: Option<u64>,
    limit: usize,
) -> Result<Vec<SegmentPos>, AddressingError> {
    let mut out = Vec::new();
    let mut number = start_number;
    let mut time = 0u64;
    for (i, s) in entries.iter().enumerate() {
        if s.d == 0 {
            return err("SegmentTimeline S@d is 0");
        }
        if let Some(t) = s.t {
            time = t;
        }
        let repeats = if s.r >= 0 {
            u64::try_from(s.r).unwrap_or(0)
        } else if s.r == -1 {
            let until = entries
                .get(i + 1)
                .and_then(|n| n.t)
                .or(end)
                .ok_or_else(|| {
                    AddressingError(
                        "S@r = -1 (open-ended repeat) needs a following S@t or the period's end"
                            .into(),
                    )
                })?;
            // Segments starting before `until`: ceil((until - time) / d), at least one.
            until.saturating_sub(time).div_ceil(s.d).saturating_sub(1)
        } else {
            return err(format!("SegmentTimeline S@r = {} is negative", s.r));
        };
        let mut k = 0u64;
        loop {
            if out.len() >= limit {
                return err(format!("SegmentTimeline lists more than {limit} segments"));
            }
            out.push(SegmentPos {
                number,
                time,
                duration: s.d,
            });
            number = number.saturating_add(1);
            time = time
                .checked_add(s.d)
                .ok_or_else(|| AddressingError("SegmentTimeline time overflows".into()))?;
            if k >= repeats {
                break;
            }
            k += 1;
        }
    }
    Ok(out)
}

/// Segments `first..first + count` (0-based) of a `$Number$` template with `@duration`:
/// number `start_number + i`, time `i * duration`. Stops early rather than overflow.
pub fn numbered(start_number: u64, duration: u64, first: u64, count: u64) -> Vec<SegmentPos> {
    (first..first.saturating_add(count))
        .map_while(|i| {
            Some(SegmentPos {
                number: start_number.checked_add(i)?,
                time: i.checked_mul(duration)?,
                duration,
            })
        })
        .collect()
}

/// How many segments of `duration` a period of `period` covers (both in timescale units);
/// the last one may be cut short by the period's end. 0 when `duration` is 0.
pub fn segment_count(period: u64, duration: u64) -> u64 {
    if duration == 0 {
        0
    } else {
        period.div_ceil(duration)
    }
}

/// The inclusive DASH range `first-last` (`@mediaRange`, `@indexRange`, `@range`) as a
/// half-open [`ByteRange`].
pub fn parse_range(s: &str) -> Result<ByteRange, AddressingError> {
    let bad = || AddressingError(format!("bad byte range {s:?} (want FIRST-LAST)"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if last < start {
        return Err(bad());
    }
    Ok(ByteRange {
        start,
        end: last.checked_add(1).ok_or_else(bad)?,
    })
}

fn be(b: &[u8], at: usize, n: usize) -> Result<u64, AddressingError> {
    let s = at
        .checked_add(n)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| AddressingError("sidx box truncated".into()))?;
    Ok(s.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

/// The media subsegment ranges of `SegmentBase` addressing, from the bytes `sidx` of the
/// `sidx` box found at `index` (`@indexRange`), per ISO/IEC 14496-12 §8.16.3: they start
/// right after the box, shifted by its `first_offset`. At most `limit` ranges.
pub fn sidx_ranges(
    sidx: &[u8],
    index: ByteRange,
    limit: usize,
) -> Result<Vec<ByteRange>, AddressingError> {
    if sidx.get(4..8) != Some(b"sidx") {
        return err("indexRange does not hold a sidx box");
    }
    let box_size = be(sidx, 0, 4)?;
    let version = be(sidx, 8, 1)?;
    // Full box header (12), reference_ID (4), timescale (4), then earliest_presentation_time
    // and first_offset: 32-bit each in version 0, 64-bit after.
    let (first_offset, mut at) = if version == 0 {
        (be(sidx, 24, 4)?, 28usize)
    } else {
        (be(sidx, 28, 8)?, 36usize)
    };
    // reserved (2), reference_count (2).
    let count = be(sidx, at + 2, 2)?;
    at += 4;
    if usize::try_from(count).map_or(true, |c| c > limit) {
        return err(format!("sidx lists {count} subsegments, above {limit}"));
    }
    let mut pos = index
        .start
        .checked_add(box_size)
        .and_then(|p| p.checked_add(first_offset))
        .ok_or_else(|| AddressingError("sidx offsets overflow".into()))?;
    let mut out = Vec::new();
    for _ in 0..count {
        let word = be(sidx, at, 4)?;
        if word & 0x8000_0000 != 0 {
            return err("hierarchical sidx (reference_type 1) is not supported");
        }
        let end = pos
            .checked_add(word & 0x7fff_ffff)
            .ok_or_else(|| AddressingError("sidx sizes overflow".into()))?;
        out.push(ByteRange { start: pos, end });
        pos = end;
        // referenced_size word, subsegment_duration (4), SAP fields (4).
        at += 12;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: TemplateVars<'static> = TemplateVars {
        representation_id: "v1",
        bandwidth: Some(800_000),
    };

    fn s(t: Option<u64>, d: u64, r: i64) -> TimelineEntry {
        TimelineEntry { t, d, r }
    }

    #[test]
    fn templates_expand_every_identifier_and_width() {
        assert_eq!(
            expand_template(
                "$RepresentationID$/seg-$Number%05d$.m4s",
                &VARS,
                Some(42),
                None
            ),
            Ok("v1/seg-00042.m4s".into())
        );
        assert_eq!(
            expand_template("$Bandwidth$_$Time$$$.mp4", &VARS, None, Some(90_000)),
            Ok("800000_90000$.mp4".into())
        );
        assert_eq!(
            expand_template("init-$RepresentationID$.m4s", &VARS, None, None),
            Ok("init-v1.m4s".into())
        );
        // A width narrower than the value does not cut it.
        assert_eq!(
            expand_template("$Number%02d$", &VARS, Some(1234), None),
            Ok("1234".into())
        );
    }

    #[test]
    fn templates_report_what_they_cannot_expand() {
        let e = |t: &str, n, tm| expand_template(t, &VARS, n, tm).unwrap_err().0;
        assert!(e("seg-$Number$.m4s", None, None).contains("$Number$"));
        assert!(e("seg-$Time$.m4s", Some(1), None).contains("$Time$"));
        assert!(e("seg-$Number.m4s", Some(1), None).contains("unbalanced"));
        assert!(e("seg-$Number%5x$.m4s", Some(1), None).contains("format"));
        assert!(e("seg-$Number%099d$.m4s", Some(1), None).contains("format"));
        assert!(e("seg-$SubNumber$.m4s", Some(1), None).contains("$SubNumber$"));
        let no_bw = TemplateVars {
            representation_id: "a",
            bandwidth: None,
        };
        assert!(expand_template("$Bandwidth$", &no_bw, None, None)
            .unwrap_err()
            .0
            .contains("bandwidth"));
    }

    #[test]
    fn timeline_numbers_and_times_follow_t_d_r() {
        let segs = timeline(
            &[s(Some(1000), 10, 2), s(None, 5, 0), s(Some(2000), 7, 0)],
            5,
            None,
            100,
        )
        .unwrap();
        let got: Vec<(u64, u64, u64)> = segs
            .iter()
            .map(|p| (p.number, p.time, p.duration))
            .collect();
        assert_eq!(
            got,
            vec![
                (5, 1000, 10),
                (6, 1010, 10),
                (7, 1020, 10),
                (8, 1030, 5),
                (9, 2000, 7)
            ]
        );
        // Without @t the timeline starts at 0.
        assert_eq!(timeline(&[s(None, 3, 1)], 1, None, 10).unwrap()[1].time, 3);
    }

    #[test]
    fn open_ended_repeat_runs_to_the_next_t_or_the_end() {
        let to_next = timeline(&[s(Some(0), 4, -1), s(Some(10), 4, 0)], 0, None, 100).unwrap();
        let times: Vec<u64> = to_next.iter().map(|p| p.time).collect();
        assert_eq!(times, vec![0, 4, 8, 10]);
        let to_end = timeline(&[s(Some(100), 10, -1)], 1, Some(140), 100).unwrap();
        assert_eq!(to_end.len(), 4);
        let partial = timeline(&[s(Some(100), 10, -1)], 1, Some(141), 100).unwrap();
        assert_eq!(
            partial.len(),
            5,
            "a segment cut short by the end still counts"
        );
        let e = timeline(&[s(Some(0), 4, -1)], 0, None, 100).unwrap_err();
        assert!(e.0.contains("r = -1"), "{e}");
        assert!(timeline(&[s(None, 4, -2)], 0, None, 100).is_err());
    }

    #[test]
    fn timeline_limits_and_bad_values_are_errors_not_panics() {
        assert!(timeline(&[s(None, 1, i64::MAX)], 0, None, 1000)
            .unwrap_err()
            .0
            .contains("more than 1000"));
        assert!(timeline(&[s(None, 0, 0)], 0, None, 10).is_err());
        assert!(timeline(&[s(Some(u64::MAX - 1), 5, 1)], 0, None, 10).is_err());
        // An end before the entry's start still lists the entry once.
        assert_eq!(
            timeline(&[s(Some(50), 10, -1)], 0, Some(10), 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn numbered_segments_and_counts() {
        let segs = numbered(1, 2000, 3, 2);
        assert_eq!(
            segs,
            vec![
                SegmentPos {
                    number: 4,
                    time: 6000,
                    duration: 2000
                },
                SegmentPos {
                    number: 5,
                    time: 8000,
                    duration: 2000
                }
            ]
        );
        assert_eq!(numbered(u64::MAX, 1, 0, 5).len(), 1);
        assert_eq!(segment_count(10_000, 2000), 5);
        assert_eq!(segment_count(10_001, 2000), 6);
        assert_eq!(segment_count(10, 0), 0);
    }

    #[test]
    fn ranges_are_inclusive_in_the_mpd() {
        assert_eq!(parse_range("0-99"), Ok(ByteRange { start: 0, end: 100 }));
        assert_eq!(parse_range(" 5 - 5 "), Ok(ByteRange { start: 5, end: 6 }));
        for bad in ["", "5", "9-3", "a-b", "-3", "1-18446744073709551615"] {
            assert!(parse_range(bad).is_err(), "{bad:?}");
        }
    }

    /// A version-0 sidx box with the given referenced sizes (reference_type 0).
    fn sidx_v0(first_offset: u32, sizes: &[u32]) -> Vec<u8> {
        let mut b = Vec::new();
        let len = 32 + 12 * sizes.len() as u32;
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(b"sidx");
        b.extend_from_slice(&[0, 0, 0, 0]); // version 0, flags
        b.extend_from_slice(&1u32.to_be_bytes()); // reference_ID
        b.extend_from_slice(&1000u32.to_be_bytes()); // timescale
        b.extend_from_slice(&0u32.to_be_bytes()); // earliest_presentation_time
        b.extend_from_slice(&first_offset.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&(sizes.len() as u16).to_be_bytes());
        for s in sizes {
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&1000u32.to_be_bytes());
            b.extend_from_slice(&0x9000_0000u32.to_be_bytes());
        }
        b
    }

    #[test]
    fn sidx_ranges_tile_the_media_after_the_box() {
        let b = sidx_v0(0, &[100, 200]);
        let index = ByteRange {
            start: 500,
            end: 500 + b.len() as u64,
        };
        let r = sidx_ranges(&b, index, 10).unwrap();
        assert_eq!(
            r,
            vec![
                ByteRange {
                    start: index.end,
                    end: index.end + 100
                },
                ByteRange {
                    start: index.end + 100,
                    end: index.end + 300
                }
            ]
        );
        let b = sidx_v0(8, &[100]);
        let index = ByteRange {
            start: 0,
            end: b.len() as u64,
        };
        let shifted = sidx_ranges(&b, index, 10).unwrap();
        assert_eq!(shifted[0].start, index.end + 8, "first_offset");
    }

    #[test]
    fn broken_sidx_boxes_are_errors() {
        let index = ByteRange { start: 0, end: 56 };
        let good = sidx_v0(0, &[100, 200]);
        // The last reference's duration and SAP fields (8 bytes) are not needed.
        for cut in 0..good.len() - 8 {
            assert!(
                sidx_ranges(&good[..cut], index, 10).is_err(),
                "cut at {cut}"
            );
        }
        let mut not_sidx = good.clone();
        not_sidx[4..8].copy_from_slice(b"moof");
        assert!(sidx_ranges(&not_sidx, index, 10).is_err());
        let mut hierarchical = good.clone();
        hierarchical[32] |= 0x80;
        assert!(sidx_ranges(&hierarchical, index, 10)
            .unwrap_err()
            .0
            .contains("hierarchical"));
        assert!(sidx_ranges(&good, index, 1).is_err(), "above the limit");
    }
}
