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
mod native;
