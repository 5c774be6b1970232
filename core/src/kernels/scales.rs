//! The stored scale of each block, for counting NaN, Inf, zero and subnormal block scales
//! without decoding every value.

use super::blocks::{
    as_blocks, f16_le, f32_le, Block, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K,
    BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1,
};
use super::KernelError;
use crate::ggml::types::GgmlType;

/// Append the stored scales of each block of `src` (whole blocks) to `out`, as f32:
///
/// - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q3_K, Q6_K, Q8_K: one value per block, its `d` (the
///   Q4_1/Q5_1 minimum `m` is an offset, not a scale, and is left out).
/// - Q2_K, Q4_K, Q5_K: two values per block, `d` then `dmin` (the super-block scale of the
///   sub-block scales and of the sub-block minimums).
/// - F32, F16, BF16, F64 and the integer types: nothing (they have no scales).
/// - i-quants, ternary and FP4 types: as `iquants::block_scales` documents.
pub fn block_scales(ty: GgmlType, src: &[u8], out: &mut Vec<f32>) -> Result<(), KernelError> {
    let ts = ty.type_size() as usize;
    if !src.len().is_multiple_of(ts) {
        return Err(KernelError::PartialBlocks {
            ty: ty.name(),
            bytes: ts as u64,
            len: src.len(),
        });
    }
    match ty {
        GgmlType::F32
        | GgmlType::F16
        | GgmlType::BF16
        | GgmlType::F64
        | GgmlType::I8
        | GgmlType::I16
        | GgmlType::I32
        | GgmlType::I64 => {}
        GgmlType::Q4_0 => push(src, out, |b: &BlockQ4_0| [f16_le(b.d)]),
        GgmlType::Q4_1 => push(src, out, |b: &BlockQ4_1| [f16_le(b.d)]),
        GgmlType::Q5_0 => push(src, out, |b: &BlockQ5_0| [f16_le(b.d)]),
        GgmlType::Q5_1 => push(src, out, |b: &BlockQ5_1| [f16_le(b.d)]),
        GgmlType::Q8_0 => push(src, out, |b: &BlockQ8_0| [f16_le(b.d)]),
        GgmlType::Q8_1 => push(src, out, |b: &BlockQ8_1| [f32_le(b.d)]),
        GgmlType::Q8_K => push(src, out, |b: &BlockQ8K| [f32_le(b.d)]),
        GgmlType::Q3_K => push(src, out, |b: &BlockQ3K| [f16_le(b.d)]),
        GgmlType::Q6_K => push(src, out, |b: &BlockQ6K| [f16_le(b.d)]),
        GgmlType::Q2_K => push(src, out, |b: &BlockQ2K| [f16_le(b.d), f16_le(b.dmin)]),
        GgmlType::Q4_K => push(src, out, |b: &BlockQ4K| [f16_le(b.d), f16_le(b.dmin)]),
        GgmlType::Q5_K => push(src, out, |b: &BlockQ5K| [f16_le(b.d), f16_le(b.dmin)]),
        GgmlType::IQ1_S
        | GgmlType::IQ1_M
        | GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ4_NL
        | GgmlType::IQ4_XS
        | GgmlType::TQ1_0
        | GgmlType::TQ2_0
        | GgmlType::MXFP4
        | GgmlType::NVFP4 => return super::iquants::block_scales(ty, src, out),
        GgmlType::Q1_0 => return Err(KernelError::Unsupported(ty.name())),
    }
    Ok(())
}

/// How many values [`block_scales`] appends per block of `ty`.
pub fn scales_per_block(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K => 2,
        GgmlType::Q4_0
        | GgmlType::Q4_1
        | GgmlType::Q5_0
        | GgmlType::Q5_1
        | GgmlType::Q8_0
        | GgmlType::Q8_1
        | GgmlType::Q3_K
        | GgmlType::Q6_K
        | GgmlType::Q8_K => 1,
        _ => super::iquants::scales_per_block(ty),
    }
}

#[inline]
fn push<B: Block, const N: usize>(src: &[u8], out: &mut Vec<f32>, f: impl Fn(&B) -> [f32; N]) {
    let blocks = as_blocks::<B>(src);
    out.reserve(blocks.len() * N);
    for b in blocks {
        out.extend_from_slice(&f(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn f16(x: f32) -> [u8; 2] {
        half::f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn scales_per_block_matches_what_is_appended() {
        for &ty in GgmlType::ALL {
            let src = vec![0u8; 3 * ty.type_size() as usize];
            let mut out = Vec::new();
            if block_scales(ty, &src, &mut out).is_ok() {
                assert_eq!(out.len(), 3 * scales_per_block(ty), "{ty}");
            }
        }
    }

    #[test]
    fn legacy_types_give_d_per_block() {
        let mut src = vec![0u8; 2 * 18];
        src[0..2].copy_from_slice(&f16(0.25));
        src[18..20].copy_from_slice(&[0x00, 0x7c]); // +Inf
        let mut out = vec![7.0];
        block_scales(GgmlType::Q4_0, &src, &mut out).unwrap();
        assert_eq!(out, [7.0, 0.25, f32::INFINITY]);
    }

    #[test]
    fn k_quants_with_minimums_give_d_then_dmin() {
        let mut src = vec![0u8; 144];
        src[0..2].copy_from_slice(&f16(1.5));
        src[2..4].copy_from_slice(&[0x01, 0x00]); // smallest subnormal
        let mut out = Vec::new();
        block_scales(GgmlType::Q4_K, &src, &mut out).unwrap();
        assert_eq!(out, [1.5, 2f32.powi(-24)]);

        let mut q2 = vec![0u8; 84];
        q2[80..82].copy_from_slice(&f16(-2.0));
        q2[82..84].copy_from_slice(&f16(3.0));
        out.clear();
        block_scales(GgmlType::Q2_K, &q2, &mut out).unwrap();
        assert_eq!(out, [-2.0, 3.0]);
    }

    #[test]
    fn q6_k_and_q3_k_read_d_at_the_end_of_the_block() {
        let mut q6 = vec![0u8; 210];
        q6[208..210].copy_from_slice(&f16(0.5));
        let mut out = Vec::new();
        block_scales(GgmlType::Q6_K, &q6, &mut out).unwrap();
        let mut q3 = vec![0u8; 110];
        q3[108..110].copy_from_slice(&[0x01, 0x7e]); // NaN
        block_scales(GgmlType::Q3_K, &q3, &mut out).unwrap();
        assert_eq!(out[0], 0.5);
        assert!(out[1].is_nan());
    }

    #[test]
    fn plain_types_have_no_scales_and_partial_blocks_are_rejected() {
        let mut out = Vec::new();
        block_scales(GgmlType::F16, &[0; 8], &mut out).unwrap();
        assert!(out.is_empty());
        assert!(matches!(
            block_scales(GgmlType::Q8_0, &[0; 35], &mut out),
            Err(KernelError::PartialBlocks { len: 35, .. })
        ));
    }
}
