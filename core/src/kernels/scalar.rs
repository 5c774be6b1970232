//! Scalar reference dequantizers. Clear rather than fast: the SIMD paths are tested against
//! these bit for bit, and these are tested against gguf-py 0.19.0's output (the fixtures).
//!
//! Every formula keeps gguf-py's float operation order: the scale products (`d * sc`,
//! `dmin * m`) and `dl * q` are rounded to f32 first, then one add or subtract. With f16
//! scales and factors of at most 8 bits those products are exact in f32, so the only rounding
//! is the final add/subtract, which must therefore use exactly gguf-py's operands.

use super::blocks::{
    as_blocks, bf16_to_f32, f16_le, f16_to_f32, f32_le, Block, BlockQ2K, BlockQ3K, BlockQ4K,
    BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1,
};
use super::{kquant, KernelError};
use crate::ggml::types::GgmlType;

/// Dequantize whole blocks (`dst.len()` is a multiple of the block size and matches `src`)
/// with the scalar reference of every type, the i-quant family's included (never SIMD).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    match ty {
        GgmlType::F32 => elements(src, dst, |b: [u8; 4]| f32::from_le_bytes(b)),
        GgmlType::F16 => elements(src, dst, |b| f16_to_f32(u16::from_le_bytes(b))),
        GgmlType::BF16 => elements(src, dst, |b| bf16_to_f32(u16::from_le_bytes(b))),
        // `as` rounds to nearest, ties to even, like numpy's astype(float32).
        GgmlType::F64 => elements(src, dst, |b| f64::from_le_bytes(b) as f32),
        GgmlType::I8 => elements(src, dst, |b: [u8; 1]| b[0] as i8 as f32),
        GgmlType::I16 => elements(src, dst, |b| i16::from_le_bytes(b) as f32),
        GgmlType::I32 => elements(src, dst, |b| i32::from_le_bytes(b) as f32),
        GgmlType::I64 => elements(src, dst, |b| i64::from_le_bytes(b) as f32),
        GgmlType::Q4_0 => blocks(src, dst, q4_0),
        GgmlType::Q4_1 => blocks(src, dst, q4_1),
        GgmlType::Q5_0 => blocks(src, dst, q5_0),
        GgmlType::Q5_1 => blocks(src, dst, q5_1),
        GgmlType::Q8_0 => blocks(src, dst, q8_0),
        GgmlType::Q8_1 => blocks(src, dst, q8_1),
        GgmlType::Q2_K => blocks(src, dst, q2_k),
        GgmlType::Q3_K => blocks(src, dst, q3_k),
        GgmlType::Q4_K => blocks(src, dst, q4_k),
        GgmlType::Q5_K => blocks(src, dst, q5_k),
        GgmlType::Q6_K => blocks(src, dst, q6_k),
        GgmlType::Q8_K => blocks(src, dst, q8_k),
        GgmlType::IQ1_S
        | GgmlType::IQ1_M
        | GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ4_NL
        | GgmlType::IQ4_XS
        | GgmlType::TQ1_0
        | GgmlType::TQ2_0
        | GgmlType::MXFP4
        | GgmlType::NVFP4 => return super::iquants::dequantize_reference(ty, src, dst),
        GgmlType::Q1_0 => return Err(KernelError::Unsupported(ty.name())),
    }
    Ok(())
}

#[inline]
fn elements<const N: usize>(src: &[u8], dst: &mut [f32], f: impl Fn([u8; N]) -> f32) {
    for (b, o) in src.chunks_exact(N).zip(dst.iter_mut()) {
        *o = f(b.try_into().expect("chunks_exact gives N bytes"));
    }
}

#[inline]
fn blocks<B: Block, const N: usize>(src: &[u8], dst: &mut [f32], f: impl Fn(&B, &mut [f32; N])) {
    for (b, o) in as_blocks::<B>(src).iter().zip(dst.chunks_exact_mut(N)) {
        f(b, o.try_into().expect("chunks_exact_mut gives N values"));
    }
}

/// Element j in the low nibble of qs[j], element j + 16 in the high nibble.
#[inline]
fn nibble(qs: &[u8; 16], i: usize) -> u8 {
    (qs[i % 16] >> (4 * (i / 16))) & 0x0f
}

