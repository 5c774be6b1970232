use super::*;
#[cfg(not(target_arch = "wasm32"))]
use crate::testutil;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn decode(ty: GgmlType, src: &[u8]) -> Vec<f32> {
    let n = src.len() / ty.type_size() as usize * ty.block_size() as usize;
    let mut out = vec![0f32; n];
    dequantize(ty, src, &mut out).unwrap();
    out
}

fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_le_bytes()
}

/// Every fixture tensor of this module's types, decoded by the dispatching and the reference
/// path, equals gguf-py's output bit for bit. (No file system on wasm: not run there.)
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn fixtures_bit_exact() {
    let Some(dir) = testutil::fixtures_or_skip("iquants::fixtures_bit_exact") else {
        return;
    };
    let manifest = testutil::manifest(&dir);
    let mut seen = std::collections::BTreeSet::new();
    for fx in manifest["fixtures"].as_array().expect("fixtures array") {
        let Some(ty) = fx["ggml_type"].as_str().and_then(GgmlType::from_name) else {
            continue;
        };
        if !TYPES.contains(&ty) {
            continue;
        }
        let id = fx["id"].as_str().unwrap();
        let file = std::fs::read(dir.join(fx["file"].as_str().unwrap())).unwrap();
        let start = fx["data_offset_in_file"].as_u64().unwrap() as usize;
        let len = fx["n_bytes"].as_u64().unwrap() as usize;
        let src = &file[start..start + len];
        let want = testutil::read_f32(&dir.join(fx["expected"].as_str().unwrap()));

        testutil::assert_bits_eq(id, &decode(ty, src), &want);
        let mut routed = vec![0f32; want.len()];
        crate::kernels::dequantize(ty, src, &mut routed).unwrap();
        testutil::assert_bits_eq(&format!("{id} (kernels::dequantize)"), &routed, &want);
        let mut reference = vec![0f32; want.len()];
        dequantize_reference(ty, src, &mut reference).unwrap();
        testutil::assert_bits_eq(&format!("{id} (reference)"), &reference, &want);
        seen.insert(ty);
    }
    let missing: Vec<_> = TYPES.iter().filter(|t| !seen.contains(t)).collect();
    assert!(missing.is_empty(), "no fixture for {missing:?}");
}

#[test]
fn rejects_partial_blocks_and_other_types() {
    let mut out = vec![0f32; 32];
    assert!(matches!(
        dequantize(GgmlType::IQ4_NL, &[0u8; 17], &mut out),
        Err(KernelError::SizeMismatch {
            src: 17,
            dst: 32,
            ..
        })
    ));
    assert!(matches!(
        dequantize(GgmlType::IQ4_NL, &[0u8; 36], &mut out),
        Err(KernelError::SizeMismatch { .. })
    ));
    assert_eq!(
        dequantize(GgmlType::Q4_0, &[0u8; 18], &mut out),
        Err(KernelError::Unsupported("Q4_0"))
    );
    assert!(dequantize(GgmlType::IQ4_NL, &[], &mut []).is_ok());
}

#[test]
fn iq4_nl_reads_low_then_high_nibbles() {
    let mut b = vec![0u8; 18];
    b[..2].copy_from_slice(&f16_bytes(0.5));
    b[2] = 0xf0; // element 0 -> code 0 (-127), element 16 -> code 15 (113)
    b[17] = 0x08; // element 15 -> code 8 (1)
    let v = decode(GgmlType::IQ4_NL, &b);
    assert_eq!((v[0], v[16], v[15], v[31]), (-63.5, 56.5, 0.5, -63.5));
}

#[test]
fn iq4_xs_six_bit_scales() {
    let mut b = vec![0u8; 136];
    b[..2].copy_from_slice(&f16_bytes(1.0));
    // Sub-block 1: low nibble 0x3 (high nibble of scales_l[0]), high bits 0b10 (bits 2..4
    // of scales_h): scale 0b10_0011 = 35, minus 32 = 3.
    b[2] = 0b1000;
    b[4] = 0x30;
    b[8 + 16] = 0x0f; // sub-block 1, element 0 -> code 15 (113)
    let v = decode(GgmlType::IQ4_XS, &b);
    assert_eq!(v[32], 339.0);
    assert_eq!(v[0], -32.0 * -127.0); // sub-block 0: scale 0 - 32, code 0
}

#[test]
fn mxfp4_halved_scale_and_doubled_values() {
    let mut b = vec![0u8; 17];
    b[0] = 128; // 2^1
    b[1] = 0x87; // element 0: code 7 (6.0), element 16: code 8 (-0 -> +0.0)
    b[16] = 0xf9; // element 15: code 9 (-0.5), element 31: code 15 (-6.0)
    let v = decode(GgmlType::MXFP4, &b);
    assert_eq!((v[0], v[15], v[31]), (12.0, -1.0, -12.0));
    assert_eq!(v[16].to_bits(), 0, "code 8 decodes to +0.0");
}

