//! Scan tests: statistics against a direct computation over the decoded values, and the
//! same statistics whatever the chunking and thread count.

use std::sync::atomic::AtomicBool;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::testmodel::{values, Builder};
use super::*;
use crate::encoding::dequantize_tensor;
use crate::ggml::types::GgmlType;
use crate::source::SliceSource;
use crate::stats::TensorStats;

fn scan(model: &Model, bytes: &[u8], opts: &ScanOptions) -> ScanResult {
    let src = SliceSource::new(bytes);
    scan_model(model, &[&src], opts, &mut |_| {}, &AtomicBool::new(false)).unwrap()
}

fn mixed_model() -> (Model, Vec<u8>) {
    let mut b = Builder::default();
    let mut xs = values(96 * 160, 1, 0.3);
    xs[17] = f32::NAN;
    xs[5000] = 0.0;
    xs[5001] = f32::NEG_INFINITY;
    b = b.values("a.weight", vec![96, 160], GgmlType::F32, &xs);
    b = b.values(
        "b.weight",
        vec![3, 50, 128],
        GgmlType::Q8_0,
        &values(3 * 50 * 128, 2, 0.02),
    );
    b = b.values("c.weight", vec![1000], GgmlType::F16, &values(1000, 3, 4.0));
    // Rows of 1 element (the [N, 1] shape from seed 000): short-row path and sampling.
    b = b.values(
        "d.weight",
        vec![3001, 1],
        GgmlType::F32,
        &values(3001, 4, 1.0),
    );
    b.build()
}

/// Statistics computed the obvious way from the fully decoded tensor.
fn direct(model: &Model, bytes: &[u8], name: &str) -> (Vec<f32>, f64, f64, Vec<f64>) {
    let t = model.tensor(name).unwrap();
    let src = SliceSource::new(bytes);
    let xs = dequantize_tensor(model, t, &[&src]).unwrap();
    let fin: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| x as f64)
        .collect();
    let mean = fin.iter().sum::<f64>() / fin.len() as f64;
    let var = fin.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / fin.len() as f64;
    let rl = t.row_len() as usize;
    let rows = xs
        .chunks(rl)
        .map(|r| {
            (r.iter()
                .filter(|x| x.is_finite())
                .map(|&x| (x as f64).powi(2))
                .sum::<f64>()
                / rl as f64)
                .sqrt()
        })
        .collect();
    (xs, mean, var.sqrt(), rows)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-30)
}

#[test]
fn statistics_match_a_direct_computation() {
    let (model, bytes) = mixed_model();
    let r = scan(&model, &bytes, &ScanOptions::default());
    for name in ["a.weight", "b.weight", "c.weight", "d.weight"] {
        let s = r.get(name).unwrap();
        let (xs, mean, std, rows) = direct(&model, &bytes, name);
        assert_eq!(s.elements, xs.len() as u64, "{name}");
        assert_eq!(
            s.nan,
            xs.iter().filter(|x| x.is_nan()).count() as u64,
            "{name}"
        );
        assert_eq!(
            s.inf,
            xs.iter().filter(|x| x.is_infinite()).count() as u64,
            "{name}"
        );
        assert_eq!(
            s.zeros,
            xs.iter().filter(|&&x| x == 0.0).count() as u64,
            "{name}"
        );
        let fin = xs.iter().copied().filter(|x| x.is_finite());
        assert_eq!(
            s.min,
            Some(fin.clone().fold(f32::INFINITY, f32::min)),
            "{name}"
        );
        assert_eq!(s.max, Some(fin.fold(f32::NEG_INFINITY, f32::max)), "{name}");
        assert!(
            (s.mean.unwrap() - mean).abs() <= 1e-6 * std,
            "{name} mean {} vs {mean}",
            s.mean.unwrap()
        );
        assert!(
            close(s.std.unwrap(), std, 1e-6),
            "{name} std {} vs {std}",
            s.std.unwrap()
        );
        let mut sorted = rows.clone();
        sorted.sort_by(f64::total_cmp);
        let rs = s.rows.as_ref().unwrap();
        assert_eq!(rs.rows, rows.len() as u64, "{name}");
        if rs.sampled == rs.rows {
            assert!(close(rs.min as f64, sorted[0], 1e-5), "{name} row min");
            assert!(
                close(rs.max as f64, sorted[sorted.len() - 1], 1e-5),
                "{name} row max"
            );
        }
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), s.finite, "{name}");
        assert!(s.content_hash.is_some(), "{name}");
    }
    let b = r.get("b.weight").unwrap();
    let sc = b.scales.as_ref().unwrap();
    assert_eq!((sc.fields, sc.nan, sc.fields_per_block), (3 * 50 * 4, 0, 1));
    assert!(r.get("a.weight").unwrap().scales.is_none());
}

