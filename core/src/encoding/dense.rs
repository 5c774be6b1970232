//! Decoding dense safetensors tensors (every safetensors dtype to f32).

use super::{DecodeError, PartRange};
use crate::dtype::Dtype;
use crate::model::LogicalTensor;

/// Elements per decode unit (sub-byte types need whole bytes).
pub(super) fn granule(dtype: Dtype) -> u64 {
    match dtype.bits() {
        4 => 2,
        6 => 4,
        _ => 1,
    }
}

pub(super) fn plan(
    dtype: Dtype,
    t: &LogicalTensor,
    _start: u64,
    _count: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    let _ = t;
    Err(DecodeError::Unsupported(format!(
        "decoding dense {} is not supported yet",
        dtype.name()
    )))
}

pub(super) fn decode(dtype: Dtype, _inputs: &[&[u8]], _out: &mut [f32]) -> Result<(), DecodeError> {
    Err(DecodeError::Unsupported(format!(
        "decoding dense {} is not supported yet",
        dtype.name()
    )))
}
