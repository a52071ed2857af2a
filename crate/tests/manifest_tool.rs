#![cfg(not(target_arch = "wasm32"))]
//! End-to-end tests of the `shoal-manifest` binary on media made by ffmpeg in a temp dir:
//! every manifest it writes must verify with the printed public key and match the bytes
//! on disk, and a tampered segment must be caught.

use shoal::integrity::{parse_public_key, verify_against, verify_chunk, Manifest};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shoal-manifest");
const CHUNK: usize = shoal::wire::CHUNK_SIZE;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("shoal-manifest-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"))
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// ffmpeg's input: a 64x64 test picture, 3 s at 10 fps.
const VIDEO_IN: &[&str] = &[
    "-nostdin",
    "-loglevel",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=64x64:rate=10:duration=3",
];

/// H.264 with a keyframe every second.
const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-g",
    "10",
    "-keyint_min",
    "10",
    "-sc_threshold",
    "0",
];

/// Two renditions of video and audio, at 30 and 90 kbit/s.
const TWO_RENDITIONS: &[&str] = &[
    "-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a", "-b:v:0", "30k", "-b:v:1", "90k",
];

/// HLS VOD in 1 s segments.
const HLS_VOD: &[&str] = &["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"];

/// HLS VOD of two renditions (30 and 90 kbit/s) with master.m3u8: `extra` options, segments
/// named by `segments` and playlists by `playlists` (`%v` is the rendition).
fn two_renditions(dir: &Path, extra: &[&str], segments: &str, playlists: &str) {
    let streams: &[&str] = &[
        "-var_stream_map",
        "v:0,a:0 v:1,a:1",
        "-master_pl_name",
        "master.m3u8",
        "-hls_segment_filename",
        segments,
        playlists,
    ];
    ffmpeg(dir, &[TWO_RENDITIONS, HLS_VOD, extra, streams].concat());
}

/// Runs ffmpeg with `args` in `dir`.
fn run_ffmpeg(dir: &Path, args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("ffmpeg is required for these tests: {e}"));
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 64x64, 3 s, keyframe every second (10 fps), with audio; `extra` selects the muxer.
fn ffmpeg(dir: &Path, extra: &[&str]) {
    let audio: &[&str] = &["-f", "lavfi", "-i", "sine=frequency=440:duration=3"];
    let aac: &[&str] = &["-c:a", "aac", "-b:a", "32k"];
    run_ffmpeg(dir, &[VIDEO_IN, audio, X264, aac, extra].concat());
}

/// `shoal-manifest sign --key KEY DIR`.
fn sign(key: &Path, dir: &Path) -> Output {
    run(&[
        "sign",
        "--key",
        &key.to_string_lossy(),
        &dir.to_string_lossy(),
    ])
}

