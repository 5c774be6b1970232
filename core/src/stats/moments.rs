//! Streaming moments over one slice of values, merged with Chan et al.'s parallel update,
//! and the histogram bin of every value.
//!
//! The hot loop works in f32 lanes over an L1-sized slice; everything that crosses slices is
//! f64. To keep the f32 part accurate the sums are of `x - c` around a shift `c` close to
//! the slice's mean (the mean of its first values), so squares stay small and nothing
//! cancels catastrophically; lanes are flushed to f64 every `FLUSH` values.
//!
//! x86_64 with AVX-512 or AVX2 (run-time check) and wasm32 with simd128 (compile time) take
//! a fused single pass (intrinsics) for slices without NaN/Inf: sixteen, eight or four f32
//! lanes of shifted sums flushed to f64 every `FLUSH` values, min, max, zero and
//! non-integer counts, and the bin of every value, in one read of the slice. All share the
//! scalar fold of the last values (`finish_fused`). Every other case, and every other target, takes the portable path,
//! which is also the oracle the fast paths are tested against: counts, min, max and bins
//! exactly, mean and m2 up to rounding.

use super::histogram::bin_of;

/// Width of the lane arrays: 8 f32 = one AVX register.
const LANES: usize = 8;
/// Values summed in f32 lanes before the lanes are added into f64.
const FLUSH: usize = 256;

/// Moments of the finite values of a slice plus the counts a scan needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Finite values seen.
    pub n: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    /// +inf / -inf until a finite value arrives.
    pub min: f32,
    pub max: f32,
    pub nan: u64,
    pub inf: u64,
    pub zeros: u64,
    /// Finite values with a fractional part (all of them when integers were not checked).
    pub non_integer: u64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            nan: 0,
            inf: 0,
            zeros: 0,
            non_integer: 0,
        }
    }
}

