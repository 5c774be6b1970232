//! FP8 weights (F8_E4M3 / F8_E5M2) with an optional scale:
//! - `weight_scale_inv` [ceil(R/br), ceil(C/bc)] (DeepSeek-V3 / transformers "fp8" with
//!   `weight_block_size`): value = w · s[r / br][c / bc];
//! - `weight_scale` with one value (per tensor) or one per row (per channel,
//!   compressed-tensors): value = w · s.
//!
//! The product is formed in f32 and rounded once to the output dtype, as DeepSeek's
//! `weight_dequant` kernel does. No library fixture exists for this format: the tests use
//! vectors built from this definition.

use crate::dtype::Dtype;
use crate::encoding::{DecodeError, Encoding, Fp8Scale, PartRange};
use crate::hf::util::{
    expect_inputs, expect_len, float_at, part_dtype, range, round_to, scale_size,
};
use crate::kernels::fp::{e4m3fn_to_f32, e5m2_to_f32};
use crate::model::LogicalTensor;

struct Fp8<'a> {
    fp8: Dtype,
    scale: &'a Fp8Scale,
    out_dtype: Dtype,
    cols: u64,
}

fn params(t: &LogicalTensor) -> Result<Fp8<'_>, DecodeError> {
    let Encoding::Fp8 {
        fp8,
        scale,
        out_dtype,
    } = &t.encoding
    else {
        return Err(DecodeError::Invalid(format!(
            "{} is not an FP8 tensor",
            t.name
        )));
    };
    let cols = t.row_len().max(1);
    if matches!(scale, Fp8Scale::Block { .. }) && t.shape.len() != 2 {
        return Err(DecodeError::Invalid(format!(
            "{}: block-scaled FP8 must be 2-D",
            t.name
        )));
    }
    Ok(Fp8 {
        fp8: *fp8,
        scale,
        out_dtype: *out_dtype,
        cols,
    })
}

pub fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(params(t)?.cols)
}

fn scale_rows(p: &Fp8<'_>, r0: u64, r1: u64) -> (u64, u64, u64) {
    match p.scale {
        Fp8Scale::None => (0, 0, 0),
        Fp8Scale::PerTensor => (0, 1, 1),
        Fp8Scale::PerChannel => (r0, r1, 1),
        Fp8Scale::Block { block } => (
            r0 / block[0],
            r1.div_ceil(block[0]),
            p.cols.div_ceil(block[1]),
        ),
    }
}

/// Ranges: weight rows, then the scale values they need (none without a scale).
pub fn plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let p = params(t)?;
    let (r0, r1) = (start / p.cols, (start + count).div_ceil(p.cols));
    let mut v = vec![range(t, 0, start, count)?];
    if !matches!(p.scale, Fp8Scale::None) {
        let sp = 1;
        let ss = scale_size(part_dtype(t.parts.get(sp).ok_or_else(|| {
            DecodeError::Invalid(format!("{} has no scale part", t.name))
        })?)?)?;
        let (s0, s1, width) = scale_rows(&p, r0, r1);
        v.push(range(t, sp, s0 * width * ss, (s1 - s0) * width * ss)?);
    }
    Ok(v)
}

pub fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let p = params(t)?;
    let has_scale = !matches!(p.scale, Fp8Scale::None);
    let ins = expect_inputs(t, inputs, if has_scale { 2 } else { 1 })?;
    expect_len(t, "weight", ins[0], out.len() as u64)?;
    let (r0, r1) = (start / p.cols, (start + out.len() as u64).div_ceil(p.cols));
    let (s0, s1, width) = scale_rows(&p, r0, r1);
    let sdt = if has_scale {
        part_dtype(&t.parts[1])?
    } else {
        Dtype::F32
    };
    if has_scale {
        expect_len(t, "scale", ins[1], (s1 - s0) * width * scale_size(sdt)?)?;
    }
    for (j, o) in out.iter_mut().enumerate() {
        let e = start + j as u64;
        let b = ins[0][j];
        let w = if p.fp8 == Dtype::F8_E5M2 {
            e5m2_to_f32(b)
        } else {
            e4m3fn_to_f32(b)
        };
        let s = match p.scale {
            Fp8Scale::None => 1.0,
            Fp8Scale::PerTensor => float_at(sdt, ins[1], 0),
            Fp8Scale::PerChannel => float_at(sdt, ins[1], (e / p.cols - r0) as usize),
            Fp8Scale::Block { block } => {
                let (r, c) = (e / p.cols, e % p.cols);
                float_at(
                    sdt,
                    ins[1],
                    ((r / block[0] - s0) * width + c / block[1]) as usize,
                )
            }
        };
        *o = round_to(p.out_dtype, w * s);
    }
    Ok(())
}