fn assert_same(a: &TensorStats, b: &TensorStats, what: &str) {
    assert_eq!(
        (a.elements, a.finite, a.nan, a.inf, a.zeros, a.min, a.max),
        (b.elements, b.finite, b.nan, b.inf, b.zeros, b.min, b.max),
        "{what}"
    );
    assert_eq!(a.histogram, b.histogram, "{what}");
    assert_eq!(a.scales, b.scales, "{what}");
    assert_eq!(a.content_hash, b.content_hash, "{what}");
    assert_eq!(a.integer_valued, b.integer_valued, "{what}");
    assert!(
        (a.mean.unwrap() - b.mean.unwrap()).abs() <= 1e-6 * a.std.unwrap(),
        "{what}: mean {} vs {}",
        a.mean.unwrap(),
        b.mean.unwrap()
    );
    assert!(
        close(a.std.unwrap(), b.std.unwrap(), 1e-6),
        "{what}: std {} vs {}",
        a.std.unwrap(),
        b.std.unwrap()
    );
    assert!(
        close(a.rms.unwrap(), b.rms.unwrap(), 1e-6),
        "{what}: rms {} vs {}",
        a.rms.unwrap(),
        b.rms.unwrap()
    );
    let (ra, rb) = (a.rows.as_ref().unwrap(), b.rows.as_ref().unwrap());
    assert_eq!((ra.rows, ra.sampled), (rb.rows, rb.sampled), "{what}");
    for (x, y) in [(ra.min, rb.min), (ra.median, rb.median), (ra.max, rb.max)] {
        assert!(close(x as f64, y as f64, 1e-5), "{what}: {x} vs {y}");
    }
}

#[test]
fn chunking_changes_only_rounding() {
    let (model, bytes) = mixed_model();
    let base = scan(&model, &bytes, &ScanOptions::default());
    let variants = [
        ScanOptions {
            job_elements: 64,
            piece_elements: 32,
            buffer_elements: 32,
            wave_bytes: 1,
            ..Default::default()
        },
        ScanOptions {
            job_elements: 1000,
            piece_elements: 300,
            buffer_elements: 100,
            ..Default::default()
        },
        ScanOptions {
            job_elements: 5000,
            piece_elements: 5000,
            buffer_elements: 4096,
            wave_bytes: 100,
            ..Default::default()
        },
    ];
    for (i, o) in variants.iter().enumerate() {
        let r = scan(&model, &bytes, o);
        for (a, b) in base.tensors.iter().zip(&r.tensors) {
            assert_same(
                a.stats.as_ref().unwrap(),
                b.stats.as_ref().unwrap(),
                &format!("variant {i} {}", a.name),
            );
        }
    }
}

#[cfg(feature = "parallel")]
#[test]
fn thread_count_does_not_change_results() {
    let (model, bytes) = mixed_model();
    let opts = ScanOptions {
        job_elements: 2048,
        piece_elements: 512,
        ..Default::default()
    };
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| scan(&model, &bytes, &opts))
    };
    // A fixed chunking merges in a fixed order: bit-identical, not just close.
    assert_eq!(run(1), run(4));
}

/// Q4_K tensors of random blocks (`stats::codes` tests' generator: ordinary scales, NaN and
/// Inf `d`/`dmin`, zero and subnormal scales, blocks whose values round in f32), in rows of
/// one, two and four blocks.
fn q4_k_model() -> (Model, Vec<u8>) {
    let mut rng = crate::stats::testrng::Rng::new(0x0004_4b00);
    let mut b = Builder::default();
    for (name, rows, cols) in [("a", 24u64, 256u64), ("b", 13, 512), ("c", 5, 1024)] {
        let blocks = (rows * cols / 256) as usize;
        let data = crate::stats::codes::tests::random_blocks(&mut rng, blocks);
        b = b.raw(name, vec![rows, cols], GgmlType::Q4_K, &data);
    }
    // Ordinary blocks only: no NaN, so the moments are compared too.
    let mut data = Vec::new();
    for _ in 0..40 {
        let mut blk = rng.bytes(144);
        for at in [0, 2] {
            let h = (10u16 + rng.below(3) as u16) << 10 | (rng.next() as u16 & 0x83ff);
            blk[at..at + 2].copy_from_slice(&h.to_le_bytes());
        }
        data.extend(blk);
    }
    b = b.raw("d", vec![20, 512], GgmlType::Q4_K, &data);
    b.build()
}

