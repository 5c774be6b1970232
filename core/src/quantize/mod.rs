//! Reference quantizers: f32 values to ggml blocks.
//!
//! Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, TQ1_0, TQ2_0, MXFP4 and BF16 reproduce gguf-py 0.19.0's
//! `gguf.quants.quantize` byte for byte (checked against gguf-py itself by
//! `scripts/gguf-py-check.py` in the integration tests); that means float32 arithmetic in
//! the same order, numpy's rounding rules (`np_roundf` rounds half away from zero,
//! `np.trunc` after adding 0.5/8.5/16.5) and round-to-nearest-even f16 conversion.
//! Q4_K, Q5_K and Q6_K follow ggml's `quantize_row_*_ref` (gguf-py cannot produce them),
//! whose `nearest_int` rounds half to even.

mod kquants;
mod legacy;
mod mxfp4;
mod ternary;

use half::f16;

use crate::ggml::types::GgmlType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantizeError {
    #[error("quantizing to {0} is not supported (supported: {1})")]
    Unsupported(&'static str, String),
    #[error("{ty}: {src} values do not fill whole {block}-element blocks, or the output is not {want} bytes (got {dst})")]
    Size {
        ty: &'static str,
        block: u64,
        src: usize,
        want: usize,
        dst: usize,
    },
}

/// Types this module can write.
pub const SUPPORTED: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

pub fn can_quantize(ty: GgmlType) -> bool {
    SUPPORTED.contains(&ty)
}

/// Quantize `src` (a whole number of blocks) into `dst` (exactly the blocks' bytes).
pub fn quantize(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantizeError> {
    if !can_quantize(ty) {
        let names: Vec<&str> = SUPPORTED.iter().map(|t| t.name()).collect();
        return Err(QuantizeError::Unsupported(ty.name(), names.join(", ")));
    }
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    let want = src.len() / bs * ts;
    if !src.len().is_multiple_of(bs) || dst.len() != want {
        return Err(QuantizeError::Size {
            ty: ty.name(),
            block: bs as u64,
            src: src.len(),
            want,
            dst: dst.len(),
        });
    }
    #[cfg(feature = "parallel")]
    {
        // Blocks are independent: split big inputs across threads (the K-quant searches are
        // latency-bound, about 5M values/s per core).
        const BLOCKS_PER_TASK: usize = 512;
        if src.len() >= bs * BLOCKS_PER_TASK * 2 {
            use rayon::prelude::*;
            src.par_chunks(bs * BLOCKS_PER_TASK)
                .zip(dst.par_chunks_mut(ts * BLOCKS_PER_TASK))
                .for_each(|(x, y)| quantize_blocks(ty, x, y));
            return Ok(());
        }
    }
    quantize_blocks(ty, src, dst);
    Ok(())
}

/// Quantize whole blocks (sizes already checked).
fn quantize_blocks(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    let pairs = src.chunks_exact(bs).zip(dst.chunks_exact_mut(ts));
    match ty {
        GgmlType::F32 => pairs.for_each(|(x, y)| y.copy_from_slice(&x[0].to_le_bytes())),
        GgmlType::F16 => pairs.for_each(|(x, y)| y.copy_from_slice(&f16_bytes(x[0]))),
        GgmlType::BF16 => {
            pairs.for_each(|(x, y)| y.copy_from_slice(&bf16_bits(x[0]).to_le_bytes()))
        }
        GgmlType::Q8_0 => pairs.for_each(|(x, y)| legacy::q8_0(x, y)),
        GgmlType::Q4_0 => pairs.for_each(|(x, y)| legacy::q4_0(x, y)),
        GgmlType::Q4_1 => pairs.for_each(|(x, y)| legacy::q4_1(x, y)),
        GgmlType::Q5_0 => pairs.for_each(|(x, y)| legacy::q5_0(x, y)),
        GgmlType::Q5_1 => pairs.for_each(|(x, y)| legacy::q5_1(x, y)),
        GgmlType::TQ1_0 => pairs.for_each(|(x, y)| ternary::tq1_0(x, y)),
        GgmlType::TQ2_0 => pairs.for_each(|(x, y)| ternary::tq2_0(x, y)),
        GgmlType::MXFP4 => pairs.for_each(|(x, y)| mxfp4::mxfp4(x, y)),
        GgmlType::Q4_K => pairs.for_each(|(x, y)| kquants::q4_k(x, y)),
        GgmlType::Q5_K => pairs.for_each(|(x, y)| kquants::q5_k(x, y)),
        GgmlType::Q6_K => pairs.for_each(|(x, y)| kquants::q6_k(x, y)),
        // Callers check can_quantize first; an unsupported type writes nothing.
        _ => {}
    }
}

/// Quantize into a new buffer.
pub fn quantize_to_vec(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>, QuantizeError> {
    let bs = ty.block_size() as usize;
    let mut out = vec![0u8; src.len() / bs * ty.type_size() as usize];
    quantize(ty, src, &mut out)?;
    Ok(out)
}

/// f32 to IEEE half, round to nearest even (what numpy's `astype(np.float16)` and ggml's
/// `GGML_FP32_TO_FP16` do).
#[inline]
pub(crate) fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

#[inline]
pub(crate) fn f16_round(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// f32 to bfloat16 as ggml and gguf-py do it: NaNs become quiet NaNs, everything else
/// rounds to nearest even (overflowing to infinity).
pub fn bf16_bits(x: f32) -> u16 {
    let n = x.to_bits();
    if n & 0x7fff_ffff > 0x7f80_0000 {
        return ((n & 0xffff_0000) >> 16) as u16 | 64;
    }
    ((n as u64 + (0x7fff + ((n >> 16) & 1) as u64)) >> 16) as u16
}

#[cfg(test)]
mod tests;
