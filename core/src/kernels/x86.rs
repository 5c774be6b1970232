//! AVX2 paths for x86_64, chosen at run time; without AVX2 the caller falls back to the
//! scalar reference (which the compiler vectorizes with the SSE2 baseline where it can).
//!
//! Bit-exactness with `scalar`: the scales come from the same scalar code (`kquant`,
//! `blocks::f16_le`), the quants become i32 then f32 exactly, and each value is one `mul`
//! followed by one `add`/`sub` in the reference's order (no FMA), so every lane rounds as the
//! scalar expression does.
//!
//! K-quants are decoded in two stages per super-block: unpack all 256 quants to signed bytes
//! with 32-byte integer operations, then turn groups of 8 bytes into f32 with the group's scale.

use std::arch::x86_64::*;

use super::blocks::{
    as_blocks, f16_le, f16_to_f32, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K,
    BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8_0,
};
use super::kquant;
use crate::ggml::types::GgmlType;

/// Dequantize whole blocks with AVX2 if this CPU has it and `ty` has a path; false means the
/// caller must use another path (nothing was written).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> bool {
    if !is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY (all calls below): AVX2 is present, checked above; F16C checked for F16.
    unsafe {
        match ty {
            GgmlType::F16 if is_x86_feature_detected!("f16c") => f16::<false>(src, dst),
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
    }
    true
}

/// Whole-output paths that write straight to memory with streaming stores, for outputs far
/// larger than the caches (the caller decides; see `stream`). The plain-copy types gain from
/// skipping `stream::streamed`'s staging buffer: their decode is so cheap that the extra pass
/// through L1 costs more than it hides. False means the caller must use another path.
pub fn dequantize_streaming(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> bool {
    let half = ty == GgmlType::F16 && is_x86_feature_detected!("f16c");
    if !is_x86_feature_detected!("avx2") || !(half || ty == GgmlType::BF16) {
        return false;
    }
    // SAFETY (all calls below): AVX2 is present, checked above; F16C checked for F16. Each
    // streamed body starts at a 32-byte-aligned value and holds whole runs of 16.
    unsafe {
        let (head, body, _) = aligned_runs(dst);
        let (src_head, rest) = src.split_at(2 * head);
        let (src_body, src_tail) = rest.split_at(2 * body);
        let (dst_head, rest) = dst.split_at_mut(head);
        let (dst_body, dst_tail) = rest.split_at_mut(body);
        if half {
            f16::<false>(src_head, dst_head);
            f16::<true>(src_body, dst_body);
            f16::<false>(src_tail, dst_tail);
        } else {
            bf16(src_head, dst_head);
            bf16_streaming(src_body, dst_body);
            bf16(src_tail, dst_tail);
        }
        // The fence orders the streaming stores before any later store, so the values are
        // visible to whoever reads `dst` next, on any thread.
        _mm_sfence();
    }
    true
}

/// Values before the first 32-byte boundary of `dst`, whole runs of 16 after it, and the
/// rest.
fn aligned_runs(dst: &[f32]) -> (usize, usize, usize) {
    let head = dst.as_ptr().align_offset(32).min(dst.len());
    let body = (dst.len() - head) / 16 * 16;
    (head, body, dst.len() - head - body)
}

/// Store 8 values at `out`: a streaming store (which needs `out` 32-byte aligned) or an
/// ordinary one.
#[inline(always)]
unsafe fn store8<const STREAM: bool>(out: *mut f32, v: __m256) {
    if STREAM {
        _mm256_stream_ps(out, v)
    } else {
        _mm256_storeu_ps(out, v)
    }
}

/// F16C converts every finite half and infinity exactly but sets the quiet bit of signalling
/// NaNs, which numpy (and so the reference) keeps: runs of 16 that hold any NaN or infinity
/// go through the scalar conversion, out of line so that the hot loop keeps its few
/// counters in registers (inlined, it spilled them and ran at half speed). With `STREAM`,
/// `dst` must start 32-byte aligned.
#[target_feature(enable = "avx2,f16c")]
unsafe fn f16<const STREAM: bool>(src: &[u8], dst: &mut [f32]) {
    let n = dst.len().min(src.len() / 2);
    // Checked once per call: a misaligned streaming store would fault.
    assert!(!STREAM || (dst.as_ptr() as usize).is_multiple_of(32));
    let exp_mask = _mm256_set1_epi16(0x7c00);
    let (input, output) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        let h = _mm256_loadu_si256(input.add(2 * i).cast());
        let special = _mm256_cmpeq_epi16(_mm256_and_si256(h, exp_mask), exp_mask);
        let out = output.add(i);
        if _mm256_testz_si256(special, special) != 0 {
            store8::<STREAM>(out, _mm256_cvtph_ps(_mm256_castsi256_si128(h)));
            store8::<STREAM>(
                out.add(8),
                _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(h)),
            );
        } else if STREAM {
            let mut run = [0f32; 16];
            f16_scalar(&src[2 * i..2 * (i + 16)], &mut run);
            store8::<STREAM>(out, _mm256_loadu_ps(run.as_ptr()));
            store8::<STREAM>(out.add(8), _mm256_loadu_ps(run.as_ptr().add(8)));
        } else {
            f16_scalar(&src[2 * i..2 * (i + 16)], &mut dst[i..i + 16]);
        }
        i += 16;
    }
    f16_scalar(&src[2 * i..2 * n], &mut dst[i..n]);
}

