//! simd128 paths for wasm32, compiled in when the build enables `target_feature = "simd128"`
//! (wasm has no run-time feature detection: a module either validates with SIMD or not).
//!
//! Same structure and float operation order as `x86`: scales from the shared scalar code,
//! quants widened to i32 and converted exactly, then one `mul` and at most one `add`/`sub`
//! per value. (WebAssembly leaves NaN payloads of arithmetic results unspecified, so a NaN
//! scale yields some NaN here, as it does in the scalar code on wasm.)

use core::arch::wasm32::*;

use super::blocks::{
    as_blocks, f16_le, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0,
    BlockQ5_1, BlockQ6K, BlockQ8_0,
};
use super::kquant;
use crate::ggml::types::GgmlType;

/// Dequantize whole blocks with simd128 if `ty` has a path; false means the caller must use
/// another path (nothing was written).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> bool {
    match ty {
        GgmlType::F16 => f16(src, dst),
        GgmlType::BF16 => bf16(src, dst),
        GgmlType::Q4_0 => q4_0(src, dst),
        GgmlType::Q4_1 => q4_1(src, dst),
        GgmlType::Q5_0 => q5_0(src, dst),
        GgmlType::Q5_1 => q5_1(src, dst),
        GgmlType::Q8_0 => q8_0(src, dst),
        GgmlType::Q2_K => q2_k(src, dst),
        GgmlType::Q3_K => q3_k(src, dst),
        GgmlType::Q4_K => q4_k(src, dst),
        GgmlType::Q5_K => q5_k(src, dst),
        GgmlType::Q6_K => q6_k(src, dst),
        _ => return false,
    }
    true
}

#[inline]
fn load(p: &[u8]) -> v128 {
    assert!(p.len() >= 16);
    // SAFETY: 16 readable bytes checked above; wasm loads need no alignment.
    unsafe { v128_load(p.as_ptr().cast()) }
}

#[inline]
fn store_f32(out: &mut [f32], v: v128) {
    assert!(out.len() >= 4);
    // SAFETY: room for 4 f32 checked above; wasm stores need no alignment.
    unsafe { v128_store(out.as_mut_ptr().cast(), v) }
}

/// Halves to f32 with integer operations (wasm has no half conversion): `(h & 0x7fff) << 13`
/// read as an f32 is the half's value times 2^-112 for normals and subnormals alike, so one
/// exact multiply by 2^112 finishes it; infinities and NaNs keep their payload bits as in
/// `blocks::f16_to_f32`.
#[inline]
fn f16x4(h32: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h32, u32x4_splat(0x8000)), 16);
    let em = i32x4_shl(v128_and(h32, u32x4_splat(0x7fff)), 13);
    let finite = f32x4_mul(em, f32x4_splat(f32::from_bits(0x7780_0000)));
    let exp = v128_and(h32, u32x4_splat(0x7c00));
    let special = i32x4_eq(exp, u32x4_splat(0x7c00));
    let inf_nan = v128_or(em, u32x4_splat(0x7f80_0000));
    v128_or(sign, v128_bitselect(inf_nan, finite, special))
}

fn f16(src: &[u8], dst: &mut [f32]) {
    let n = dst.len().min(src.len() / 2);
    let (src, dst) = (&src[..2 * n], &mut dst[..n]);
    let mut out = dst.chunks_exact_mut(8);
    for (h, o) in src.chunks_exact(16).zip(&mut out) {
        let v = load(h);
        store_f32(o, f16x4(u32x4_extend_low_u16x8(v)));
        store_f32(&mut o[4..], f16x4(u32x4_extend_high_u16x8(v)));
    }
    let done = n / 8 * 8;
    for (o, h) in dst[done..].iter_mut().zip(src[2 * done..].chunks_exact(2)) {
        *o = super::blocks::f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
    }
}

fn bf16(src: &[u8], dst: &mut [f32]) {
    let n = dst.len().min(src.len() / 2);
    let (src, dst) = (&src[..2 * n], &mut dst[..n]);
    let mut out = dst.chunks_exact_mut(8);
    for (h, o) in src.chunks_exact(16).zip(&mut out) {
        let v = load(h);
        store_f32(o, i32x4_shl(u32x4_extend_low_u16x8(v), 16));
        store_f32(&mut o[4..], i32x4_shl(u32x4_extend_high_u16x8(v), 16));
    }
    let done = n / 8 * 8;
    for (o, h) in dst[done..].iter_mut().zip(src[2 * done..].chunks_exact(2)) {
        *o = f32::from_bits((u16::from_le_bytes([h[0], h[1]]) as u32) << 16);
    }
}

