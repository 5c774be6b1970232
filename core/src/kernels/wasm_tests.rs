//! The wasm32 simd128 paths of the core, run in node and checked bit for bit (NaN payloads
//! included) against the scalar references: every dequant kernel of `wasm.rs` and
//! `iq/simd128.rs` (the content hash's sums are checked by `stats::hash`'s own tests, which
//! run on wasm32 as well).
//!
//! `scripts/wasm-test.sh` runs them (`-C target-feature=+simd128`, wasm-bindgen-test-runner).
//! proptest cannot run on wasm32-unknown-unknown (its RNG needs getrandom), so the cases come
//! from a fixed-seed SplitMix64: entirely random blocks, blocks whose scales are NaN (quiet,
//! signalling, with payloads, negative), ±Inf, subnormal, zero or the largest finite value,
//! every f16/bf16 bit pattern, every E8M0 byte, and outputs that end inside a block.

use wasm_bindgen_test::wasm_bindgen_test;

/// Without simd128 there is no SIMD path to compare, and the checks below are not compiled:
/// fail rather than pass with nothing tested.
#[wasm_bindgen_test]
fn built_with_simd128() {
    #[cfg(not(target_feature = "simd128"))]
    panic!(
        "the wasm tests compare the simd128 paths: build with -C target-feature=+simd128 \
         (scripts/wasm-test.sh)"
    );
}

#[cfg(target_feature = "simd128")]
mod simd128 {
    use super::super::{dequantize, iquants, scalar, wasm};
    use crate::ggml::types::GgmlType;
    use crate::stats::testrng::Rng;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// f16 scales that stress the kernels: NaNs (quiet, signalling, with payloads, negative),
    /// infinities, subnormals (smallest, largest, negative), zeros, the smallest normal, the
    /// largest finite values and one.
    const SPECIAL_F16: [u16; 19] = [
        0x7e00, 0x7e5a, 0x7fff, 0x7c01, 0x7d55, 0xfe00, 0xfc01, 0x7c00, 0xfc00, 0x0001, 0x03ff,
        0x8001, 0x83ff, 0x0400, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x3c00,
    ];

    /// Where a type's block scales are.
    #[derive(Clone, Copy)]
    enum Scales {
        /// f16 fields at these byte offsets of the block.
        F16(&'static [usize]),
        /// MXFP4's E8M0 exponent byte at offset 0.
        E8m0,
    }

    /// Every block type with a simd128 kernel, and where its scales are.
    const BLOCK_TYPES: [(GgmlType, Scales); 15] = [
        (GgmlType::Q4_0, Scales::F16(&[0])),
        (GgmlType::Q4_1, Scales::F16(&[0, 2])),
        (GgmlType::Q5_0, Scales::F16(&[0])),
        (GgmlType::Q5_1, Scales::F16(&[0, 2])),
        (GgmlType::Q8_0, Scales::F16(&[0])),
        (GgmlType::Q2_K, Scales::F16(&[80, 82])),
        (GgmlType::Q3_K, Scales::F16(&[108])),
        (GgmlType::Q4_K, Scales::F16(&[0, 2])),
        (GgmlType::Q5_K, Scales::F16(&[0, 2])),
        (GgmlType::Q6_K, Scales::F16(&[208])),
        (GgmlType::IQ4_NL, Scales::F16(&[0])),
        (GgmlType::IQ4_XS, Scales::F16(&[0])),
        (GgmlType::MXFP4, Scales::E8m0),
        // Element types: every bit pattern is checked in `f16_and_bf16_*` too.
        (GgmlType::F16, Scales::F16(&[0])),
        (GgmlType::BF16, Scales::F16(&[0])),
    ];

    /// Random blocks per type (1 to 8 blocks each).
    const RANDOM_CASES: usize = 1000;

    /// Written before every decode: an output the kernel leaves alone shows as a difference.
    const POISON: f32 = f32::from_bits(0x7fc0_dead);

    /// The first element where `got` and `want` differ bit for bit (NaN payloads included).
    fn first_difference(what: &str, got: &[f32], want: &[f32]) -> Result<(), String> {
        assert_eq!(got.len(), want.len(), "{what}: length");
        match (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
            None => Ok(()),
            Some(i) => Err(format!(
                "{what}: element {i} differs: got {} ({:#010x}), want {} ({:#010x})",
                got[i],
                got[i].to_bits(),
                want[i],
                want[i].to_bits()
            )),
        }
    }

    /// Decode `src` (whole blocks) with the simd128 kernel itself and through
    /// `kernels::dequantize` into `len` values (fewer than the blocks hold: the last block is
    /// cut), and compare both with the scalar reference bit for bit.
    fn check(ty: GgmlType, src: &[u8], len: usize, what: &str) -> Result<(), String> {
        let (bs, ts) = (ty.block_size() as usize, ty.type_size() as usize);
        assert_eq!(src.len() % ts, 0);
        let n = src.len() / ts * bs;
        let mut want = vec![0f32; n];
        scalar::dequantize(ty, src, &mut want).unwrap();

        let mut got = vec![POISON; n];
        if iquants::TYPES.contains(&ty) {
            assert!(iquants::has_simd(ty), "{ty} has a simd128 path");
            iquants::dequantize(ty, src, &mut got).unwrap();
        } else {
            assert!(
                wasm::dequantize(ty, src, &mut got),
                "{ty} has a simd128 path"
            );
        }
        first_difference(&format!("{ty} simd128, {what}"), &got, &want)?;

        let mut got = vec![POISON; len];
        dequantize(ty, src, &mut got).unwrap();
        first_difference(
            &format!("{ty} kernels::dequantize, {len} values, {what}"),
            &got,
            &want[..len],
        )
    }

