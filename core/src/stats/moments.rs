//! Streaming moments over one slice of values, merged with Chan et al.'s parallel update,
//! and the histogram bin of every value.
//!
//! The hot loop works in f32 lanes over an L1-sized slice; everything that crosses slices is
//! f64. To keep the f32 part accurate the sums are of `x - c` around a shift `c` close to
//! the slice's mean (the mean of its first values), so squares stay small and nothing
//! cancels catastrophically; lanes are flushed to f64 every `FLUSH` values.
//!
//! x86_64 with AVX2 takes a fused single pass (intrinsics) for slices without NaN/Inf; every
//! other case, and every other target, takes the portable path, which is also the oracle
//! the fast path is tested against.

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
        {
            if avx2_available() {
                // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                if let Some(m) = unsafe { x86::fused(xs, check_integers, bins) } {
                    return m;
                }
            }
        }
        portable(xs, check_integers, bins)
    }
}

/// Shift for the deviation sums: the mean of the first finite values, near the slice mean.
fn shift(xs: &[f32]) -> f32 {
    let head = xs.iter().take(LANES).filter(|x| x.is_finite());
    let (s, k) = head.fold((0f32, 0u32), |(s, k), &x| (s + x, k + 1));
    if k == 0 {
        0.0
    } else {
        s / k as f32
    }
}

/// Finish moments from deviation sums around `c`.
fn from_sums(m: &mut Moments, c: f32, t1: f64, t2: f64) {
    if m.n == 0 {
        return;
    }
    let n = m.n as f64;
    m.mean = c as f64 + t1 / n;
    m.m2 = (t2 - t1 * t1 / n).max(0.0);
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0 = unknown, 1 = no, 2 = yes: the feature probe is cheap but not free.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
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
            m.n += 1;
            m.min = m.min.min(x);
            m.max = m.max.max(x);
            m.zeros += (x == 0.0) as u64;
            m.non_integer += (!check_integers || x != x.trunc()) as u64;
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{from_sums, shift, Moments, FLUSH};

    /// One pass over `xs` with AVX2: None when the slice holds a NaN or Inf (the portable
    /// path then counts them).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fused(
        xs: &[f32],
        check_integers: bool,
        bins: &mut [u8],
    ) -> Option<Moments> {
        const GROUP: usize = 32;
        let body = xs.len() / GROUP * GROUP;
        let c = shift(xs);
        let vc = _mm256_set1_ps(c);
        let zero = _mm256_setzero_ps();
        let exp_mask = _mm256_set1_epi32(0xff);
        let exp_bias = _mm256_set1_epi8(super::super::histogram::EXP_BIAS as i8);
        let top_bin = _mm256_set1_epi8(super::super::histogram::BINS as i8 - 1);
        let izero = _mm256_setzero_si256();
        let mut bad = _mm256_setzero_si256();
        let mut vmin = _mm256_set1_ps(f32::INFINITY);
        let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut zeros = _mm256_setzero_si256();
        let mut nonint = _mm256_setzero_si256();
        let (mut t1, mut t2) = (0f64, 0f64);
        let p = xs.as_ptr();
        let bp = bins.as_mut_ptr();
        let mut i = 0;
        while i < body {
            let flush_end = (i + FLUSH).min(body);
            let mut s1 = _mm256_setzero_ps();
            let mut s2 = _mm256_setzero_ps();
            while i < flush_end {
                let mut idx = [izero; 4];
                for (k, slot) in idx.iter_mut().enumerate() {
                    let x = _mm256_loadu_ps(p.add(i + 8 * k));
                    let e =
                        _mm256_and_si256(_mm256_srli_epi32::<23>(_mm256_castps_si256(x)), exp_mask);
                    // An all-ones exponent is NaN or +-Inf.
                    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(e, exp_mask));
                    vmin = _mm256_min_ps(vmin, x);
                    vmax = _mm256_max_ps(vmax, x);
                    let d = _mm256_sub_ps(x, vc);
                    s1 = _mm256_add_ps(s1, d);
                    s2 = _mm256_fmadd_ps(d, d, s2);
                    let z = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_EQ_OQ>(x, zero));
                    zeros = _mm256_sub_epi32(zeros, z);
                    if check_integers {
                        let r = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
                        let ni = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_NEQ_UQ>(x, r));
                        nonint = _mm256_sub_epi32(nonint, ni);
                    }
                    *slot = e;
                }
                // Biased exponents are 0..=255, so packing them to bytes is exact; the bin is
                // then a saturating subtract and a clamp on 32 bytes at once. The lane order
                // changes, which a histogram does not care about.
                let ab = _mm256_packs_epi32(idx[0], idx[1]);
                let cd = _mm256_packs_epi32(idx[2], idx[3]);
                let e8 = _mm256_packus_epi16(ab, cd);
                let bins8 = _mm256_min_epu8(_mm256_subs_epu8(e8, exp_bias), top_bin);
                _mm256_storeu_si256(bp.add(i) as *mut __m256i, bins8);
                i += GROUP;
            }
            t1 += hsum_f64(s1);
            t2 += hsum_f64(s2);
        }
        if _mm256_movemask_epi8(bad) != 0 {
            return None;
        }
        let mut m = Moments::default();
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), vmin);
        m.min = lanes.iter().copied().fold(f32::INFINITY, f32::min);
        _mm256_storeu_ps(lanes.as_mut_ptr(), vmax);
        m.max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut ints = [0u32; 8];
        _mm256_storeu_si256(ints.as_mut_ptr() as *mut __m256i, zeros);
        m.zeros = ints.iter().map(|&v| v as u64).sum();
        _mm256_storeu_si256(ints.as_mut_ptr() as *mut __m256i, nonint);
        m.non_integer = ints.iter().map(|&v| v as u64).sum();
        m.n = body as u64;
        if !check_integers {
            m.non_integer = body as u64;
        }
        for (j, &x) in xs[body..].iter().enumerate() {
            if !x.is_finite() {
                return None;
            }
            bins[body + j] = super::bin_of(x);
            m.n += 1;
            m.min = m.min.min(x);
            m.max = m.max.max(x);
            m.zeros += (x == 0.0) as u64;
            m.non_integer += (!check_integers || x != x.trunc()) as u64;
            let d = (x - c) as f64;
            t1 += d;
            t2 += d * d;
        }
        from_sums(&mut m, c, t1, t2);
        Some(m)
    }

    #[inline(always)]
    unsafe fn hsum_f64(v: __m256) -> f64 {
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), v);
        lanes.iter().map(|&x| x as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            for check in [true, false] {
                let (mut b1, mut b2) = (vec![0u8; n], vec![0u8; n]);
                let fast = Moments::scan(&xs, check, &mut b1);
                let slow = portable(&xs, check, &mut b2);
                b1.sort_unstable();
                b2.sort_unstable();
                assert_eq!(b1, b2, "bins, n={n}");
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
                    "n={n}"
                );
                assert!((fast.mean - slow.mean).abs() < 1e-6, "n={n}");
                assert!(
                    (fast.m2 - slow.m2).abs() <= 1e-5 * slow.m2.max(1e-12),
                    "n={n}"
                );
            }
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