/// 16 signed bytes as four f32x4.
#[inline]
fn i8x16_to_f32(v: v128) -> [v128; 4] {
    let lo = i16x8_extend_low_i8x16(v);
    let hi = i16x8_extend_high_i8x16(v);
    [
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(lo)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(lo)),
        f32x4_convert_i32x4(i32x4_extend_low_i16x8(hi)),
        f32x4_convert_i32x4(i32x4_extend_high_i16x8(hi)),
    ]
}

/// `d * q` (then `+ m` for offset types, `- m` for K-quant minimums) over 16 quants.
#[inline]
fn emit16(q: v128, d: f32, m: Option<(f32, bool)>, out: &mut [f32]) {
    let d = f32x4_splat(d);
    for (k, x) in i8x16_to_f32(q).into_iter().enumerate() {
        let mut v = f32x4_mul(d, x);
        match m {
            Some((m, true)) => {
                // When both are NaN, wasm leaves open whose payload the sum keeps (and the
                // add's operands may be swapped); the reference keeps the product's, as x86
                // does: choose it explicitly.
                let sum = f32x4_add(v, f32x4_splat(m));
                v = v128_bitselect(v, sum, f32x4_ne(v, v));
            }
            Some((m, false)) => v = f32x4_sub(v, f32x4_splat(m)),
            None => {}
        }
        store_f32(&mut out[4 * k..], v);
    }
}

#[inline]
fn nibbles(qs: &[u8; 16]) -> (v128, v128) {
    let v = load(qs);
    let low4 = u8x16_splat(0x0f);
    (v128_and(v, low4), v128_and(u8x16_shr(v, 4), low4))
}

/// 0x10 in byte j where bit j of `qh` is set (values 0..16, then 16..32).
#[inline]
fn fifth_bits(qh: [u8; 4]) -> (v128, v128) {
    let v = u32x4(u32::from_le_bytes(qh), 0, 0, 0);
    let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let spread = |sel: v128| {
        let bytes = i8x16_swizzle(v, sel);
        v128_and(i8x16_eq(v128_and(bytes, bit), bit), u8x16_splat(0x10))
    };
    (
        spread(u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)),
        spread(u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)),
    )
}

fn q4_0(src: &[u8], dst: &mut [f32]) {
    let eight = u8x16_splat(8);
    for (b, out) in as_blocks::<BlockQ4_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = f16_le(b.d);
        let (lo, hi) = nibbles(&b.qs);
        emit16(i8x16_sub(lo, eight), d, None, out);
        emit16(i8x16_sub(hi, eight), d, None, &mut out[16..]);
    }
}

fn q4_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in as_blocks::<BlockQ4_1>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (d, m) = (f16_le(b.d), Some((f16_le(b.m), true)));
        let (lo, hi) = nibbles(&b.qs);
        emit16(lo, d, m, out);
        emit16(hi, d, m, &mut out[16..]);
    }
}

fn q5_0(src: &[u8], dst: &mut [f32]) {
    let sixteen = u8x16_splat(16);
    for (b, out) in as_blocks::<BlockQ5_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = f16_le(b.d);
        let (lo, hi) = nibbles(&b.qs);
        let (h_lo, h_hi) = fifth_bits(b.qh);
        emit16(i8x16_sub(v128_or(lo, h_lo), sixteen), d, None, out);
        emit16(
            i8x16_sub(v128_or(hi, h_hi), sixteen),
            d,
            None,
            &mut out[16..],
        );
    }
}

fn q5_1(src: &[u8], dst: &mut [f32]) {
    for (b, out) in as_blocks::<BlockQ5_1>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (d, m) = (f16_le(b.d), Some((f16_le(b.m), true)));
        let (lo, hi) = nibbles(&b.qs);
        let (h_lo, h_hi) = fifth_bits(b.qh);
        emit16(v128_or(lo, h_lo), d, m, out);
        emit16(v128_or(hi, h_hi), d, m, &mut out[16..]);
    }
}

fn q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in as_blocks::<BlockQ8_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = f16_le(b.d);
        emit16(load(&b.qs), d, None, out);
        emit16(load(&b.qs[16..]), d, None, &mut out[16..]);
    }
}

// ---- K-quants: 256 quants as 16 vectors of 16, vector i holding values 16i..16i+16 ----