/// Makes a key in `dir`, signs `dir` with it (which must succeed) and returns its public key.
fn keygen_and_sign(dir: &Path) -> [u8; 32] {
    let (key, pk) = keygen(dir);
    let out = sign(&key, dir);
    assert!(
        out.status.success(),
        "sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pk
}

fn keygen(dir: &Path) -> (PathBuf, [u8; 32]) {
    let key = dir.join("key");
    let printed = ok(&["keygen", "--out", &key.to_string_lossy()]);
    let pk = parse_public_key(&printed).unwrap_or_else(|e| panic!("{printed:?}: {e}"));
    (key, pk)
}

fn split_key(key: &str) -> (&str, Option<(usize, usize)>) {
    match key.rsplit_once('@').and_then(|(n, r)| {
        let (a, b) = r.split_once('-')?;
        Some((n, (a.parse().ok()?, b.parse().ok()?)))
    }) {
        Some((n, r)) => (n, Some(r)),
        None => (key, None),
    }
}

/// Parses and verifies `manifest`, then checks every entry (whole and per chunk) against
/// the bytes of its file in `media_dir`. Returns the keys.
fn round_trip(manifest: &Path, media_dir: &Path, pk: &[u8; 32]) -> BTreeSet<String> {
    let bytes = fs::read(manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let m = Manifest::parse_signed(&bytes, pk)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    assert!(!m.entries.is_empty());
    for (key, entry) in &m.entries {
        let (name, range) = split_key(key);
        let file = fs::read(media_dir.join(name)).unwrap_or_else(|e| panic!("{key}: {e}"));
        let data = match range {
            Some((a, b)) => &file[a..b],
            None => &file[..],
        };
        assert_eq!(verify_against(entry, data), Ok(()), "{key}");
        assert_eq!(
            entry.chunk_hashes.len(),
            data.len().div_ceil(CHUNK),
            "{key}"
        );
        for (i, c) in data.chunks(CHUNK).enumerate() {
            assert_eq!(verify_chunk(entry, m.chunk_size, i as u32, c), Some(true));
        }
    }
    m.entries.keys().cloned().collect()
}

fn files_with_ext(dir: &Path, exts: &[&str]) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| exts.iter().any(|x| n.ends_with(x)))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
    let t = TempDir::new("keygen");
    let (key, pk) = keygen(&t.0);
    let text = fs::read_to_string(&key).unwrap_or_default();
    assert_eq!(text.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
    }
    let again = run(&["keygen", "--out", &key.to_string_lossy()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(fs::read_to_string(&key).unwrap_or_default(), text);
    let printed = ok(&["pubkey", "--key", &key.to_string_lossy()]);
    assert_eq!(parse_public_key(&printed), Ok(pk));
    // Two keys differ (the seed comes from the OS).
    let (_, pk2) = keygen(&TempDir::new("keygen2").0);
    assert_ne!(pk, pk2);
}

#[test]
fn hls_ts_renditions_get_one_manifest_each() {
    let t = TempDir::new("hls-ts");
    // Two renditions at different bitrates, both naming their segments segN.ts.
    two_renditions(&t.0, &[], "v%v/seg%d.ts", "v%v/index.m3u8");
    let (key, pk) = keygen(&t.0);
    let out = sign(&key, &t.0);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for v in ["v0", "v1"] {
        let dir = t.0.join(v);
        let keys = round_trip(&dir.join("index.m3u8.shoal"), &dir, &pk);
        assert_eq!(keys, files_with_ext(&dir, &[".ts"]), "{v}");
        assert!(keys.len() >= 3);
    }
    // The renditions' seg0.ts differ, so no combined manifest can exist; the tool says so.
    assert!(!t.0.join("master.m3u8.shoal").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reuse the segment name"));

    // A tampered segment is caught by verify --dir (and by round_trip's check).
    let seg = t.0.join("v1").join("seg1.ts");
    let mut data = fs::read(&seg).unwrap_or_default();
    data[1000] ^= 0x40;
    fs::write(&seg, &data).unwrap_or_else(|e| panic!("{e}"));
    let pk_text = shoal::integrity::format_public_key(&pk);
    let manifest = t.0.join("v1").join("index.m3u8.shoal");
    let v = run(&[
        "verify",
        "--public-key",
        &pk_text,
        &manifest.to_string_lossy(),
        "--dir",
        &t.0.join("v1").to_string_lossy(),
    ]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stderr).contains("seg1.ts"));
    let v0 = run(&[
        "verify",
        "--public-key",
        &pk_text,
        &t.0.join("v0").join("index.m3u8.shoal").to_string_lossy(),
        "--dir",
        &t.0.join("v0").to_string_lossy(),
    ]);
    assert!(
        v0.status.success(),
        "{}",
        String::from_utf8_lossy(&v0.stderr)
    );
    // A manifest signed by another key is rejected.
    let (_, other) = keygen(&TempDir::new("hls-ts-other").0);
    let other_text = shoal::integrity::format_public_key(&other);
    let w = run(&[
        "verify",
        "--public-key",
        &other_text,
        &manifest.to_string_lossy(),
    ]);
    assert_eq!(w.status.code(), Some(1));
}

#[test]
fn hls_fmp4_includes_the_init_segment() {
    let t = TempDir::new("hls-fmp4");
    ffmpeg(
        &t.0,
        &[
            HLS_VOD,
            &[
                "-hls_segment_type",
                "fmp4",
                "-hls_segment_filename",
                "seg%d.m4s",
                "index.m3u8",
            ],
        ]
        .concat(),
    );
    let pk = keygen_and_sign(&t.0);
    let keys = round_trip(&t.0.join("index.m3u8.shoal"), &t.0, &pk);
    let mut on_disk = files_with_ext(&t.0, &[".m4s"]);
    on_disk.insert("init.mp4".into());
    assert_eq!(keys, on_disk);
}

#[test]
fn hls_single_file_byte_ranges() {
    let t = TempDir::new("hls-range");
    ffmpeg(
        &t.0,
        &[HLS_VOD, &["-hls_flags", "single_file", "index.m3u8"]].concat(),
    );
    let pk = keygen_and_sign(&t.0);
    let keys = round_trip(&t.0.join("index.m3u8.shoal"), &t.0, &pk);
    // The ranges tile the whole file.
    let len = fs::metadata(t.0.join("index.ts"))
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    let mut ranges: Vec<(usize, usize)> = keys.iter().filter_map(|k| split_key(k).1).collect();
    ranges.sort();
    assert!(ranges.len() >= 3 && ranges.len() == keys.len());
    assert_eq!(ranges.first().map(|r| r.0), Some(0));
    assert_eq!(ranges.last().map(|r| r.1), Some(len));
    assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0));
}

