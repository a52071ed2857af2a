//! Feeds arbitrary bytes to the integrity manifest parser (docs/MANIFEST.md). It must never
//! panic; whatever it accepts must survive `to_text` and parse back to the same value, and
//! `parse_signed` may only accept what `parse` accepts, with the same result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal::integrity::{public_key_of, Manifest};
use std::sync::OnceLock;

/// Deriving a public key is a scalar multiplication: do it once, not per input.
static KEY: OnceLock<[u8; 32]> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let parsed = Manifest::parse(data);
    if let Ok(m) = &parsed {
        assert_eq!(Manifest::parse(m.to_text().as_bytes()).as_ref(), Ok(m));
    }
    // The doc's test key is not needed: no fuzz input carries a valid signature by any
    // key, so this checks that the signature path rejects cleanly.
    let key = KEY.get_or_init(|| public_key_of(&[1u8; 32]));
    if let Ok(m) = Manifest::parse_signed(data, key) {
        assert_eq!(parsed.as_ref(), Ok(&m));
    }
});
