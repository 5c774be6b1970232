//! MLX quantized weights: packed uint32 codes with per-group scales (and biases).
//!
//! The codes of a tensor form one continuous LSB-first bit stream over little-endian
//! uint32 words (3-, 5- and 6-bit codes cross byte and word boundaries); every row and
//! every group starts on a word boundary because group size × bits is a multiple of 32.
//!
//! Affine: `mx.dequantize` computes in the scales' dtype, `round(round(scale·q) + bias)`.
//! Both roundings are reproduced (see `affine_value`).
//!
//! mxfp4/mxfp8: E2M1/E4M3 codes times an E8M0 scale per 32; nvfp4: E2M1 codes times an
//! E4M3 scale per 16. No biases. Products are exact in bf16/f16, so the output dtype only
//! matters for overflow.

use crate::dtype::Dtype;
use crate::encoding::{DecodeError, Encoding, MlxFloatMode, PartRange};
use crate::hf::util::{
    expect_inputs, expect_len, float_at, part_dtype, part_index, range, round_to, scale_size,
    BitReader,
};
use crate::kernels::fp::{e2m1_to_f32, e4m3fn_to_f32, e8m0_to_f32};
use crate::model::LogicalTensor;

enum Kind {
    Affine,
    Float(MlxFloatMode),
}

struct Mlx {
    kind: Kind,
    bits: u32,
    group_size: u64,
    out_dtype: Dtype,
    scale_dtype: Dtype,
}

fn params(t: &LogicalTensor) -> Result<Mlx, DecodeError> {
    let scale_dtype = part_dtype(&t.parts[part_index(t, "scales")?])?;
    let (kind, bits, group_size, out_dtype) = match &t.encoding {
        Encoding::MlxAffine {
            bits,
            group_size,
            out_dtype,
        } => (Kind::Affine, *bits, *group_size, *out_dtype),
        Encoding::MlxFloat {
            mode,
            group_size,
            out_dtype,
        } => {
            let bits = if *mode == MlxFloatMode::Mxfp8 { 8 } else { 4 };
            (Kind::Float(*mode), bits, *group_size, *out_dtype)
        }
        _ => {
            return Err(DecodeError::Invalid(format!(
                "{} is not an MLX quantized tensor",
                t.name
            )))
        }
    };
    if !(1..=8).contains(&bits) || group_size == 0 || !(group_size * bits as u64).is_multiple_of(32)
    {
        return Err(DecodeError::Unsupported(format!(
            "{}: MLX {bits}-bit codes in groups of {group_size} do not fill whole uint32 words",
            t.name
        )));
    }
    if !t.row_len().is_multiple_of(group_size) {
        return Err(DecodeError::Invalid(format!(
            "{}: rows of {} elements are not whole groups of {group_size}",
            t.name,
            t.row_len()
        )));
    }
    Ok(Mlx {
        kind,
        bits,
        group_size,
        out_dtype,
        scale_dtype,
    })
}

pub fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(params(t)?.group_size)
}

/// Ranges: weight words, scales, then (affine) biases.
pub fn plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let m = params(t)?;
    let end = start + count;
    let bits = m.bits as u64;
    let w0 = start * bits / 32 * 4;
    let w1 = (end * bits).div_ceil(32) * 4;
    let ss = scale_size(m.scale_dtype)?;
    let (g0, g1) = (start / m.group_size, end.div_ceil(m.group_size));
    let mut v = vec![
        range(t, part_index(t, "weight")?, w0, w1 - w0)?,
        range(t, part_index(t, "scales")?, g0 * ss, (g1 - g0) * ss)?,
    ];
    if matches!(m.kind, Kind::Affine) {
        v.push(range(t, part_index(t, "biases")?, g0 * ss, (g1 - g0) * ss)?);
    }
    Ok(v)
}

pub fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let m = params(t)?;
    let affine = matches!(m.kind, Kind::Affine);
    let ins = expect_inputs(t, inputs, if affine { 3 } else { 2 })?;
    let end = start + out.len() as u64;
    let bits = m.bits as u64;
    let ss = scale_size(m.scale_dtype)?;
    let (g0, g1) = (start / m.group_size, end.div_ceil(m.group_size));
    expect_len(
        t,
        "weight",
        ins[0],
        (end * bits).div_ceil(32) * 4 - start * bits / 32 * 4,
    )?;
    expect_len(t, "scales", ins[1], (g1 - g0) * ss)?;
    if affine {
        expect_len(t, "biases", ins[2], (g1 - g0) * ss)?;
    }
    // Groups are whole and start on word boundaries: decode group by group, through a
    // table of the group's 2^bits values when that is smaller than the group.
    let mut codes = BitReader::new(ins[0]);
    let gs = m.group_size as usize;
    let mut table = vec![0f32; 1 << m.bits];
    let use_table = table.len() <= gs;
    for (g, chunk) in out.chunks_mut(gs).enumerate() {
        let (scale, bias) = match m.kind {
            Kind::Affine => (
                float_at(m.scale_dtype, ins[1], g),
                float_at(m.scale_dtype, ins[2], g),
            ),
            Kind::Float(MlxFloatMode::Nvfp4) => (e4m3fn_to_f32(ins[1][g]), 0.0),
            Kind::Float(_) => (e8m0_to_f32(ins[1][g]), 0.0),
        };
        let value = |q: u32| -> f32 {
            match m.kind {
                Kind::Affine => affine_value(m.scale_dtype, scale, bias, q),
                Kind::Float(MlxFloatMode::Mxfp8) => {
                    round_to(m.out_dtype, e4m3fn_to_f32(q as u8) * scale)
                }
                Kind::Float(_) => round_to(m.out_dtype, e2m1_to_f32(q as u8) * scale),
            }
        };
        if use_table {
            for (q, v) in table.iter_mut().enumerate() {
                *v = value(q as u32);
            }
            codes.decode_into(m.bits, &table, chunk);
        } else {
            for o in chunk.iter_mut() {
                *o = value(codes.next(m.bits));
            }
        }
    }
    Ok(())
}

/// `round(round(scale·q) + bias)` in `dtype`. f32 arithmetic gives the same result as
/// arithmetic in f16/bf16: scale·q (at most 11 + 8 significant bits) is exact in f32, and
/// the f32 sum can only round where the bias is below half a 16-bit ulp of the product.
#[inline]
fn affine_value(dtype: Dtype, scale: f32, bias: f32, q: u32) -> f32 {
    round_to(dtype, round_to(dtype, scale * q as f32) + bias)
}
