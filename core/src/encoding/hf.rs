//! Decoding Hugging Face quantization encodings (bitsandbytes, MLX, gpt-oss MXFP4, FP8,
//! GPTQ, AWQ). The format code lives in `crate::hf`; this module only dispatches.

use super::{DecodeError, Encoding, PartRange};
use crate::hf::{bnb, fp8, gptoss, gptq, mlx};
use crate::model::LogicalTensor;

fn not_hf(t: &LogicalTensor) -> DecodeError {
    DecodeError::Unsupported(format!(
        "{} is not a Hugging Face quantization encoding",
        t.encoding.label()
    ))
}

pub(super) fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    match &t.encoding {
        Encoding::Bnb4 { .. } => bnb::bnb4_granule(t),
        Encoding::BnbInt8 { .. } => bnb::int8_granule(t),
        Encoding::MlxAffine { .. } | Encoding::MlxFloat { .. } => mlx::granule(t),
        Encoding::GptOssMxfp4 { .. } => gptoss::granule(t),
        Encoding::Fp8 { .. } => fp8::granule(t),
        Encoding::Gptq { .. } | Encoding::Awq { .. } => gptq::granule(t),
        _ => Err(not_hf(t)),
    }
}

pub(super) fn plan(
    t: &LogicalTensor,
    start: u64,
    count: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    match &t.encoding {
        Encoding::Bnb4 { .. } => bnb::bnb4_plan(t, start, count),
        Encoding::BnbInt8 { .. } => bnb::int8_plan(t, start, count),
        Encoding::MlxAffine { .. } | Encoding::MlxFloat { .. } => mlx::plan(t, start, count),
        Encoding::GptOssMxfp4 { .. } => gptoss::plan(t, start, count),
        Encoding::Fp8 { .. } => fp8::plan(t, start, count),
        Encoding::Gptq { .. } | Encoding::Awq { .. } => gptq::plan(t, start, count),
        _ => Err(not_hf(t)),
    }
}

pub(super) fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    match &t.encoding {
        Encoding::Bnb4 { .. } => bnb::bnb4_decode(t, start, inputs, out),
        Encoding::BnbInt8 { .. } => bnb::int8_decode(t, start, inputs, out),
        Encoding::MlxAffine { .. } | Encoding::MlxFloat { .. } => {
            mlx::decode(t, start, inputs, out)
        }
        Encoding::GptOssMxfp4 { .. } => gptoss::decode(t, start, inputs, out),
        Encoding::Fp8 { .. } => fp8::decode(t, start, inputs, out),
        Encoding::Gptq { .. } | Encoding::Awq { .. } => gptq::decode(t, start, inputs, out),
        _ => Err(not_hf(t)),
    }
}