#[cold]
#[inline(never)]
fn f16_scalar(src: &[u8], dst: &mut [f32]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *o = f16_to_f32(u16::from_le_bytes([h[0], h[1]]));
    }
}

/// A plain shift loop: compiled with AVX2, LLVM turns it into unpacks that ran faster than
/// hand-written widening (8.9 vs 7.8 G values/s into L2 here).
#[target_feature(enable = "avx2")]
unsafe fn bf16(src: &[u8], dst: &mut [f32]) {
    for (o, h) in dst.iter_mut().zip(src.chunks_exact(2)) {
        *o = f32::from_bits((u16::from_le_bytes([h[0], h[1]]) as u32) << 16);
    }
}

/// `bf16` with streaming stores: `dst` starts 32-byte aligned and holds whole runs of 16.
#[target_feature(enable = "avx2")]
unsafe fn bf16_streaming(src: &[u8], dst: &mut [f32]) {
    // Checked once per call: a misaligned streaming store would fault.
    assert!((dst.as_ptr() as usize).is_multiple_of(32) && dst.len().is_multiple_of(16));
    assert!(src.len() >= 2 * dst.len());
    let (input, output) = (src.as_ptr(), dst.as_mut_ptr());
    for i in (0..dst.len()).step_by(16) {
        let h = _mm256_loadu_si256(input.add(2 * i).cast());
        let lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(h));
        let hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256::<1>(h));
        store8::<true>(
            output.add(i),
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(lo)),
        );
        store8::<true>(
            output.add(i + 8),
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(hi)),
        );
    }
}

/// 8 signed bytes at `q` as f32.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn i8x8_to_f32(q: *const i8) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(q.cast())))
}

/// `d * q` for the 32 signed quants of a legacy block (stored as 32 bytes at `q`).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn scale32(q: *const i8, d: f32, out: *mut f32) {
    let d = _mm256_set1_ps(d);
    for k in 0..4 {
        _mm256_storeu_ps(out.add(8 * k), _mm256_mul_ps(d, i8x8_to_f32(q.add(8 * k))));
    }
}

/// `d * q + m` for 32 quants at `q`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn scale32_offset(q: *const i8, d: f32, m: f32, out: *mut f32) {
    let (d, m) = (_mm256_set1_ps(d), _mm256_set1_ps(m));
    for k in 0..4 {
        let v = _mm256_mul_ps(d, i8x8_to_f32(q.add(8 * k)));
        _mm256_storeu_ps(out.add(8 * k), _mm256_add_ps(v, m));
    }
}

/// The 32 nibbles of a legacy block in value order: low nibbles, then high nibbles.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn nibbles(qs: &[u8; 16]) -> (__m128i, __m128i) {
    let v = _mm_loadu_si128(qs.as_ptr().cast());
    let low4 = _mm_set1_epi8(0x0f);
    (
        _mm_and_si128(v, low4),
        _mm_and_si128(_mm_srli_epi16::<4>(v), low4),
    )
}

/// 0x10 in byte j where bit j of `qh` is set (values 0..16 in the first vector, 16..32 in
/// the second).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn fifth_bits(qh: [u8; 4]) -> (__m128i, __m128i) {
    let v = _mm_cvtsi32_si128(i32::from_le_bytes(qh));
    let bit = _mm_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let spread = |sel: __m128i| {
        let bytes = _mm_shuffle_epi8(v, sel);
        let set = _mm_cmpeq_epi8(_mm_and_si128(bytes, bit), bit);
        _mm_and_si128(set, _mm_set1_epi8(0x10))
    };
    (
        spread(_mm_set_epi64x(0x0101_0101_0101_0101, 0)),
        spread(_mm_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202)),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store_pair(buf: &mut [i8; 32], lo: __m128i, hi: __m128i) {
    _mm_storeu_si128(buf.as_mut_ptr().cast(), lo);
    _mm_storeu_si128(buf.as_mut_ptr().add(16).cast(), hi);
}

