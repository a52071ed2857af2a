#![cfg(not(target_arch = "wasm32"))]
//! `shoal-manifest` on hand-written playlists and MPDs (no ffmpeg): the parts of HLS and DASH
//! that the ffmpeg-made media of crate/tests/manifest_tool.rs does not exercise, the parsers'
//! error messages and the command line's exit statuses.

use shoal::integrity::{parse_public_key, Manifest};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_shoal-manifest");

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "shoal-manifest-parsers-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        TempDir(p)
    }

    fn write(&self, name: &str, data: impl AsRef<[u8]>) {
        fs::write(self.0.join(name), data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    fn key(&self) -> ([u8; 32], String) {
        let key = self.0.join("key");
        let out = run(&["keygen", "--out", &key.to_string_lossy()]);
        assert!(out.status.success());
        let pk = parse_public_key(&String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|e| panic!("{e}"));
        (pk, key.to_string_lossy().into_owned())
    }

    /// Runs `sign` on the folder; returns the output.
    fn sign(&self, key: &str) -> Output {
        run(&["sign", "--key", key, &self.0.to_string_lossy()])
    }

    fn keys(&self, manifest: &str, pk: &[u8; 32]) -> BTreeSet<String> {
        let bytes = fs::read(self.0.join(manifest)).unwrap_or_else(|e| panic!("{manifest}: {e}"));
        let m = Manifest::parse_signed(&bytes, pk).unwrap_or_else(|e| panic!("{manifest}: {e}"));
        m.entries.keys().cloned().collect()
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn hls_byte_range_chains_maps_and_crlf() {
    let t = TempDir::new("hls-ranges");
    t.write("media file.mp4", bytes(1000));
    t.write(
        "index.m3u8",
        "#EXTM3U\r\n#EXT-X-VERSION:7\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-MEDIA-SEQUENCE:40\r\n\
         #EXT-X-MAP:URI=\"media%20file.mp4\",BYTERANGE=\"100@0\"\r\n\
         #EXTINF:2.0,\r\n#EXT-X-BYTERANGE:300@100\r\nmedia%20file.mp4\r\n\
         #EXTINF:2.0,\r\n#EXT-X-BYTERANGE:400\r\nmedia%20file.mp4\r\n#EXT-X-ENDLIST\r\n",
    );
    let (pk, key) = t.key();
    let out = t.sign(&key);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        t.keys("index.m3u8.shoal", &pk),
        set(&[
            "media%20file.mp4@0-100",
            "media%20file.mp4@100-400",
            "media%20file.mp4@400-800"
        ])
    );
}

#[test]
fn hls_master_covers_variants_and_alternate_renditions() {
    let t = TempDir::new("hls-master");
    for (name, seg) in [("v.m3u8", "v0.ts"), ("a.m3u8", "a0.aac")] {
        t.write(seg, bytes(500));
        t.write(
            name,
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{seg}\n#EXT-X-ENDLIST\n"),
        );
    }
    t.write(
        "master.m3u8",
        "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"a.m3u8\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=100000,AUDIO=\"aud\"\nv.m3u8\n",
    );
    let (pk, key) = t.key();
    let out = t.sign(&key);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.keys("master.m3u8.shoal", &pk), set(&["v0.ts", "a0.aac"]));
    assert_eq!(t.keys("v.m3u8.shoal", &pk), set(&["v0.ts"]));
}

#[test]
fn hls_errors_name_the_playlist_and_the_problem() {
    let t = TempDir::new("hls-errors");
    let (_, key) = t.key();
    t.write("a.ts", bytes(10));
    t.write(
        "index.m3u8",
        "#EXTM3U\n#EXTINF:1,\n#EXT-X-BYTERANGE:5\na.ts\n",
    );
    let out = t.sign(&key);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("index.m3u8") && e.contains("without offset"),
        "{e}"
    );
    t.write("index.m3u8", "not a playlist\n");
    let out = t.sign(&key);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no #EXTM3U"), "{}", stderr(&out));
    t.write(
        "index.m3u8",
        "#EXTM3U\n#EXTINF:1,\nhttps://cdn.example/a.ts\n",
    );
    let out = t.sign(&key);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("only relative URIs"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dash_time_timeline_with_inherited_template() {
    let t = TempDir::new("dash-time");
    // $Time$ with t and r, the template split between AdaptationSet and Representation,
    // a DOCTYPE, comments and a BaseURL per level.
    fs::create_dir_all(t.0.join("media/v1")).unwrap_or_else(|e| panic!("{e}"));
    for name in [
        "init.mp4", "0.m4s", "1000.m4s", "2000.m4s", "3000.m4s", "3500.m4s",
    ] {
        t.write(&format!("media/v1/{name}"), bytes(64));
    }
    t.write(
        "s.mpd",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE MPD>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
  <BaseURL>media/</BaseURL>
  <Period id="p0">
    <!-- the set holds the timing, the representation the names -->
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="1000">
        <SegmentTimeline><S t="0" d="1000" r="2"/><S d="500" r="1"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v&amp;1" bandwidth="1000">
        <BaseURL>v1/</BaseURL>
        <SegmentTemplate initialization="init.mp4" media="$Time$.m4s"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#,
    );
    let (pk, key) = t.key();
    let out = t.sign(&key);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = set(&[
        "init.mp4", "0.m4s", "1000.m4s", "2000.m4s", "3000.m4s", "3500.m4s",
    ]);
    assert_eq!(t.keys("s.mpd.shoal", &pk), want);
    assert_eq!(t.keys("s.mpd.v_1.shoal", &pk), want);
}

#[test]
fn dash_errors_name_the_problem() {
    let t = TempDir::new("dash-errors");
    let (_, key) = t.key();
    t.write("bad.mpd", "<MPD><Period></MPD>");
    let out = t.sign(&key);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("bad.mpd") && e.contains("not a valid MPD"),
        "{e}"
    );
    fs::remove_file(t.0.join("bad.mpd")).unwrap_or_else(|e| panic!("{e}"));
    t.write(
        "open.mpd",
        r#"<MPD><Period><AdaptationSet><Representation id="a">
        <SegmentTemplate media="$Number$.m4s"><SegmentTimeline><S d="10" r="-1"/></SegmentTimeline></SegmentTemplate>
        </Representation></AdaptationSet></Period></MPD>"#,
    );
    let out = t.sign(&key);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("Representation \"a\"") && e.contains("r = -1"),
        "{e}"
    );
    t.write(
        "open.mpd",
        r#"<MPD><Period><AdaptationSet><Representation id="a">
        <SegmentTemplate media="$Number$.m4s"><SegmentTimeline><S d="ten"/></SegmentTimeline></SegmentTemplate>
        </Representation></AdaptationSet></Period></MPD>"#,
    );
    let e = stderr(&t.sign(&key));
    assert!(e.contains("bad S@d \"ten\""), "{e}");
}

#[test]
fn command_line_exit_statuses() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["keygen", "pubkey", "sign", "verify"] {
        assert!(text.contains(cmd), "{text}");
    }
    assert_eq!(run(&["help", "sign"]).status.code(), Some(0));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run(&["sign", "--key", "k", "--interval", "soon", "."])
            .status
            .code(),
        Some(2)
    );
    let bad_key = run(&["verify", "--public-key", "ed25519:nope", "m.shoal"]);
    assert_eq!(bad_key.status.code(), Some(2));
    assert!(
        stderr(&bad_key).contains("--public-key"),
        "{}",
        stderr(&bad_key)
    );
    assert_eq!(run(&["keygen"]).status.code(), Some(2));
    let t = TempDir::new("cli");
    let missing: &Path = &t.0.join("none.shoal");
    let (_, key) = t.key();
    let pk = run(&["pubkey", "--key", &key]);
    let pk = String::from_utf8_lossy(&pk.stdout).trim().to_owned();
    let out = run(&["verify", "--public-key", &pk, &missing.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}
