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

    /// Count precomputed bins (as `bin_of` gives them).
    pub fn add_bins(&mut self, bins: &[u8]) {
        // Four interleaved tables so consecutive increments of the same bin do not wait on
        // each other (a store-to-load dependency otherwise serializes the loop); u32 counts
        // are flushed long before they could overflow.
        let mut t = [[0u32; BINS + 1]; 4];
        for big in bins.chunks(1 << 30) {
            let quads = big.chunks_exact(4);
            let tail = quads.remainder();
            for q in quads {
                t[0][q[0] as usize] += 1;
                t[1][q[1] as usize] += 1;
                t[2][q[2] as usize] += 1;
                t[3][q[3] as usize] += 1;
            }
            for &b in tail {
                t[0][b as usize] += 1;
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
pub struct PairCounts {
    tables: Vec<u16>,
    /// Pairs counted per table since the last flush.
    pending: u32,
}

impl Default for PairCounts {
    fn default() -> Self {
        PairCounts {
            tables: vec![0; 2 * SIDE * SIDE],
            pending: 0,
        }
    }
}

impl PairCounts {
    /// Count precomputed bins (as `bin_of` gives them); an odd last bin goes to `single`.
    pub fn add_bins(&mut self, bins: &[u8], single: &mut HistogramAcc) {
        let (t0, t1) = self.tables.split_at_mut(SIDE * SIDE);
        let mut rest = bins;
        while !rest.is_empty() {
            let room = (PAIR_FLUSH - self.pending) as usize;
            if room == 0 {
                Self::flush_tables(t0, t1, &mut single.counts);
                self.pending = 0;
                continue;
            }
            let take = rest.len().min(room * 4) & !3;
            let (now, later) = rest.split_at(take);
            for q in now.chunks_exact(4) {
                t0[q[0] as usize * SIDE + q[1] as usize] += 1;
                t1[q[2] as usize * SIDE + q[3] as usize] += 1;
            }
            self.pending += (take / 4) as u32;
            if later.len() < 4 {
                for &b in later {
                    if (b as usize) < BINS {
                        single.counts[b as usize] += 1;
                    }
                }
                break;
            }
            rest = later;
        }
    }

    fn flush_tables(t0: &mut [u16], t1: &mut [u16], counts: &mut [u64; BINS]) {
        for t in [t0, t1] {
            for (i, c) in t.iter_mut().enumerate() {
                if *c != 0 {
                    let (a, b) = (i / SIDE, i % SIDE);
                    if a < BINS {
                        counts[a] += *c as u64;
                    }
                    if b < BINS {
                        counts[b] += *c as u64;
                    }
                    *c = 0;
                }
            }
        }
    }

    fn flush_into(&mut self, counts: &mut [u64; BINS]) {
        let (t0, t1) = self.tables.split_at_mut(SIDE * SIDE);
        Self::flush_tables(t0, t1, counts);
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut paired = HistogramAcc::default();
        let mut pairs = PairCounts::default();
        // Odd-sized calls, and more than a u16 table entry can hold before a flush.
        for c in bins.chunks(4093) {
            pairs.add_bins(c, &mut paired);
        }
        paired.add_pairs(&mut pairs);
        assert_eq!(single, paired);
        assert_eq!(single.counts.iter().sum::<u64>(), 200_001);
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
}