pub fn q4_0(b: &BlockQ4_0, out: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (i, o) in out.iter_mut().enumerate() {
        *o = d * (nibble(&b.qs, i) as i32 - 8) as f32;
    }
}

/// `p + m` for the product `p = d * q`, keeping a NaN `p` as it is even when `m` is NaN too:
/// x86 (so numpy, so gguf-py) keeps the first operand's payload then, but WebAssembly leaves
/// it open and compilers may swap an add's operands, so the choice is made here.
#[inline]
fn plus_offset(p: f32, m: f32) -> f32 {
    if p.is_nan() {
        p
    } else {
        p + m
    }
}

pub fn q4_1(b: &BlockQ4_1, out: &mut [f32; 32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for (i, o) in out.iter_mut().enumerate() {
        *o = plus_offset(d * nibble(&b.qs, i) as f32, m);
    }
}

#[inline]
fn fifth_bit(qh: [u8; 4], i: usize) -> u8 {
    ((u32::from_le_bytes(qh) >> i) & 1) as u8
}

pub fn q5_0(b: &BlockQ5_0, out: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (i, o) in out.iter_mut().enumerate() {
        let q = nibble(&b.qs, i) | (fifth_bit(b.qh, i) << 4);
        *o = d * (q as i32 - 16) as f32;
    }
}

pub fn q5_1(b: &BlockQ5_1, out: &mut [f32; 32]) {
    let (d, m) = (f16_le(b.d), f16_le(b.m));
    for (i, o) in out.iter_mut().enumerate() {
        let q = nibble(&b.qs, i) | (fifth_bit(b.qh, i) << 4);
        *o = plus_offset(d * q as f32, m);
    }
}

pub fn q8_0(b: &BlockQ8_0, out: &mut [f32; 32]) {
    let d = f16_le(b.d);
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = q as i8 as f32 * d;
    }
}

/// Not in gguf-py: ggml's definition, `y = d * q` with the f32 `d` (`s` only serves dot
/// products).
pub fn q8_1(b: &BlockQ8_1, out: &mut [f32; 32]) {
    let d = f32_le(b.d);
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = d * q as i8 as f32;
    }
}

/// Not in gguf-py: ggml's `dequantize_row_q8_K`, `y = d * q` (`bsums` only serves dot
/// products).
pub fn q8_k(b: &BlockQ8K, out: &mut [f32; 256]) {
    let d = f32_le(b.d);
    for (o, &q) in out.iter_mut().zip(&b.qs) {
        *o = d * q as i8 as f32;
    }
}

// K-quants. Value i of a super-block lies in "row" i / 32; the 2-bit fields of rows 4h..4h+3
// share the 32 bytes qs[32h..32h+32] at shifts 0, 2, 4, 6.

#[inline]
fn two_bits(qs: &[u8; 64], i: usize) -> u8 {
    let (h, s, j) = (i / 128, (i / 32) % 4, i % 32);
    (qs[32 * h + j] >> (2 * s)) & 3
}

pub fn q2_k(b: &BlockQ2K, out: &mut [f32; 256]) {
    let s = kquant::q2k(b);
    for (i, o) in out.iter_mut().enumerate() {
        *o = s.dl[i / 16] * two_bits(&b.qs, i) as f32 - s.ml[i / 16];
    }
}

pub fn q3_k(b: &BlockQ3K, out: &mut [f32; 256]) {
    let dl = kquant::q3k(b);
    for (i, o) in out.iter_mut().enumerate() {
        // A clear hmask bit subtracts 4 (ggml's convention: set means no offset).
        let high = (b.hmask[i % 32] >> (i / 32)) & 1;
        let q = two_bits(&b.qs, i) as i32 - if high == 0 { 4 } else { 0 };
        *o = dl[i / 16] * q as f32;
    }
}

/// Rows of 32 values: row 2c takes the low nibbles of qs[32c..32c+32], row 2c + 1 the high.
#[inline]
fn k_nibble(qs: &[u8; 128], i: usize) -> u8 {
    let (row, j) = (i / 32, i % 32);
    (qs[32 * (row / 2) + j] >> (4 * (row % 2))) & 0x0f
}

