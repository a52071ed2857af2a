//! The native tool: arguments (clap), `main`, and the failure type; each subcommand's work
//! is in the modules beside this one.

mod files;
mod hls;
mod keys;
mod mpd;
mod sign;
mod verify;

use files::*;
use hls::*;
use keys::*;
use mpd::*;
use sign::*;
use verify::*;

use clap::{Parser, Subcommand};
use shoal::dash::{self, TemplateVars, TimelineEntry};
use shoal::integrity::{
    format_public_key, manifest_key, public_key_of, sha256, sign_manifest, Manifest, ManifestEntry,
    MANIFEST_VERSION, MAX_MANIFEST_BYTES, MAX_MANIFEST_ENTRIES,
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
pub(super) const MAX_DEPTH: usize = 8;
pub(super) const MAX_PLAYLIST_BYTES: u64 = 64 * 1024 * 1024;

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

pub(super) struct Failure(pub(super) String);

pub(super) fn fail<T>(m: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(m.into()))
}
