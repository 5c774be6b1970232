//! Single-thread dequantization throughput per type, next to a plain copy of the same output.
//!
//! `cargo bench -p quantdoc-core --bench dequant` decodes `QUANTDOC_BENCH_VALUES` values
//! (default 64 Mi = 67,108,864, llama.cpp's `test-quantize-perf --size`) of random blocks with
//! sane finite scales, with the kernels' dispatch (`<TYPE>`) and with the scalar reference
//! (`<TYPE>_scalar_reference`). Throughput is reported in values/s; input GB/s = values/s ×
//! the type's bytes per value. `bench/gguf_py_dequant.py --with-rust` runs gguf-py on the same
//! sizes, runs this bench, and prints both with the ratio.

use criterion::{criterion_group, Criterion, Throughput};
use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::kernels::{dequantize, scalar};
use std::hint::black_box;
use std::time::{Duration, Instant};

const TYPES: &[GgmlType] = &[
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::MXFP4,
];

fn values() -> usize {
    std::env::var("QUANTDOC_BENCH_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 << 20)
}

/// Deterministic xorshift bytes: the kernels' speed does not depend on the quant values.
fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Byte offsets of the f16 scale fields in one block of `ty`.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::IQ4_NL | GgmlType::IQ4_XS => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// A half in [2^-14, 2^-6): a typical weight scale, far from overflow and subnormal results.
fn sane_half(r: u8, s: u8) -> [u8; 2] {
    let exp = 1 + (r % 8) as u16;
    let bits = (exp << 10) | ((s as u16) << 2);
    bits.to_le_bytes()
}

fn input(ty: GgmlType, n: usize) -> Vec<u8> {
    let bytes = ty.bytes_for(n as u64).expect("whole blocks") as usize;
    let mut src = random_bytes(bytes, 0x9e37_79b9_7f4a_7c15 ^ ty.id() as u64);
    if ty == GgmlType::F16 {
        for h in src.chunks_exact_mut(2) {
            h.copy_from_slice(&sane_half(h[0], h[1]));
        }
    }
    let ts = ty.type_size() as usize;
    for block in src.chunks_exact_mut(ts) {
        for &at in f16_fields(ty) {
            let h = sane_half(block[at], block[at + 1]);
            block[at..at + 2].copy_from_slice(&h);
        }
        if ty == GgmlType::MXFP4 {
            // The E8M0 scale: 2^(e - 127) for e in 118..=133, typical weight magnitudes.
            block[0] = 118 + block[0] % 16;
        }
    }
    src
}

fn bench(c: &mut Criterion) {
    let n = values();
    let mut dst = vec![0f32; n];
    let copy_src = vec![1f32; n];

    let mut group = c.benchmark_group("dequant");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(n as u64));

    group.bench_function("memcpy_f32_out", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&copy_src)))
    });
    for &ty in TYPES {
        let src = input(ty, n);
        group.bench_function(ty.name(), |b| {
            b.iter(|| dequantize(ty, black_box(&src), &mut dst).expect("sizes match"))
        });
        group.bench_function(format!("{}_scalar_reference", ty.name()), |b| {
            b.iter(|| scalar::dequantize(ty, black_box(&src), &mut dst).expect("sizes match"))
        });
    }
    group.finish();
}

/// With `QUANTDOC_BENCH_BEST_OF=R`, also print the fastest of R single passes per benchmark as
/// `best-pass <id> <G values/s>`: on a shared machine a whole criterion sample includes time
/// the thread spent descheduled, while the fastest single pass approximates the kernel's own
/// speed. `QUANTDOC_BENCH_TYPES=F16,Q4_K` limits these passes to the dispatched kernels of
/// the named types (no memcpy, no scalar reference), so that a driver can alternate them with
/// another program type by type.
fn best_passes() {
    let Some(reps) = std::env::var("QUANTDOC_BENCH_BEST_OF")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let n = values();
    let mut dst = vec![0f32; n];
    let copy_src = vec![1f32; n];
    let best = |f: &mut dyn FnMut()| {
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let report = |id: &str, secs: f64| println!("best-pass {id} {:.3}", n as f64 / secs / 1e9);
    let only = std::env::var("QUANTDOC_BENCH_TYPES").ok();
    let chosen = |ty: GgmlType| match &only {
        Some(list) => list.split(',').any(|name| name == ty.name()),
        None => true,
    };
    if only.is_none() {
        report(
            "memcpy_f32_out",
            best(&mut || dst.copy_from_slice(black_box(&copy_src))),
        );
    }
    for &ty in TYPES.iter().filter(|&&ty| chosen(ty)) {
        let src = input(ty, n);
        let fast = best(&mut || dequantize(ty, black_box(&src), &mut dst).expect("sizes match"));
        report(ty.name(), fast);
        if only.is_none() {
            let reference = best(&mut || {
                scalar::dequantize(ty, black_box(&src), &mut dst).expect("sizes match")
            });
            report(&format!("{}_scalar_reference", ty.name()), reference);
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    best_passes();
    Criterion::default().configure_from_args().final_summary();
}