pub fn q4_k(b: &BlockQ4K, out: &mut [f32; 256]) {
    let s = kquant::q4k(b);
    for (i, o) in out.iter_mut().enumerate() {
        *o = s.dl[i / 32] * k_nibble(&b.qs, i) as f32 - s.ml[i / 32];
    }
}

pub fn q5_k(b: &BlockQ5K, out: &mut [f32; 256]) {
    let s = kquant::q5k(b);
    for (i, o) in out.iter_mut().enumerate() {
        let high = (b.qh[i % 32] >> (i / 32)) & 1;
        let q = k_nibble(&b.qs, i) | (high << 4);
        *o = s.dl[i / 32] * q as f32 - s.ml[i / 32];
    }
}

pub fn q6_k(b: &BlockQ6K, out: &mut [f32; 256]) {
    let dl = kquant::q6k(b);
    for (i, o) in out.iter_mut().enumerate() {
        // Halves of 128 values; in each, value t < 64 is the low nibble of ql[64h + t] and
        // value 64 + t the high nibble; the top two bits follow the Q2_K 2-bit pattern.
        let (h, t) = (i / 128, i % 128);
        let low = (b.ql[64 * h + t % 64] >> (4 * (t / 64))) & 0x0f;
        let high = (b.qh[32 * h + t % 32] >> (2 * (t / 32))) & 3;
        let q = (low | (high << 4)) as i32 - 32;
        *o = dl[i / 16] * q as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn run(ty: GgmlType, src: &[u8]) -> Vec<f32> {
        let n = src.len() / ty.type_size() as usize * ty.block_size() as usize;
        let mut out = vec![f32::NAN; n];
        dequantize(ty, src, &mut out).unwrap();
        out
    }

    #[test]
    fn wide_integers_and_f64_round_to_nearest_even() {
        // 2^24 + 1 and 2^24 + 3 are ties between two f32 neighbours: numpy picks the even one.
        let ints = [16_777_217i32, 16_777_219, -16_777_217];
        let src: Vec<u8> = ints.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            run(GgmlType::I32, &src),
            [16_777_216.0, 16_777_220.0, -16_777_216.0]
        );
        let src: Vec<u8> = [i64::MAX, i64::MIN, 1 << 40]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            run(GgmlType::I64, &src),
            [9.223372e18, -9.223372e18, 2f32.powi(40)]
        );
        let src: Vec<u8> = [1.0f64 + 2f64.powi(-24), 1e300, -0.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let got = run(GgmlType::F64, &src);
        assert_eq!(got[0], 1.0);
        assert_eq!(got[1], f32::INFINITY);
        assert_eq!(got[2].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn q8_1_and_q8_k_scale_signed_bytes_by_their_f32_d() {
        let mut q81 = vec![0u8; 40];
        q81[0..4].copy_from_slice(&0.5f32.to_le_bytes());
        q81[4..8].copy_from_slice(&99.0f32.to_le_bytes()); // `s` must not affect values
        q81[8] = 0x80; // -128
        q81[39] = 7;
        let out = run(GgmlType::Q8_1, &q81);
        assert_eq!((out[0], out[1], out[31]), (-64.0, 0.0, 3.5));

        let mut q8k = vec![0u8; 292];
        q8k[0..4].copy_from_slice(&(-2.0f32).to_le_bytes());
        q8k[4] = 0xff; // -1
        q8k[259] = 127;
        q8k[260..292].fill(0xaa); // bsums must not affect values
        let out = run(GgmlType::Q8_K, &q8k);
        assert_eq!((out[0], out[1], out[255]), (2.0, -0.0, -254.0));
    }

    #[test]
    fn q4_1_is_d_times_q_plus_m() {
        let d = half::f16::from_bits(0x3c01); // 1 + 2^-10
        let m = half::f16::from_f32(-15.0);
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&d.to_le_bytes());
        b[2..4].copy_from_slice(&m.to_le_bytes());
        b[4] = 0x0f; // value 0: q = 15, value 16: q = 0
        let out = run(GgmlType::Q4_1, &b);
        assert_eq!(out[0], 15.0 / 1024.0);
        assert_eq!(out[16], -15.0);
    }
}
