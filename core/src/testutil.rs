//! Test helpers: the shared fixtures written by the real libraries are the oracle.
#![allow(dead_code)] // each fixture test module uses a different subset

use std::path::PathBuf;

/// `../shared/fixtures` beside the checkout (or `$QUANTDOC_FIXTURES`), if present.
pub fn fixtures_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("QUANTDOC_FIXTURES") {
        let p = PathBuf::from(p);
        return p.join("MANIFEST.json").is_file().then_some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures");
    p.join("MANIFEST.json").is_file().then_some(p)
}

/// The fixtures directory, or None after printing why the calling test is skipped.
pub fn fixtures_or_skip(test: &str) -> Option<PathBuf> {
    let d = fixtures_dir();
    if d.is_none() {
        eprintln!("SKIPPED {test}: ../shared/fixtures not found (set QUANTDOC_FIXTURES)");
    }
    d
}

pub fn manifest(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("MANIFEST.json")).expect("read MANIFEST.json");
    serde_json::from_str(&text).expect("parse MANIFEST.json")
}

/// Raw little-endian f32 values.
pub fn read_f32(path: &std::path::Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Assert two f32 slices are identical bit for bit (NaN payloads included), naming the
/// first difference.
pub fn assert_bits_eq(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!(
            "{what}: element {i} differs: got {} ({:#010x}), want {} ({:#010x})",
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}