#[test]
fn q4_k_statistics_from_codes_equal_decoded_statistics() {
    let (model, bytes) = q4_k_model();
    for (i, opts) in [
        ScanOptions::default(),
        ScanOptions {
            job_elements: 1024,
            piece_elements: 512,
            buffer_elements: 256,
            ..Default::default()
        },
        ScanOptions {
            job_elements: 3000,
            piece_elements: 1500,
            buffer_elements: 700,
            ..Default::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        let codes = scan(
            &model,
            &bytes,
            &ScanOptions {
                from_codes: true,
                ..opts.clone()
            },
        );
        let decoded = scan(
            &model,
            &bytes,
            &ScanOptions {
                from_codes: false,
                ..opts
            },
        );
        for (a, b) in codes.tensors.iter().zip(&decoded.tensors) {
            let (sa, sb) = (a.stats.as_ref().unwrap(), b.stats.as_ref().unwrap());
            assert_same(sa, sb, &format!("options {i}, {}", a.name));
            assert_eq!(sa.zero_fraction, sb.zero_fraction, "{}", a.name);
        }
    }
    let r = scan(&model, &bytes, &ScanOptions::default());
    let (a, d) = (r.get("a").unwrap(), r.get("d").unwrap());
    assert!(
        a.nan > 0 && a.inf > 0,
        "the random blocks include non-finite scales"
    );
    assert!(a.scales.as_ref().unwrap().nan > 0);
    assert_eq!((d.nan, d.inf, d.finite), (0, 0, 20 * 512));
    // The ordinary tensor against a direct computation from the decoded values.
    let (xs, mean, std, _) = direct(&model, &bytes, "d");
    assert_eq!(d.zeros, xs.iter().filter(|&&x| x == 0.0).count() as u64);
    assert!(
        (d.mean.unwrap() - mean).abs() <= 1e-9 * std,
        "{} vs {mean}",
        d.mean.unwrap()
    );
    assert!(
        close(d.std.unwrap(), std, 1e-9),
        "{} vs {std}",
        d.std.unwrap()
    );
}

#[test]
fn row_sampling_caps_memory_and_keeps_exact_counts() {
    let (model, bytes) = mixed_model();
    let opts = ScanOptions {
        max_row_samples: 100,
        ..Default::default()
    };
    let r = scan(&model, &bytes, &opts);
    let d = r.get("d.weight").unwrap();
    let rows = d.rows.as_ref().unwrap();
    assert_eq!(rows.rows, 3001);
    assert_eq!(rows.sampled, 3001u64.div_ceil(31)); // stride ceil(3001/100) = 31
    assert_eq!(d.elements, 3001);
}

#[test]
fn progress_reports_bytes_and_cancel_stops() {
    let (model, bytes) = mixed_model();
    let src = SliceSource::new(&bytes[..]);
    let opts = ScanOptions {
        job_elements: 512,
        wave_bytes: 4096,
        ..Default::default()
    };
    let mut reports = Vec::new();
    scan_model(
        &model,
        &[&src],
        &opts,
        &mut |p| reports.push(p),
        &AtomicBool::new(false),
    )
    .unwrap();
    let last = reports.last().unwrap();
    assert_eq!(last.bytes_done, last.bytes_total);
    assert_eq!(last.tensors_done, 4);
    assert!(reports.len() > 3);
    assert!(reports
        .windows(2)
        .all(|w| w[0].bytes_done <= w[1].bytes_done));
    let cancelled = scan_model(&model, &[&src], &opts, &mut |_| {}, &AtomicBool::new(true));
    assert_eq!(cancelled, Err(ScanError::Cancelled));
}

#[test]
fn unreadable_and_undecodable_tensors_get_errors_not_panics() {
    let (mut model, bytes) = mixed_model();
    // Part points past the end of the file.
    model.tensors[1].parts[0].offset = bytes.len() as u64 - 10;
    // An encoding without a decoder yet (or ever): reported, not fatal.
    model.tensors[2].encoding = Encoding::Ggml {
        ggml_type: GgmlType::Q1_0,
    };
    let r = scan(&model, &bytes, &ScanOptions::default());
    assert!(r.tensors[0].stats.is_some());
    assert!(r.tensors[1].stats.is_none());
    assert!(
        r.tensors[1]
            .error
            .as_ref()
            .unwrap()
            .contains("past the end"),
        "{:?}",
        r.tensors[1].error
    );
    assert!(r.tensors[2].error.is_some());
    assert!(r.tensors[3].stats.is_some());
}

#[test]
fn process_checks_its_inputs() {
    let (model, bytes) = mixed_model();
    let p = plan(&model, &ScanOptions::default());
    let job = &p.jobs[0];
    assert!(process(&model, job, &[], &ScanOptions::default()).is_err());
    assert!(process(&model, job, &[&bytes[..3]], &ScanOptions::default()).is_err());
}

#[test]
fn result_serializes_with_stats_per_tensor() {
    let (model, bytes) = mixed_model();
    let r = scan(&model, &bytes, &ScanOptions::default());
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["tensors"][0]["name"], "a.weight");
    assert_eq!(v["tensors"][0]["stats"]["nan"], 1);
    assert!(v["tensors"][0].get("error").is_none());
    let back: ScanResult = serde_json::from_value(v).unwrap();
    assert_eq!(back.tensors.len(), 4);
}
