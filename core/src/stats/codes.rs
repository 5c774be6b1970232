//! Statistics of Q4_K values straight from their codes, without decoding every value.
//!
//! A Q4_K super-block holds 8 sub-blocks of 32 values; value `i` of sub-block `s` is
//! `dl[s] * q - ml[s]` with a 4-bit code `q` (`dl = d * sc`, `ml = dmin * m`, rounded in f32
//! as the decoder does). With only 16 possible values per sub-block, everything the scan
//! needs follows from integer statistics of the codes:
//!
//! - **histogram**: the bin of each of the 16 values is a 16-byte table, looked up for all
//!   32 codes at once (`pshufb` / `i8x16.swizzle`): the bin `bin_of` gives the decoded
//!   value, exactly. The bins then go through the same pair tables as decoded values
//!   (`PairCounts`, by the caller). (Counting each sub-block's bins by comparison against
//!   the 6 or 7 octaves its table spans was tried: slower than the pair scatter.)
//! - **min, max**: the values are monotone in `q`, so the sub-block's extremes are the
//!   values of its smallest and largest code, evaluated with the decoder's expression:
//!   exact.
//! - **zeros**: the values with bin 0. In an exact block (below) a value is a multiple of
//!   2^-24 (f16 scales times small integers), so bin 0 (|x| < 2^-40) holds exactly the
//!   zeros.
//! - **sums**: with `S1 = sum q` and `S2 = sum q^2` (integers),
//!   `sum (x - c) = dl*S1 - 32*(ml + c)` and
//!   `sum (x - c)^2 = dl^2 * (32*S2 - S1^2) / 32 + (sum (x - c))^2 / 32`, in f64 with no
//!   cancellation. This treats `dl*q - ml` as exact, which it is when the block passes
//!   `exact_block` (every `dl*q - ml` fits in f32's 24 bits at the scales' granularity), so
//!   the sums are those of the decoded values up to f64 rounding: *more* accurate than the
//!   decode path, whose f32 lanes round at every step. The two paths therefore agree in
//!   mean and m2 up to the decode path's rounding (the tests hold them to 1e-6 relative),
//!   and exactly in every count, min, max and histogram bin.
//!
//! A block whose `d` or `dmin` is NaN or Inf (its values may be NaN, Inf, or finite), or
//! that fails `exact_block`, is decoded by the ordinary kernel and folded value by value,
//! so non-finite counts stay right.
//!
//! The per-block integer work has a scalar reference (`block_scalar`), AVX-512 VBMI and AVX2
//! paths (run-time check) and a simd128 path (compile time), tested bit for bit against it;
//! the f64 fold of their results is done lane by lane with the same operations on every path
//! (4 or 8 lanes per register), so the whole result is bit-identical across paths.

use super::histogram::bin_of;
use super::moments::{from_sums, shift, Moments};
use crate::ggml::types::GgmlType;
use crate::kernels::blocks::{as_blocks, BlockQ4K};
use crate::kernels::kquant::{self, Scales32};

/// Values per Q4_K super-block.
const QK: usize = 256;
/// Bytes per Q4_K super-block.
const BLOCK_BYTES: usize = std::mem::size_of::<BlockQ4K>();
/// Block types whose statistics this module computes from the codes.
pub fn supported(ty: GgmlType) -> bool {
    ty == GgmlType::Q4_K
}

/// Moments (as `Moments::scan(xs, false, bins)` gives them for the decoded values `xs`) of
/// the values of whole blocks of `ty` in `bytes`, with the histogram bin of every value in
/// `bins` (one per value, in value order, as `Moments::scan` writes them). `ty` must be
/// `supported` and `bytes` whole blocks.
pub fn moments(ty: GgmlType, bytes: &[u8], bins: &mut [u8]) -> Moments {
    assert!(supported(ty), "no code-domain statistics for {ty}");
    q4_k(bytes, bins)
}