#[test]
fn nvfp4_sub_blocks_of_sixteen() {
    let mut b = vec![0u8; 36];
    b[..4].copy_from_slice(&[0x38, 0x40, 0x7f, 0x00]); // 1.0, 2.0, NaN -> 0, 0
    b[4] = 0x72; // sub-block 0: element 0 code 2 (1.0), element 8 code 7 (6.0)
    b[4 + 8] = 0x0f; // sub-block 1: element 16 code 15 (-6.0)
    b[4 + 16] = 0x07; // sub-block 2 (scale 0x7f): 0
    let v = decode(GgmlType::NVFP4, &b);
    assert_eq!((v[0], v[8], v[16], v[32]), (1.0, 6.0, -12.0, 0.0));
}

#[test]
fn tq2_0_crumbs() {
    let mut b = vec![0u8; 66];
    b[64..].copy_from_slice(&f16_bytes(2.0));
    b[0] = 0b10_01_00_10; // elements 0, 32, 64, 96 -> codes 2, 0, 1, 2
    b[33] = 0b00_00_00_00; // element 128 + 1 -> code 0
    let v = decode(GgmlType::TQ2_0, &b);
    assert_eq!(
        (v[0], v[32], v[64], v[96], v[129]),
        (2.0, -2.0, 0.0, 2.0, -2.0)
    );
}

#[test]
fn tq1_0_base3_digits() {
    // Digits d0..d4 (most significant first) of byte j are elements j, 32+j, ..., 128+j.
    // gguf-py packs digits as ceil(x * 256 / 243) of the base-3 number.
    let pack = |digits: &[u8]| {
        let x = digits.iter().fold(0u16, |a, &d| a * 3 + d as u16);
        let scale = 3u16.pow(5 - digits.len() as u32);
        ((x * scale * 256).div_ceil(243)) as u8
    };
    let mut b = vec![0u8; 54];
    b[52..].copy_from_slice(&f16_bytes(1.0));
    b[0] = pack(&[2, 0, 1, 2, 0]);
    b[32] = pack(&[0, 2, 2, 1, 0]);
    b[48] = pack(&[2, 1, 0, 2]);
    let v = decode(GgmlType::TQ1_0, &b);
    assert_eq!(
        [v[0], v[32], v[64], v[96], v[128]],
        [1.0, -1.0, 0.0, 1.0, -1.0]
    );
    assert_eq!(
        [v[160], v[176], v[192], v[208], v[224]],
        [-1.0, 1.0, 1.0, 0.0, -1.0]
    );
    assert_eq!([v[240], v[244], v[248], v[252]], [1.0, 0.0, -1.0, 1.0]);
}

#[test]
fn iq2_xxs_scale_grid_and_signs() {
    let mut b = vec![0u8; 66];
    b[..2].copy_from_slice(&f16_bytes(1.0));
    // Group 0: grid rows 0 (all 8) and 2 (…, 0x19, 0x19); sign index 1 for row 0
    // (ksigns[1] = 0x81: elements 0 and 7 negative); scale nibble 3: db = (0.5+3)/4.
    b[2..6].copy_from_slice(&[0, 2, 0, 0]);
    b[6..10].copy_from_slice(&(1u32 | (3 << 28)).to_le_bytes());
    let v = decode(GgmlType::IQ2_XXS, &b);
    assert_eq!(&v[..8], &[-7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, -7.0]);
    assert_eq!(&v[8..16], &[21.875, 21.875, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0]);
    // Other groups: scale 0, grid row 0: 8 * 0.125.
    assert_eq!(v[32], 1.0);
}

/// gguf-py applies grid signs by multiplying by -1.0, which on x86 leaves a NaN as it is
/// (checked against gguf-py 0.19.0 on random blocks with NaN scales): a NaN scale gives the
/// scale's NaN everywhere, never its negation.
#[test]
fn grid_signs_leave_nan_scales_unchanged() {
    for nan in [0x7e00u16, 0xfe00] {
        let want = (half::f16::from_bits(nan).to_f32() * 1.0).to_bits();
        let mut xxs = vec![0xffu8; 66];
        xxs[..2].copy_from_slice(&nan.to_le_bytes());
        let mut s3 = vec![0xffu8; 110];
        s3[..2].copy_from_slice(&nan.to_le_bytes());
        for (ty, b) in [(GgmlType::IQ2_XXS, xxs), (GgmlType::IQ3_S, s3)] {
            let v = decode(ty, &b);
            assert!(v.iter().all(|x| x.to_bits() == want), "{ty:?} {nan:#x}");
        }
    }
}

#[test]
fn iq1_m_reassembles_its_split_scale() {
    let d = half::f16::from_f32(0.25).to_bits(); // 0x3400
    let mut b = vec![0u8; 56];
    for i in 0..4 {
        // Nibble i of d in the top nibble of word i; sub-scale 1 everywhere (factor 3).
        let word = (((d >> (4 * i)) & 0xf) << 12) | 0b001_001_001_001;
        b[48 + 2 * i..50 + 2 * i].copy_from_slice(&word.to_le_bytes());
    }
    b[32] = 0x80; // row 1 of sub-block 0: negative delta
    let v = decode(GgmlType::IQ1_M, &b);
    // Grid row 0 is all -1: 0.75 * (-1 + 0.125), then 0.75 * (-1 - 0.125).
    assert_eq!((v[0], v[8]), (-0.65625, -0.84375));
    let mut scales = Vec::new();
    block_scales(GgmlType::IQ1_M, &b, &mut scales).unwrap();
    assert_eq!(scales, [0.25]);
}

