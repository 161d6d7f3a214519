#![no_main]
//! `cargo +nightly fuzz run telegram_update`: see fuzz/README.md. The checks live in `bot::fuzzing::telegram` so that
//! the crate's `tests/regressions.rs` runs them over the kept inputs too.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bot::fuzzing::telegram(data));
