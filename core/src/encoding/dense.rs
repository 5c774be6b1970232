//! Decoding dense safetensors tensors (every safetensors dtype to f32).
//!
//! Sub-byte types: F4 (E2M1) packs two elements per byte, element 2i in the LOW nibble
//! (PyTorch's float4_e2m1fn_x2); F6_E2M3/F6_E3M2 pack four elements in three bytes as an
//! LSB-first bit stream. Integers convert to the nearest f32 (64-bit ones can lose
//! precision); BOOL is 0 or 1. C64 (complex) has no single f32 per element and is refused.

use half::{bf16, f16};

use super::{DecodeError, PartRange};
use crate::dtype::Dtype;
use crate::kernels::fp::{e2m1_to_f32, e4m3fn_to_f32, e5m2_to_f32, e8m0_to_f32};
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
    start: u64,
    count: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    if dtype == Dtype::C64 {
        return Err(DecodeError::Unsupported(format!(
            "{}: complex C64 values have no f32 form",
            t.name
        )));
    }
    let bits = dtype.bits();
    let offset = start * bits / 8;
    let len = ((start + count) * bits).div_ceil(8) - offset;
    super::single_part_range(t, offset, len)
}

pub(super) fn decode(dtype: Dtype, inputs: &[&[u8]], out: &mut [f32]) -> Result<(), DecodeError> {
    let [b] = inputs else {
        return Err(DecodeError::Invalid(format!(
            "a dense tensor decodes from one byte range, got {}",
            inputs.len()
        )));
    };
    let need = (out.len() as u64 * dtype.bits()).div_ceil(8);
    if b.len() as u64 != need {
        return Err(DecodeError::Invalid(format!(
            "{} values of {dtype} need {need} bytes, got {}",
            out.len(),
            b.len()
        )));
    }
    macro_rules! each {
        ($n:literal, $f:expr) => {
            for (o, c) in out.iter_mut().zip(b.chunks_exact($n)) {
                *o = $f(c.try_into().unwrap());
            }
        };
    }
    match dtype {
        Dtype::F32 => each!(4, |c: [u8; 4]| f32::from_le_bytes(c)),
        Dtype::F16 => f16_run(b, out),
        Dtype::BF16 => each!(2, |c: [u8; 2]| bf16::from_le_bytes(c).to_f32()),
        Dtype::F64 => each!(8, |c: [u8; 8]| f64::from_le_bytes(c) as f32),
        Dtype::I8 => each!(1, |c: [u8; 1]| c[0] as i8 as f32),
        Dtype::U8 => each!(1, |c: [u8; 1]| c[0] as f32),
        Dtype::BOOL => each!(1, |c: [u8; 1]| if c[0] != 0 { 1.0 } else { 0.0 }),
        Dtype::I16 => each!(2, |c: [u8; 2]| i16::from_le_bytes(c) as f32),
        Dtype::U16 => each!(2, |c: [u8; 2]| u16::from_le_bytes(c) as f32),
        Dtype::I32 => each!(4, |c: [u8; 4]| i32::from_le_bytes(c) as f32),
        Dtype::U32 => each!(4, |c: [u8; 4]| u32::from_le_bytes(c) as f32),
        Dtype::I64 => each!(8, |c: [u8; 8]| i64::from_le_bytes(c) as f32),
        Dtype::U64 => each!(8, |c: [u8; 8]| u64::from_le_bytes(c) as f32),
        Dtype::F8_E4M3 => each!(1, |c: [u8; 1]| e4m3fn_to_f32(c[0])),
        Dtype::F8_E5M2 => each!(1, |c: [u8; 1]| e5m2_to_f32(c[0])),
        Dtype::F8_E8M0 => each!(1, |c: [u8; 1]| e8m0_to_f32(c[0])),
        Dtype::F4 => {
            for (i, o) in out.iter_mut().enumerate() {
                let byte = b[i / 2];
                *o = e2m1_to_f32(if i % 2 == 0 { byte & 0x0f } else { byte >> 4 });
            }
        }
        Dtype::F6_E2M3 | Dtype::F6_E3M2 => {
            for (i, o) in out.iter_mut().enumerate() {
                let bit = i * 6;
                let lo = b[bit / 8] as u16;
                let hi = b.get(bit / 8 + 1).copied().unwrap_or(0) as u16;
                let code = (((hi << 8) | lo) >> (bit % 8)) as u8 & 0x3f;
                *o = if dtype == Dtype::F6_E2M3 {
                    f6_e2m3(code)
                } else {
                    f6_e3m2(code)
                };
            }
        }
        Dtype::C64 => {
            return Err(DecodeError::Unsupported(
                "complex C64 values have no f32 form".into(),
            ))
        }
    }
    Ok(())
}

/// OCP MX FP6 E2M3: bias 1, no inf/NaN, max 7.5.
fn f6_e2m3(code: u8) -> f32 {
    small_float(code, 2, 3, 1)
}

/// OCP MX FP6 E3M2: bias 3, no inf/NaN, max 28.
fn f6_e3m2(code: u8) -> f32 {
    small_float(code, 3, 2, 3)
}

fn small_float(code: u8, ebits: u32, mbits: u32, bias: i32) -> f32 {
    let sign = if code >> (ebits + mbits) & 1 == 1 {
        -1.0
    } else {
        1.0
    };
    let e = ((code >> mbits) & ((1 << ebits) - 1)) as i32;
    let m = (code & ((1 << mbits) - 1)) as f32 / (1 << mbits) as f32;
    let v = if e == 0 {
        m * 2f32.powi(1 - bias)
    } else {
        (1.0 + m) * 2f32.powi(e - bias)
    };
    sign * v
}

/// f16 → f32 through half's slice conversion, which uses the CPU's F16C instructions when
/// present (several times faster than converting one value at a time).
fn f16_run(b: &[u8], out: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    const RUN: usize = 256;
    let mut halves = [f16::ZERO; RUN];
    for (o, c) in out.chunks_mut(RUN).zip(b.chunks(2 * RUN)) {
        let h = &mut halves[..o.len()];
        for (x, pair) in h.iter_mut().zip(c.chunks_exact(2)) {
            *x = f16::from_le_bytes([pair[0], pair[1]]);
        }
        h.convert_to_f32_slice(o);
    }
}
