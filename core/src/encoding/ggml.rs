//! Decoding GGUF tensors: one contiguous run of blocks per chunk.

use super::{DecodeError, PartRange};
use crate::ggml::types::GgmlType;
use crate::kernels;
use crate::model::LogicalTensor;

pub(super) fn plan(
    ty: GgmlType,
    t: &LogicalTensor,
    start: u64,
    count: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    let bs = ty.block_size();
    let first_block = start / bs;
    let n_blocks = count.div_ceil(bs);
    let offset = first_block * ty.type_size();
    let len = n_blocks * ty.type_size();
    super::single_part_range(t, offset, len)
}

pub(super) fn decode(ty: GgmlType, inputs: &[&[u8]], out: &mut [f32]) -> Result<(), DecodeError> {
    let [bytes] = inputs else {
        return Err(DecodeError::Invalid(format!(
            "a ggml tensor decodes from one byte range, got {}",
            inputs.len()
        )));
    };
    kernels::dequantize(ty, bytes, out).map_err(|e| DecodeError::Invalid(e.to_string()))
}
