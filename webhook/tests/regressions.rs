//! Kept fuzz inputs, run in the ordinary test suite. Every file under
//! `tests/regressions/<target>/` is an input a cargo-fuzz target in `fuzz/` once crashed on (or
//! an input written by hand for a bug found otherwise), and goes through the same check the
//! target runs (`webhook::fuzzing`), which panics when a property breaks. See fuzz/README.md for
//! how to add one.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no kept inputs in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on every kept input of `target`, naming each input that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for (path, bytes) in inputs(target) {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "kept inputs failing again: {failed:#?}");
}

#[test]
fn whatsapp_parse() {
    replay("whatsapp_parse", webhook::fuzzing::whatsapp);
}
