//! A fixed 64-bin histogram of |x| on a log2 scale.
//!
//! Why log2 of |x| rather than linear bins over [min, max]: a streaming scan does not know a
//! tensor's range before it has read it, and bins chosen per chunk cannot be merged. Octave
//! bins are fixed in advance, so any chunking and any merge order give the same counts, and
//! they cover both 1e-6 weights and 1e4 outliers without a first pass. The bin is the f32
//! exponent, so placing a value costs a shift and a clamp.

use serde::{Deserialize, Serialize};

pub const BINS: usize = 64;
/// Bin 1 starts at 2^MIN_EXP; bin 0 holds everything smaller (zeros, subnormals).
pub const MIN_EXP: i32 = -40;
/// f32 biased exponent that maps to bin 1.
pub(crate) const EXP_BIAS: u32 = (127 + MIN_EXP - 1) as u32;
/// Where non-finite values go: a discard slot past the last bin.
pub(crate) const DISCARD: u8 = BINS as u8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Always "log2_abs": bin 0 counts |x| < 2^min_exp (zeros included), bin i in 1..=62
    /// counts 2^(min_exp+i-1) <= |x| < 2^(min_exp+i), bin 63 counts |x| >= 2^(min_exp+62).
    pub scale: String,
    pub min_exp: i32,
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Lower edge of bin `i` (0 for bin 0).
    pub fn lower_edge(&self, i: usize) -> f64 {
        if i == 0 {
            0.0
        } else {
            2f64.powi(self.min_exp + i as i32 - 1)
        }
    }
}

/// Counts being accumulated (merging is element-wise addition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramAcc {
    pub counts: [u64; BINS],
}

impl Default for HistogramAcc {
    fn default() -> Self {
        HistogramAcc { counts: [0; BINS] }
    }
}

/// The bin of one value (`DISCARD` for NaN and Inf).
#[inline(always)]
pub fn bin_of(x: f32) -> u8 {
    let e = (x.to_bits() >> 23) & 0xff;
    if e == 0xff {
        DISCARD
    } else {
        (e.saturating_sub(EXP_BIAS)).min(BINS as u32 - 1) as u8
    }
}

impl HistogramAcc {
    pub fn add_slice(&mut self, xs: &[f32]) {
        let bins: Vec<u8> = xs.iter().map(|&x| bin_of(x)).collect();
        self.add_bins(&bins);
    }

    /// Count precomputed bins (as `bin_of` gives them; anything above `DISCARD` is
    /// discarded).
    pub fn add_bins(&mut self, bins: &[u8]) {
        // Four interleaved tables so consecutive increments of the same bin do not wait on
        // each other (a store-to-load dependency otherwise serializes the loop); u32 counts
        // are flushed long before they could overflow.
        let mut t = [[0u32; BINS + 1]; 4];
        for big in bins.chunks(1 << 30) {
            let quads = big.chunks_exact(4);
            let tail = quads.remainder();
            for q in quads {
                t[0][q[0].min(DISCARD) as usize] += 1;
                t[1][q[1].min(DISCARD) as usize] += 1;
                t[2][q[2].min(DISCARD) as usize] += 1;
                t[3][q[3].min(DISCARD) as usize] += 1;
            }
            for &b in tail {
                t[0][b.min(DISCARD) as usize] += 1;
            }
            for (i, c) in self.counts.iter_mut().enumerate() {
                *c += (t[0][i] + t[1][i] + t[2][i] + t[3][i]) as u64;
            }
            t = [[0u32; BINS + 1]; 4];
        }
    }

    /// Add what a pair table counted.
    pub fn add_pairs(&mut self, pairs: &mut PairCounts) {
        pairs.flush_into(&mut self.counts);
    }

    pub fn merge(&mut self, o: &HistogramAcc) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }

    pub fn finish(&self) -> Histogram {
        Histogram {
            scale: "log2_abs".to_string(),
            min_exp: MIN_EXP,
            counts: self.counts.to_vec(),
        }
    }
}

/// Entries per side of the pair table: the 64 bins plus the discard bin.
const SIDE: usize = BINS + 1;
/// Pairs a u16 table entry can take before it must be flushed.
const PAIR_FLUSH: u32 = u16::MAX as u32;

