//! Decoding Hugging Face quantization encodings (bitsandbytes, MLX, gpt-oss MXFP4, FP8,
//! GPTQ, AWQ).

use super::{DecodeError, PartRange};
use crate::model::LogicalTensor;

fn unsupported(t: &LogicalTensor) -> DecodeError {
    DecodeError::Unsupported(format!(
        "decoding {} is not supported yet",
        t.encoding.label()
    ))
}

pub(super) fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Err(unsupported(t))
}

pub(super) fn plan(
    t: &LogicalTensor,
    _start: u64,
    _count: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    Err(unsupported(t))
}

pub(super) fn decode(
    t: &LogicalTensor,
    _start: u64,
    _inputs: &[&[u8]],
    _out: &mut [f32],
) -> Result<(), DecodeError> {
    Err(unsupported(t))
}
