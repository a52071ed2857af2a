//! Feeds arbitrary bytes to the wire decoder. It must never panic, and whatever it accepts
//! must encode back to exactly the same bytes and pass `validate`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal::wire::{decode, encode, MAX_MESSAGE_SIZE};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        assert!(data.len() <= MAX_MESSAGE_SIZE);
        assert_eq!(encode(&msg), data, "re-encoding differs for {msg:?}");
        assert_eq!(msg.validate(), Ok(()));
        assert_eq!(msg.encoded_len(), data.len());
    }
});
