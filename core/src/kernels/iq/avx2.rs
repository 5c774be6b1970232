//! x86_64 AVX2 (+F16C) kernels for IQ4_NL, IQ4_XS and MXFP4. Each output is
//! `scale * f32(lut[nibble])` with the same scale the scalar reference computes, so the two
//! agree bit for bit (one IEEE multiplication of the same operands).

use std::arch::x86_64::*;

use super::fp4::e8m0_half;
use super::layout::{view, BlockIq4Nl, BlockIq4Xs, BlockMxfp4};
use super::nonlinear::iq4_xs_scale;
use super::tables::{KVALUES_FP4, KVALUES_IQ4NL};

/// Whether this CPU can run the kernels below.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16_to_f32(b: [u8; 2]) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(
        _mm_cvtsi32_si128(u16::from_le_bytes(b) as i32),
    ))
}

/// 16 packed bytes to 32 values (low nibbles, then high nibbles), each `d * lut[nibble]`.
#[inline]
#[target_feature(enable = "avx2")]
fn nibbles32(out: &mut [f32; 32], d: f32, qs: &[u8; 16], lut: __m128i) {
    // SAFETY (loads and stores below): `qs` is 16 readable bytes and `out` 32 writable f32;
    // the unaligned forms have no alignment requirement.
    let q = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    let mask = _mm_set1_epi8(0x0f);
    let lo = _mm_shuffle_epi8(lut, _mm_and_si128(q, mask));
    let hi = _mm_shuffle_epi8(lut, _mm_and_si128(_mm_srli_epi16(q, 4), mask));
    let dv = _mm256_set1_ps(d);
    let scaled = |v: __m128i| _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)));
    let out = out.as_mut_ptr();
    unsafe {
        _mm256_storeu_ps(out, scaled(lo));
        _mm256_storeu_ps(out.add(8), scaled(_mm_unpackhi_epi64(lo, lo)));
        _mm256_storeu_ps(out.add(16), scaled(hi));
        _mm256_storeu_ps(out.add(24), scaled(_mm_unpackhi_epi64(hi, hi)));
    }
}

#[inline]
fn block32(out: &mut [f32]) -> &mut [f32; 32] {
    out.try_into().expect("32 values")
}

#[inline]
#[target_feature(enable = "avx2")]
fn lut(values: &[i8; 16]) -> __m128i {
    // SAFETY: reads exactly 16 bytes from a 16-byte array.
    unsafe { _mm_loadu_si128(values.as_ptr().cast()) }
}

/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn iq4_nl(src: &[u8], dst: &mut [f32]) {
    let lut = lut(&KVALUES_IQ4NL);
    for (b, out) in view::<BlockIq4Nl>(src).iter().zip(dst.chunks_exact_mut(32)) {
        nibbles32(block32(out), f16_to_f32(b.d), &b.qs, lut);
    }
}

/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn iq4_xs(src: &[u8], dst: &mut [f32]) {
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
            let qs: &[u8; 16] = qs.try_into().expect("16 bytes");
            nibbles32(block32(out), dl, qs, lut);
        }
    }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn mxfp4(src: &[u8], dst: &mut [f32]) {
    let lut = lut(&KVALUES_FP4);
    for (b, out) in view::<BlockMxfp4>(src).iter().zip(dst.chunks_exact_mut(32)) {
        nibbles32(block32(out), e8m0_half(b.e[0]), &b.qs, lut);
    }
}