impl Moments {
    /// Chan's pairwise update; exact in counts, order-dependent only by rounding.
    pub fn merge(&mut self, o: &Moments) {
        if o.n > 0 {
            if self.n == 0 {
                self.n = o.n;
                self.mean = o.mean;
                self.m2 = o.m2;
            } else {
                let n = self.n + o.n;
                let delta = o.mean - self.mean;
                let (na, nb, nf) = (self.n as f64, o.n as f64, n as f64);
                self.mean += delta * nb / nf;
                self.m2 += o.m2 + delta * delta * na * nb / nf;
                self.n = n;
            }
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.nan += o.nan;
        self.inf += o.inf;
        self.zeros += o.zeros;
        self.non_integer += o.non_integer;
    }

    /// Count one finite value: n, the extremes, zeros and non-integers (`check_integers`
    /// false counts every value as a non-integer). Its sums are the caller's: each path
    /// keeps them at its own precision.
    #[inline(always)]
    pub(super) fn count_finite(&mut self, x: f32, check_integers: bool) {
        self.n += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.zeros += (x == 0.0) as u64;
        self.non_integer += (!check_integers || x != x.trunc()) as u64;
    }

    /// Sum of squares of the finite values.
    pub fn sum_sq(&self) -> f64 {
        self.m2 + self.n as f64 * self.mean * self.mean
    }

    /// Moments of one slice, checking for whole numbers.
    pub fn of(xs: &[f32]) -> Moments {
        let mut bins = vec![0u8; xs.len()];
        Moments::scan(xs, true, &mut bins)
    }

    /// Moments of `xs`, writing each value's histogram bin to `bins[i]` (the discard bin for
    /// NaN/Inf). `check_integers`: count non-integers (else all finite values count).
    pub fn scan(xs: &[f32], check_integers: bool, bins: &mut [u8]) -> Moments {
        let bins = &mut bins[..xs.len()];
        #[cfg(target_arch = "x86_64")]
        if let Some(m) = x86::fastest(xs, check_integers, bins) {
            return m;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let Some(m) = wasm::fused(xs, check_integers, bins) {
            return m;
        }
        portable(xs, check_integers, bins)
    }
}

/// Shift for the deviation sums: the mean of the first finite values, near the slice mean.
pub(super) fn shift(xs: &[f32]) -> f32 {
    let head = xs.iter().take(LANES).filter(|x| x.is_finite());
    let (s, k) = head.fold((0f32, 0u32), |(s, k), &x| (s + x, k + 1));
    if k == 0 {
        0.0
    } else {
        s / k as f32
    }
}

/// Finish moments from deviation sums around `c`.
pub(super) fn from_sums(m: &mut Moments, c: f32, t1: f64, t2: f64) {
    if m.n == 0 {
        return;
    }
    let n = m.n as f64;
    m.mean = c as f64 + t1 / n;
    m.m2 = (t2 - t1 * t1 / n).max(0.0);
}

/// The reference path: any target, any values.
fn portable(xs: &[f32], check_integers: bool, bins: &mut [u8]) -> Moments {
    let c = shift(xs);
    let mut m = Moments::default();
    let (mut t1, mut t2) = (0f64, 0f64);
    for (block, bb) in xs.chunks(FLUSH).zip(bins.chunks_mut(FLUSH)) {
        let mut s1 = [0f32; LANES];
        let mut s2 = [0f32; LANES];
        for (i, (&x, b)) in block.iter().zip(bb.iter_mut()).enumerate() {
            *b = bin_of(x);
            if x.is_nan() {
                m.nan += 1;
                continue;
            }
            if x.is_infinite() {
                m.inf += 1;
                continue;
            }
            m.count_finite(x, check_integers);
            let d = x - c;
            s1[i % LANES] += d;
            s2[i % LANES] += d * d;
        }
        for l in 0..LANES {
            t1 += s1[l] as f64;
            t2 += s2[l] as f64;
        }
    }
    from_sums(&mut m, c, t1, t2);
    m
}

/// What a fused SIMD pass gathered over `xs[..body]`, in lanes.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
struct FusedLanes {
    min: [f32; LANES],
    max: [f32; LANES],
    zeros: [u32; LANES],
    non_integer: [u32; LANES],
}

/// The end of a fused pass, shared by the SIMD paths: fold the lanes gathered over
/// `xs[..body]` (their shifted sums already in `t1`, `t2`), then the values after `body` one
/// by one (bins included), and finish the moments. None when a tail value is NaN or Inf.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn finish_fused(
    xs: &[f32],
    bins: &mut [u8],
    body: usize,
    c: f32,
    check_integers: bool,
    lanes: &FusedLanes,
    mut t1: f64,
    mut t2: f64,
) -> Option<Moments> {
    let mut m = Moments {
        n: body as u64,
        min: lanes.min.iter().copied().fold(f32::INFINITY, f32::min),
        max: lanes.max.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        zeros: lanes.zeros.iter().map(|&v| v as u64).sum(),
        non_integer: if check_integers {
            lanes.non_integer.iter().map(|&v| v as u64).sum()
        } else {
            body as u64
        },
        ..Moments::default()
    };
    for (j, &x) in xs[body..].iter().enumerate() {
        if !x.is_finite() {
            return None;
        }
        bins[body + j] = bin_of(x);
        m.count_finite(x, check_integers);
        let d = (x - c) as f64;
        t1 += d;
        t2 += d * d;
    }
    from_sums(&mut m, c, t1, t2);
    Some(m)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{finish_fused, shift, FusedLanes, Moments, FLUSH};

    /// The widest fused pass this CPU has (AVX-512, else AVX2); None when it has neither or
    /// the slice holds a NaN or Inf (the portable path then counts them).
    pub(super) fn fastest(xs: &[f32], check_integers: bool, bins: &mut [u8]) -> Option<Moments> {
        if avx512() {
            // SAFETY: the CPU supports AVX-512 F, BW and DQ (checked just above).
            unsafe { fused512(xs, check_integers, bins) }
        } else if super::super::x86_fast() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            unsafe { fused(xs, check_integers, bins) }
        } else {
            None
        }
    }

    /// Whether `fused512` can run (AVX-512 F, BW and DQ), checked once.
    fn avx512() -> bool {
        static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        super::super::probed_once(&STATE, || {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512dq")
        })
    }

