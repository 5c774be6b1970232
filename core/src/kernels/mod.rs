//! Dequantization kernels for every ggml type.
//!
//! Each type has a plain scalar reference (`scalar`); hot types also have SIMD paths that are
//! tested bit for bit against it. `dequantize` picks the fastest path available.

pub mod fp;
pub mod iquants;
pub mod scalar;

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

/// Dequantize whole blocks of `ty` from `src` into `dst` (little-endian data).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    check_sizes(ty, src, dst)?;
    let bs = ty.block_size() as usize;
    if !dst.len().is_multiple_of(bs) {
        // A trailing partial block: decode it into a temporary block.
        let full = dst.len() / bs * bs;
        let ts = ty.type_size() as usize;
        let (head, tail) = dst.split_at_mut(full);
        scalar::dequantize(ty, &src[..full / bs * ts], head)?;
        let mut tmp = vec![0f32; bs];
        scalar::dequantize(ty, &src[full / bs * ts..], &mut tmp)?;
        tail.copy_from_slice(&tmp[..tail.len()]);
        return Ok(());
    }
    scalar::dequantize(ty, src, dst)
}