#[test]
fn dash_segment_template_and_single_file() {
    let t = TempDir::new("dash");
    let tpl = t.0.join("tpl");
    let single = t.0.join("single");
    for d in [&tpl, &single] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    ffmpeg(&tpl, &["-f", "dash", "-seg_duration", "1", "out.mpd"]);
    ffmpeg(
        &single,
        &[
            "-f",
            "dash",
            "-seg_duration",
            "1",
            "-single_file",
            "1",
            "out.mpd",
        ],
    );
    let pk = keygen_and_sign(&t.0);
    // SegmentTemplate + SegmentTimeline: every file ffmpeg wrote is listed.
    let all = round_trip(&tpl.join("out.mpd.shoal"), &tpl, &pk);
    assert_eq!(all, files_with_ext(&tpl, &[".m4s"]));
    let v = round_trip(&tpl.join("out.mpd.0.shoal"), &tpl, &pk);
    let a = round_trip(&tpl.join("out.mpd.1.shoal"), &tpl, &pk);
    assert!(v.contains("init-stream0.m4s") && a.contains("init-stream1.m4s"));
    assert_eq!(v.union(&a).cloned().collect::<BTreeSet<_>>(), all);
    // SegmentList with byte ranges into one file per representation.
    let keys = round_trip(&single.join("out.mpd.shoal"), &single, &pk);
    assert!(keys.iter().all(|k| split_key(k).1.is_some()));
    assert!(keys.iter().any(|k| k.starts_with("out-stream0.mp4@0-")));
    assert!(keys.iter().any(|k| k.starts_with("out-stream1.mp4@0-")));
}

