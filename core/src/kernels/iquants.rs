//! Dequantization of ggml's i-quants (IQ1_S … IQ4_XS), ternary types (TQ1_0, TQ2_0) and FP4
//! types (MXFP4, NVFP4), bit-exact to gguf-py 0.19.0's `gguf.quants.dequantize`.
//!
//! The scalar references live in `iq/`, one small module per family. IQ4_NL, IQ4_XS and
//! MXFP4 also have SIMD paths (AVX2 chosen at run time on x86_64, simd128 chosen at compile
//! time on wasm32) that are tested bit for bit against the references.

#[path = "iq/mod.rs"]
mod iq;

use super::{fp, KernelError};
use crate::ggml::types::GgmlType;
use iq::layout::{f16_to_f32, view, BlockIq1M, BlockMxfp4, BlockNvfp4, BlockTq1_0, BlockTq2_0};
use iq::{fp4, grid_quants, nonlinear, ternary};

/// The types this module decodes.
pub const TYPES: [GgmlType; 13] = [
    GgmlType::IQ1_S,
    GgmlType::IQ1_M,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ2_S,
    GgmlType::IQ3_XXS,
    GgmlType::IQ3_S,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
    GgmlType::NVFP4,
];

type Kernel = fn(&[u8], &mut [f32]);

fn reference_kernel(ty: GgmlType) -> Option<Kernel> {
    Some(match ty {
        GgmlType::IQ1_S => grid_quants::iq1_s,
        GgmlType::IQ1_M => grid_quants::iq1_m,
        GgmlType::IQ2_XXS => grid_quants::iq2_xxs,
        GgmlType::IQ2_XS => grid_quants::iq2_xs,
        GgmlType::IQ2_S => grid_quants::iq2_s,
        GgmlType::IQ3_XXS => grid_quants::iq3_xxs,
        GgmlType::IQ3_S => grid_quants::iq3_s,
        GgmlType::IQ4_NL => nonlinear::iq4_nl,
        GgmlType::IQ4_XS => nonlinear::iq4_xs,
        GgmlType::TQ1_0 => ternary::tq1_0,
        GgmlType::TQ2_0 => ternary::tq2_0,
        GgmlType::MXFP4 => fp4::mxfp4,
        GgmlType::NVFP4 => fp4::nvfp4,
        _ => return None,
    })
}

/// `src` must be whole blocks and `dst` exactly their values.
fn check_whole_blocks(ty: GgmlType, src: &[u8], dst: &[f32]) -> Result<(), KernelError> {
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    if !src.len().is_multiple_of(ts) || (src.len() / ts).checked_mul(bs) != Some(dst.len()) {
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

/// Dequantize whole blocks of one of this module's [`TYPES`] (little-endian ggml layout) into
/// `dst`, which must hold exactly `block_size` values per block. Uses SIMD where available.
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    let reference = reference_kernel(ty).ok_or(KernelError::Unsupported(ty.name()))?;
    check_whole_blocks(ty, src, dst)?;
    if !simd_dequantize(ty, src, dst) {
        reference(src, dst);
    }
    Ok(())
}

/// Like [`dequantize`], but always the scalar reference: what [`super::scalar::dequantize`]
/// runs for this module's types.
pub fn dequantize_reference(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    let reference = reference_kernel(ty).ok_or(KernelError::Unsupported(ty.name()))?;
    check_whole_blocks(ty, src, dst)?;
    reference(src, dst);
    Ok(())
}

/// Whether [`dequantize`] takes a SIMD path for `ty` on this machine.
pub fn has_simd(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::IQ4_NL | GgmlType::IQ4_XS | GgmlType::MXFP4) && simd_available()
}

#[cfg(target_arch = "x86_64")]
fn simd_available() -> bool {
    iq::avx2::available()
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn simd_available() -> bool {
    true
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
fn simd_available() -> bool {
    false
}

/// Run the SIMD kernel for `ty` if there is one here; false if the caller must fall back.
fn simd_dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> bool {
    if !has_simd(ty) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use iq::avx2;
        // SAFETY: has_simd checked that the CPU supports AVX2 and F16C.
        unsafe {
            match ty {
                GgmlType::IQ4_NL => avx2::iq4_nl(src, dst),
                GgmlType::IQ4_XS => avx2::iq4_xs(src, dst),
                GgmlType::MXFP4 => avx2::mxfp4(src, dst),
                _ => return false,
            }
        }
        true
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use iq::simd128;
        match ty {
            GgmlType::IQ4_NL => simd128::iq4_nl(src, dst),
            GgmlType::IQ4_XS => simd128::iq4_xs(src, dst),
            GgmlType::MXFP4 => simd128::mxfp4(src, dst),
            _ => return false,
        }
        true
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )))]
    {
        let _ = (src, dst);
        false
    }
}

/// How many scales [`block_scales`] appends per block of `ty` (0 for types not of this module).
pub fn scales_per_block(ty: GgmlType) -> usize {
    match ty {
        GgmlType::NVFP4 => 4,
        t if TYPES.contains(&t) => 1,
        _ => 0,
    }
}

/// Append the primary scale of every block of `src` (whole blocks) to `out`, for counting NaN,
/// Inf, zero and subnormal scales.
///
/// Per type:
/// - IQ1_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, TQ1_0, TQ2_0: the f16
///   super-block scale `d`.
/// - IQ1_M: the f16 `d` reassembled from the top nibbles of its four sub-scale words.
/// - MXFP4: the E8M0 scale 2^(e-127) as the OCP spec reads it, so 0xFF is NaN (ggml and
///   gguf-py decode that block with 2^128 instead, see [`dequantize`]).
/// - NVFP4: four scales per block, the UE4M3 sub-block scales as the spec reads them: 0x7F,
///   and any byte with bit 7 set, is NaN (ggml and gguf-py decode 0x7F as 0 and ignore bit 7).
pub fn block_scales(ty: GgmlType, src: &[u8], out: &mut Vec<f32>) -> Result<(), KernelError> {
    if !TYPES.contains(&ty) {
        return Err(KernelError::Unsupported(ty.name()));
    }
    let ts = ty.type_size() as usize;
    if !src.len().is_multiple_of(ts) {
        return Err(KernelError::PartialBlocks {
            ty: ty.name(),
            bytes: ts as u64,
            len: src.len(),
        });
    }
    out.reserve(src.len() / ts * scales_per_block(ty));
    match ty {
        GgmlType::IQ1_M => out.extend(
            view::<BlockIq1M>(src)
                .iter()
                .map(|b| half::f16::from_bits(grid_quants::iq1_m_scale_bits(&b.scales)).to_f32()),
        ),
        GgmlType::TQ1_0 => out.extend(view::<BlockTq1_0>(src).iter().map(|b| f16_to_f32(b.d))),
        GgmlType::TQ2_0 => out.extend(view::<BlockTq2_0>(src).iter().map(|b| f16_to_f32(b.d))),
        GgmlType::MXFP4 => out.extend(
            view::<BlockMxfp4>(src)
                .iter()
                .map(|b| fp::e8m0_to_f32(b.e[0])),
        ),
        GgmlType::NVFP4 => out.extend(
            view::<BlockNvfp4>(src)
                .iter()
                .flat_map(|b| b.d.map(fp::ue4m3_to_f32)),
        ),
        // Every other type of this module starts its blocks with the f16 `d`.
        _ => out.extend(src.chunks_exact(ts).map(|b| f16_to_f32([b[0], b[1]]))),
    }
    Ok(())
}

#[cfg(test)]
#[path = "iq/tests.rs"]
mod tests;
