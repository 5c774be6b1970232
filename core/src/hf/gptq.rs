//! GPTQ and AWQ (GEMM) 4-bit-style integer weights, logical shape [out N, in K].
//!
//! GPTQ (AutoGPTQ / transformers "gptq", checkpoint format v1):
//! - `qweight` I32 [K·bits/32, N]: each column n is an LSB-first bit stream over its
//!   words, code k at bit k·bits (3-bit codes cross words, 32 codes per 3 words);
//! - `qzeros` I32 [G, N·bits/32]: each row g a bit stream over N zero codes; the stored
//!   zero is one less than the zero point (v1 format), so zero = code + 1;
//! - `scales` [G, N]; `g_idx` I32 [K] gives each input k its group (act-order models
//!   permute it), else group = k / group_size.
//! - value = scale · (q − zero), formed exactly and rounded once to the scales' dtype.
//!
//! AWQ (AutoAWQ GEMM): `qweight` I32 [K, N/8] packs 8 outputs per word in the order
//! [0, 2, 4, 6, 1, 3, 5, 7] (nibble i holds output 8c + ORDER[i]); `qzeros` I32 [G, N/8]
//! the same way; `scales` [G, N]; value = (q − zero) · scale; group = k / group_size.
//!
//! No library fixture exists for these formats: the tests use vectors packed from these
//! definitions. A logical row (one output n) is a column of the stored tensors, so a plan
//! lists one small strided range per packed row.

use crate::dtype::Dtype;
use crate::encoding::{DecodeError, Encoding, PartRange};
use crate::hf::util::round_to;
use crate::hf::util::{expect_inputs, expect_len, float_at, part_dtype, part_index, range};
use crate::model::LogicalTensor;

/// Output column 8c + j of an AWQ word sits in nibble AWQ_NIBBLE[j].
const AWQ_NIBBLE: [u32; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

struct Q {
    awq: bool,
    bits: u32,
    group_size: u64,
    out_dtype: Dtype,
    n: u64,
    k: u64,
    groups: u64,
    has_g_idx: bool,
    scale_dtype: Dtype,
}

fn params(t: &LogicalTensor) -> Result<Q, DecodeError> {
    let (awq, bits, group_size, out_dtype) = match &t.encoding {
        Encoding::Gptq {
            bits,
            group_size,
            out_dtype,
            ..
        } => (false, *bits, *group_size, *out_dtype),
        Encoding::Awq {
            bits,
            group_size,
            out_dtype,
        } => (true, *bits, *group_size, *out_dtype),
        _ => {
            return Err(DecodeError::Invalid(format!(
                "{} is not a GPTQ/AWQ tensor",
                t.name
            )))
        }
    };
    if t.shape.len() != 2 || !matches!(bits, 2 | 3 | 4 | 8) || (awq && bits != 4) || group_size == 0
    {
        return Err(DecodeError::Unsupported(format!(
            "{}: {bits}-bit {} with group size {group_size} and shape {:?} is not supported",
            t.name,
            if awq { "AWQ" } else { "GPTQ" },
            t.shape
        )));
    }
    let sp = &t.parts[part_index(t, "scales")?];
    let groups = sp.shape.first().copied().unwrap_or(0);
    Ok(Q {
        awq,
        bits,
        group_size,
        out_dtype,
        n: t.shape[0],
        k: t.shape[1],
        groups,
        has_g_idx: t.part("g_idx").is_some(),
        scale_dtype: part_dtype(sp)?,
    })
}

pub fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    Ok(params(t)?.k.max(1))
}

/// Word range [w0, w1) of a packed row of `n` codes that covers codes n0..n1.
fn words(q: &Q, n0: u64, n1: u64) -> (u64, u64) {
    let b = q.bits as u64;
    (n0 * b / 32, (n1 * b).div_ceil(32))
}

/// Ranges: for every packed qweight row, the words of outputs n0..n1; then for every
/// group the qzeros words and the scales; then g_idx whole (GPTQ with g_idx).
pub fn plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    let q = params(t)?;
    let (n0, n1) = (start / q.k, (start + count).div_ceil(q.k));
    let (qw, qz, sc) = (
        part_index(t, "qweight")?,
        part_index(t, "qzeros")?,
        part_index(t, "scales")?,
    );
    let ss = crate::hf::util::scale_size(q.scale_dtype)?;
    let mut v = Vec::new();
    if q.awq {
        let (c0, c1) = (n0 / 8, n1.div_ceil(8));
        let width = q.n / 8;
        for k in 0..q.k {
            v.push(range(t, qw, (k * width + c0) * 4, (c1 - c0) * 4)?);
        }
    } else {
        let rows = q.k * q.bits as u64 / 32;
        for r in 0..rows {
            v.push(range(t, qw, (r * q.n + n0) * 4, (n1 - n0) * 4)?);
        }
    }
    let zwidth = if q.awq {
        q.n / 8
    } else {
        q.n * q.bits as u64 / 32
    };
    let (z0, z1) = if q.awq {
        (n0 / 8, n1.div_ceil(8))
    } else {
        words(&q, n0, n1)
    };
    for g in 0..q.groups {
        v.push(range(t, qz, (g * zwidth + z0) * 4, (z1 - z0) * 4)?);
    }
    for g in 0..q.groups {
        v.push(range(t, sc, (g * q.n + n0) * ss, (n1 - n0) * ss)?);
    }
    if !q.awq && q.has_g_idx {
        v.push(range(t, part_index(t, "g_idx")?, 0, q.k * 4)?);
    }
    Ok(v)
}