    /// One pass over `xs` with AVX2: None when the slice holds a NaN or Inf (the portable
    /// path then counts them).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fused(
        xs: &[f32],
        check_integers: bool,
        bins: &mut [u8],
    ) -> Option<Moments> {
        if check_integers {
            fused_body::<true>(xs, bins)
        } else {
            fused_body::<false>(xs, bins)
        }
    }

    /// Groups of 32 values as four vectors. Within a group, min, max and the shifted sum are
    /// reduced as a tree before they meet their accumulator, and the sum of squares goes to
    /// two accumulators: no dependency chain is longer than two operations per group.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fused_body<const CHECK: bool>(xs: &[f32], bins: &mut [u8]) -> Option<Moments> {
        const GROUP: usize = 32;
        let body = xs.len() / GROUP * GROUP;
        let c = shift(xs);
        let vc = _mm256_set1_ps(c);
        let zero = _mm256_setzero_ps();
        let exp_bias = _mm256_set1_epi8(super::super::histogram::EXP_BIAS as i8);
        let top_bin = _mm256_set1_epi8(super::super::histogram::BINS as i8 - 1);
        let mut emax = _mm256_setzero_si256();
        let mut vmin = _mm256_set1_ps(f32::INFINITY);
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut zeros = _mm256_setzero_si256();
        let mut nonint = _mm256_setzero_si256();
        let (mut t1, mut t2) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let p = xs.as_ptr();
        let bp = bins.as_mut_ptr();
        let mut i = 0;
        while i < body {
            let flush_end = (i + FLUSH).min(body);
            let mut s1 = _mm256_setzero_ps();
            let mut s2 = [_mm256_setzero_ps(); 2];
            while i < flush_end {
                let x: [__m256; 4] = std::array::from_fn(|k| _mm256_loadu_ps(p.add(i + 8 * k)));
                // Biased exponents: (bits << 1) >> 24.
                let e: [__m256i; 4] = std::array::from_fn(|k| {
                    _mm256_srli_epi32::<24>(_mm256_slli_epi32::<1>(_mm256_castps_si256(x[k])))
                });
                vmin = _mm256_min_ps(
                    vmin,
                    _mm256_min_ps(_mm256_min_ps(x[0], x[1]), _mm256_min_ps(x[2], x[3])),
                );
                vmax = _mm256_max_ps(
                    vmax,
                    _mm256_max_ps(_mm256_max_ps(x[0], x[1]), _mm256_max_ps(x[2], x[3])),
                );
                let d: [__m256; 4] = std::array::from_fn(|k| _mm256_sub_ps(x[k], vc));
                s1 = _mm256_add_ps(
                    s1,
                    _mm256_add_ps(_mm256_add_ps(d[0], d[1]), _mm256_add_ps(d[2], d[3])),
                );
                s2[0] = _mm256_fmadd_ps(d[0], d[0], s2[0]);
                s2[1] = _mm256_fmadd_ps(d[1], d[1], s2[1]);
                s2[0] = _mm256_fmadd_ps(d[2], d[2], s2[0]);
                s2[1] = _mm256_fmadd_ps(d[3], d[3], s2[1]);
                for xk in x {
                    let z = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(xk, zero));
                    zeros = _mm256_sub_epi32(zeros, z);
                    if CHECK {
                        let r = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(xk);
                        let ni = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_NEQ_UQ>(xk, r));
                        nonint = _mm256_sub_epi32(nonint, ni);
                    }
                }
                // Biased exponents are 0..=255, so packing them to bytes is exact; the bin is
                // then a saturating subtract and a clamp on 32 bytes at once, and an all-ones
                // exponent (NaN or +-Inf) shows as a byte of 255 in the running max. The lane
                // order changes, which a histogram does not care about.
                let ab = _mm256_packs_epi32(e[0], e[1]);
                let cd = _mm256_packs_epi32(e[2], e[3]);
                let e8 = _mm256_packus_epi16(ab, cd);
                emax = _mm256_max_epu8(emax, e8);
                let bins8 = _mm256_min_epu8(_mm256_subs_epu8(e8, exp_bias), top_bin);
                _mm256_storeu_si256(bp.add(i) as *mut __m256i, bins8);
                i += GROUP;
            }
            t1 = _mm256_add_pd(t1, widen_sum(s1));
            t2 = _mm256_add_pd(t2, widen_sum(_mm256_add_ps(s2[0], s2[1])));
        }
        let bad = _mm256_cmpeq_epi8(emax, _mm256_set1_epi8(-1));
        if _mm256_movemask_epi8(bad) != 0 {
            return None;
        }
        let mut lanes = FusedLanes {
            min: [0.0; 8],
            max: [0.0; 8],
            zeros: [0; 8],
            non_integer: [0; 8],
        };
        _mm256_storeu_ps(lanes.min.as_mut_ptr(), vmin);
        _mm256_storeu_ps(lanes.max.as_mut_ptr(), vmax);
        _mm256_storeu_si256(lanes.zeros.as_mut_ptr().cast(), zeros);
        _mm256_storeu_si256(lanes.non_integer.as_mut_ptr().cast(), nonint);
        finish_fused(xs, bins, body, c, CHECK, &lanes, hsum_pd(t1), hsum_pd(t2))
    }

    /// `fused` with AVX-512: 16 lanes, groups of 64 values.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq")]
    pub(super) unsafe fn fused512(
        xs: &[f32],
        check_integers: bool,
        bins: &mut [u8],
    ) -> Option<Moments> {
        if check_integers {
            fused512_body::<true>(xs, bins)
        } else {
            fused512_body::<false>(xs, bins)
        }
    }

    /// `fused_body` on 16 lanes: four vectors per group, trees within the group, two
    /// accumulators for the squares; counts are masked adds.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq")]
    unsafe fn fused512_body<const CHECK: bool>(xs: &[f32], bins: &mut [u8]) -> Option<Moments> {
        const GROUP: usize = 64;
        let body = xs.len() / GROUP * GROUP;
        let c = shift(xs);
        let vc = _mm512_set1_ps(c);
        let zero = _mm512_setzero_ps();
        let one = _mm512_set1_epi32(1);
        let exp_bias = _mm512_set1_epi8(super::super::histogram::EXP_BIAS as i8);
        let top_bin = _mm512_set1_epi8(super::super::histogram::BINS as i8 - 1);
        let mut emax = _mm512_setzero_si512();
        let mut vmin = _mm512_set1_ps(f32::INFINITY);
        let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut zeros = _mm512_setzero_si512();
        let mut nonint = _mm512_setzero_si512();
        let (mut t1, mut t2) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let p = xs.as_ptr();
        let bp = bins.as_mut_ptr();
        let mut i = 0;
        while i < body {
            let flush_end = (i + FLUSH).min(body);
            let mut s1 = _mm512_setzero_ps();
            let mut s2 = [_mm512_setzero_ps(); 2];
            while i < flush_end {
                let x: [__m512; 4] = std::array::from_fn(|k| _mm512_loadu_ps(p.add(i + 16 * k)));
                // Biased exponents: (bits << 1) >> 24.
                let e: [__m512i; 4] = std::array::from_fn(|k| {
                    _mm512_srli_epi32::<24>(_mm512_slli_epi32::<1>(_mm512_castps_si512(x[k])))
                });
                vmin = _mm512_min_ps(
                    vmin,
                    _mm512_min_ps(_mm512_min_ps(x[0], x[1]), _mm512_min_ps(x[2], x[3])),
                );
                vmax = _mm512_max_ps(
                    vmax,
                    _mm512_max_ps(_mm512_max_ps(x[0], x[1]), _mm512_max_ps(x[2], x[3])),
                );
                let d: [__m512; 4] = std::array::from_fn(|k| _mm512_sub_ps(x[k], vc));
                s1 = _mm512_add_ps(
                    s1,
                    _mm512_add_ps(_mm512_add_ps(d[0], d[1]), _mm512_add_ps(d[2], d[3])),
                );
                s2[0] = _mm512_fmadd_ps(d[0], d[0], s2[0]);
                s2[1] = _mm512_fmadd_ps(d[1], d[1], s2[1]);
                s2[0] = _mm512_fmadd_ps(d[2], d[2], s2[0]);
                s2[1] = _mm512_fmadd_ps(d[3], d[3], s2[1]);
                for xk in x {
                    let z = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(xk, zero);
                    zeros = _mm512_mask_add_epi32(zeros, z, zeros, one);
                    if CHECK {
                        let r =
                            _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(xk);
                        let ni = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(xk, r);
                        nonint = _mm512_mask_add_epi32(nonint, ni, nonint, one);
                    }
                }
                // As in `fused_body`: exponents packed to bytes (exact), a saturating
                // subtract and a clamp give the bins, in another order within the group.
                let ab = _mm512_packs_epi32(e[0], e[1]);
                let cd = _mm512_packs_epi32(e[2], e[3]);
                let e8 = _mm512_packus_epi16(ab, cd);
                emax = _mm512_max_epu8(emax, e8);
                let bins8 = _mm512_min_epu8(_mm512_subs_epu8(e8, exp_bias), top_bin);
                _mm512_storeu_si512(bp.add(i).cast(), bins8);
                i += GROUP;
            }
            t1 = _mm512_add_pd(t1, widen_sum512(s1));
            t2 = _mm512_add_pd(t2, widen_sum512(_mm512_add_ps(s2[0], s2[1])));
        }
        if _mm512_cmpeq_epi8_mask(emax, _mm512_set1_epi8(-1)) != 0 {
            return None;
        }
        // Down to the 8 lanes the shared tail expects: halves folded (min, max exactly).
        let halves_ps = |v: __m512| {
            (
                _mm512_castps512_ps256(v),
                _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
            )
        };
        let halves_si = |v: __m512i| (_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
        let (min_lo, min_hi) = halves_ps(vmin);
        let (max_lo, max_hi) = halves_ps(vmax);
        let (z_lo, z_hi) = halves_si(zeros);
        let (n_lo, n_hi) = halves_si(nonint);
        let mut lanes = FusedLanes {
            min: [0.0; 8],
            max: [0.0; 8],
            zeros: [0; 8],
            non_integer: [0; 8],
        };
        _mm256_storeu_ps(lanes.min.as_mut_ptr(), _mm256_min_ps(min_lo, min_hi));
        _mm256_storeu_ps(lanes.max.as_mut_ptr(), _mm256_max_ps(max_lo, max_hi));
        _mm256_storeu_si256(
            lanes.zeros.as_mut_ptr().cast(),
            _mm256_add_epi32(z_lo, z_hi),
        );
        _mm256_storeu_si256(
            lanes.non_integer.as_mut_ptr().cast(),
            _mm256_add_epi32(n_lo, n_hi),
        );
        let t1 = _mm512_reduce_add_pd(t1);
        let t2 = _mm512_reduce_add_pd(t2);
        finish_fused(xs, bins, body, c, CHECK, &lanes, t1, t2)
    }

    /// The 16 f32 lanes of `v` as f64, added in pairs: lanes l and l + 8 share an f64 lane.
    #[inline(always)]
    unsafe fn widen_sum512(v: __m512) -> __m512d {
        let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        _mm512_add_pd(
            _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
            _mm512_cvtps_pd(high),
        )
    }

    /// The 8 f32 lanes of `v` as f64, added in pairs: lanes l and l + 4 share an f64 lane.
    #[inline(always)]
    unsafe fn widen_sum(v: __m256) -> __m256d {
        _mm256_add_pd(
            _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
        )
    }

    #[inline(always)]
    unsafe fn hsum_pd(v: __m256d) -> f64 {
        let mut lanes = [0f64; 4];
        _mm256_storeu_pd(lanes.as_mut_ptr(), v);
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    use super::super::histogram::{BINS, EXP_BIAS};
    use super::{finish_fused, shift, FusedLanes, Moments, FLUSH};

    /// The simd128 twin of the AVX2 pass: groups of 16 values as four f32x4, the shifted
    /// sums in two accumulators (lanes 0-3 and 4-7, like one AVX register), flushed to f64
    /// every `FLUSH` values. None when the slice holds a NaN or Inf.
    pub(super) fn fused(xs: &[f32], check_integers: bool, bins: &mut [u8]) -> Option<Moments> {
        const GROUP: usize = 16;
        let body = xs.len() / GROUP * GROUP;
        let c = shift(xs);
        let vc = f32x4_splat(c);
        let zero = f32x4_splat(0.0);
        let exp_mask = u32x4_splat(0xff);
        let exp_bias = u8x16_splat(EXP_BIAS as u8);
        let top_bin = u8x16_splat(BINS as u8 - 1);
        let mut bad = u32x4_splat(0);
        let mut vmin = [f32x4_splat(f32::INFINITY); 2];
        let mut vmax = [f32x4_splat(f32::NEG_INFINITY); 2];
        let mut zeros = [u32x4_splat(0); 2];
        let mut nonint = [u32x4_splat(0); 2];
        let (mut t1, mut t2) = (0f64, 0f64);
        let p = xs.as_ptr();
        let bp = bins.as_mut_ptr();
        let mut i = 0;
        while i < body {
            let flush_end = (i + FLUSH).min(body);
            let mut s1 = [f32x4_splat(0.0); 2];
            let mut s2 = [f32x4_splat(0.0); 2];
            while i < flush_end {
                let mut e = [u32x4_splat(0); 4];
                for (k, slot) in e.iter_mut().enumerate() {
                    let h = k % 2;
                    // SAFETY: i + 16 <= body <= xs.len().
                    let x = unsafe { v128_load(p.add(i + 4 * k).cast()) };
                    let ek = v128_and(u32x4_shr(x, 23), exp_mask);
                    // An all-ones exponent is NaN or +-Inf.
                    bad = v128_or(bad, i32x4_eq(ek, exp_mask));
                    vmin[h] = f32x4_pmin(vmin[h], x);
                    vmax[h] = f32x4_pmax(vmax[h], x);
                    let d = f32x4_sub(x, vc);
                    s1[h] = f32x4_add(s1[h], d);
                    s2[h] = f32x4_add(s2[h], f32x4_mul(d, d));
                    zeros[h] = i32x4_sub(zeros[h], f32x4_eq(x, zero));
                    if check_integers {
                        nonint[h] = i32x4_sub(nonint[h], f32x4_ne(x, f32x4_trunc(x)));
                    }
                    *slot = ek;
                }
                // Biased exponents are 0..=255: narrowing to bytes is exact and keeps order.
                let e8 = u8x16_narrow_i16x8(
                    u16x8_narrow_i32x4(e[0], e[1]),
                    u16x8_narrow_i32x4(e[2], e[3]),
                );
                let b = u8x16_min(u8x16_sub_sat(e8, exp_bias), top_bin);
                // SAFETY: i + 16 <= body <= bins.len().
                unsafe { v128_store(bp.add(i).cast(), b) };
                i += GROUP;
            }
            for v in s1 {
                t1 += hsum_f64(v);
            }
            for v in s2 {
                t2 += hsum_f64(v);
            }
        }
        if v128_any_true(bad) {
            return None;
        }
        let mut lanes = FusedLanes {
            min: [0.0; 8],
            max: [0.0; 8],
            zeros: [0; 8],
            non_integer: [0; 8],
        };
        for h in 0..2 {
            for l in 0..4 {
                lanes.min[4 * h + l] = lane_f32(vmin[h], l);
                lanes.max[4 * h + l] = lane_f32(vmax[h], l);
                lanes.zeros[4 * h + l] = lane_u32(zeros[h], l);
                lanes.non_integer[4 * h + l] = lane_u32(nonint[h], l);
            }
        }
        finish_fused(xs, bins, body, c, check_integers, &lanes, t1, t2)
    }

    #[inline(always)]
    fn lane_f32(v: v128, l: usize) -> f32 {
        match l {
            0 => f32x4_extract_lane::<0>(v),
            1 => f32x4_extract_lane::<1>(v),
            2 => f32x4_extract_lane::<2>(v),
            _ => f32x4_extract_lane::<3>(v),
        }
    }

    #[inline(always)]
    fn lane_u32(v: v128, l: usize) -> u32 {
        match l {
            0 => u32x4_extract_lane::<0>(v),
            1 => u32x4_extract_lane::<1>(v),
            2 => u32x4_extract_lane::<2>(v),
            _ => u32x4_extract_lane::<3>(v),
        }
    }

    #[inline(always)]
    fn hsum_f64(v: v128) -> f64 {
        f32x4_extract_lane::<0>(v) as f64
            + f32x4_extract_lane::<1>(v) as f64
            + f32x4_extract_lane::<2>(v) as f64
            + f32x4_extract_lane::<3>(v) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testrng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The fast path (AVX2 or simd128 where present) against the portable path: bins (as a
    /// multiset: the AVX2 pass stores them in another order within 32) and every count, min
    /// and max exactly, mean and m2 up to the rounding of the f32 lanes.
    fn check_fast_against_portable(xs: &[f32], what: &str) {
        for check in [true, false] {
            let mut b2 = vec![0xddu8; xs.len()];
            let slow = portable(xs, check, &mut b2);
            b2.sort_unstable();
            for (path, mut b1, fast) in fast_paths(xs, check) {
                let what = format!("{what}, {path}");
                b1.sort_unstable();
                assert_eq!(b1, b2, "bins, {what}");
                compare_moments(&fast, &slow, &what);
            }
        }
    }

    /// The dispatch's result, and on x86 also the AVX2 pass's where the dispatch takes the
    /// AVX-512 one (None from a fused pass: the slice holds NaN or Inf, nothing to compare).
    fn fast_paths(xs: &[f32], check: bool) -> Vec<(&'static str, Vec<u8>, Moments)> {
        let mut bins = vec![0xeeu8; xs.len()];
        let m = Moments::scan(xs, check, &mut bins);
        let mut out = vec![("dispatch", bins, m)];
        #[cfg(target_arch = "x86_64")]
        if super::super::x86_fast() {
            let mut bins = vec![0xeeu8; xs.len()];
            // SAFETY: AVX2 and FMA are present (checked just above).
            if let Some(m) = unsafe { x86::fused(xs, check, &mut bins) } {
                out.push(("avx2", bins, m));
            }
        }
        out
    }

    fn compare_moments(fast: &Moments, slow: &Moments, what: &str) {
        assert_eq!(
            (
                fast.n,
                fast.min,
                fast.max,
                fast.zeros,
                fast.non_integer,
                fast.nan,
                fast.inf
            ),
            (
                slow.n,
                slow.min,
                slow.max,
                slow.zeros,
                slow.non_integer,
                slow.nan,
                slow.inf
            ),
            "{what}"
        );
        let n = slow.n.max(1) as f64;
        let spread = (slow.m2.max(fast.m2) / n).sqrt();
        let scale = spread.max(slow.mean.abs()).max(1e-30);
        assert!(
            (fast.mean - slow.mean).abs() <= 1e-6 * scale,
            "{what}: mean {} vs {}",
            fast.mean,
            slow.mean
        );
        // Squares below f32's smallest subnormal vanish in the f32 lanes: an absolute
        // floor of 2^-149 per value.
        assert!(
            (fast.m2 - slow.m2).abs() <= 1e-5 * slow.m2 + 1e-6 * n * scale * scale + n * 1.5e-45,
            "{what}: m2 {} vs {}",
            fast.m2,
            slow.m2
        );
    }

    /// Random slices of every length class (shorter than a group, across `FLUSH`
    /// boundaries, with a tail), of values that stress the pass: zeros of both signs,
    /// subnormals, integers, large offsets, and NaN/Inf (which send it to the portable path).
    fn random_slice(rng: &mut Rng, n: usize) -> Vec<f32> {
        let offset = rng.pick(&[0.0f32, 1.0, -3.5, 1e4]);
        let scale = rng.pick(&[1.0f32, 1e-3, 40.0, 1e-30]);
        let special = rng.below(4) == 0;
        (0..n)
            .map(|_| {
                let x = offset + scale * rng.unit();
                match rng.below(if special { 12 } else { 40 }) {
                    0 => 0.0,
                    1 => -0.0,
                    2 => x.round(),
                    3 => f32::from_bits(rng.next() as u32 & 0x807f_ffff),
                    4 if special => rng.pick(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
                    _ => x,
                }
            })
            .collect()
    }

    #[test]
    fn random_slices_agree_with_the_portable_path() {
        let mut rng = Rng::new(0x00c0_ffee);
        for case in 0..400 {
            let n = match case % 4 {
                0 => rng.below(40),
                1 => FLUSH * (1 + rng.below(3)) + rng.below(3) * 16,
                2 => rng.below(2 * FLUSH + 40),
                _ => rng.below(4097),
            };
            let xs = random_slice(&mut rng, n);
            check_fast_against_portable(&xs, &format!("case {case}, n={n}"));
        }
    }

    /// The same comparison on proptest's inputs (natively; the fixed-seed test above also
    /// runs on wasm32).
    #[cfg(not(target_arch = "wasm32"))]
    mod prop {
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn fast_path_matches_portable(
                bits in proptest::collection::vec(any::<u32>(), 0..700),
                offset in -100f32..100.0,
                finite in any::<bool>(),
            ) {
                let xs: Vec<f32> = bits
                    .iter()
                    .map(|&b| {
                        let x = f32::from_bits(b);
                        if x.is_finite() {
                            // Magnitudes whose sums of squares stay finite in f32.
                            x.clamp(-1e15, 1e15) + offset
                        } else if finite {
                            offset + (b % 1000) as f32 * 0.01
                        } else {
                            x
                        }
                    })
                    .collect();
                super::check_fast_against_portable(&xs, "proptest");
            }
        }
    }

    fn naive(xs: &[f32]) -> (u64, f64, f64) {
        let f: Vec<f64> = xs
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| x as f64)
            .collect();
        let n = f.len() as f64;
        let mean = f.iter().sum::<f64>() / n;
        let m2 = f.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        (f.len() as u64, mean, m2)
    }

    fn lcg_values(n: usize, seed: u64, offset: f32, scale: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                offset + scale * (((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5)
            })
            .collect()
    }

    #[test]
    fn counts_and_moments_match_a_naive_computation() {
        let mut xs = lcg_values(1003, 7, 0.0, 2.0);
        xs[3] = f32::NAN;
        xs[10] = f32::INFINITY;
        xs[11] = f32::NEG_INFINITY;
        xs[12] = 0.0;
        xs[13] = -0.0;
        xs[14] = 3.0;
        xs[1002] = f32::NAN; // in the scalar tail
        let m = Moments::of(&xs);
        let (n, mean, m2) = naive(&xs);
        assert_eq!(m.n, n);
        assert_eq!(m.nan, 2);
        assert_eq!(m.inf, 2);
        assert_eq!(m.zeros, 2);
        assert_eq!(m.non_integer, n - 3);
        assert!((m.mean - mean).abs() < 1e-7, "{} vs {mean}", m.mean);
        assert!((m.m2 - m2).abs() / m2 < 1e-5, "{} vs {m2}", m.m2);
        let finite = xs.iter().filter(|x| x.is_finite());
        assert_eq!(m.min, finite.clone().copied().fold(f32::INFINITY, f32::min));
        assert_eq!(m.max, finite.copied().fold(f32::NEG_INFINITY, f32::max));
    }

    #[test]
    fn variance_survives_a_large_mean() {
        // A norm-like tensor: values near 1 with a tiny spread; naive sum-of-squares in f32
        // would lose the variance entirely.
        let xs = lcg_values(4096, 3, 1.0, 1e-3);
        let m = Moments::of(&xs);
        let (_, mean, m2) = naive(&xs);
        assert!((m.mean - mean).abs() < 1e-9);
        assert!((m.m2 - m2).abs() / m2 < 1e-4, "{} vs {m2}", m.m2);
    }

    #[test]
    fn merging_slices_equals_one_pass() {
        let xs = lcg_values(10_000, 11, 0.3, 5.0);
        let whole = Moments::of(&xs);
        let mut merged = Moments::default();
        for c in xs.chunks(777) {
            merged.merge(&Moments::of(c));
        }
        assert_eq!(merged.n, whole.n);
        assert_eq!(merged.min, whole.min);
        assert_eq!(merged.max, whole.max);
        assert!(
            (merged.mean - whole.mean).abs() < 1e-7,
            "{} vs {}",
            merged.mean,
            whole.mean
        );
        assert!((merged.m2 - whole.m2).abs() / whole.m2 < 1e-6);
        assert!(
            (merged.sum_sq() - xs.iter().map(|&x| (x as f64).powi(2)).sum::<f64>()).abs() < 1e-3
        );
    }

    #[test]
    fn fast_path_agrees_with_the_portable_path() {
        for (n, offset) in [(4096usize, 0.0f32), (1000, 3.0), (33, -1.0), (7, 0.5)] {
            let mut xs = lcg_values(n, n as u64, offset, 2.0);
            for (i, x) in xs.iter_mut().enumerate() {
                if i % 17 == 0 {
                    *x = x.round();
                }
                if i % 29 == 0 {
                    *x = 0.0;
                }
                if i % 101 == 0 {
                    *x *= 1e-20;
                }
            }
            check_fast_against_portable(&xs, &format!("n={n}"));
        }
    }

    #[test]
    fn all_nonfinite_slice_has_no_moments() {
        let m = Moments::of(&[f32::NAN, f32::INFINITY]);
        assert_eq!((m.n, m.nan, m.inf), (0, 1, 1));
        assert_eq!(m.min, f32::INFINITY);
        let mut a = Moments::default();
        a.merge(&m);
        assert_eq!(a.n, 0);
        assert_eq!(a.nan, 1);
    }
}