#[target_feature(enable = "avx2")]
unsafe fn q4_0(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 32];
    let eight = _mm_set1_epi8(8);
    for (b, out) in as_blocks::<BlockQ4_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (lo, hi) = nibbles(&b.qs);
        store_pair(&mut q, _mm_sub_epi8(lo, eight), _mm_sub_epi8(hi, eight));
        scale32(q.as_ptr(), f16_le(b.d), out.as_mut_ptr());
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q4_1(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 32];
    for (b, out) in as_blocks::<BlockQ4_1>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (lo, hi) = nibbles(&b.qs);
        store_pair(&mut q, lo, hi);
        scale32_offset(q.as_ptr(), f16_le(b.d), f16_le(b.m), out.as_mut_ptr());
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_0(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 32];
    let sixteen = _mm_set1_epi8(16);
    for (b, out) in as_blocks::<BlockQ5_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (lo, hi) = nibbles(&b.qs);
        let (h_lo, h_hi) = fifth_bits(b.qh);
        store_pair(
            &mut q,
            _mm_sub_epi8(_mm_or_si128(lo, h_lo), sixteen),
            _mm_sub_epi8(_mm_or_si128(hi, h_hi), sixteen),
        );
        scale32(q.as_ptr(), f16_le(b.d), out.as_mut_ptr());
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_1(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 32];
    for (b, out) in as_blocks::<BlockQ5_1>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let (lo, hi) = nibbles(&b.qs);
        let (h_lo, h_hi) = fifth_bits(b.qh);
        store_pair(&mut q, _mm_or_si128(lo, h_lo), _mm_or_si128(hi, h_hi));
        scale32_offset(q.as_ptr(), f16_le(b.d), f16_le(b.m), out.as_mut_ptr());
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q8_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in as_blocks::<BlockQ8_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        scale32(b.qs.as_ptr().cast(), f16_le(b.d), out.as_mut_ptr());
    }
}

// ---- K-quants ----

