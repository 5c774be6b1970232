use super::*;
use crate::kernels;
use crate::testutil::{fixtures_or_skip, manifest, read_f32};

/// gguf-py's own quantize of its own dequantized output reproduces the stored bytes (checked
/// with gguf-py 0.19.0), so re-quantizing the fixtures' expected values must give the
/// fixture bytes exactly.
#[test]
fn requantizing_fixture_values_reproduces_gguf_py_bytes() {
    let Some(dir) = fixtures_or_skip("requantizing_fixture_values_reproduces_gguf_py_bytes") else {
        return;
    };
    let m = manifest(&dir);
    let mut checked = 0;
    for f in m["fixtures"].as_array().unwrap() {
        if f["format"] != "gguf" {
            continue;
        }
        let ty = GgmlType::from_name(f["ggml_type"].as_str().unwrap()).unwrap();
        // The K-quant fixtures are random block bytes, not gguf-py output.
        if !can_quantize(ty) || matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K) {
            continue;
        }
        let file = std::fs::read(dir.join(f["file"].as_str().unwrap())).unwrap();
        let at = f["data_offset_in_file"].as_u64().unwrap() as usize;
        let n = f["n_bytes"].as_u64().unwrap() as usize;
        let want = &file[at..at + n];
        let values = read_f32(&dir.join(f["expected"].as_str().unwrap()));
        let got = quantize_to_vec(ty, &values).unwrap();
        assert_eq!(got.len(), want.len(), "{}", f["id"]);
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!(
                "{}: byte {i} (block {}) is {:#04x}, gguf-py wrote {:#04x}",
                f["id"],
                i / ty.type_size() as usize,
                got[i],
                want[i]
            );
        }
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} fixture tensors checked");
}

/// Deterministic pseudo-random values shaped like weights, with some hard cases mixed in.
fn sample(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f64 / (1u64 << 31) as f64) as f32
    };
    (0..n)
        .map(|i| match (i / 256) % 4 {
            0 => (next() - 0.5) * 0.2,
            1 => (next() - 0.5) * 0.2 + 0.05,
            2 => (next() * 2.0 - 1.0).powi(3) * 3.0,
            _ => {
                if i % 7 == 0 {
                    0.0
                } else {
                    (next() - 0.5) * 1e-3
                }
            }
        })
        .collect()
}

fn rms(v: &[f32]) -> f64 {
    (v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Quantize then dequantize: the error relative to the data's RMS stays below what the
/// format's bit width allows (generous bounds; a packing bug gives errors near 100%).
#[test]
fn round_trip_error_is_bounded() {
    let x = sample(256 * 16, 7);
    let bounds = [
        (GgmlType::Q8_0, 0.01),
        (GgmlType::Q5_0, 0.05),
        (GgmlType::Q5_1, 0.05),
        (GgmlType::Q4_0, 0.1),
        (GgmlType::Q4_1, 0.1),
        (GgmlType::Q6_K, 0.04),
        (GgmlType::Q5_K, 0.06),
        (GgmlType::Q4_K, 0.1),
        (GgmlType::MXFP4, 0.2),
        (GgmlType::F16, 0.001),
        (GgmlType::BF16, 0.01),
    ];
    for (ty, bound) in bounds {
        let q = quantize_to_vec(ty, &x).unwrap();
        let mut back = vec![0f32; x.len()];
        kernels::dequantize(ty, &q, &mut back).unwrap();
        for (chunk, (a, b)) in x.chunks(256).zip(back.chunks(256)).enumerate() {
            let err: Vec<f32> = a.iter().zip(b).map(|(p, q)| p - q).collect();
            let rel = rms(&err) / rms(a).max(1e-30);
            assert!(
                rel < bound,
                "{ty}: super-block {chunk}: relative RMS error {rel:.4} exceeds {bound}"
            );
        }
    }
}

#[test]
fn zero_blocks_stay_zero_and_requantizing_barely_drifts() {
    // A zero block gives an all-zero block (ggml writes d = 0 and zero codes).
    for ty in [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let q = quantize_to_vec(ty, &[0.0; 256]).unwrap();
        let mut back = vec![1f32; 256];
        kernels::dequantize(ty, &q, &mut back).unwrap();
        assert!(back.iter().all(|&v| v == 0.0), "{ty}");
    }
    // Quantizing already-quantized values again moves them by far less than one step.
    let x = sample(512, 3);
    for ty in [
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_0,
    ] {
        let q1 = quantize_to_vec(ty, &x).unwrap();
        let mut y1 = vec![0f32; x.len()];
        kernels::dequantize(ty, &q1, &mut y1).unwrap();
        let q2 = quantize_to_vec(ty, &y1).unwrap();
        let mut y2 = vec![0f32; x.len()];
        kernels::dequantize(ty, &q2, &mut y2).unwrap();
        let drift = rms(&y1.iter().zip(&y2).map(|(a, b)| a - b).collect::<Vec<_>>());
        assert!(
            drift <= rms(&x) * 0.02,
            "{ty}: requantizing drifts by {drift}"
        );
    }
}

#[test]
fn rounding_rules_match_numpy_and_ggml() {
    // Q8_0 rounds half away from zero: with amax 127, x = 2.5 gives 3 and -2.5 gives -3.
    let mut x = [0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    let q = quantize_to_vec(GgmlType::Q8_0, &x).unwrap();
    assert_eq!(&q[..2], &half::f16::from_f32(1.0).to_le_bytes());
    assert_eq!((q[2] as i8, q[3] as i8, q[4] as i8), (127, 3, -3));
    // Q4_0 takes the signed value of largest magnitude (first one on ties) and truncates.
    let mut x = [0f32; 32];
    x[3] = -8.0;
    x[4] = 8.0;
    x[16] = 1.5;
    let q = quantize_to_vec(GgmlType::Q4_0, &x).unwrap();
    assert_eq!(half::f16::from_le_bytes([q[0], q[1]]).to_f32(), 1.0);
    assert_eq!(q[2 + 3] & 0xf, 0); // -8 -> code 0
    assert_eq!(q[2 + 4] & 0xf, 15); // +8 -> 16 clipped to 15
                                    // d = -8 / -8 = 1: element 0 (0.0) is code 8, element 16 (1.5) is trunc(10.0) = 10.
    assert_eq!((q[2] & 0xf, q[2] >> 4), (8, 10));
    // BF16 rounds to nearest even and quiets NaNs.
    assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
    assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
    assert_eq!(bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
}

#[test]
fn refuses_partial_blocks_and_unsupported_types() {
    assert!(matches!(
        quantize_to_vec(GgmlType::Q4_0, &[0.0; 33]),
        Err(QuantizeError::Size { .. })
    ));
    assert!(matches!(
        quantize_to_vec(GgmlType::IQ2_XXS, &[0.0; 256]),
        Err(QuantizeError::Unsupported(..))
    ));
    let mut small = [0u8; 3];
    assert!(quantize(GgmlType::Q8_0, &[0.0; 32], &mut small).is_err());
}

#[test]
fn large_inputs_quantize_like_block_by_block() {
    // With the `parallel` feature big inputs are split across threads; the bytes must be
    // those of the serial block loop.
    let x = sample(256 * 1100, 11);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q8_0] {
        let whole = quantize_to_vec(ty, &x).unwrap();
        let mut serial = vec![0u8; whole.len()];
        quantize_blocks(ty, &x, &mut serial);
        assert!(whole == serial, "{ty}");
    }
}