    /// Panic listing every type's first failure, so one run shows all the broken kernels.
    fn report(test: &str, failures: Vec<String>) {
        assert!(
            failures.is_empty(),
            "{test}: {} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    /// Random bytes for `blocks` blocks, each scale replaced by a special value with
    /// probability 1/3.
    fn random_blocks(rng: &mut Rng, ty: GgmlType, scales: Scales, blocks: usize) -> Vec<u8> {
        let ts = ty.type_size() as usize;
        let mut src = rng.bytes(blocks * ts);
        for b in src.chunks_exact_mut(ts) {
            match scales {
                Scales::F16(at) => {
                    for &o in at {
                        if rng.below(3) == 0 {
                            let h = rng.pick(&SPECIAL_F16);
                            b[o..o + 2].copy_from_slice(&h.to_le_bytes());
                        }
                    }
                }
                Scales::E8m0 => {
                    if rng.below(3) == 0 {
                        b[0] = rng.pick(&[0, 1, 2, 126, 127, 128, 253, 254, 255]);
                    }
                }
            }
        }
        src
    }

    /// A random output length that needs all `blocks` blocks: whole, or cut in the last one.
    fn random_len(rng: &mut Rng, ty: GgmlType, blocks: usize) -> usize {
        let bs = ty.block_size() as usize;
        if rng.below(2) == 0 {
            blocks * bs
        } else {
            blocks * bs - rng.below(bs)
        }
    }

    #[wasm_bindgen_test]
    fn random_blocks_match_the_reference() {
        let mut failures = Vec::new();
        for (k, &(ty, scales)) in BLOCK_TYPES.iter().enumerate() {
            let mut rng = Rng::new(0x5eed_0000 + k as u64);
            // Element types decode 8 values per vector: up to 70 values leaves every tail.
            let max = if ty.block_size() == 1 { 70 } else { 8 };
            let cases = (0..RANDOM_CASES).map(|case| {
                let blocks = 1 + rng.below(max);
                let src = random_blocks(&mut rng, ty, scales, blocks);
                let len = random_len(&mut rng, ty, blocks);
                check(ty, &src, len, &format!("random case {case}"))
            });
            // Stop at a type's first failure, go on with the next type.
            if let Err(e) = cases.collect::<Result<(), String>>() {
                failures.push(e);
            }
        }
        report("random blocks", failures);
    }

    /// Every combination of special values over a block's scale fields (each field also
    /// random), twice, with random quants.
    #[wasm_bindgen_test]
    fn special_scales_match_the_reference() {
        let mut failures = Vec::new();
        for (k, &(ty, scales)) in BLOCK_TYPES.iter().enumerate() {
            let Scales::F16(at) = scales else { continue };
            if ty.block_size() == 1 {
                continue; // every half is checked below
            }
            let mut rng = Rng::new(0x5ca1_e000 + k as u64);
            let ts = ty.type_size() as usize;
            let options = SPECIAL_F16.len() + 1; // the last option keeps the random bytes
            let combos = options.pow(at.len() as u32);
            let mut src = rng.bytes(2 * combos * ts);
            for (i, b) in src.chunks_exact_mut(ts).enumerate() {
                let mut c = i % combos;
                for &o in at {
                    if let Some(h) = SPECIAL_F16.get(c % options) {
                        b[o..o + 2].copy_from_slice(&h.to_le_bytes());
                    }
                    c /= options;
                }
            }
            let n = src.len() / ts * ty.block_size() as usize;
            if let Err(e) = check(ty, &src, n, "special scales")
                .and_then(|()| check(ty, &src, n - 1, "special scales"))
            {
                failures.push(e);
            }
        }
        report("special scales", failures);
    }

    /// MXFP4: every E8M0 scale byte (0 and 255 are the edge cases: 2^-127 halved, and
    /// gguf-py's 2^128), four random blocks each.
    #[wasm_bindgen_test]
    fn mxfp4_every_scale_byte_matches_the_reference() {
        let ty = GgmlType::MXFP4;
        let ts = ty.type_size() as usize;
        let mut rng = Rng::new(0xe8e0);
        let mut src = rng.bytes(4 * 256 * ts);
        for (i, b) in src.chunks_exact_mut(ts).enumerate() {
            b[0] = (i % 256) as u8;
        }
        let n = src.len() / ts * 32;
        check(ty, &src, n, "every E8M0 byte").unwrap();
        check(ty, &src, n - 31, "every E8M0 byte").unwrap();
    }

    /// Every f16 and bf16 bit pattern: all of them in a row starting at each of the 8 lanes of
    /// a vector, and each one 15 times (in every lane and in every place of the scalar tail).
    #[wasm_bindgen_test]
    fn f16_and_bf16_every_bit_pattern_matches_the_reference() {
        let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        let mut failures = Vec::new();
        for ty in [GgmlType::F16, GgmlType::BF16] {
            let shifts = (0..8).map(|shift| {
                let src = &all[2 * shift..];
                let what = format!("every half from lane {shift}");
                check(ty, src, src.len() / 2, &what)
            });
            let repeated = (0..=u16::MAX).map(|h| {
                let src = h.to_le_bytes().repeat(15);
                check(ty, &src, 15, &format!("{h:#06x} 15 times"))
            });
            if let Err(e) = shifts.chain(repeated).collect::<Result<(), String>>() {
                failures.push(e);
            }
        }
        report("every half", failures);
    }
}