/// `dl[g] * q - ml[g]` (or `dl[g] * q` without minimums) over 256 unpacked quants, with
/// groups of `GROUP` values sharing a scale.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn emit<const GROUP: usize, const MIN: bool>(
    q: &[i8; 256],
    dl: &[f32],
    ml: &[f32],
    out: &mut [f32],
) {
    debug_assert!(out.len() == 256 && dl.len() * GROUP == 256);
    let (q, out) = (q.as_ptr(), out.as_mut_ptr());
    for g in 0..256 / GROUP {
        let a = _mm256_set1_ps(dl[g]);
        let m = _mm256_set1_ps(if MIN { ml[g] } else { 0.0 });
        for k in (g * GROUP..(g + 1) * GROUP).step_by(8) {
            let mut v = _mm256_mul_ps(a, i8x8_to_f32(q.add(k)));
            if MIN {
                v = _mm256_sub_ps(v, m);
            }
            _mm256_storeu_ps(out.add(k), v);
        }
    }
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load32(p: &[u8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    _mm256_loadu_si256(p.as_ptr().cast())
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn store32(q: &mut [i8; 256], at: usize, v: __m256i) {
    debug_assert!(at + 32 <= 256);
    _mm256_storeu_si256(q.as_mut_ptr().add(at).cast(), v);
}

/// Bits `2s..2s+2` of each byte.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn crumb(v: __m256i, s: usize) -> __m256i {
    let shifted = _mm256_srl_epi16(v, _mm_cvtsi32_si128(2 * s as i32));
    _mm256_and_si256(shifted, _mm256_set1_epi8(3))
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn low_nibbles(v: __m256i) -> __m256i {
    _mm256_and_si256(v, _mm256_set1_epi8(0x0f))
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn high_nibbles(v: __m256i) -> __m256i {
    _mm256_and_si256(_mm256_srli_epi16::<4>(v), _mm256_set1_epi8(0x0f))
}

/// All-ones bytes where bit `b` of the byte is set.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn bit_set(v: __m256i, b: usize) -> __m256i {
    let bit = _mm256_set1_epi8((1u8 << b) as i8);
    _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit)
}

#[target_feature(enable = "avx2")]
unsafe fn q2_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 256];
    for (b, out) in as_blocks::<BlockQ2K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for h in 0..2 {
            let v = load32(&b.qs[32 * h..]);
            for s in 0..4 {
                store32(&mut q, 128 * h + 32 * s, crumb(v, s));
            }
        }
        let sc = kquant::q2k(b);
        emit::<16, true>(&q, &sc.dl, &sc.ml, out);
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q3_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 256];
    let four = _mm256_set1_epi8(4);
    for (b, out) in as_blocks::<BlockQ3K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let hm = load32(&b.hmask);
        for h in 0..2 {
            let v = load32(&b.qs[32 * h..]);
            for s in 0..4 {
                let row = 4 * h + s;
                let minus4 = _mm256_andnot_si256(bit_set(hm, row), four);
                store32(&mut q, 32 * row, _mm256_sub_epi8(crumb(v, s), minus4));
            }
        }
        let dl = kquant::q3k(b);
        emit::<16, false>(&q, &dl, &[], out);
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q4_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 256];
    for (b, out) in as_blocks::<BlockQ4K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for c in 0..4 {
            let v = load32(&b.qs[32 * c..]);
            store32(&mut q, 64 * c, low_nibbles(v));
            store32(&mut q, 64 * c + 32, high_nibbles(v));
        }
        let sc = kquant::q4k(b);
        emit::<32, true>(&q, &sc.dl, &sc.ml, out);
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 256];
    let sixteen = _mm256_set1_epi8(16);
    for (b, out) in as_blocks::<BlockQ5K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let qh = load32(&b.qh);
        for c in 0..4 {
            let v = load32(&b.qs[32 * c..]);
            for (k, nib) in [low_nibbles(v), high_nibbles(v)].into_iter().enumerate() {
                let row = 2 * c + k;
                let fifth = _mm256_and_si256(bit_set(qh, row), sixteen);
                store32(&mut q, 32 * row, _mm256_or_si256(nib, fifth));
            }
        }
        let sc = kquant::q5k(b);
        emit::<32, true>(&q, &sc.dl, &sc.ml, out);
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q6_k(src: &[u8], dst: &mut [f32]) {
    let mut q = [0i8; 256];
    let thirty_two = _mm256_set1_epi8(32);
    for (b, out) in as_blocks::<BlockQ6K>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        for h in 0..2 {
            let l0 = load32(&b.ql[64 * h..]);
            let l1 = load32(&b.ql[64 * h + 32..]);
            let qh = load32(&b.qh[32 * h..]);
            let lows = [
                low_nibbles(l0),
                low_nibbles(l1),
                high_nibbles(l0),
                high_nibbles(l1),
            ];
            for (s, low) in lows.into_iter().enumerate() {
                let high = _mm256_slli_epi16::<4>(crumb(qh, s));
                let v = _mm256_sub_epi8(_mm256_or_si256(low, high), thirty_two);
                store32(&mut q, 128 * h + 32 * s, v);
            }
        }
        let dl = kquant::q6k(b);
        emit::<16, false>(&q, &dl, &[], out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::scalar;
    use super::*;
    use crate::testutil::assert_bits_eq;
    use proptest::prelude::*;

    /// Half-precision bit patterns that stress the conversion: NaNs (quiet and signalling,
    /// both signs), infinities, zeros, subnormals, and ordinary values.
    fn f16_bits() -> impl Strategy<Value = u16> {
        prop_oneof![
            3 => any::<u16>(),
            1 => (0u16..0x400).prop_map(|m| m | 0x7c00),
            1 => (0u16..0x400).prop_map(|m| m | 0xfc00),
            1 => 0u16..0x400,
            1 => (0u16..0x400).prop_map(|m| m | 0x8000),
            1 => Just(0u16),
            1 => Just(0x8000u16),
        ]
    }

    /// Random blocks of `ty` whose f16 fields (at `f16_at` offsets of each block) are drawn
    /// from `f16_bits`.
    fn blocks_of(ty: GgmlType, f16_at: &'static [usize]) -> impl Strategy<Value = Vec<u8>> {
        let ts = ty.type_size() as usize;
        (1usize..6).prop_flat_map(move |n| {
            (
                proptest::collection::vec(any::<u8>(), n * ts),
                proptest::collection::vec(f16_bits(), n * f16_at.len()),
            )
                .prop_map(move |(mut bytes, halves)| {
                    for (k, h) in halves.into_iter().enumerate() {
                        let at = (k / f16_at.len()) * ts + f16_at[k % f16_at.len()];
                        bytes[at..at + 2].copy_from_slice(&h.to_le_bytes());
                    }
                    bytes
                })
        })
    }

    fn same_as_scalar(ty: GgmlType, src: &[u8]) {
        let n = src.len() / ty.type_size() as usize * ty.block_size() as usize;
        let mut want = vec![0f32; n];
        scalar::dequantize(ty, src, &mut want).unwrap();
        let mut got = vec![0f32; n];
        assert!(dequantize(ty, src, &mut got), "{ty} has an AVX2 path");
        assert_bits_eq(ty.name(), &got, &want);
    }

    fn avx2() -> bool {
        let ok = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c");
        if !ok {
            eprintln!("SKIPPED: this CPU lacks AVX2/F16C");
        }
        ok
    }

    /// Every half bit pattern in a row from each lane of a 16-value run, so that every run
    /// mixes its own set of NaNs and infinities into the fast path's neighbours.
    #[test]
    fn f16_and_bf16_every_bit_pattern_matches_scalar() {
        if !avx2() {
            return;
        }
        let all: Vec<u8> = (0..=u16::MAX).flat_map(|h| h.to_le_bytes()).collect();
        for shift in 0..16 {
            same_as_scalar(GgmlType::F16, &all[2 * shift..]);
            same_as_scalar(GgmlType::BF16, &all[2 * shift..]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn f16_and_bf16_match_scalar(halves in proptest::collection::vec(f16_bits(), 0..80)) {
            if avx2() {
                let bytes: Vec<u8> = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
                same_as_scalar(GgmlType::F16, &bytes);
                same_as_scalar(GgmlType::BF16, &bytes);
            }
        }

        #[test]
        fn q4_0_matches_scalar(src in blocks_of(GgmlType::Q4_0, &[0])) {
            if avx2() { same_as_scalar(GgmlType::Q4_0, &src) }
        }

        #[test]
        fn q4_1_matches_scalar(src in blocks_of(GgmlType::Q4_1, &[0, 2])) {
            if avx2() { same_as_scalar(GgmlType::Q4_1, &src) }
        }

        #[test]
        fn q5_0_matches_scalar(src in blocks_of(GgmlType::Q5_0, &[0])) {
            if avx2() { same_as_scalar(GgmlType::Q5_0, &src) }
        }

        #[test]
        fn q5_1_matches_scalar(src in blocks_of(GgmlType::Q5_1, &[0, 2])) {
            if avx2() { same_as_scalar(GgmlType::Q5_1, &src) }
        }

        #[test]
        fn q8_0_matches_scalar(src in blocks_of(GgmlType::Q8_0, &[0])) {
            if avx2() { same_as_scalar(GgmlType::Q8_0, &src) }
        }

        #[test]
        fn q2_k_matches_scalar(src in blocks_of(GgmlType::Q2_K, &[80, 82])) {
            if avx2() { same_as_scalar(GgmlType::Q2_K, &src) }
        }

        #[test]
        fn q3_k_matches_scalar(src in blocks_of(GgmlType::Q3_K, &[108])) {
            if avx2() { same_as_scalar(GgmlType::Q3_K, &src) }
        }

        #[test]
        fn q4_k_matches_scalar(src in blocks_of(GgmlType::Q4_K, &[0, 2])) {
            if avx2() { same_as_scalar(GgmlType::Q4_K, &src) }
        }

        #[test]
        fn q5_k_matches_scalar(src in blocks_of(GgmlType::Q5_K, &[0, 2])) {
            if avx2() { same_as_scalar(GgmlType::Q5_K, &src) }
        }

        #[test]
        fn q6_k_matches_scalar(src in blocks_of(GgmlType::Q6_K, &[208])) {
            if avx2() { same_as_scalar(GgmlType::Q6_K, &src) }
        }
    }

    #[test]
    fn f16_signalling_nan_keeps_its_quiet_bit_clear() {
        if !avx2() {
            return;
        }
        let mut bytes = vec![0u8; 64];
        bytes[6..8].copy_from_slice(&0x7c01u16.to_le_bytes());
        let mut out = vec![0f32; 32];
        assert!(dequantize(GgmlType::F16, &bytes, &mut out));
        assert_eq!(out[3].to_bits(), 0x7f80_2000);
    }
}