/// `moments` for Q4_K, on the fastest path available.
pub fn q4_k(bytes: &[u8], bins: &mut [u8]) -> Moments {
    #[cfg(target_arch = "x86_64")]
    if x86::vbmi() {
        // SAFETY: the CPU supports AVX-512 F/BW/VBMI, AVX2, FMA and POPCNT (checked).
        return unsafe { x86::q4_k_vbmi(bytes, bins) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::x86_fast() {
        // SAFETY: the CPU supports AVX2, FMA and POPCNT (checked at run time).
        return unsafe { x86::q4_k(bytes, bins) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        return wasm::q4_k(bytes, bins);
    }
    #[allow(unreachable_code)]
    q4_k_reference(bytes, bins)
}

/// Integer statistics of the codes of one Q4_K super-block, per sub-block of 32 values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlockCodes {
    /// Sum of the codes.
    pub s1: [u32; 8],
    /// Sum of the squared codes.
    pub s2: [u32; 8],
    /// Smallest and largest code.
    pub qmin: [u8; 8],
    pub qmax: [u8; 8],
    /// Values of the whole block that are zero (either sign).
    pub zeros: u32,
}

/// True when the block's scales are finite and every `dl*q - ml` of it is exact in f32 (so
/// the decoder's values are exactly the affine values the sums assume).
///
/// `d` and `dmin` are f16, integer multiples of their unit in the last place (2^(e-25) for
/// exponent field e, 2^-24 when subnormal), so every `dl*q` (`d * sc * q`: at most 21
/// significant bits, exact) and `ml` is a multiple of the smaller unit `g`, and so is
/// `dl*q - ml`: it is exact in f32 when its magnitude is below 2^24 * g. A zero scale
/// leaves a single exact product.
#[inline(always)]
fn exact_block(b: &BlockQ4K, sc: &Scales32) -> bool {
    // Plain comparisons (the scales are finite when it matters): `f32::max` is a libm call
    // in wasm.
    let largest = |xs: &[f32; 8]| xs.iter().fold(0f32, |a, x| vmax(x.abs(), a));
    exact_bound(b, largest(&sc.dl), largest(&sc.ml))
}

/// `exact_block`, given the largest `|dl|` and `|ml|` of the block (any value when a scale
/// is not finite).
#[inline(always)]
fn exact_bound(b: &BlockQ4K, dl: f32, ml: f32) -> bool {
    let d = u16::from_le_bytes(b.d);
    let dmin = u16::from_le_bytes(b.dmin);
    let exp = |h: u16| (h >> 10) & 0x1f;
    if exp(d) == 0x1f || exp(dmin) == 0x1f {
        return false;
    }
    if d & 0x7fff == 0 || dmin & 0x7fff == 0 {
        return true;
    }
    let unit = exp(d).max(1).min(exp(dmin).max(1)) as i32 - 25;
    // |dl*q - ml| <= 15*|dl| + |ml|; both products are exact in f64.
    let bound = 15.0 * dl as f64 + ml as f64;
    bound < f64::from_bits(((1023 + 24 + unit) as u64) << 52)
}

/// The block's scales when it passes `exact_block` (the other blocks are decoded).
#[inline(always)]
fn exact_scales(b: &BlockQ4K) -> Option<Scales32> {
    let sc = kquant::q4k(b);
    exact_block(b, &sc).then_some(sc)
}

/// Sums and extremes of the exact blocks of a run, per sub-block lane: lane `s` gathers
/// sub-block `s` of every block. Every target folds a block into the lanes with the same
/// operations in the same order (`fold_scalar`, and its SIMD twins, one lane per vector
/// lane), so all give the same bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lanes {
    /// Sum of `x - c`.
    pub t1: [f64; 8],
    /// Sum of `(x - c)^2`.
    pub t2: [f64; 8],
    pub lo: [f32; 8],
    pub hi: [f32; 8],
}

impl Default for Lanes {
    fn default() -> Self {
        Lanes {
            t1: [0.0; 8],
            t2: [0.0; 8],
            lo: [f32::INFINITY; 8],
            hi: [f32::NEG_INFINITY; 8],
        }
    }
}

/// `x < y ? x : y`, as `minps` computes it (values here are finite).
#[inline(always)]
fn vmin(x: f32, y: f32) -> f32 {
    if x < y {
        x
    } else {
        y
    }
}

/// `x > y ? x : y`, as `maxps` computes it.
#[inline(always)]
fn vmax(x: f32, y: f32) -> f32 {
    if x > y {
        x
    } else {
        y
    }
}

/// Fold the code statistics of one exact block into the lanes (the reference; `cf` is the
/// shift). Per sub-block: the extremes are the decoder's values of the extreme codes (the
/// values are monotone in q); `u1 = sum (x - c)`, and `sum (x - c)^2` is the spread of the
/// codes scaled by `dl^2` plus `u1^2 / 32` (see the module notes).
#[inline(always)]
pub(crate) fn fold_scalar(l: &mut Lanes, sc: &Scales32, k: &BlockCodes, cf: f64) {
    for s in 0..8 {
        let (dl, ml) = (sc.dl[s], sc.ml[s]);
        let a = dl * k.qmin[s] as f32 - ml;
        let b = dl * k.qmax[s] as f32 - ml;
        l.lo[s] = vmin(vmin(a, b), l.lo[s]);
        l.hi[s] = vmax(vmax(a, b), l.hi[s]);
        // 32 * S2 >= S1^2 (Cauchy-Schwarz); both at most 230,400.
        let s1 = k.s1[s] as i32;
        let spread = 32 * k.s2[s] as i32 - s1 * s1;
        let dlf = dl as f64;
        let u1 = dlf * s1 as f64 - 32.0 * (ml as f64 + cf);
        l.t1[s] += u1;
        l.t2[s] += dlf * dlf * spread as f64 * (1.0 / 32.0) + u1 * u1 * (1.0 / 32.0);
    }
}

/// What a run gathers outside the lanes: counts, and the values of decoded blocks.
struct Acc {
    c: f32,
    cf: f64,
    t1: f64,
    t2: f64,
    m: Moments,
}

impl Acc {
    fn new(c: f32) -> Acc {
        Acc {
            c,
            cf: c as f64,
            t1: 0.0,
            t2: 0.0,
            m: Moments::default(),
        }
    }

    /// Count an exact block (its sums are in the lanes).
    #[inline(always)]
    fn exact(&mut self, zeros: u32) {
        self.m.n += QK as u64;
        self.m.zeros += zeros as u64;
    }

    /// Fold decoded values one by one (blocks with non-finite or inexact scales).
    fn add_values(&mut self, xs: &[f32], bins: &mut [u8; QK]) {
        for (&x, b) in xs.iter().zip(bins.iter_mut()) {
            *b = bin_of(x);
            if x.is_nan() {
                self.m.nan += 1;
            } else if x.is_infinite() {
                self.m.inf += 1;
            } else {
                // Non-integers are not counted here (`finish` sets them).
                self.m.count_finite(x, false);
                let d = x as f64 - self.cf;
                self.t1 += d;
                self.t2 += d * d;
            }
        }
    }

    fn finish(mut self, lanes: &Lanes) -> Moments {
        for s in 0..8 {
            self.t1 += lanes.t1[s];
            self.t2 += lanes.t2[s];
            self.m.min = self.m.min.min(lanes.lo[s]);
            self.m.max = self.m.max.max(lanes.hi[s]);
        }
        // Quantized values are not checked for whole numbers: all finite values count.
        self.m.non_integer = self.m.n;
        from_sums(&mut self.m, self.c, self.t1, self.t2);
        self.m
    }
}

/// The shift of the deviation sums: `moments::shift` of the first values of the run, as
/// the decode path computes it.
fn first_shift(bytes: &[u8]) -> f32 {
    let Some(first) = as_blocks::<BlockQ4K>(bytes).first() else {
        return 0.0;
    };
    let sc = kquant::q4k(first);
    let head: [f32; 8] = std::array::from_fn(|j| sc.dl[0] * (first.qs[j] & 0x0f) as f32 - sc.ml[0]);
    shift(&head)
}

/// The block loop: `scales` gives the scales of a block that passes `exact_block` (as
/// `exact_scales` does), `exact` handles such a block (counting its bins, folding its sums,
/// returning its zero count); other blocks are decoded here. Inlined into each target's
/// caller, which keeps its lanes in registers.
#[inline(always)]
fn run(
    bytes: &[u8],
    bins: &mut [u8],
    c: f32,
    mut scales: impl FnMut(&BlockQ4K) -> Option<Scales32>,
    mut exact: impl FnMut(&BlockQ4K, &Scales32, &mut [u8; QK]) -> u32,
) -> Acc {
    assert!(
        bytes.len().is_multiple_of(BLOCK_BYTES),
        "Q4_K statistics need whole blocks"
    );
    assert_eq!(
        bins.len(),
        bytes.len() / BLOCK_BYTES * QK,
        "one bin per value"
    );
    let mut acc = Acc::new(c);
    let mut tmp = [0f32; QK];
    for ((b, raw), slot) in as_blocks::<BlockQ4K>(bytes)
        .iter()
        .zip(bytes.chunks_exact(BLOCK_BYTES))
        .zip(bins.chunks_exact_mut(QK))
    {
        let slot: &mut [u8; QK] = slot.try_into().expect("one block");
        if let Some(sc) = scales(b) {
            let zeros = exact(b, &sc, slot);
            acc.exact(zeros);
        } else {
            crate::kernels::dequantize(GgmlType::Q4_K, raw, &mut tmp)
                .expect("one whole Q4_K block");
            acc.add_values(&tmp, slot);
        }
    }
    acc
}

/// `q4_k` with the scalar reference kernel and fold.
pub(crate) fn q4_k_reference(bytes: &[u8], bins: &mut [u8]) -> Moments {
    let c = first_shift(bytes);
    let cf = c as f64;
    let mut lanes = Lanes::default();
    let acc = run(bytes, bins, c, exact_scales, |b, sc, bins| {
        let k = block_scalar(b, sc, bins);
        fold_scalar(&mut lanes, sc, &k, cf);
        k.zeros
    });
    acc.finish(&lanes)
}

/// Code `j` of sub-block `s`: rows of 32 values, row 2c in the low nibbles of
/// `qs[32c..32c+32]`, row 2c + 1 in the high nibbles.
#[inline(always)]
fn code(b: &BlockQ4K, s: usize, j: usize) -> u8 {
    (b.qs[32 * (s / 2) + j] >> (4 * (s % 2))) & 0x0f
}

/// The reference kernel: the bin of every value (in value order), and the code statistics.
pub(crate) fn block_scalar(b: &BlockQ4K, sc: &Scales32, bins: &mut [u8; QK]) -> BlockCodes {
    let mut k = BlockCodes::default();
    for s in 0..8 {
        let values: [f32; 16] = std::array::from_fn(|q| sc.dl[s] * q as f32 - sc.ml[s]);
        let (mut lo, mut hi) = (u8::MAX, 0u8);
        for j in 0..32 {
            let q = code(b, s, j);
            let x = values[q as usize];
            bins[32 * s + j] = bin_of(x);
            k.s1[s] += q as u32;
            k.s2[s] += q as u32 * q as u32;
            lo = lo.min(q);
            hi = hi.max(q);
            k.zeros += (x == 0.0) as u32;
        }
        k.qmin[s] = lo;
        k.qmax[s] = hi;
    }
    k
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::histogram::{BINS, EXP_BIAS};
    #[cfg(test)]
    use super::BlockCodes;
    use super::{
        exact_bound, exact_scales, first_shift, run, BlockQ4K, Lanes, Moments, Scales32, QK,
    };

    #[target_feature(enable = "avx2,fma,popcnt")]
    pub(super) unsafe fn q4_k(bytes: &[u8], bins: &mut [u8]) -> Moments {
        let c = first_shift(bytes);
        let cf = c as f64;
        let mut r = Regs::new();
        // SAFETY (closure): AVX2 is enabled in this function, so in the closure defined in it.
        let acc = run(bytes, bins, c, exact_scales, |b, sc, bins| unsafe {
            let k = block(b, sc, bins);
            fold(&mut r, sc, &k, cf);
            k.zeros
        });
        acc.finish(&r.lanes())
    }

    /// Whether `q4_k_vbmi` can run (AVX-512 F, BW, VL, VBMI and F16C besides `x86_fast`),
    /// checked once.
    pub(super) fn vbmi() -> bool {
        static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        super::super::probed_once(&STATE, || {
            super::super::x86_fast()
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512vbmi")
                && std::is_x86_feature_detected!("f16c")
        })
    }

    /// `q4_k` with the AVX-512 VBMI block kernel, scale decoding and fold.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx2,fma,f16c,popcnt")]
    pub(super) unsafe fn q4_k_vbmi(bytes: &[u8], bins: &mut [u8]) -> Moments {
        let c = first_shift(bytes);
        let cf = c as f64;
        let mut r = Regs512::new();
        // SAFETY (closures): the features are enabled in this function, so in the closures.
        let acc = run(
            bytes,
            bins,
            c,
            |b| unsafe { exact_scales_vbmi(b) },
            |b, sc, bins| unsafe {
                let k = block_vbmi(b, sc, bins);
                fold512(&mut r, sc, &k, cf);
                k.zeros
            },
        );
        acc.finish(&r.lanes())
    }

    /// `Lanes` in registers, the f64 sums of all 8 sub-blocks in one register each.
    struct Regs512 {
        t1: __m512d,
        t2: __m512d,
        lo: __m256,
        hi: __m256,
    }

    impl Regs512 {
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn new() -> Regs512 {
            Regs512 {
                t1: _mm512_setzero_pd(),
                t2: _mm512_setzero_pd(),
                lo: _mm256_set1_ps(f32::INFINITY),
                hi: _mm256_set1_ps(f32::NEG_INFINITY),
            }
        }

        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn lanes(&self) -> Lanes {
            let mut l = Lanes::default();
            _mm512_storeu_pd(l.t1.as_mut_ptr(), self.t1);
            _mm512_storeu_pd(l.t2.as_mut_ptr(), self.t2);
            _mm256_storeu_ps(l.lo.as_mut_ptr(), self.lo);
            _mm256_storeu_ps(l.hi.as_mut_ptr(), self.hi);
            l
        }
    }

    /// `fold_scalar`, one sub-block per lane, the f64 part on 8 lanes at once (the AVX2
    /// `fold` needs two halves of 4).
    #[inline]
    #[target_feature(enable = "avx512f,avx2")]
    unsafe fn fold512(r: &mut Regs512, sc: &Scales32, k: &Codes, cf: f64) {
        let (dl, ml) = fold_extremes(&mut r.lo, &mut r.hi, sc, k);
        // S1 < 2^15, so S1^2 is `pmaddwd` of S1 with itself (the high halves are zero).
        let spread = _mm256_sub_epi32(_mm256_slli_epi32::<5>(k.s2), _mm256_madd_epi16(k.s1, k.s1));
        let dl = _mm512_cvtps_pd(dl);
        let u1 = _mm512_sub_pd(
            _mm512_mul_pd(dl, _mm512_cvtepi32_pd(k.s1)),
            _mm512_mul_pd(
                _mm512_set1_pd(32.0),
                _mm512_add_pd(_mm512_cvtps_pd(ml), _mm512_set1_pd(cf)),
            ),
        );
        r.t1 = _mm512_add_pd(r.t1, u1);
        let inv32 = _mm512_set1_pd(1.0 / 32.0);
        let within = _mm512_mul_pd(
            _mm512_mul_pd(_mm512_mul_pd(dl, dl), _mm512_cvtepi32_pd(spread)),
            inv32,
        );
        let between = _mm512_mul_pd(_mm512_mul_pd(u1, u1), inv32);
        r.t2 = _mm512_add_pd(r.t2, _mm512_add_pd(within, between));
    }

    /// `exact_scales` with AVX-512: the block's first 16 bytes (d, dmin and the 12 packed
    /// bytes) give the 8 scales and 8 mins in one register, the products and their largest
    /// magnitudes follow in a few instructions.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c")]
    pub(super) unsafe fn exact_scales_vbmi(b: &BlockQ4K) -> Option<Scales32> {
        // SAFETY: the block is 144 bytes; d, dmin and scales are its first 16 (repr(C)).
        let head = _mm_loadu_si128((b as *const BlockQ4K).cast());
        // Packed byte j is head byte 4 + j. Lanes 0-7: scales, 8-15: mins (`k_scale_min`).
        let low = _mm_shuffle_epi8(
            head,
            _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15),
        );
        // Mins 4-7 take the high nibbles of bytes 8-11.
        let low = _mm_mask_blend_epi8(0xf000, low, _mm_srli_epi16::<4>(low));
        let low = _mm_and_si128(
            low,
            _mm_setr_epi8(
                63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15,
            ),
        );
        // Scales and mins 4-7 take bits 6-7 of bytes 0-3 and 4-7 as their bits 4-5.
        let high = _mm_shuffle_epi8(
            head,
            _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11),
        );
        let high = _mm_and_si128(_mm_srli_epi16::<2>(high), _mm_set1_epi8(0x30));
        let six_bit = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_or_si128(low, high)));
        // d in lanes 0-7, dmin in 8-15.
        let halves = _mm512_castps128_ps512(_mm_cvtph_ps(head));
        let d = _mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
            halves,
        );
        let scaled = _mm512_mul_ps(d, six_bit);
        let sc = Scales32 {
            dl: std::mem::transmute::<__m256, [f32; 8]>(_mm512_castps512_ps256(scaled)),
            ml: std::mem::transmute::<__m256, [f32; 8]>(_mm256_castpd_ps(
                _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(scaled)),
            )),
        };
        // Largest magnitudes: within each 128-bit lane, then lanes 0-1 (dl) and 2-3 (ml).
        let m = _mm512_abs_ps(scaled);
        let m = _mm512_max_ps(m, _mm512_permute_ps::<0xb1>(m));
        let m = _mm512_max_ps(m, _mm512_permute_ps::<0x4e>(m));
        let m = _mm512_max_ps(m, _mm512_shuffle_f32x4::<0xb1>(m, m));
        let dl = _mm512_cvtss_f32(m);
        let ml = _mm_cvtss_f32(_mm512_extractf32x4_ps::<2>(m));
        exact_bound(b, dl, ml).then_some(sc)
    }

    /// `block_scalar` with AVX-512 VBMI.
    ///
    /// Vector c holds the 64 codes of sub-blocks 2c and 2c + 1 in value order, each code
    /// tagged with 16 × (its sub-block mod 4): the tagged code is its index in a 64-byte bin
    /// table of four sub-blocks, so one `vpermb` gives 64 bins. The tags have no low bits,
    /// so `pshufb` squares and the flipped codes (`^ 15`) still work, and their sums and
    /// extremes are constants taken off at the end.
    ///
    /// A table is built from the 16 values of each of its four sub-blocks: `vpmultishiftqb`
    /// picks the exponent byte (bits 23-30) of both floats of every qword, four sub-blocks
    /// merge under byte masks, and one `vpermb` puts the bytes in table order.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx2,popcnt")]
    pub(super) unsafe fn block_vbmi(b: &BlockQ4K, sc: &Scales32, bins: &mut [u8; QK]) -> Codes {
        let low4 = _mm512_set1_epi8(0x0f);
        let zero = _mm512_setzero_si512();
        let q = _mm512_setr_ps(
            0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
        );
        // Every byte pair of a qword: the exponents of its low and high float.
        let exponent_bytes = _mm512_set1_epi64(0x3717_3717_3717_3717);
        // Byte 8i + 2k + h holds code 2i + h of sub-block k; table order is 16k + code.
        let to_table: __m512i = {
            let mut idx = [0u8; 64];
            for (t, slot) in idx.iter_mut().enumerate() {
                let (k, code) = (t / 16, t % 16);
                *slot = (8 * (code / 2) + 2 * k + code % 2) as u8;
            }
            _mm512_loadu_si512(idx.as_ptr().cast())
        };
        let bias = _mm512_set1_epi8(EXP_BIAS as i8);
        let top = _mm512_set1_epi8(BINS as i8 - 1);
        let tables: [__m512i; 2] = std::array::from_fn(|h| {
            let mut e = zero;
            for k in 0..4 {
                let s = 4 * h + k;
                let x = _mm512_sub_ps(
                    _mm512_mul_ps(_mm512_set1_ps(sc.dl[s]), q),
                    _mm512_set1_ps(sc.ml[s]),
                );
                let mask = 0x0303_0303_0303_0303u64 << (2 * k);
                e = _mm512_mask_multishift_epi64_epi8(
                    e,
                    mask,
                    exponent_bytes,
                    _mm512_castps_si512(x),
                );
            }
            let e = _mm512_permutexvar_epi8(to_table, e);
            _mm512_min_epu8(_mm512_subs_epu8(e, bias), top)
        });
        // Tags of vector c: sub-blocks 2c, 2c + 1 are 0, 1 mod 4 for even c, 2, 3 for odd.
        let tag_even = _mm512_inserti64x4::<1>(zero, _mm256_set1_epi8(16));
        let tag_odd = _mm512_inserti64x4::<1>(_mm512_set1_epi8(32), _mm256_set1_epi8(48));
        #[rustfmt::skip]
        let squares = _mm512_broadcast_i32x4(_mm_setr_epi8(
            0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144u8 as i8, 169u8 as i8, 196u8 as i8,
            225u8 as i8,
        ));
        let out = bins.as_mut_ptr();
        let mut zeros = 0u32;
        let mut sums = [zero; 4];
        let mut runs = [zero; 4];
        for c in 0..4 {
            let raw = _mm512_broadcast_i64x4(_mm256_loadu_si256(b.qs.as_ptr().add(32 * c).cast()));
            // High nibbles in the upper half.
            let shifted = _mm512_mask_srli_epi16::<4>(raw, 0xffff_0000, raw);
            let tag = if c % 2 == 0 { tag_even } else { tag_odd };
            // (shifted & 0x0f) | tag
            let codes = _mm512_ternarylogic_epi32::<0xea>(shifted, low4, tag);
            let y = _mm512_permutexvar_epi8(codes, tables[c / 2]);
            _mm512_storeu_si512(out.add(64 * c).cast(), y);
            zeros += _mm512_testn_epi8_mask(y, y).count_ones();
            // Per qword: S1 in the low and S2 in the high dword (8 codes each).
            sums[c] = _mm512_add_epi64(
                _mm512_sad_epu8(codes, zero),
                _mm512_slli_epi64::<32>(_mm512_sad_epu8(_mm512_shuffle_epi8(squares, codes), zero)),
            );
            // 16-byte lanes: minima of sub-block 2c, 2c + 1, then of their flipped codes.
            let flipped = _mm512_xor_si512(codes, low4);
            runs[c] = _mm512_min_epu8(
                _mm512_shuffle_i64x2::<0x88>(codes, flipped),
                _mm512_shuffle_i64x2::<0xdd>(codes, flipped),
            );
        }
        // Qword sums per sub-block: lanes [0|2, 0|2, 1|3, 1|3] and [4|6, ..., 5|7], then one
        // total per sub-block, in the order 0, 2, 1, 3, 4, 6, 5, 7.
        let pair = |a: __m512i, b: __m512i| {
            _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
        };
        let (y01, y23) = (pair(sums[0], sums[1]), pair(sums[2], sums[3]));
        let z = _mm512_add_epi64(
            _mm512_shuffle_i64x2::<0x88>(y01, y23),
            _mm512_shuffle_i64x2::<0xdd>(y01, y23),
        );
        let z = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7), z);
        let tags = _mm256_setr_epi32(0, 16, 32, 48, 0, 16, 32, 48);
        let s1 = _mm256_sub_epi32(_mm512_cvtepi64_epi32(z), _mm256_slli_epi32::<5>(tags));
        let s2 = _mm512_cvtepi64_epi32(_mm512_srli_epi64::<32>(z));
        // Extremes: 16-byte runs -> 8 -> 4 -> 1. Dwords then hold the minima of sub-blocks
        // 0, 2, 4, 6 | 1, 3, 5, 7 | flipped 0, 2, 4, 6 | flipped 1, 3, 5, 7.
        let fold8 = |a: __m512i, b: __m512i| {
            _mm512_min_epu8(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
        };
        let (r01, r23) = (fold8(runs[0], runs[1]), fold8(runs[2], runs[3]));
        let (a, b) = (_mm512_castsi512_ps(r01), _mm512_castsi512_ps(r23));
        let w = _mm512_min_epu8(
            _mm512_castps_si512(_mm512_shuffle_ps::<0x88>(a, b)),
            _mm512_castps_si512(_mm512_shuffle_ps::<0xdd>(a, b)),
        );
        let w = _mm512_min_epu8(w, _mm512_srli_epi32::<16>(w));
        let w = _mm512_min_epu8(w, _mm512_srli_epi16::<8>(w));
        let order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
        let w = _mm512_permutexvar_epi32(order, w);
        let qmin = _mm256_sub_epi32(_mm512_castsi512_si256(w), tags);
        let qmax = _mm256_sub_epi32(
            _mm256_add_epi32(_mm256_set1_epi32(15), tags),
            _mm512_extracti64x4_epi64::<1>(w),
        );
        Codes {
            s1,
            s2,
            qmin,
            qmax,
            zeros,
        }
    }

    /// `Lanes` in registers: sub-blocks 0-3 and 4-7 of the f64 sums, all 8 of the extremes.
    struct Regs {
        t1: [__m256d; 2],
        t2: [__m256d; 2],
        lo: __m256,
        hi: __m256,
    }

    impl Regs {
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn new() -> Regs {
            Regs {
                t1: [_mm256_setzero_pd(); 2],
                t2: [_mm256_setzero_pd(); 2],
                lo: _mm256_set1_ps(f32::INFINITY),
                hi: _mm256_set1_ps(f32::NEG_INFINITY),
            }
        }

        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn lanes(&self) -> Lanes {
            let mut l = Lanes::default();
            for h in 0..2 {
                _mm256_storeu_pd(l.t1.as_mut_ptr().add(4 * h), self.t1[h]);
                _mm256_storeu_pd(l.t2.as_mut_ptr().add(4 * h), self.t2[h]);
            }
            _mm256_storeu_ps(l.lo.as_mut_ptr(), self.lo);
            _mm256_storeu_ps(l.hi.as_mut_ptr(), self.hi);
            l
        }
    }

    /// `BlockCodes` in registers (8 i32 lanes, one per sub-block).
    pub(super) struct Codes {
        s1: __m256i,
        s2: __m256i,
        qmin: __m256i,
        qmax: __m256i,
        zeros: u32,
    }

    #[cfg(test)]
    impl Codes {
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn to_block_codes(&self) -> BlockCodes {
            let mut a = [[0i32; 8]; 4];
            for (o, v) in a.iter_mut().zip([self.s1, self.s2, self.qmin, self.qmax]) {
                _mm256_storeu_si256(o.as_mut_ptr().cast(), v);
            }
            BlockCodes {
                s1: a[0].map(|v| v as u32),
                s2: a[1].map(|v| v as u32),
                qmin: a[2].map(|v| v as u8),
                qmax: a[3].map(|v| v as u8),
                zeros: self.zeros,
            }
        }
    }

    /// The extremes part of `fold_scalar`, one sub-block per lane: the values of the extreme
    /// codes into `lo` and `hi`. Returns the scales it loaded (`dl`, `ml`).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn fold_extremes(
        lo: &mut __m256,
        hi: &mut __m256,
        sc: &Scales32,
        k: &Codes,
    ) -> (__m256, __m256) {
        let dl = _mm256_loadu_ps(sc.dl.as_ptr());
        let ml = _mm256_loadu_ps(sc.ml.as_ptr());
        let a = _mm256_sub_ps(_mm256_mul_ps(dl, _mm256_cvtepi32_ps(k.qmin)), ml);
        let b = _mm256_sub_ps(_mm256_mul_ps(dl, _mm256_cvtepi32_ps(k.qmax)), ml);
        *lo = _mm256_min_ps(_mm256_min_ps(a, b), *lo);
        *hi = _mm256_max_ps(_mm256_max_ps(a, b), *hi);
        (dl, ml)
    }

    /// `fold_scalar`, one sub-block per lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn fold(r: &mut Regs, sc: &Scales32, k: &Codes, cf: f64) {
        let (dl, ml) = fold_extremes(&mut r.lo, &mut r.hi, sc, k);
        let spread = _mm256_sub_epi32(_mm256_slli_epi32::<5>(k.s2), _mm256_mullo_epi32(k.s1, k.s1));
        let (c32, inv32, cfv) = (
            _mm256_set1_pd(32.0),
            _mm256_set1_pd(1.0 / 32.0),
            _mm256_set1_pd(cf),
        );
        let halves = [
            (
                _mm256_castps256_ps128(dl),
                _mm256_castps256_ps128(ml),
                _mm256_castsi256_si128(k.s1),
                _mm256_castsi256_si128(spread),
            ),
            (
                _mm256_extractf128_ps::<1>(dl),
                _mm256_extractf128_ps::<1>(ml),
                _mm256_extracti128_si256::<1>(k.s1),
                _mm256_extracti128_si256::<1>(spread),
            ),
        ];
        for (h, (dl, ml, s1, spread)) in halves.into_iter().enumerate() {
            let dl = _mm256_cvtps_pd(dl);
            let u1 = _mm256_sub_pd(
                _mm256_mul_pd(dl, _mm256_cvtepi32_pd(s1)),
                _mm256_mul_pd(c32, _mm256_add_pd(_mm256_cvtps_pd(ml), cfv)),
            );
            r.t1[h] = _mm256_add_pd(r.t1[h], u1);
            let within = _mm256_mul_pd(
                _mm256_mul_pd(_mm256_mul_pd(dl, dl), _mm256_cvtepi32_pd(spread)),
                inv32,
            );
            let between = _mm256_mul_pd(_mm256_mul_pd(u1, u1), inv32);
            r.t2[h] = _mm256_add_pd(r.t2[h], _mm256_add_pd(within, between));
        }
    }

    /// Biased f32 exponents (0..=255) of `dl * q - ml` for the 8 codes in `q`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn exponents(dl: __m256, ml: __m256, q: __m256) -> __m256i {
        let x = _mm256_castps_si256(_mm256_sub_ps(_mm256_mul_ps(dl, q), ml));
        _mm256_and_si256(_mm256_srli_epi32::<23>(x), _mm256_set1_epi32(0xff))
    }

    /// Lane 0: bytewise min of the two halves of `x`; lane 1: 15 minus their bytewise max.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn extremes(x: __m256i, flip: __m256i) -> __m256i {
        let swapped = _mm256_permute2x128_si256::<0x01>(x, x);
        _mm256_min_epu8(_mm256_xor_si256(x, flip), _mm256_xor_si256(swapped, flip))
    }

    /// Bytewise min of the two u64 halves of each 128-bit lane of `a` and of `b`: per lane,
    /// 8 bytes for `a` then 8 for `b`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn fold64(a: __m256i, b: __m256i) -> __m256i {
        _mm256_min_epu8(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
    }

    /// Bytewise min of the two u32 halves of each u64 of `a` and of `b`: per lane, 4 bytes
    /// for each of a's two streams, then b's two.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn fold32(a: __m256i, b: __m256i) -> __m256i {
        let a = _mm256_min_epu8(a, _mm256_srli_epi64::<32>(a));
        let b = _mm256_min_epu8(b, _mm256_srli_epi64::<32>(b));
        _mm256_castps_si256(_mm256_shuffle_ps::<0x88>(
            _mm256_castsi256_ps(a),
            _mm256_castsi256_ps(b),
        ))
    }

    /// `block_scalar` with AVX2: one 32-byte load holds the codes of two sub-blocks (low and
    /// high nibbles); the two sub-blocks' bin tables are built together.
    #[inline]
    #[target_feature(enable = "avx2,popcnt")]
    pub(super) unsafe fn block(b: &BlockQ4K, sc: &Scales32, bins: &mut [u8; QK]) -> Codes {
        let low4 = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let q_lo = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        let q_hi = _mm256_setr_ps(8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0);
        let bias = _mm256_set1_epi8(EXP_BIAS as i8);
        let top = _mm256_set1_epi8(BINS as i8 - 1);
        #[rustfmt::skip]
        let squares = _mm256_setr_epi8(
            0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144u8 as i8, 169u8 as i8, 196u8 as i8,
            225u8 as i8,
            0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144u8 as i8, 169u8 as i8, 196u8 as i8,
            225u8 as i8,
        );
        // After the packs below, dwords hold [A0-3, A8-11, B0-3, B8-11 | A4-7, A12-15, B4-7,
        // B12-15]: gather each table in code order, in both lanes.
        let pick_a = _mm256_setr_epi32(0, 4, 1, 5, 0, 4, 1, 5);
        let pick_b = _mm256_setr_epi32(2, 6, 3, 7, 2, 6, 3, 7);
        let flip = _mm256_set_m128i(_mm_set1_epi8(0x0f), _mm_setzero_si128());
        let out = bins.as_mut_ptr();
        let mut zeros = 0u32;
        let mut sums = [zero; 4];
        let mut ext = [zero; 8];
        // c picks the codes, the scales and the slots of two sub-blocks.
        #[allow(clippy::needless_range_loop)]
        for c in 0..4 {
            let v = _mm256_loadu_si256(b.qs.as_ptr().add(32 * c).cast());
            let xa = _mm256_and_si256(v, low4);
            let xb = _mm256_and_si256(_mm256_srli_epi16::<4>(v), low4);
            let (sa, sb) = (2 * c, 2 * c + 1);
            let (dla, mla) = (_mm256_set1_ps(sc.dl[sa]), _mm256_set1_ps(sc.ml[sa]));
            let (dlb, mlb) = (_mm256_set1_ps(sc.dl[sb]), _mm256_set1_ps(sc.ml[sb]));
            let pa = _mm256_packus_epi32(exponents(dla, mla, q_lo), exponents(dla, mla, q_hi));
            let pb = _mm256_packus_epi32(exponents(dlb, mlb, q_lo), exponents(dlb, mlb, q_hi));
            let e8 = _mm256_packus_epi16(pa, pb);
            let t8 = _mm256_min_epu8(_mm256_subs_epu8(e8, bias), top);
            let ya = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(t8, pick_a), xa);
            let yb = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(t8, pick_b), xb);
            _mm256_storeu_si256(out.add(64 * c).cast(), ya);
            _mm256_storeu_si256(out.add(64 * c + 32).cast(), yb);
            for y in [ya, yb] {
                zeros += _popcnt32(_mm256_movemask_epi8(_mm256_cmpeq_epi8(y, zero))) as u32;
            }
            // S1 in the low and S2 in the high half of each u64 (partial sums of 8 codes).
            let ua = _mm256_add_epi64(
                _mm256_sad_epu8(xa, zero),
                _mm256_slli_epi64::<32>(_mm256_sad_epu8(_mm256_shuffle_epi8(squares, xa), zero)),
            );
            let ub = _mm256_add_epi64(
                _mm256_sad_epu8(xb, zero),
                _mm256_slli_epi64::<32>(_mm256_sad_epu8(_mm256_shuffle_epi8(squares, xb), zero)),
            );
            // [A, B | A, B]: each lane's two partials added.
            sums[c] =
                _mm256_add_epi64(_mm256_unpacklo_epi64(ua, ub), _mm256_unpackhi_epi64(ua, ub));
            ext[sa] = extremes(xa, flip);
            ext[sb] = extremes(xb, flip);
        }
        // Sub-blocks 0-3 and 4-7, one u64 (S1 | S2 << 32) each.
        let t: [__m256i; 2] = std::array::from_fn(|h| {
            _mm256_add_epi64(
                _mm256_permute2x128_si256::<0x20>(sums[2 * h], sums[2 * h + 1]),
                _mm256_permute2x128_si256::<0x31>(sums[2 * h], sums[2 * h + 1]),
            )
        });
        // Low and high dwords: [0, 1, 4, 5 | 2, 3, 6, 7], then in sub-block order.
        let (t0, t1) = (_mm256_castsi256_ps(t[0]), _mm256_castsi256_ps(t[1]));
        let s1 = _mm256_castps_si256(_mm256_shuffle_ps::<0x88>(t0, t1));
        let s2 = _mm256_castps_si256(_mm256_shuffle_ps::<0xdd>(t0, t1));
        let s1 = _mm256_permute4x64_epi64::<0xd8>(s1);
        let s2 = _mm256_permute4x64_epi64::<0xd8>(s2);
        // 16 bytes per sub-block and lane -> 8 -> 4 -> 2 -> 1.
        let r01 = fold64(ext[0], ext[1]);
        let r23 = fold64(ext[2], ext[3]);
        let r45 = fold64(ext[4], ext[5]);
        let r67 = fold64(ext[6], ext[7]);
        let r0_3 = fold32(r01, r23);
        let r4_7 = fold32(r45, r67);
        let m0_3 = _mm256_min_epu8(r0_3, _mm256_srli_epi32::<16>(r0_3));
        let m4_7 = _mm256_min_epu8(r4_7, _mm256_srli_epi32::<16>(r4_7));
        let p = _mm256_packus_epi32(m0_3, m4_7);
        // u16 lanes: minima of sub-blocks 0-7, then 15 minus their maxima.
        let f = _mm256_min_epu8(p, _mm256_srli_epi16::<8>(p));
        let qmin = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(f));
        let qmax = _mm256_sub_epi32(
            _mm256_set1_epi32(15),
            _mm256_cvtepu16_epi32(_mm256_extracti128_si256::<1>(f)),
        );
        Codes {
            s1,
            s2,
            qmin,
            qmax,
            zeros,
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    use super::super::histogram::{BINS, EXP_BIAS};
    #[cfg(test)]
    use super::BlockCodes;
    use super::{exact_scales, first_shift, run, BlockQ4K, Lanes, Moments, Scales32, QK};

    pub(super) fn q4_k(bytes: &[u8], bins: &mut [u8]) -> Moments {
        let c = first_shift(bytes);
        let cf = c as f64;
        let mut r = Regs::new();
        let acc = run(bytes, bins, c, exact_scales, |b, sc, bins| {
            let k = block(b, sc, bins);
            fold(&mut r, sc, &k, cf);
            k.zeros
        });
        acc.finish(&r.lanes())
    }

    /// `Lanes` in registers: f64x2 sums of sub-blocks 0-1, 2-3, 4-5, 6-7; f32x4 extremes of
    /// sub-blocks 0-3 and 4-7.
    struct Regs {
        t1: [v128; 4],
        t2: [v128; 4],
        lo: [v128; 2],
        hi: [v128; 2],
    }

    impl Regs {
        fn new() -> Regs {
            Regs {
                t1: [f64x2_splat(0.0); 4],
                t2: [f64x2_splat(0.0); 4],
                lo: [f32x4_splat(f32::INFINITY); 2],
                hi: [f32x4_splat(f32::NEG_INFINITY); 2],
            }
        }

        fn lanes(&self) -> Lanes {
            let mut l = Lanes::default();
            // SAFETY: 16-byte stores at offsets 2q (f64) and 4h (f32) of 8-element arrays.
            unsafe {
                for q in 0..4 {
                    v128_store(l.t1.as_mut_ptr().add(2 * q).cast(), self.t1[q]);
                    v128_store(l.t2.as_mut_ptr().add(2 * q).cast(), self.t2[q]);
                }
                for h in 0..2 {
                    v128_store(l.lo.as_mut_ptr().add(4 * h).cast(), self.lo[h]);
                    v128_store(l.hi.as_mut_ptr().add(4 * h).cast(), self.hi[h]);
                }
            }
            l
        }
    }

    /// `BlockCodes` in registers: i32x4 for sub-blocks 0-3 and 4-7.
    pub(super) struct Codes {
        s1: [v128; 2],
        s2: [v128; 2],
        qmin: [v128; 2],
        qmax: [v128; 2],
        zeros: u32,
    }

    #[cfg(test)]
    impl Codes {
        pub(super) fn to_block_codes(&self) -> BlockCodes {
            let mut a = [[0i32; 8]; 4];
            for (o, v) in a.iter_mut().zip([self.s1, self.s2, self.qmin, self.qmax]) {
                // SAFETY: two 16-byte stores into 32 bytes.
                unsafe {
                    v128_store(o.as_mut_ptr().cast(), v[0]);
                    v128_store(o.as_mut_ptr().add(4).cast(), v[1]);
                }
            }
            BlockCodes {
                s1: a[0].map(|v| v as u32),
                s2: a[1].map(|v| v as u32),
                qmin: a[2].map(|v| v as u8),
                qmax: a[3].map(|v| v as u8),
                zeros: self.zeros,
            }
        }
    }

    /// `fold_scalar`, one sub-block per lane. `vmin(x, y)` is `f32x4_pmin(y, x)`.
    #[inline(always)]
    fn fold(r: &mut Regs, sc: &Scales32, k: &Codes, cf: f64) {
        let (c32, inv32, cfv) = (f64x2_splat(32.0), f64x2_splat(1.0 / 32.0), f64x2_splat(cf));
        for h in 0..2 {
            // SAFETY: 16-byte loads at 4h of 8-element f32 arrays.
            let (dl, ml) = unsafe {
                (
                    v128_load(sc.dl.as_ptr().add(4 * h).cast()),
                    v128_load(sc.ml.as_ptr().add(4 * h).cast()),
                )
            };
            let a = f32x4_sub(f32x4_mul(dl, f32x4_convert_i32x4(k.qmin[h])), ml);
            let b = f32x4_sub(f32x4_mul(dl, f32x4_convert_i32x4(k.qmax[h])), ml);
            r.lo[h] = f32x4_pmin(r.lo[h], f32x4_pmin(b, a));
            r.hi[h] = f32x4_pmax(r.hi[h], f32x4_pmax(b, a));
            let spread = i32x4_sub(i32x4_shl(k.s2[h], 5), i32x4_mul(k.s1[h], k.s1[h]));
            // Lanes 0-1, then 2-3 of this half.
            let parts = [
                (dl, ml, k.s1[h], spread),
                (
                    i32x4_shuffle::<2, 3, 0, 1>(dl, dl),
                    i32x4_shuffle::<2, 3, 0, 1>(ml, ml),
                    i32x4_shuffle::<2, 3, 0, 1>(k.s1[h], k.s1[h]),
                    i32x4_shuffle::<2, 3, 0, 1>(spread, spread),
                ),
            ];
            for (p, (dl, ml, s1, spread)) in parts.into_iter().enumerate() {
                let q = 2 * h + p;
                let dl = f64x2_promote_low_f32x4(dl);
                let u1 = f64x2_sub(
                    f64x2_mul(dl, f64x2_convert_low_i32x4(s1)),
                    f64x2_mul(c32, f64x2_add(f64x2_promote_low_f32x4(ml), cfv)),
                );
                r.t1[q] = f64x2_add(r.t1[q], u1);
                let within = f64x2_mul(
                    f64x2_mul(f64x2_mul(dl, dl), f64x2_convert_low_i32x4(spread)),
                    inv32,
                );
                let between = f64x2_mul(f64x2_mul(u1, u1), inv32);
                r.t2[q] = f64x2_add(r.t2[q], f64x2_add(within, between));
            }
        }
    }

    /// Per stream of 16 bytes in `a` and in `b`: the bytewise min of its two 8-byte halves.
    #[inline(always)]
    fn fold8(a: v128, b: v128) -> v128 {
        u8x16_min(
            i8x16_shuffle::<0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23>(a, b),
            i8x16_shuffle::<8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31>(a, b),
        )
    }

    /// Per stream of 8 bytes: the min of its two 4-byte halves.
    #[inline(always)]
    fn fold4(a: v128, b: v128) -> v128 {
        u8x16_min(
            i8x16_shuffle::<0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27>(a, b),
            i8x16_shuffle::<4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31>(a, b),
        )
    }

    /// Per stream of 4 bytes: the min of its two 2-byte halves.
    #[inline(always)]
    fn fold2(a: v128, b: v128) -> v128 {
        u8x16_min(
            i8x16_shuffle::<0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29>(a, b),
            i8x16_shuffle::<2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31>(a, b),
        )
    }

    /// Per stream of 2 bytes: the min of its two bytes.
    #[inline(always)]
    fn fold1(a: v128, b: v128) -> v128 {
        u8x16_min(
            i8x16_shuffle::<0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30>(a, b),
            i8x16_shuffle::<1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31>(a, b),
        )
    }

    /// Per stream of 8 u16 lanes in `a` and in `b`: the sum of its two 4-lane halves.
    #[inline(always)]
    fn add4(a: v128, b: v128) -> v128 {
        i16x8_add(
            i16x8_shuffle::<0, 1, 2, 3, 8, 9, 10, 11>(a, b),
            i16x8_shuffle::<4, 5, 6, 7, 12, 13, 14, 15>(a, b),
        )
    }

    #[inline(always)]
    fn add2(a: v128, b: v128) -> v128 {
        i16x8_add(
            i16x8_shuffle::<0, 1, 4, 5, 8, 9, 12, 13>(a, b),
            i16x8_shuffle::<2, 3, 6, 7, 10, 11, 14, 15>(a, b),
        )
    }

    #[inline(always)]
    fn add1(a: v128, b: v128) -> v128 {
        i16x8_add(
            i16x8_shuffle::<0, 2, 4, 6, 8, 10, 12, 14>(a, b),
            i16x8_shuffle::<1, 3, 5, 7, 9, 11, 13, 15>(a, b),
        )
    }

    /// Sum of the u16 lanes of 8 vectors, one total per vector (each total < 2^16).
    #[inline(always)]
    fn totals(v: &[v128; 8]) -> v128 {
        let a = [
            add4(v[0], v[1]),
            add4(v[2], v[3]),
            add4(v[4], v[5]),
            add4(v[6], v[7]),
        ];
        add1(add2(a[0], a[1]), add2(a[2], a[3]))
    }

    /// 32 bits: which of the 32 bytes of `y` equal `k`.
    #[inline(always)]
    fn matches(y: [v128; 2], k: v128) -> u32 {
        i8x16_bitmask(i8x16_eq(y[0], k)) as u32 | (i8x16_bitmask(i8x16_eq(y[1], k)) as u32) << 16
    }

    /// `block_scalar` with simd128: each sub-block's 32 codes as two vectors of 16.
    #[inline(always)]
    pub(super) fn block(b: &BlockQ4K, sc: &Scales32, bins: &mut [u8; QK]) -> Codes {
        let low4 = u8x16_splat(0x0f);
        let zero = u8x16_splat(0);
        let exp_mask = u32x4_splat(0xff);
        let bias = u8x16_splat(EXP_BIAS as u8);
        let top = u8x16_splat(BINS as u8 - 1);
        let codes = [
            f32x4(0.0, 1.0, 2.0, 3.0),
            f32x4(4.0, 5.0, 6.0, 7.0),
            f32x4(8.0, 9.0, 10.0, 11.0),
            f32x4(12.0, 13.0, 14.0, 15.0),
        ];
        let squares = u8x16(
            0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225,
        );
        let mut zeros = 0u32;
        let mut s1 = [zero; 8];
        let mut s2 = [zero; 8];
        let mut lo = [zero; 8];
        let mut hi = [zero; 8];
        for c in 0..4 {
            // SAFETY: qs has 128 bytes: 32c + 32 <= 128.
            let (v0, v1) = unsafe {
                (
                    v128_load(b.qs.as_ptr().add(32 * c).cast()),
                    v128_load(b.qs.as_ptr().add(32 * c + 16).cast()),
                )
            };
            let halves = [
                (2 * c, [v128_and(v0, low4), v128_and(v1, low4)]),
                (2 * c + 1, [u8x16_shr(v0, 4), u8x16_shr(v1, 4)]),
            ];
            for (s, x) in halves {
                let (dl, ml) = (f32x4_splat(sc.dl[s]), f32x4_splat(sc.ml[s]));
                let e = codes.map(|q| {
                    let v = f32x4_sub(f32x4_mul(dl, q), ml);
                    v128_and(u32x4_shr(v, 23), exp_mask)
                });
                let e8 = u8x16_narrow_i16x8(
                    u16x8_narrow_i32x4(e[0], e[1]),
                    u16x8_narrow_i32x4(e[2], e[3]),
                );
                let table = u8x16_min(u8x16_sub_sat(e8, bias), top);
                let y = [i8x16_swizzle(table, x[0]), i8x16_swizzle(table, x[1])];
                // SAFETY: 32s + 32 <= 256 = bins.len().
                unsafe {
                    v128_store(bins.as_mut_ptr().add(32 * s).cast(), y[0]);
                    v128_store(bins.as_mut_ptr().add(32 * s + 16).cast(), y[1]);
                }
                zeros += matches(y, zero).count_ones();
                s1[s] = i16x8_add(
                    u16x8_extadd_pairwise_u8x16(x[0]),
                    u16x8_extadd_pairwise_u8x16(x[1]),
                );
                s2[s] = i16x8_add(
                    u16x8_extadd_pairwise_u8x16(i8x16_swizzle(squares, x[0])),
                    u16x8_extadd_pairwise_u8x16(i8x16_swizzle(squares, x[1])),
                );
                lo[s] = u8x16_min(x[0], x[1]);
                hi[s] = v128_xor(u8x16_max(x[0], x[1]), low4);
            }
        }
        let (t1, t2) = (totals(&s1), totals(&s2));
        // Sixteen streams (8 minima, 8 inverted maxima) of 16 bytes -> one byte each.
        let f8 = |v: &[v128; 8]| {
            [
                fold8(v[0], v[1]),
                fold8(v[2], v[3]),
                fold8(v[4], v[5]),
                fold8(v[6], v[7]),
            ]
        };
        let (l8, h8) = (f8(&lo), f8(&hi));
        let l2 = fold2(fold4(l8[0], l8[1]), fold4(l8[2], l8[3]));
        let h2 = fold2(fold4(h8[0], h8[1]), fold4(h8[2], h8[3]));
        let ext = fold1(l2, h2);
        let (lo16, hi16) = (u16x8_extend_low_u8x16(ext), u16x8_extend_high_u8x16(ext));
        let fifteen = u32x4_splat(15);
        Codes {
            s1: [u32x4_extend_low_u16x8(t1), u32x4_extend_high_u16x8(t1)],
            s2: [u32x4_extend_low_u16x8(t2), u32x4_extend_high_u16x8(t2)],
            qmin: [u32x4_extend_low_u16x8(lo16), u32x4_extend_high_u16x8(lo16)],
            qmax: [
                i32x4_sub(fifteen, u32x4_extend_low_u16x8(hi16)),
                i32x4_sub(fifteen, u32x4_extend_high_u16x8(hi16)),
            ],
            zeros,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::histogram::HistogramAcc;
    use crate::stats::testrng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// f16 scales: ordinary ones of a few magnitudes, and the special ones: zeros, subnormals,
    /// the smallest normal, the largest finite, negatives, infinities and NaNs.
    const SPECIAL_F16: [u16; 16] = [
        0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x7c00,
        0xfc00, 0x7e00, 0x7c01, 0xfe5a, 0x1400,
    ];

    /// Random Q4_K blocks: random bytes, with f16 scales that are mostly ordinary (similar
    /// magnitudes, as a quantizer makes them; or far apart, which makes some blocks
    /// inexact) and sometimes special.
    pub(crate) fn random_blocks(rng: &mut Rng, n: usize) -> Vec<u8> {
        let mut bytes = rng.bytes(n * BLOCK_BYTES);
        for b in bytes.chunks_exact_mut(BLOCK_BYTES) {
            let exp = 3 + rng.below(12) as u16;
            for at in [0, 2] {
                let h = match rng.below(10) {
                    0 => rng.pick(&SPECIAL_F16),
                    1 => rng.next() as u16,
                    2 => ((rng.below(30) as u16 + 1) << 10) | (rng.next() as u16 & 0x83ff),
                    _ => ((exp + rng.below(3) as u16) << 10) | (rng.next() as u16 & 0x83ff),
                };
                b[at..at + 2].copy_from_slice(&h.to_le_bytes());
            }
            // Some sub-blocks with all codes equal, or only the extreme codes.
            match rng.below(8) {
                0 => b[16..].fill(rng.next() as u8),
                1 => b[16..].iter_mut().for_each(|x| *x &= 0xf0),
                2 => b[16..].iter_mut().for_each(|x| *x |= 0x0f),
                _ => {}
            }
        }
        bytes
    }

    /// Moments and histogram of the decoded values (the decode path of the scan).
    fn decoded(bytes: &[u8]) -> (Moments, HistogramAcc) {
        let n = bytes.len() / BLOCK_BYTES * QK;
        let mut xs = vec![0f32; n];
        crate::kernels::dequantize(GgmlType::Q4_K, bytes, &mut xs).unwrap();
        let mut bins = vec![0u8; n];
        let m = Moments::scan(&xs, false, &mut bins);
        let mut h = HistogramAcc::default();
        h.add_bins(&bins);
        (m, h)
    }

    /// Every SIMD kernel against the scalar reference, bit for bit (code statistics and the
    /// bin of every value), on exact blocks (the only ones the kernels see).
    fn kernels_agree(bytes: &[u8], what: &str) {
        for (i, b) in as_blocks::<BlockQ4K>(bytes).iter().enumerate() {
            let sc = kquant::q4k(b);
            #[cfg(target_arch = "x86_64")]
            if x86::vbmi() {
                // SAFETY: AVX-512 F/BW/VL and F16C are present (checked above).
                let got = unsafe { x86::exact_scales_vbmi(b) };
                let bits = |s: Option<Scales32>| {
                    s.map(|s| (s.dl.map(f32::to_bits), s.ml.map(f32::to_bits)))
                };
                assert_eq!(
                    bits(got),
                    bits(exact_scales(b)),
                    "{what}: block {i} scales (AVX-512)"
                );
            }
            if !exact_block(b, &sc) {
                continue;
            }
            let mut want_bins = [0xeeu8; QK];
            let want = block_scalar(b, &sc, &mut want_bins);
            #[cfg(target_arch = "x86_64")]
            if crate::stats::x86_fast() {
                let mut bins = [0xddu8; QK];
                // SAFETY: AVX2 and POPCNT are present (checked above).
                let got = unsafe { x86::block(b, &sc, &mut bins).to_block_codes() };
                assert_eq!(got, want, "{what}: block {i} (AVX2)");
                assert_eq!(bins, want_bins, "{what}: block {i} bins (AVX2)");
            }
            #[cfg(target_arch = "x86_64")]
            if x86::vbmi() {
                let mut bins = [0xddu8; QK];
                // SAFETY: AVX-512 F/BW/VBMI, AVX2 and POPCNT are present (checked above).
                let got = unsafe { x86::block_vbmi(b, &sc, &mut bins).to_block_codes() };
                assert_eq!(got, want, "{what}: block {i} (AVX-512 VBMI)");
                assert_eq!(bins, want_bins, "{what}: block {i} bins (AVX-512 VBMI)");
            }
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            {
                let mut bins = [0xddu8; QK];
                let got = wasm::block(b, &sc, &mut bins).to_block_codes();
                assert_eq!(got, want, "{what}: block {i} (simd128)");
                assert_eq!(bins, want_bins, "{what}: block {i} bins (simd128)");
            }
            let _ = (&want, &want_bins, i);
        }
    }

    /// The code-domain moments against the decode path: counts, min, max and histogram
    /// exactly, mean and m2 up to the decode path's rounding; and the dispatch (SIMD kernels
    /// and folds) bit for bit against the scalar kernel and fold.
    fn same_as_decoded(bytes: &[u8], what: &str) {
        let (want, want_hist) = decoded(bytes);
        let values = bytes.len() / BLOCK_BYTES * QK;
        let (mut bins, mut ref_bins) = (vec![0xaa; values], vec![0x55; values]);
        let got = q4_k(bytes, &mut bins);
        let reference = q4_k_reference(bytes, &mut ref_bins);
        let (mut hist, mut ref_hist) = (HistogramAcc::default(), HistogramAcc::default());
        hist.add_bins(&bins);
        ref_hist.add_bins(&ref_bins);
        assert_eq!(
            (
                got.mean.to_bits(),
                got.m2.to_bits(),
                got.min.to_bits(),
                got.max.to_bits()
            ),
            (
                reference.mean.to_bits(),
                reference.m2.to_bits(),
                reference.min.to_bits(),
                reference.max.to_bits()
            ),
            "{what}: dispatch vs scalar kernel"
        );
        assert_eq!(got, reference, "{what}: dispatch vs scalar kernel");
        // The AVX2 path too where the dispatch takes the AVX-512 one.
        #[cfg(target_arch = "x86_64")]
        if crate::stats::x86_fast() {
            let mut avx2_bins = vec![0x33; values];
            // SAFETY: AVX2, FMA and POPCNT are present (checked above).
            let avx2 = unsafe { x86::q4_k(bytes, &mut avx2_bins) };
            let bits = |m: &Moments| {
                (
                    m.mean.to_bits(),
                    m.m2.to_bits(),
                    m.min.to_bits(),
                    m.max.to_bits(),
                )
            };
            assert_eq!(
                bits(&avx2),
                bits(&reference),
                "{what}: AVX2 vs scalar kernel"
            );
            assert_eq!(avx2, reference, "{what}: AVX2 vs scalar kernel");
            assert_eq!(avx2_bins, ref_bins, "{what}: AVX2 bins");
        }
        assert_eq!(
            hist, ref_hist,
            "{what}: dispatch vs scalar kernel histogram"
        );
        assert_eq!(hist, want_hist, "{what}: histogram");
        assert_eq!(
            (got.n, got.nan, got.inf, got.zeros, got.non_integer),
            (want.n, want.nan, want.inf, want.zeros, want.non_integer),
            "{what}: counts"
        );
        assert_eq!((got.min, got.max), (want.min, want.max), "{what}: min, max");
        let std = (want.m2 / want.n.max(1) as f64).sqrt();
        let scale = std.max(want.mean.abs() * 1e-3).max(1e-30);
        assert!(
            (got.mean - want.mean).abs() <= 1e-6 * scale,
            "{what}: mean {} vs {}",
            got.mean,
            want.mean
        );
        assert!(
            (got.m2 - want.m2).abs() <= 1e-5 * want.m2 + 1e-12 * scale * scale,
            "{what}: m2 {} vs {}",
            got.m2,
            want.m2
        );
    }

    #[test]
    fn simd_kernels_match_the_scalar_kernel() {
        let mut rng = Rng::new(0x4b5f);
        for case in 0..300 {
            let n = 1 + rng.below(4);
            let bytes = random_blocks(&mut rng, n);
            kernels_agree(&bytes, &format!("case {case}"));
        }
    }

    #[test]
    fn code_statistics_equal_decoded_statistics() {
        let mut rng = Rng::new(0x9a11);
        for case in 0..300 {
            let n = 1 + rng.below(12);
            let bytes = random_blocks(&mut rng, n);
            same_as_decoded(&bytes, &format!("case {case}"));
        }
    }

    #[test]
    fn ordinary_blocks_take_the_code_path() {
        // Scales of similar magnitude (what quantizers write) are exact; the check must not
        // send ordinary blocks to the decoder.
        let mut rng = Rng::new(7);
        let mut exact = 0;
        for _ in 0..1000 {
            let mut b = rng.bytes(BLOCK_BYTES);
            let e = 5 + rng.below(8) as u16;
            for at in [0, 2] {
                let h = ((e + rng.below(3) as u16) << 10) | (rng.next() as u16 & 0x83ff);
                b[at..at + 2].copy_from_slice(&h.to_le_bytes());
            }
            let blk = &as_blocks::<BlockQ4K>(&b)[0];
            exact += exact_block(blk, &kquant::q4k(blk)) as u32;
        }
        assert!(exact > 990, "{exact} of 1000 ordinary blocks exact");
    }

    #[test]
    fn inexact_and_nonfinite_blocks_are_decoded() {
        // dmin far above d: dl*q - ml rounds in f32 (exact_block says no); the values near
        // 1 with a tiny spread make the rounding visible in m2 if the sums ignored it.
        let mut b = vec![0x5au8; BLOCK_BYTES];
        b[0..2].copy_from_slice(&half::f16::from_f32(1e-5).to_le_bytes());
        b[2..4].copy_from_slice(&half::f16::from_f32(-0.015873).to_le_bytes());
        b[4..16].fill(0x3f);
        let blk = &as_blocks::<BlockQ4K>(&b)[0];
        assert!(!exact_block(blk, &kquant::q4k(blk)));
        same_as_decoded(&b, "inexact");
        // NaN d, Inf dmin, then an ordinary block: the non-finite counts and the ordinary
        // block's statistics both survive.
        let mut bytes = Vec::new();
        for (d, dmin) in [(0x7e00u16, 0x3c00u16), (0x3c00, 0x7c00), (0x1400, 0x1000)] {
            let mut b = vec![0x37u8; BLOCK_BYTES];
            b[0..2].copy_from_slice(&d.to_le_bytes());
            b[2..4].copy_from_slice(&dmin.to_le_bytes());
            bytes.extend(b);
        }
        let m = q4_k(&bytes, &mut vec![0; 3 * QK]);
        assert_eq!(m.nan + m.inf + m.n, 3 * QK as u64);
        assert!(m.nan >= QK as u64 && m.inf > 0, "{m:?}");
        same_as_decoded(&bytes, "non-finite scales");
    }

    #[test]
    fn zero_scales_and_equal_codes() {
        for (d, dmin, fill) in [
            (0x0000u16, 0x3c00u16, 0x00u8),
            (0x3c00, 0x0000, 0x00),
            (0x0000, 0x0000, 0x77),
            (0x8000, 0x0000, 0x00), // -0 * 0: negative zeros
            (0x3c00, 0x3c00, 0xff),
            (0x0001, 0x0001, 0x10),
        ] {
            let mut b = vec![fill; BLOCK_BYTES];
            b[0..2].copy_from_slice(&d.to_le_bytes());
            b[2..4].copy_from_slice(&dmin.to_le_bytes());
            kernels_agree(&b, &format!("d {d:#x} dmin {dmin:#x}"));
            same_as_decoded(&b, &format!("d {d:#x} dmin {dmin:#x}"));
        }
    }

    /// The kernels against the reference on proptest's blocks (natively; the fixed-seed
    /// tests above also run on wasm32).
    #[cfg(not(target_arch = "wasm32"))]
    mod prop {
        use super::{kernels_agree, random_blocks, same_as_decoded, Rng, BLOCK_BYTES};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn kernels_match_the_reference(
                seed in any::<u64>(),
                raw in proptest::collection::vec(any::<u8>(), BLOCK_BYTES..=4 * BLOCK_BYTES),
            ) {
                let mut rng = Rng::new(seed);
                let mut bytes = random_blocks(&mut rng, raw.len() / BLOCK_BYTES);
                // proptest's bytes for the codes and sub-block scales, the generator's f16s.
                for (b, r) in bytes.chunks_exact_mut(BLOCK_BYTES).zip(raw.chunks_exact(BLOCK_BYTES)) {
                    b[4..].copy_from_slice(&r[4..]);
                }
                kernels_agree(&bytes, "proptest");
                same_as_decoded(&bytes, "proptest");
            }
        }
    }
}
