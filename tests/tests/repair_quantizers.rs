//! The reference quantizers against gguf-py 0.19.0 itself: random and adversarial values,
//! quantized by both, must give identical bytes.

mod repair_support;

use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::quantize::quantize_to_vec;
use repair_support::{check_script, gguf_py, scratch};

/// Values that probe every rounding rule: ordinary weights, exact ties at .5 of the step,
/// all-zero and constant blocks, negative extremes, duplicated extremes, tiny and huge
/// magnitudes, f16 overflow and subnormal scales.
fn probe_values(n_blocks: usize) -> Vec<f32> {
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut out = Vec::with_capacity(n_blocks * 256);
    for b in 0..n_blocks {
        for i in 0..256 {
            let u = rnd();
            let v = match b % 12 {
                0 => (u - 0.5) * 0.1,
                1 => (u - 0.5) * 0.1 + 0.03,
                2 => 0.0,
                3 => 0.25,
                4 => ((u * 33.0).floor() - 16.0) * 0.5, // ties on the Q4/Q5/Q8 grids
                5 => {
                    if i % 32 == 0 {
                        -1.0
                    } else {
                        ((u * 17.0).floor() - 8.0) / 8.0
                    }
                }
                6 => (u - 0.5) * 1e-6,
                7 => (u - 0.5) * 2e5,
                8 => {
                    if i % 32 == 3 || i % 32 == 7 {
                        if i % 2 == 0 {
                            2.0
                        } else {
                            -2.0
                        }
                    } else {
                        (u - 0.5) * 3.0
                    }
                }
                9 => (u - 0.5) * 1e-30,
                10 => ((u * 5.0).floor() - 2.0) * 0.375,
                _ => (u * 2.0 - 1.0).powi(3) * 7.0,
            };
            out.push(v);
        }
    }
    out
}

#[test]
fn quantizers_match_gguf_py_byte_for_byte() {
    let Some(py) = gguf_py("quantizers_match_gguf_py_byte_for_byte") else {
        return;
    };
    let dir = scratch("quantizers");
    let values = probe_values(48);
    let input = dir.join("values.f32");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input, bytes).unwrap();
    let types = [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::BF16,
        GgmlType::F16,
    ];
    for ty in types {
        let out = dir.join(format!("{}.bin", ty.name()));
        check_script(
            py,
            &[
                "quantize",
                ty.name(),
                input.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
        );
        let want = std::fs::read(&out).unwrap();
        let got = quantize_to_vec(ty, &values).unwrap();
        assert_eq!(got.len(), want.len(), "{ty}: size");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            let block = i / ty.type_size() as usize;
            panic!(
                "{ty}: byte {i} (block {block}, probe kind {}) is {:#04x}, gguf-py wrote {:#04x}",
                (block * ty.block_size() as usize / 256) % 12,
                got[i],
                want[i]
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