/// Counts of bin pairs: one table increment per two values, which halves the cost of the
/// scatter that dominates a histogram (the pair's order is irrelevant: both halves go to
/// their own bins on flush). Two tables of u16 (17 KB) stay in L1 next to the value buffer.
///
/// The pair indexes (`first * 65 + second`) of a whole buffer are built first with SIMD
/// (`pair_indexes`) into a scratch array, then the scatter loop reads one u16 per increment.
///
/// CPUs with AVX-512 VBMI, BITALG and GFNI count the bins without tables
/// (`x86::count_by_bits`), straight into the histogram.
#[derive(Default)]
pub struct PairCounts {
    /// Allocated on first use: the bit-counting path never needs them.
    tables: Vec<u16>,
    /// Pair indexes of the bins being counted (scratch, reused).
    idx: Vec<u16>,
    /// Pairs counted per table since the last flush.
    pending: u32,
}

impl PairCounts {
    /// Count precomputed bins (as `bin_of` gives them; anything above `DISCARD` is
    /// discarded); the last `len % 4` bins go to `single`.
    pub fn add_bins(&mut self, bins: &[u8], single: &mut HistogramAcc) {
        #[cfg(target_arch = "x86_64")]
        if x86::bit_counting() {
            // SAFETY: the CPU features it needs are present (checked just above).
            unsafe { x86::count_by_bits(bins, &mut single.counts) };
            return;
        }
        self.add_bins_by_pairs(bins, single);
    }

    /// `add_bins` through the pair tables, whatever the CPU.
    fn add_bins_by_pairs(&mut self, bins: &[u8], single: &mut HistogramAcc) {
        let whole = bins.len() & !3;
        let (body, tail) = bins.split_at(whole);
        if self.idx.len() < whole / 2 {
            self.idx.resize(whole / 2, 0);
        }
        if self.tables.is_empty() {
            self.tables = vec![0; 2 * SIDE * SIDE];
        }
        let idx = &mut self.idx[..whole / 2];
        pair_indexes(body, idx);
        let (t0, t1) = self.tables.split_at_mut(SIDE * SIDE);
        let mut rest: &[u16] = idx;
        while !rest.is_empty() {
            let room = (PAIR_FLUSH - self.pending) as usize;
            if room == 0 {
                Self::flush_tables(t0, t1, &mut single.counts);
                self.pending = 0;
                continue;
            }
            // Pairs alternate between the tables: 2 * room pairs fill both.
            let take = rest.len().min(2 * room);
            let (now, later) = rest.split_at(take);
            assert!(t0.len() >= SIDE * SIDE && t1.len() >= SIDE * SIDE);
            for p in now.chunks_exact(2) {
                // SAFETY: `pair_indexes` clamps bins to DISCARD, so every index is at most
                // DISCARD * SIDE + DISCARD < SIDE * SIDE, the tables' length (asserted).
                unsafe {
                    *t0.get_unchecked_mut(p[0] as usize) += 1;
                    *t1.get_unchecked_mut(p[1] as usize) += 1;
                }
            }
            self.pending += (take / 2) as u32;
            rest = later;
        }
        for &b in tail {
            if (b as usize) < BINS {
                single.counts[b as usize] += 1;
            }
        }
    }

    /// Add every pair to both of its bins and clear the tables: row sums give the first
    /// halves, column sums the second (no division by the side length).
    fn flush_tables(t0: &mut [u16], t1: &mut [u16], counts: &mut [u64; BINS]) {
        let mut cols = [0u32; SIDE];
        for t in [t0, t1] {
            for (a, row) in t.chunks_exact(SIDE).enumerate() {
                let mut sum = 0u32;
                for (c, &v) in cols.iter_mut().zip(row) {
                    *c += v as u32;
                    sum += v as u32;
                }
                if a < BINS {
                    counts[a] += sum as u64;
                }
            }
            t.fill(0);
        }
        for (c, &v) in counts.iter_mut().zip(&cols) {
            *c += v as u64;
        }
    }

    fn flush_into(&mut self, counts: &mut [u64; BINS]) {
        if self.pending == 0 {
            return;
        }
        let (t0, t1) = self.tables.split_at_mut(SIDE * SIDE);
        Self::flush_tables(t0, t1, counts);
        self.pending = 0;
    }
}

