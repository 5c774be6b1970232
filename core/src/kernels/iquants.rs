//! Scalar reference dequantizers for the i-quants (IQ1_S … IQ4_XS), the ternary types
//! (TQ1_0, TQ2_0) and the FP4 types (MXFP4, NVFP4).

use super::KernelError;
use crate::ggml::types::GgmlType;

/// Dequantize whole blocks of one of this module's types.
pub fn dequantize(ty: GgmlType, _src: &[u8], _dst: &mut [f32]) -> Result<(), KernelError> {
    Err(KernelError::Unsupported(ty.name()))
}
