//! bitsandbytes decoders.
//!
//! 4-bit (NF4/FP4): the packed weight is one byte per two elements over the flattened
//! tensor, element 2i in the HIGH nibble. Block b (of `blocksize` elements) is scaled by
//! absmax[b]; with double quantization absmax[b] = nested_quant_map[code_b] ·
//! nested_absmax[b / nested_blocksize] + nested_offset, all in f32. The value
//! quant_map[code] · absmax is computed in f32 and rounded once to the quant-state dtype,
//! as `bitsandbytes.functional.dequantize_4bit` does.
//!
//! LLM.int8: one int8 row per output feature and an f32 row scale `SCB`;
//! value = (W · SCB) · 7.874015718698502e-3 in f32 (the f32 of 1/127, multiplied, not a
//! division by 127, which differs in the last bit).

use crate::dtype::Dtype;
use crate::encoding::{DecodeError, Encoding, PartRange};
use crate::hf::util::{expect_inputs, expect_len, float_at, part_index, range, round_to};
use crate::model::LogicalTensor;

/// f32(1/127) as bitsandbytes multiplies it.
#[allow(clippy::excessive_precision)]
const INV_127: f32 = 7.874_015_718_698_502e-3;

struct Bnb4 {
    fp4: bool,
    blocksize: u64,
    nested_blocksize: Option<u64>,
    nested_offset: f32,
    out_dtype: Dtype,
}

fn bnb4(t: &LogicalTensor) -> Result<Bnb4, DecodeError> {
    match &t.encoding {
        Encoding::Bnb4 {
            quant_type,
            blocksize,
            nested,
            out_dtype,
        } if *blocksize > 0 => Ok(Bnb4 {
            fp4: *quant_type == crate::encoding::Bnb4Kind::Fp4,
            blocksize: *blocksize,
            nested_blocksize: nested.map(|n| n.blocksize).filter(|&b| b > 0),
            nested_offset: nested.map(|n| n.offset).unwrap_or(0.0),
            out_dtype: *out_dtype,
        }),
        _ => Err(DecodeError::Invalid(format!(
            "{} is not a bitsandbytes 4-bit tensor",
            t.name
        ))),
    }
}

pub fn bnb4_granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(bnb4(t)?.blocksize)
}

/// Ranges: weight, absmax, quant_map, then (double quant) nested_absmax, nested_quant_map.
pub fn bnb4_plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let q = bnb4(t)?;
    let end = start + count;
    let (b0, b1) = (start / q.blocksize, end.div_ceil(q.blocksize));
    let mut v = vec![
        range(
            t,
            part_index(t, "weight")?,
            start / 2,
            end.div_ceil(2) - start / 2,
        )?,
        range(
            t,
            part_index(t, "absmax")?,
            b0 * if q.nested_blocksize.is_some() { 1 } else { 4 },
            (b1 - b0) * if q.nested_blocksize.is_some() { 1 } else { 4 },
        )?,
        range(t, part_index(t, "quant_map")?, 0, 64)?,
    ];
    if let Some(nbs) = q.nested_blocksize {
        let (n0, n1) = (b0 / nbs, b1.div_ceil(nbs));
        v.push(range(
            t,
            part_index(t, "nested_absmax")?,
            n0 * 4,
            (n1 - n0) * 4,
        )?);
        v.push(range(t, part_index(t, "nested_quant_map")?, 0, 256 * 4)?);
    }
    Ok(v)
}