pub fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let q = params(t)?;
    let (n0, n1) = (start / q.k, (start + out.len() as u64).div_ceil(q.k));
    let cols = (n1 - n0) as usize;
    let packed_rows = if q.awq { q.k } else { q.k * q.bits as u64 / 32 } as usize;
    let groups = q.groups as usize;
    let with_gidx = !q.awq && q.has_g_idx;
    let ins = expect_inputs(t, inputs, packed_rows + 2 * groups + usize::from(with_gidx))?;
    let (qw, rest) = ins.split_at(packed_rows);
    let (qz, rest) = rest.split_at(groups);
    let (sc, rest) = rest.split_at(groups);
    let ss = crate::hf::util::scale_size(q.scale_dtype)?;
    for s in sc {
        expect_len(t, "scales", s, cols as u64 * ss)?;
    }
    let g_idx = rest.first().copied();
    if let Some(g) = g_idx {
        expect_len(t, "g_idx", g, q.k * 4)?;
    }
    let group_of = |k: u64| -> Result<usize, DecodeError> {
        let g = match g_idx {
            Some(b) => {
                let i = k as usize * 4;
                i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as i64
            }
            None => (k / q.group_size) as i64,
        };
        usize::try_from(g)
            .ok()
            .filter(|&g| g < groups)
            .ok_or_else(|| {
                DecodeError::Invalid(format!(
                    "{}: input {k} maps to group {g}, but there are {groups} groups",
                    t.name
                ))
            })
    };
    let bits = q.bits;
    let (z0, _) = if q.awq {
        (n0 / 8, 0)
    } else {
        words(&q, n0, n1)
    };
    for (j, o) in out.iter_mut().enumerate() {
        let e = start + j as u64;
        let (n, k) = (e / q.k, e % q.k);
        let g = group_of(k)?;
        let code;
        let zero;
        if q.awq {
            let c = n / 8 - n0 / 8;
            let shift = AWQ_NIBBLE[(n % 8) as usize] * 4;
            let word = |b: &[u8]| -> Result<u32, DecodeError> {
                let i = c as usize * 4;
                b.get(i..i + 4)
                    .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .ok_or_else(|| {
                        DecodeError::Invalid(format!("{}: short qweight/qzeros range", t.name))
                    })
            };
            code = (word(qw[k as usize])? >> shift) & 0xf;
            zero = (word(qz[g])? >> shift) & 0xf;
        } else {
            let bit = k * bits as u64;
            let (r, within) = (bit / 32, bit % 32);
            let lo = col_word(t, qw[r as usize], n - n0)?;
            let mut v = (lo as u64) >> within;
            if within + bits as u64 > 32 {
                v |= (col_word(t, qw[r as usize + 1], n - n0)? as u64) << (32 - within);
            }
            code = (v as u32) & ((1 << bits) - 1);
            let zb = qz[g];
            let rel = n * bits as u64 - z0 * 32;
            if (rel + bits as u64).div_ceil(8) > zb.len() as u64 {
                return Err(DecodeError::Invalid(format!(
                    "{}: short qzeros range",
                    t.name
                )));
            }
            zero = bit_field(zb, rel, bits) + 1;
        }
        *o = value(&q, sc[g], (n - n0) as usize, code, zero);
    }
    Ok(())
}

fn value(q: &Q, scales: &[u8], i: usize, code: u32, zero: u32) -> f32 {
    let s = float_at(q.scale_dtype, scales, i);
    round_to(q.out_dtype, s * (code as f32 - zero as f32))
}

fn col_word(t: &LogicalTensor, b: &[u8], i: u64) -> Result<u32, DecodeError> {
    let i = i as usize * 4;
    b.get(i..i + 4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        .ok_or_else(|| DecodeError::Invalid(format!("{}: short qweight range", t.name)))
}

/// `bits` bits at absolute bit `bit` of an LSB-first stream.
fn bit_field(b: &[u8], bit: u64, bits: u32) -> u32 {
    let mut v: u32 = 0;
    let byte = (bit / 8) as usize;
    for (k, x) in b[byte..b.len().min(byte + 4)].iter().enumerate() {
        v |= (*x as u32) << (8 * k);
    }
    (v >> (bit % 8)) & ((1 << bits) - 1)
}
