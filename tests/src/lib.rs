//! Helpers shared by the integration tests: the shared fixtures are the oracle.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use quantdoc_core::load::{load, Input};
use quantdoc_core::model::Model;
use quantdoc_core::scan::{scan_model, ScanError, ScanOptions, ScanResult};
use quantdoc_core::source::SliceSource;

/// `../shared/fixtures` beside the checkout (or `$QUANTDOC_FIXTURES`), or None after
/// printing why the calling test is skipped.
pub fn fixtures_or_skip(test: &str) -> Option<PathBuf> {
    let dir = match std::env::var("QUANTDOC_FIXTURES") {
        Ok(p) => PathBuf::from(p),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    };
    if dir.join("MANIFEST.json").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED {test}: ../shared/fixtures not found (set QUANTDOC_FIXTURES)");
        None
    }
}

pub fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("MANIFEST.json")).expect("read MANIFEST.json");
    serde_json::from_str(&text).expect("parse MANIFEST.json")
}

/// Raw little-endian f32 values.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Assert bit-for-bit equality, naming the first difference.
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

/// Files held in memory, loadable as one model.
pub struct MemFiles {
    pub files: Vec<(String, SliceSource<Vec<u8>>)>,
}

impl MemFiles {
    pub fn read(paths: &[PathBuf]) -> Self {
        MemFiles {
            files: paths
                .iter()
                .map(|p| {
                    let bytes =
                        std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                    (p.display().to_string(), SliceSource::new(bytes))
                })
                .collect(),
        }
    }

    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Self {
        MemFiles {
            files: vec![(name.to_string(), SliceSource::new(bytes))],
        }
    }

    pub fn inputs(&self) -> Vec<Input<'_>> {
        self.files
            .iter()
            .map(|(p, s)| Input {
                path: p.clone(),
                source: s,
            })
            .collect()
    }

    pub fn sources(&self) -> Vec<&SliceSource<Vec<u8>>> {
        self.files.iter().map(|(_, s)| s).collect()
    }

    pub fn load(&self) -> Result<Model, quantdoc_core::error::LoadError> {
        load(&self.inputs())
    }

    /// The deep scan of `model` (loaded from these files), without progress or cancel.
    pub fn scan(&self, model: &Model, options: &ScanOptions) -> Result<ScanResult, ScanError> {
        scan_model(
            model,
            &self.sources(),
            options,
            &mut |_| {},
            &AtomicBool::new(false),
        )
    }
}