/// `idx[k] = bins[2k] * 65 + bins[2k + 1]` (SIDE = 65), bins above `DISCARD` taken as
/// `DISCARD`: every index is below SIDE * SIDE.
pub(crate) fn pair_indexes(bins: &[u8], idx: &mut [u16]) {
    debug_assert_eq!(bins.len(), 2 * idx.len());
    #[cfg(target_arch = "x86_64")]
    if super::x86_fast() {
        // SAFETY: AVX2 is present (checked at run time).
        unsafe { x86::pair_indexes(bins, idx) };
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        wasm::pair_indexes(bins, idx);
        return;
    }
    #[allow(unreachable_code)]
    pair_indexes_scalar(bins, idx)
}

/// The reference for `pair_indexes`.
pub(crate) fn pair_indexes_scalar(bins: &[u8], idx: &mut [u16]) {
    for (o, p) in idx.iter_mut().zip(bins.chunks_exact(2)) {
        *o = p[0].min(DISCARD) as u16 * SIDE as u16 + p[1].min(DISCARD) as u16;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BINS, DISCARD};

    /// Whether `count_by_bits` can run (AVX-512 BW, VBMI, BITALG and GFNI), checked once.
    pub(super) fn bit_counting() -> bool {
        static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
        super::super::probed_once(&STATE, || {
            std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vbmi")
                && std::is_x86_feature_detected!("avx512bitalg")
                && std::is_x86_feature_detected!("gfni")
        })
    }

    /// Vectors whose byte counters are widened before they can wrap (each adds at most 8).
    const FLUSH_VECTORS: usize = 31;
    /// Flushes before the u16 counters are folded into the histogram (each adds at most
    /// 8 * 31 = 248 to a counter).
    const FOLD_FLUSHES: usize = 256;

    /// Count `bins` (anything from `DISCARD` up discarded) into `counts`.
    ///
    /// The bins present in the buffer (bin 0, and the range from the smallest nonzero to the
    /// largest kept bin) are split into groups of 8. Per group and 64 values: a table lookup
    /// (`vpermb`) turns each bin of the group into a one-hot byte (1 << its place in the
    /// group; 0 for other bins), an 8x8 bit transpose per 8 values (`gf2p8affineqb` with the
    /// data as the matrix) gathers, for each place, which of the 8 values hold it, and
    /// `vpopcntb` counts them into byte counters. Four instructions per 8 bins and 64
    /// values, where the pair tables make a dependent increment per two values.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bitalg,gfni,popcnt")]
    pub(super) unsafe fn count_by_bits(bins: &[u8], counts: &mut [u64; BINS]) {
        let n = bins.len();
        let (full, rest) = (n / 64, n % 64);
        let tail = if rest == 0 { 0 } else { (1u64 << rest) - 1 };
        let p = bins.as_ptr();
        let discard = _mm512_set1_epi8(DISCARD as i8);
        // SAFETY (loads): vector k < full covers bytes 64k..64k + 64 <= n; the tail load
        // reads only the `rest` bytes its mask selects (masked-off bytes are not accessed).
        // Returns the vector and which of its bytes are kept bins.
        let vector = |k: usize| unsafe {
            if k < full {
                let v = _mm512_loadu_si512(p.add(64 * k).cast());
                (v, _mm512_cmplt_epu8_mask(v, discard))
            } else {
                let v = _mm512_maskz_loadu_epi8(tail, p.add(64 * full).cast());
                (v, _mm512_cmplt_epu8_mask(v, discard) & tail)
            }
        };
        let vectors = full + (tail != 0) as usize;
        // Which bins to count: the smallest nonzero and the largest kept bin, and whether
        // bin 0 occurs (zeros sit far below the rest in quantized tensors). Wrapping adds
        // make them plain byte minima and maxima: `v - 1` puts zeros above every bin and
        // discarded bins above the kept ones, `v + 192` puts discarded bins below them.
        let (one, up) = (_mm512_set1_epi8(1), _mm512_set1_epi8(-64));
        let (mut below, mut lowest) = (_mm512_set1_epi8(-1), _mm512_set1_epi8(-1));
        let mut above = _mm512_setzero_si512();
        for k in 0..vectors {
            // SAFETY: as in `vector`; the tail's unread bytes read as discarded.
            let v = unsafe {
                if k < full {
                    _mm512_loadu_si512(p.add(64 * k).cast())
                } else {
                    _mm512_mask_loadu_epi8(discard, tail, p.add(64 * full).cast())
                }
            };
            lowest = _mm512_min_epu8(lowest, v);
            below = _mm512_min_epu8(below, _mm512_sub_epi8(v, one));
            above = _mm512_max_epu8(above, _mm512_add_epi8(v, up));
        }
        let zeros = smallest_byte(lowest) == 0;
        // 255 - smallest of the inverted bytes: the largest.
        let top = 255 - smallest_byte(_mm512_xor_si512(above, _mm512_set1_epi8(-1)));
        let (lo, hi) = if top >= 192 {
            (smallest_byte(below) as usize + 1, top as usize - 192)
        } else {
            // No kept bin (or only zeros).
            (1, 0)
        };
        let mut present = [0u8; BINS];
        let mut len = 0;
        for b in zeros.then_some(0).into_iter().chain(lo..hi + 1) {
            present[len] = b as u8;
            len += 1;
        }
        let groups = &present[..len];
        // One instance per group count, so that each keeps its tables and counters in
        // registers.
        match groups.len().div_ceil(8) {
            0 => {}
            1 => count_groups::<1>(groups, vectors, &vector, counts),
            2 => count_groups::<2>(groups, vectors, &vector, counts),
            3 => count_groups::<3>(groups, vectors, &vector, counts),
            4 => count_groups::<4>(groups, vectors, &vector, counts),
            5 => count_groups::<5>(groups, vectors, &vector, counts),
            6 => count_groups::<6>(groups, vectors, &vector, counts),
            7 => count_groups::<7>(groups, vectors, &vector, counts),
            _ => count_groups::<8>(groups, vectors, &vector, counts),
        }
    }

    /// The smallest of the 64 bytes of `v`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn smallest_byte(v: __m512i) -> u8 {
        let v32 = _mm256_min_epu8(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
        let v16 = _mm_min_epu8(
            _mm256_castsi256_si128(v32),
            _mm256_extracti128_si256::<1>(v32),
        );
        // Low byte of each u16: the smaller of its two bytes; `phminposuw` finds the least.
        let pairs = _mm_and_si128(
            _mm_min_epu8(v16, _mm_srli_epi16::<8>(v16)),
            _mm_set1_epi16(0xff),
        );
        _mm_extract_epi16::<0>(_mm_minpos_epu16(pairs)) as u8
    }

    /// `count_by_bits` for `G` groups of 8 of the bins in `present` (the last group may be
    /// shorter), over `vectors` vectors given by `vector`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512bitalg,gfni")]
    unsafe fn count_groups<const G: usize>(
        present: &[u8],
        vectors: usize,
        vector: &impl Fn(usize) -> (__m512i, __mmask64),
        counts: &mut [u64; BINS],
    ) {
        // Table g maps a bin of group g to 1 << its place in the group, every other bin to 0.
        let tables: [__m512i; G] = std::array::from_fn(|g| {
            let mut t = [0u8; 64];
            for (place, &b) in present.iter().skip(8 * g).take(8).enumerate() {
                t[b as usize] = 1 << place;
            }
            // SAFETY: AVX-512F is enabled in this function; `t` is 64 bytes.
            unsafe { _mm512_loadu_si512(t.as_ptr().cast()) }
        });
        // Byte i of each qword: 1 << i. With the data as the matrix, `gf2p8affineqb`
        // transposes each 8x8 bit block: byte i of the result holds bit i of each of the 8
        // bytes (in reverse order), so its popcount counts the bytes with bit i set.
        let columns = _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64);
        let zero = _mm512_setzero_si512();
        let mut k = 0;
        while k < vectors {
            // u16 counters: lane 8q + i of half h counts place i in qword 4h + q.
            let mut wide = [[zero; 2]; G];
            let fold_end = vectors.min(k + FLUSH_VECTORS * FOLD_FLUSHES);
            while k < fold_end {
                let end = fold_end.min(k + FLUSH_VECTORS);
                let mut narrow = [zero; G];
                while k < end {
                    let (v, keep) = vector(k);
                    for g in 0..G {
                        let one_hot = _mm512_maskz_permutexvar_epi8(keep, v, tables[g]);
                        let by_place = _mm512_gf2p8affine_epi64_epi8::<0>(columns, one_hot);
                        narrow[g] = _mm512_add_epi8(narrow[g], _mm512_popcnt_epi8(by_place));
                    }
                    k += 1;
                }
                for g in 0..G {
                    let low = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(narrow[g]));
                    let high = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64::<1>(narrow[g]));
                    wide[g][0] = _mm512_add_epi16(wide[g][0], low);
                    wide[g][1] = _mm512_add_epi16(wide[g][1], high);
                }
            }
            for (g, halves) in wide.iter().enumerate() {
                // u16 lane 8q + i counts place i: widen, and add the lanes of each place.
                let mut sum = zero;
                for &half in halves {
                    let low = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(half));
                    let high = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(half));
                    sum = _mm512_add_epi32(sum, _mm512_add_epi32(low, high));
                }
                let by_place = _mm256_add_epi32(
                    _mm512_castsi512_si256(sum),
                    _mm512_extracti64x4_epi64::<1>(sum),
                );
                let mut sums = [0u32; 8];
                _mm256_storeu_si256(sums.as_mut_ptr().cast(), by_place);
                for (&b, sum) in present.iter().skip(8 * g).take(8).zip(sums) {
                    counts[b as usize] += sum as u64;
                }
            }
        }
    }

    /// 32 bins at a time: `pmaddubsw` of the bins (unsigned) with (65, 1) byte pairs gives
    /// `first * 65 + second` in each 16-bit lane (at most 64 * 65 + 64: no saturation).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn pair_indexes(bins: &[u8], idx: &mut [u16]) {
        let n = idx.len().min(bins.len() / 2);
        let w = _mm256_set1_epi16(0x0141); // bytes (65, 1)
        let discard = _mm256_set1_epi8(super::DISCARD as i8);
        let mut k = 0;
        while k + 16 <= n {
            let b = _mm256_loadu_si256(bins.as_ptr().add(2 * k).cast());
            let p = _mm256_maddubs_epi16(_mm256_min_epu8(b, discard), w);
            _mm256_storeu_si256(idx.as_mut_ptr().add(k).cast(), p);
            k += 16;
        }
        super::pair_indexes_scalar(&bins[2 * k..2 * n], &mut idx[k..n]);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use std::arch::wasm32::*;

    /// 16 bins at a time: each 16-bit lane holds a pair (first in the low byte).
    pub(super) fn pair_indexes(bins: &[u8], idx: &mut [u16]) {
        let n = idx.len().min(bins.len() / 2);
        let (low, side) = (u16x8_splat(0xff), u16x8_splat(super::SIDE as u16));
        let discard = u8x16_splat(super::DISCARD);
        let mut k = 0;
        while k + 8 <= n {
            // SAFETY: 16 bytes at 2k and 8 u16 at k are in bounds (k + 8 <= n).
            unsafe {
                let b = u8x16_min(v128_load(bins.as_ptr().add(2 * k).cast()), discard);
                let p = i16x8_add(i16x8_mul(v128_and(b, low), side), u16x8_shr(b, 8));
                v128_store(idx.as_mut_ptr().add(k).cast(), p);
            }
            k += 8;
        }
        super::pair_indexes_scalar(&bins[2 * k..2 * n], &mut idx[k..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testrng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Both ways of counting: the dispatch (the bit counting on CPUs that have it) and the
    /// pair tables, which the dispatch skips on such CPUs.
    const PATHS: [fn(&mut PairCounts, &[u8], &mut HistogramAcc); 2] =
        [PairCounts::add_bins, PairCounts::add_bins_by_pairs];

    /// Random bins: mostly a few neighbouring octaves, as real tensors have, plus the
    /// extremes (0, 63) and the discard bin.
    fn random_bins(rng: &mut Rng, n: usize) -> Vec<u8> {
        let centre = 20 + rng.below(30) as u8;
        (0..n)
            .map(|_| match rng.below(16) {
                0 => DISCARD,
                1 => 0,
                2 => BINS as u8 - 1,
                3 => rng.below(SIDE) as u8,
                4 if rng.below(8) == 0 => rng.next() as u8,
                _ => centre + rng.below(5) as u8,
            })
            .collect()
    }

    #[test]
    fn simd_pair_indexes_match_the_reference() {
        let mut rng = Rng::new(0x5eed);
        for case in 0..300 {
            let n = if case < 70 { case } else { rng.below(5000) };
            let bins = random_bins(&mut rng, 2 * n);
            let mut fast = vec![0xdead; n];
            let mut slow = vec![0xbeef; n];
            pair_indexes(&bins, &mut fast);
            pair_indexes_scalar(&bins, &mut slow);
            assert_eq!(fast, slow, "case {case}, {n} pairs");
        }
        // Every pair of bins, the largest index included.
        let all: Vec<u8> = (0..SIDE as u8)
            .flat_map(|a| (0..SIDE as u8).flat_map(move |b| [a, b]))
            .collect();
        let mut idx = vec![0u16; all.len() / 2];
        pair_indexes(&all, &mut idx);
        assert!(idx.iter().enumerate().all(|(i, &v)| v as usize == i));
    }

    #[test]
    fn random_pair_counts_equal_single_counts() {
        let mut rng = Rng::new(42);
        for case in 0..40 {
            let n = rng.below(20_000);
            let bins = random_bins(&mut rng, n);
            let mut single = HistogramAcc::default();
            single.add_bins(&bins);
            for (path, add) in PATHS.iter().enumerate() {
                let mut paired = HistogramAcc::default();
                let mut pairs = PairCounts::default();
                let mut rest = &bins[..];
                while !rest.is_empty() {
                    let (now, later) = rest.split_at(rng.below(rest.len() + 1));
                    add(&mut pairs, now, &mut paired);
                    rest = later;
                }
                paired.add_pairs(&mut pairs);
                assert_eq!(single, paired, "case {case}, path {path}");
            }
        }
    }

    /// Bins confined to windows of every width up to 4 groups of 8 (x86's bit counting
    /// counts the bins present in groups of 8), at both ends of the range, with discarded
    /// bins (`DISCARD` and above) and, in the odd lengths, zeros far from the window mixed
    /// in; lengths that are and are not multiples of the 64-byte vector.
    #[test]
    fn windowed_bins_count_like_single_counts() {
        let mut rng = Rng::new(0x00c0_ffee);
        for width in 1..=33usize {
            for lo in [0, 1, 17, 40.min(BINS - width), BINS - width] {
                for n in [0, 1, 63, 64, 65, 200, 4096, 4097] {
                    let bins: Vec<u8> = (0..n)
                        .map(|_| match rng.below(50) {
                            0 => DISCARD,
                            1 => DISCARD + 1 + rng.below(190) as u8,
                            2 if n % 2 == 1 => 0,
                            _ => (lo + rng.below(width)) as u8,
                        })
                        .collect();
                    let mut single = HistogramAcc::default();
                    single.add_bins(&bins);
                    for (path, add) in PATHS.iter().enumerate() {
                        let mut paired = HistogramAcc::default();
                        let mut pairs = PairCounts::default();
                        add(&mut pairs, &bins, &mut paired);
                        paired.add_pairs(&mut pairs);
                        let what = format!("width {width} from {lo}, {n} bins, path {path}");
                        assert_eq!(single, paired, "{what}");
                    }
                }
            }
        }
        // Nothing but discarded bins; nothing but zeros and discarded bins; every bin.
        let zeros: Vec<u8> = (0..300)
            .map(|i| if i % 3 == 0 { 0 } else { DISCARD })
            .collect();
        let every: Vec<u8> = (0..5000).map(|i| (i % 70) as u8).collect();
        for add in PATHS {
            let mut h = HistogramAcc::default();
            let mut pairs = PairCounts::default();
            add(&mut pairs, &[DISCARD; 300], &mut h);
            h.add_pairs(&mut pairs);
            assert_eq!(h, HistogramAcc::default());
            add(&mut pairs, &zeros, &mut h);
            h.add_pairs(&mut pairs);
            assert_eq!(h.counts[0], 100);
            assert_eq!(h.counts.iter().sum::<u64>(), 100);
            let mut all = HistogramAcc::default();
            add(&mut pairs, &every, &mut all);
            all.add_pairs(&mut pairs);
            let mut single = HistogramAcc::default();
            single.add_bins(&every);
            assert_eq!(all, single);
        }
    }

    /// One bin over a million times in one call, then two bins alternating: past the
    /// counters' widths (u8 per 31 vectors, u16 per 7,936 vectors on x86's bit counting).
    #[test]
    fn long_runs_of_one_bin_count_exactly() {
        let n = 2 * 31 * 256 * 64 + 77;
        for bins in [
            vec![41u8; n],
            (0..n).map(|i| if i % 2 == 0 { 0 } else { 63 }).collect(),
        ] {
            let mut single = HistogramAcc::default();
            single.add_bins(&bins);
            for add in PATHS {
                let mut counted = HistogramAcc::default();
                let mut pairs = PairCounts::default();
                add(&mut pairs, &bins, &mut counted);
                counted.add_pairs(&mut pairs);
                assert_eq!(single, counted);
            }
        }
    }

    #[test]
    fn bins_follow_octaves() {
        let mut h = HistogramAcc::default();
        h.add_slice(&[
            0.0,
            -0.0,
            1e-30,                // below 2^-40
            1.0,                  // [2^0, 2^1): bin 41
            -1.5,                 // same octave
            2.0,                  // bin 42
            2f32.powi(-40),       // bin 1
            2f32.powi(21) * 1.99, // bin 62
            1e30,                 // bin 63
            f32::NAN,
            f32::INFINITY,
        ]);
        let c = h.counts;
        assert_eq!(c[0], 3);
        assert_eq!(c[1], 1);
        assert_eq!(c[41], 2);
        assert_eq!(c[42], 1);
        assert_eq!(c[62], 1);
        assert_eq!(c[63], 1);
        assert_eq!(c.iter().sum::<u64>(), 9, "non-finite values are not binned");
        let f = h.finish();
        assert_eq!(f.lower_edge(41), 1.0);
        assert_eq!(f.lower_edge(1), 2f64.powi(-40));
    }

    #[test]
    fn pair_counts_equal_single_counts() {
        let xs: Vec<f32> = (0..200_003)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.013 - 3.0)
            .collect();
        let mut bins: Vec<u8> = xs.iter().map(|&x| bin_of(x)).collect();
        bins[5] = DISCARD;
        bins[200_002] = DISCARD;
        let mut single = HistogramAcc::default();
        single.add_bins(&bins);
        assert_eq!(single.counts.iter().sum::<u64>(), 200_001);
        // One bin only, far more pairs than a u16 entry holds: flushes in the middle.
        let same = vec![41u8; 4 * 70_000 + 3];
        let mut a = HistogramAcc::default();
        a.add_bins(&same);
        assert_eq!(a.counts[41], same.len() as u64);
        for add in PATHS {
            let mut paired = HistogramAcc::default();
            let mut pairs = PairCounts::default();
            // Odd-sized calls, and more than a u16 table entry can hold before a flush.
            for c in bins.chunks(4093) {
                add(&mut pairs, c, &mut paired);
            }
            paired.add_pairs(&mut pairs);
            assert_eq!(single, paired);
            let mut b = HistogramAcc::default();
            add(&mut pairs, &same, &mut b);
            b.add_pairs(&mut pairs);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn merging_equals_one_pass() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.37).collect();
        let mut whole = HistogramAcc::default();
        whole.add_slice(&xs);
        let mut parts = HistogramAcc::default();
        for c in xs.chunks(33) {
            let mut p = HistogramAcc::default();
            p.add_slice(c);
            parts.merge(&p);
        }
        assert_eq!(whole, parts);
    }

    /// The AVX2 pair indexes against the reference on proptest's inputs (natively; the
    /// fixed-seed test above also runs on wasm32).
    #[cfg(not(target_arch = "wasm32"))]
    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn pair_indexes_match_the_reference(
                pairs in proptest::collection::vec((any::<u8>(), 0..=DISCARD), 0..300)
            ) {
                let bins: Vec<u8> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
                let (mut fast, mut slow) = (vec![0u16; pairs.len()], vec![1u16; pairs.len()]);
                pair_indexes(&bins, &mut fast);
                pair_indexes_scalar(&bins, &mut slow);
                prop_assert_eq!(fast, slow);
            }
        }
    }
}
