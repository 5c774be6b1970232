//! Dequantization kernels for every ggml type.
//!
//! Each type has a plain scalar reference (`scalar`); hot types also have SIMD paths (`x86`:
//! AVX2 chosen at run time; `wasm`: simd128 chosen at compile time) that are tested bit for
//! bit against it. `dequantize` picks the fastest path available.

pub mod blocks;
pub mod fp;
pub mod iquants;
pub mod kquant;
pub mod scalar;
pub mod scales;
mod stream;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod fixture_tests;
#[cfg(all(test, target_arch = "wasm32"))]
mod wasm_tests;

pub use scales::{block_scales, scales_per_block};

use crate::ggml::types::GgmlType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("{ty} decodes {block} elements per block of {bytes} bytes: {src} input bytes cannot give {dst} values")]
    SizeMismatch {
        ty: &'static str,
        block: u64,
        bytes: u64,
        src: usize,
        dst: usize,
    },
    #[error("{ty} blocks are {bytes} bytes: {len} bytes is not a whole number of blocks")]
    PartialBlocks {
        ty: &'static str,
        bytes: u64,
        len: usize,
    },
    #[error("dequantizing {0} is not supported")]
    Unsupported(&'static str),
}

/// Check that `src` holds exactly the blocks that `dst` values need (a trailing partial block
/// is allowed: its extra values are dropped).
pub fn check_sizes(ty: GgmlType, src: &[u8], dst: &[f32]) -> Result<(), KernelError> {
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    if !src.len().is_multiple_of(ts) || src.len() / ts != dst.len().div_ceil(bs) {
        return Err(KernelError::SizeMismatch {
            ty: ty.name(),
            block: bs as u64,
            bytes: ts as u64,
            src: src.len(),
            dst: dst.len(),
        });
    }
    Ok(())
}

/// The largest block of any ggml type, in values: a trailing partial block is decoded into a
/// stack buffer of this size.
const MAX_BLOCK: usize = 256;

/// Dequantize whole blocks of `ty` from `src` into `dst` (little-endian data).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    check_sizes(ty, src, dst)?;
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    let full = dst.len() / bs;
    let (head, tail) = dst.split_at_mut(full * bs);
    let (src_head, src_tail) = src.split_at(full * ts);
    if !stream::worth_streaming(head.len(), bs) {
        dequantize_blocks(ty, src_head, head)?;
    } else if !streams_directly(ty, src_head, head) {
        stream::streamed(src_head, head, bs, ts, |s, d| dequantize_blocks(ty, s, d))?;
    }
    if !tail.is_empty() {
        if bs > MAX_BLOCK {
            return Err(KernelError::Unsupported(ty.name()));
        }
        let mut tmp = [0f32; MAX_BLOCK];
        dequantize_blocks(ty, src_tail, &mut tmp[..bs])?;
        tail.copy_from_slice(&tmp[..tail.len()]);
    }
    Ok(())
}

/// Whole blocks into a large output with streaming stores, for the types that have such a
/// path; false means nothing was written.
fn streams_directly(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::dequantize_streaming(ty, src, dst);
    #[allow(unreachable_code)]
    {
        let _ = (ty, src, dst);
        false
    }
}

/// Whole blocks only: the fastest available path, else the scalar reference.
fn dequantize_blocks(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    #[cfg(target_arch = "x86_64")]
    if x86::dequantize(ty, src, dst) {
        return Ok(());
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if wasm::dequantize(ty, src, dst) {
        return Ok(());
    }
    if iquants::has_simd(ty) {
        // The i-quant SIMD paths (they check the sizes like the reference does).
        return iquants::dequantize(ty, src, dst);
    }
    scalar::dequantize(ty, src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rejects_inputs_that_do_not_match_the_output() {
        let src = [0u8; 18 * 2];
        let mut dst = [0f32; 65];
        let err = dequantize(GgmlType::Q4_0, &src, &mut dst).unwrap_err();
        assert!(matches!(
            err,
            KernelError::SizeMismatch {
                src: 36,
                dst: 65,
                ..
            }
        ));
        assert!(dequantize(GgmlType::Q4_0, &src[..35], &mut dst[..64]).is_err());
    }

    #[test]
    fn a_trailing_partial_block_keeps_its_leading_values() {
        let mut src = vec![0u8; 18 * 2];
        src[0..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        src[18..20].copy_from_slice(&half::f16::from_f32(2.0).to_le_bytes());
        for (i, b) in src[20..36].iter_mut().enumerate() {
            *b = (i as u8) | 0x90;
        }
        let mut full = [0f32; 64];
        dequantize(GgmlType::Q4_0, &src, &mut full).unwrap();
        let mut part = [0f32; 40];
        dequantize(GgmlType::Q4_0, &src, &mut part).unwrap();
        assert_eq!(part[..], full[..40]);
        assert_eq!(part[32], (0 - 8) as f32 * 2.0);
        assert_eq!(part[33], (1 - 8) as f32 * 2.0);
    }

    #[test]
    fn q1_0_is_reported_unsupported() {
        let src = [0u8; 18];
        let mut dst = [0f32; 128];
        assert_eq!(
            dequantize(GgmlType::Q1_0, &src, &mut dst),
            Err(KernelError::Unsupported("Q1_0"))
        );
    }

    #[test]
    fn large_outputs_are_streamed_bit_for_bit() {
        // Past the streaming threshold, misaligned, with a trailing partial block: the
        // result must be exactly the scalar reference's (random bytes, NaN payloads too).
        // F16 and BF16 stream straight from the kernel from the first 32-byte boundary on,
        // so they are tried at every offset from it (random halves leave about 60 % of the
        // runs of 16 free of NaN and Inf, so both of F16's branches stream).
        let mut rng = crate::stats::testrng::Rng::new(0x2545_f491_4f6c_dd1d);
        for ty in [
            GgmlType::Q4_K,
            GgmlType::F16,
            GgmlType::BF16,
            GgmlType::Q8_0,
        ] {
            let bs = ty.block_size() as usize;
            let values = stream::STREAM_MIN_VALUES + 3 * stream::STAGE_VALUES + bs + bs / 2;
            let src = rng.bytes(values.div_ceil(bs) * ty.type_size() as usize);
            assert!(stream::worth_streaming(values, bs) || !cfg!(target_arch = "x86_64"));
            let mut want = vec![0f32; values.div_ceil(bs) * bs];
            scalar::dequantize(ty, &src, &mut want).unwrap();
            let offsets = if bs == 1 { 0..8 } else { 1..2 };
            let mut backing = vec![0f32; values + 8];
            for skip in offsets {
                let got = &mut backing[skip..skip + values];
                got.fill(f32::from_bits(0x7fc0_dead));
                dequantize(ty, &src, got).unwrap();
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} at offset {skip}", ty.name());
            }
        }
    }
}