pub fn bnb4_decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let q = bnb4(t)?;
    let nested = q.nested_blocksize.is_some();
    let ins = expect_inputs(t, inputs, if nested { 5 } else { 3 })?;
    let end = start + out.len() as u64;
    let (b0, b1) = (start / q.blocksize, end.div_ceil(q.blocksize));
    let n_blocks = (b1 - b0) as usize;
    expect_len(t, "weight", ins[0], end.div_ceil(2) - start / 2)?;
    expect_len(
        t,
        "absmax",
        ins[1],
        n_blocks as u64 * if nested { 1 } else { 4 },
    )?;
    expect_len(t, "quant_map", ins[2], 64)?;
    let qmap: Vec<f32> = (0..16).map(|i| float_at(Dtype::F32, ins[2], i)).collect();
    let absmax: Vec<f32> = match q.nested_blocksize {
        None => (0..n_blocks)
            .map(|i| float_at(Dtype::F32, ins[1], i))
            .collect(),
        Some(nbs) => {
            let n0 = b0 / nbs;
            expect_len(t, "nested_absmax", ins[3], (b1.div_ceil(nbs) - n0) * 4)?;
            expect_len(t, "nested_quant_map", ins[4], 1024)?;
            (0..n_blocks)
                .map(|i| {
                    let b = b0 + i as u64;
                    let code = ins[1][i] as usize;
                    let nested_max = float_at(Dtype::F32, ins[3], (b / nbs - n0) as usize);
                    float_at(Dtype::F32, ins[4], code) * nested_max + q.nested_offset
                })
                .collect()
        }
    };
    // The FP4 kernel applies the sign bit separately, so code 8 gives -0.
    let signed: Vec<f32> = (0..16)
        .map(|c| {
            if q.fp4 && c & 8 != 0 {
                -qmap[c].abs()
            } else {
                qmap[c]
            }
        })
        .collect();
    // Chunks start on a block, and blocks hold an even number of elements, so each block
    // starts on a byte: decode block by block through a 16-entry table.
    let bs = q.blocksize as usize;
    let mut table = [0f32; 16];
    for (b, (chunk, bytes)) in out.chunks_mut(bs).zip(ins[0].chunks(bs / 2)).enumerate() {
        for (t, &v) in table.iter_mut().zip(&signed) {
            *t = round_to(q.out_dtype, v * absmax[b]);
        }
        let mut pairs = chunk.chunks_exact_mut(2);
        for (pair, &byte) in (&mut pairs).zip(bytes) {
            pair[0] = table[(byte >> 4) as usize];
            pair[1] = table[(byte & 0x0f) as usize];
        }
        if let [last] = pairs.into_remainder() {
            *last = table[(bytes[bytes.len() - 1] >> 4) as usize];
        }
    }
    Ok(())
}

fn int8_parts(t: &LogicalTensor) -> Result<(u64, Dtype), DecodeError> {
    let Encoding::BnbInt8 { out_dtype } = &t.encoding else {
        return Err(DecodeError::Invalid(format!(
            "{} is not a bitsandbytes int8 tensor",
            t.name
        )));
    };
    Ok((t.row_len().max(1), *out_dtype))
}

pub fn int8_granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(int8_parts(t)?.0)
}

/// Ranges: the int8 rows, then their SCB values.
pub fn int8_plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let (row, _) = int8_parts(t)?;
    let (r0, r1) = (start / row, (start + count).div_ceil(row));
    Ok(vec![
        range(t, part_index(t, "weight")?, start, count)?,
        range(t, part_index(t, "SCB")?, r0 * 4, (r1 - r0) * 4)?,
    ])
}

pub fn int8_decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let (row, out_dtype) = int8_parts(t)?;
    let ins = expect_inputs(t, inputs, 2)?;
    let r0 = start / row;
    expect_len(t, "weight", ins[0], out.len() as u64)?;
    expect_len(
        t,
        "SCB",
        ins[1],
        ((start + out.len() as u64).div_ceil(row) - r0) * 4,
    )?;
    // Chunks start on a row: one SCB per row-sized run.
    let row = row as usize;
    for (r, (o, w)) in out.chunks_mut(row).zip(ins[0].chunks(row)).enumerate() {
        let scb = float_at(Dtype::F32, ins[1], r);
        for (o, &w) in o.iter_mut().zip(w) {
            *o = round_to(out_dtype, (w as i8 as f32 * scb) * INV_127);
        }
    }
    Ok(())
}