/// `dl[g] * q - ml[g]` (or `dl[g] * q`) with `group` values (16 or 32) per scale.
#[inline]
fn emit_k(q: &[v128; 16], group: usize, dl: &[f32], ml: Option<&[f32]>, out: &mut [f32]) {
    for (i, (&v, o)) in q.iter().zip(out.chunks_exact_mut(16)).enumerate() {
        let g = i * 16 / group;
        emit16(v, dl[g], ml.map(|m| (m[g], false)), o);
    }
}

/// Bits `2s..2s+2` of each byte.
#[inline]
fn crumb(v: v128, s: u32) -> v128 {
    v128_and(u8x16_shr(v, 2 * s), u8x16_splat(3))
}

/// All-ones bytes where bit `b` of the byte is set.
#[inline]
fn bit_set(v: v128, b: u32) -> v128 {
    let bit = u8x16_splat(1 << b);
    i8x16_eq(v128_and(v, bit), bit)
}

fn q2_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [u8x16_splat(0); 16];
    for (b, out) in as_blocks::<BlockQ2K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for h in 0..2 {
            for half in 0..2 {
                let v = load(&b.qs[32 * h + 16 * half..]);
                for s in 0..4 {
                    q[8 * h + 2 * s + half] = crumb(v, s as u32);
                }
            }
        }
        let sc = kquant::q2k(b);
        emit_k(&q, 16, &sc.dl, Some(&sc.ml), out);
    }
}

fn q3_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [u8x16_splat(0); 16];
    let four = u8x16_splat(4);
    for (b, out) in as_blocks::<BlockQ3K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for half in 0..2 {
            let hm = load(&b.hmask[16 * half..]);
            for h in 0..2 {
                let v = load(&b.qs[32 * h + 16 * half..]);
                for s in 0..4 {
                    let row = 4 * h + s;
                    let minus4 = v128_andnot(four, bit_set(hm, row as u32));
                    q[2 * row + half] = i8x16_sub(crumb(v, s as u32), minus4);
                }
            }
        }
        let dl = kquant::q3k(b);
        emit_k(&q, 16, &dl, None, out);
    }
}

fn q4_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [u8x16_splat(0); 16];
    let low4 = u8x16_splat(0x0f);
    for (b, out) in as_blocks::<BlockQ4K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for c in 0..4 {
            for half in 0..2 {
                let v = load(&b.qs[32 * c + 16 * half..]);
                q[4 * c + half] = v128_and(v, low4);
                q[4 * c + 2 + half] = u8x16_shr(v, 4);
            }
        }
        let sc = kquant::q4k(b);
        emit_k(&q, 32, &sc.dl, Some(&sc.ml), out);
    }
}

fn q5_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [u8x16_splat(0); 16];
    let (low4, sixteen) = (u8x16_splat(0x0f), u8x16_splat(16));
    for (b, out) in as_blocks::<BlockQ5K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for half in 0..2 {
            let qh = load(&b.qh[16 * half..]);
            for c in 0..4 {
                let v = load(&b.qs[32 * c + 16 * half..]);
                for (k, nib) in [v128_and(v, low4), u8x16_shr(v, 4)].into_iter().enumerate() {
                    let row = 2 * c + k;
                    let fifth = v128_and(bit_set(qh, row as u32), sixteen);
                    q[2 * row + half] = v128_or(nib, fifth);
                }
            }
        }
        let sc = kquant::q5k(b);
        emit_k(&q, 32, &sc.dl, Some(&sc.ml), out);
    }
}

fn q6_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [u8x16_splat(0); 16];
    let (low4, thirty_two) = (u8x16_splat(0x0f), u8x16_splat(32));
    for (b, out) in as_blocks::<BlockQ6K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for h in 0..2 {
            for half in 0..2 {
                let l0 = load(&b.ql[64 * h + 16 * half..]);
                let l1 = load(&b.ql[64 * h + 32 + 16 * half..]);
                let qh = load(&b.qh[32 * h + 16 * half..]);
                let lows = [
                    v128_and(l0, low4),
                    v128_and(l1, low4),
                    u8x16_shr(l0, 4),
                    u8x16_shr(l1, 4),
                ];
                for (s, low) in lows.into_iter().enumerate() {
                    let high = i8x16_shl(crumb(qh, s as u32), 4);
                    q[8 * h + 2 * s + half] = i8x16_sub(v128_or(low, high), thirty_two);
                }
            }
        }
        let dl = kquant::q6k(b);
        emit_k(&q, 16, &dl, None, out);
    }
}