#[test]
fn block_scales_per_type() {
    let mut out = Vec::new();
    let mut iq4 = vec![0u8; 36];
    iq4[..2].copy_from_slice(&f16_bytes(1.5));
    iq4[18..20].copy_from_slice(&[0x00, 0x7c]); // +inf
    assert!(matches!(
        block_scales(GgmlType::IQ4_NL, &iq4[..35], &mut out),
        Err(KernelError::PartialBlocks { len: 35, .. })
    ));
    block_scales(GgmlType::IQ4_NL, &iq4, &mut out).unwrap();
    assert_eq!(out, [1.5, f32::INFINITY]);

    out.clear();
    let mut tq = vec![0u8; 66];
    tq[64..].copy_from_slice(&f16_bytes(-2.0));
    block_scales(GgmlType::TQ2_0, &tq, &mut out).unwrap();
    assert_eq!(out, [-2.0]);

    out.clear();
    block_scales(
        GgmlType::MXFP4,
        &[[127u8; 17], [255u8; 17]].concat(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], 1.0);
    assert!(out[1].is_nan());

    out.clear();
    let mut nv = vec![0u8; 36];
    nv[..4].copy_from_slice(&[0x38, 0x7f, 0x00, 0x01]);
    block_scales(GgmlType::NVFP4, &nv, &mut out).unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!((out[0], out[2], out[3]), (1.0, 0.0, 2f32.powi(-9)));
    assert!(out[1].is_nan());

    out.clear();
    assert_eq!(
        block_scales(GgmlType::Q8_0, &[0u8; 34], &mut out),
        Err(KernelError::Unsupported("Q8_0"))
    );
    assert!(out.is_empty());
    assert_eq!(scales_per_block(GgmlType::Q8_0), 0);
}

// proptest does not build for wasm32-unknown-unknown; kernels/wasm_tests.rs covers simd128.
#[cfg(not(target_arch = "wasm32"))]
mod simd_equals_reference {
    use super::*;
    use proptest::prelude::*;

    /// f16 bit patterns worth testing as scales: NaNs (quiet, signalling, negative), infinities,
    /// subnormals, zeros, and the largest finite values.
    const SPECIAL_F16: [u16; 10] = [
        0x7e00, 0x7c01, 0xfe00, 0x7c00, 0xfc00, 0x0001, 0x83ff, 0x0000, 0x8000, 0x7bff,
    ];
    const SPECIAL_E8M0: [u8; 5] = [0, 1, 2, 254, 255];

    /// Random blocks whose scale fields are sometimes replaced with special values.
    fn blocks(ty: GgmlType, max_blocks: usize) -> impl Strategy<Value = Vec<u8>> {
        let ts = ty.type_size() as usize;
        (
            1..=max_blocks,
            proptest::collection::vec(any::<u8>(), ts * max_blocks),
            proptest::collection::vec((any::<bool>(), 0..SPECIAL_F16.len()), max_blocks),
        )
            .prop_map(move |(n, mut bytes, specials)| {
                bytes.truncate(n * ts);
                for (b, (special, k)) in bytes.chunks_exact_mut(ts).zip(specials) {
                    if !special {
                        continue;
                    }
                    if ty == GgmlType::MXFP4 {
                        b[0] = SPECIAL_E8M0[k % SPECIAL_E8M0.len()];
                    } else {
                        b[..2].copy_from_slice(&SPECIAL_F16[k].to_le_bytes());
                    }
                }
                bytes
            })
    }

    fn check(ty: GgmlType, src: &[u8]) -> Result<(), TestCaseError> {
        let n = src.len() / ty.type_size() as usize * ty.block_size() as usize;
        let (mut fast, mut reference) = (vec![0f32; n], vec![1f32; n]);
        dequantize(ty, src, &mut fast).unwrap();
        dequantize_reference(ty, src, &mut reference).unwrap();
        for (i, (f, r)) in fast.iter().zip(&reference).enumerate() {
            prop_assert_eq!(f.to_bits(), r.to_bits(), "{:?} element {}", ty, i);
        }
        Ok(())
    }

    #[test]
    fn simd_path_is_taken_on_this_machine() {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c") {
            assert!(has_simd(GgmlType::IQ4_NL));
        }
        assert!(!has_simd(GgmlType::IQ2_XXS));
    }

    proptest! {
        #[test]
        fn iq4_nl(src in blocks(GgmlType::IQ4_NL, 24)) { check(GgmlType::IQ4_NL, &src)?; }

        #[test]
        fn iq4_xs(src in blocks(GgmlType::IQ4_XS, 6)) { check(GgmlType::IQ4_XS, &src)?; }

        #[test]
        fn mxfp4(src in blocks(GgmlType::MXFP4, 24)) { check(GgmlType::MXFP4, &src)?; }
    }
}
