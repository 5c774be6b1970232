//! gpt-oss MXFP4 experts: `<name>_blocks` U8 [..., G, 16] holds 32 E2M1 codes per block
//! (low nibble = even element), `<name>_scales` U8 [..., G] one E8M0 exponent per block.
//! The logical tensor is [..., G·32] over the blocks' own axes. transformers'
//! `convert_moe_packed_tensors` returns the transpose of the last two axes; values agree.

use crate::encoding::{DecodeError, Encoding, PartRange};
use crate::hf::util::{expect_inputs, expect_len, part_index, range, round_to};
use crate::kernels::fp::{e2m1_to_f32, e8m0_to_f32};
use crate::model::LogicalTensor;

const BLOCK: u64 = 32;

pub fn granule(_t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(BLOCK)
}

/// Ranges: blocks, scales.
pub fn plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let (b0, b1) = (start / BLOCK, (start + count).div_ceil(BLOCK));
    Ok(vec![
        range(t, part_index(t, "blocks")?, b0 * 16, (b1 - b0) * 16)?,
        range(t, part_index(t, "scales")?, b0, b1 - b0)?,
    ])
}

pub fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let Encoding::GptOssMxfp4 { out_dtype } = &t.encoding else {
        return Err(DecodeError::Invalid(format!(
            "{} is not a gpt-oss MXFP4 tensor",
            t.name
        )));
    };
    let ins = expect_inputs(t, inputs, 2)?;
    let (b0, b1) = (start / BLOCK, (start + out.len() as u64).div_ceil(BLOCK));
    expect_len(t, "blocks", ins[0], (b1 - b0) * 16)?;
    expect_len(t, "scales", ins[1], b1 - b0)?;
    let mut table = [0f32; 16];
    for ((chunk, bytes), &scale) in out
        .chunks_mut(BLOCK as usize)
        .zip(ins[0].chunks(16))
        .zip(ins[1])
    {
        let s = e8m0_to_f32(scale);
        for (c, t) in table.iter_mut().enumerate() {
            *t = round_to(*out_dtype, e2m1_to_f32(c as u8) * s);
        }
        for (pair, &byte) in chunk.chunks_mut(2).zip(bytes) {
            pair[0] = table[(byte & 0x0f) as usize];
            if let Some(o) = pair.get_mut(1) {
                *o = table[(byte >> 4) as usize];
            }
        }
    }
    Ok(())
}
