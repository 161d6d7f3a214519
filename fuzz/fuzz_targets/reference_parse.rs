#![no_main]
//! `cargo +nightly fuzz run reference_parse`: see fuzz/README.md. The checks live in `flows::fuzzing::reference` so that
//! the crate's `tests/regressions.rs` runs them over the kept inputs too.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flows::fuzzing::reference(data));