#[test]
fn errors_have_exit_codes() {
    let t = TempDir::new("errors");
    let (key, _) = keygen(&t.0);
    let k = key.to_string_lossy();
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(run(&["sign", "--key", &k]).status.code(), Some(2));
    assert_eq!(run(&["sign", "--bogus", &k]).status.code(), Some(2));
    let missing = t.0.join("nope");
    assert_eq!(
        run(&["sign", "--key", &k, &missing.to_string_lossy()])
            .status
            .code(),
        Some(1)
    );
    // An empty folder has no playlist.
    let empty = t.0.join("empty");
    fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["sign", "--key", &k, &empty.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no HLS"));
    // A playlist naming a missing segment fails and names it.
    fs::write(
        empty.join("index.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\ngone.ts\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["sign", "--key", &k, &empty.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gone.ts"));
    assert!(!empty.join("index.m3u8.shoal").exists());
    // A key file that is not a key.
    fs::write(t.0.join("bad"), "hello").unwrap_or_else(|e| panic!("{e}"));
    let out = run(&[
        "sign",
        "--key",
        &t.0.join("bad").to_string_lossy(),
        &empty.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_keys(manifest: &Path, pk: &[u8; 32], want: &BTreeSet<String>, timeout: Duration) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        // The tool renames complete files into place, so any read sees a whole manifest.
        if let Ok(bytes) = fs::read(manifest) {
            let m = Manifest::parse_signed(&bytes, pk)
                .unwrap_or_else(|e| panic!("partial or unsigned manifest seen: {e}"));
            let keys: BTreeSet<String> = m.entries.keys().cloned().collect();
            if &keys == want {
                return;
            }
            last = Some(keys);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("manifest never listed {want:?}; last seen {last:?}");
}

fn write_playlist(dir: &Path, segs: &[&str], first_seq: u32) {
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:{first_seq}\n"
    );
    for s in segs {
        text.push_str(&format!("#EXTINF:1.0,\n{s}\n"));
    }
    let tmp = dir.join(".index.m3u8.tmp");
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("{e}"));
    fs::rename(&tmp, dir.join("index.m3u8")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn watch_follows_a_live_playlist_and_prunes_after_the_grace_period() {
    let t = TempDir::new("watch");
    let src = t.0.join("src");
    let live = t.0.join("live");
    for d in [&src, &live] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    ffmpeg(
        &src,
        &[
            HLS_VOD,
            &["-hls_segment_filename", "seg%d.ts", "index.m3u8"],
        ]
        .concat(),
    );
    let (key, pk) = keygen(&t.0);
    // The live packager, played by this test: segments appear, then slide out.
    let publish = |n: u32| {
        fs::copy(
            src.join(format!("seg{n}.ts")),
            live.join(format!("seg{n}.ts")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    publish(0);
    write_playlist(&live, &["seg0.ts"], 0);
    let child = Command::new(BIN)
        .args([
            "sign",
            "--key",
            &key.to_string_lossy(),
            "--watch",
            "--interval",
            "0.05",
            "--grace",
            "1.5",
            &live.to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let _guard = KillOnDrop(child);
    let manifest = live.join("index.m3u8.shoal");
    let timeout = Duration::from_secs(20);
    wait_for_keys(&manifest, &pk, &set(&["seg0.ts"]), timeout);
    publish(1);
    write_playlist(&live, &["seg0.ts", "seg1.ts"], 0);
    wait_for_keys(&manifest, &pk, &set(&["seg0.ts", "seg1.ts"]), timeout);
    // seg0 leaves the window and its file is deleted: it stays listed for the grace
    // period (players may still fetch it), then goes.
    publish(2);
    write_playlist(&live, &["seg1.ts", "seg2.ts"], 1);
    fs::remove_file(live.join("seg0.ts")).unwrap_or_else(|e| panic!("{e}"));
    let left = Instant::now();
    wait_for_keys(
        &manifest,
        &pk,
        &set(&["seg0.ts", "seg1.ts", "seg2.ts"]),
        timeout,
    );
    wait_for_keys(&manifest, &pk, &set(&["seg1.ts", "seg2.ts"]), timeout);
    assert!(
        left.elapsed() >= Duration::from_millis(1400),
        "pruned after {:?}, before the 1.5 s grace period",
        left.elapsed()
    );
    round_trip(&manifest, &live, &pk);
}

/// Top-level ISO-BMFF boxes as (type, start, end).
fn top_boxes(d: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= d.len() {
        let size = u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]) as usize;
        assert!(size >= 8 && i + size <= d.len(), "box at {i}");
        out.push((
            String::from_utf8_lossy(&d[i + 4..i + 8]).into_owned(),
            i,
            i + size,
        ));
        i += size;
    }
    out
}

#[test]
fn dash_segment_base_ranges_come_from_the_sidx() {
    let t = TempDir::new("dash-sidx");
    // One fragmented MP4 with a global sidx: ftyp moov sidx (moof mdat)*.
    let mp4: &[&str] = &["-movflags", "dash+global_sidx", "-f", "mp4", "v.mp4"];
    run_ffmpeg(&t.0, &[VIDEO_IN, X264, mp4].concat());
    let data = fs::read(t.0.join("v.mp4")).unwrap_or_default();
    let boxes = top_boxes(&data);
    let sidx = boxes
        .iter()
        .find(|b| b.0 == "sidx")
        .unwrap_or_else(|| panic!("no sidx in {boxes:?}"));
    // Expected media segments: each moof with the mdat after it.
    let mut want: BTreeSet<String> = boxes
        .windows(2)
        .filter(|w| w[0].0 == "moof" && w[1].0 == "mdat")
        .map(|w| format!("v.mp4@{}-{}", w[0].1, w[1].2))
        .collect();
    assert_eq!(want.len(), 3);
    want.insert(format!("v.mp4@0-{}", sidx.1));
    want.insert(format!("v.mp4@{}-{}", sidx.1, sidx.2));
    fs::write(
        t.0.join("stream.mpd"),
        format!(
            r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3S">
  <!-- SegmentBase: the player reads the sidx to find segments -->
  <Period>
    <AdaptationSet mimeType="video/mp4">
      <Representation id="v 1" bandwidth="20000">
        <BaseURL>v.mp4</BaseURL>
        <SegmentBase indexRange="{}-{}"><Initialization range="0-{}"/></SegmentBase>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#,
            sidx.1,
            sidx.2 - 1,
            sidx.1 - 1
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pk = keygen_and_sign(&t.0);
    assert_eq!(round_trip(&t.0.join("stream.mpd.shoal"), &t.0, &pk), want);
    // The representation id is made file-name safe.
    assert_eq!(
        round_trip(&t.0.join("stream.mpd.v_1.shoal"), &t.0, &pk),
        want
    );
}

#[test]
fn hls_unique_names_get_a_combined_manifest_beside_the_master() {
    let t = TempDir::new("hls-combined");
    // The layout docs/PROTECT.md recommends: rendition in every file name.
    two_renditions(
        &t.0,
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init-%v.mp4",
        ],
        "v%v-seg%d.m4s",
        "v%v.m3u8",
    );
    let pk = keygen_and_sign(&t.0);
    let all = round_trip(&t.0.join("master.m3u8.shoal"), &t.0, &pk);
    assert_eq!(all, files_with_ext(&t.0, &[".m4s", ".mp4"]));
    let v0 = round_trip(&t.0.join("v0.m3u8.shoal"), &t.0, &pk);
    let v1 = round_trip(&t.0.join("v1.m3u8.shoal"), &t.0, &pk);
    assert!(v0.is_disjoint(&v1) && v0.contains("init-0.mp4"));
    assert_eq!(v0.union(&v1).cloned().collect::<BTreeSet<_>>(), all);
}
