//! wasm32 simd128 kernels for IQ4_NL, IQ4_XS and MXFP4 (compiled in when the target has
//! simd128). Each output is `scale * f32(lut[nibble])` with the scalar reference's scale.

use std::arch::wasm32::*;

use super::fp4::e8m0_half;
use super::layout::{f16_to_f32, view, BlockIq4Nl, BlockIq4Xs, BlockMxfp4};
use super::nonlinear::iq4_xs_scale;
use super::tables::{KVALUES_FP4, KVALUES_IQ4NL};

fn lut(values: &[i8; 16]) -> v128 {
    let b = values.map(|v| v as u8);
    u8x16(
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    )
}

#[inline]
fn store4(out: &mut [f32], v: v128) {
    let out: &mut [f32; 4] = (&mut out[..4]).try_into().expect("4 lanes");
    // SAFETY: `out` is 16 writable bytes; v128_store has no alignment requirement.
    unsafe { v128_store(out.as_mut_ptr().cast(), v) }
}

/// 16 packed bytes to 32 values (low nibbles, then high nibbles), each `d * lut[nibble]`.
#[inline]
fn nibbles32(out: &mut [f32], d: f32, qs: &[u8; 16], lut: v128) {
    // SAFETY: reads exactly the 16 bytes of `qs`; no alignment requirement.
    let q = unsafe { v128_load(qs.as_ptr().cast()) };
    let mask = u8x16_splat(0x0f);
    let lo = i8x16_swizzle(lut, v128_and(q, mask));
    let hi = i8x16_swizzle(lut, u8x16_shr(q, 4));
    let dv = f32x4_splat(d);
    for (half, v) in [lo, hi].into_iter().enumerate() {
        let w = [i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v)];
        for (k, w) in w.into_iter().enumerate() {
            let base = 16 * half + 8 * k;
            let a = f32x4_convert_i32x4(i32x4_extend_low_i16x8(w));
            let b = f32x4_convert_i32x4(i32x4_extend_high_i16x8(w));
            store4(&mut out[base..], f32x4_mul(dv, a));
            store4(&mut out[base + 4..], f32x4_mul(dv, b));
        }
    }
}

pub(crate) fn iq4_nl(src: &[u8], dst: &mut [f32]) {
    let lut = lut(&KVALUES_IQ4NL);
    for (b, out) in view::<BlockIq4Nl>(src).iter().zip(dst.chunks_exact_mut(32)) {
        nibbles32(out, f16_to_f32(b.d), &b.qs, lut);
    }
}

pub(crate) fn iq4_xs(src: &[u8], dst: &mut [f32]) {
    let lut = lut(&KVALUES_IQ4NL);
    for (b, out) in view::<BlockIq4Xs>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        for (ib, (out, qs)) in out
            .chunks_exact_mut(32)
            .zip(b.qs.chunks_exact(16))
            .enumerate()
        {
            let dl = d * iq4_xs_scale(b, ib) as f32;
            nibbles32(out, dl, qs.try_into().expect("16 bytes"), lut);
        }
    }
}

pub(crate) fn mxfp4(src: &[u8], dst: &mut [f32]) {
    let lut = lut(&KVALUES_FP4);
    for (b, out) in view::<BlockMxfp4>(src).iter().zip(dst.chunks_exact_mut(32)) {
        nibbles32(out, e8m0_half(b.e[0]), &b.qs, lut);
    }
}
