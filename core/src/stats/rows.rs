//! Per-row RMS over the innermost dimension, with a cap on the rows kept.
//!
//! A scan keeps one (row, sum of squares) entry per sampled row. Tensors with more rows than
//! the cap are sampled every `stride` rows (stride fixed from the shape, so every chunking
//! samples the same rows); min, median and max are then over the sample. A row cut by a
//! chunk boundary appears at the end of one partial and the start of the next, and the two
//! sums are added when the partials merge.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct RowAcc {
    stride: u64,
    /// (row index, sum of squares of its finite values seen so far), ascending rows.
    entries: Vec<(u64, f64)>,
}

impl RowAcc {
    pub fn new(stride: u64) -> Self {
        RowAcc {
            stride: stride.max(1),
            entries: Vec::new(),
        }
    }

    /// Sampling stride for a tensor of `rows` rows when at most `cap` are kept.
    pub fn stride_for(rows: u64, cap: u64) -> u64 {
        rows.div_ceil(cap.max(1)).max(1)
    }

    #[inline]
    pub fn is_sampled(&self, row: u64) -> bool {
        row.is_multiple_of(self.stride)
    }

    /// Add part of a row's sum of squares (rows arrive in ascending order).
    pub fn add(&mut self, row: u64, sum_sq: f64) {
        if !self.is_sampled(row) {
            return;
        }
        match self.entries.last_mut() {
            Some(last) if last.0 == row => last.1 += sum_sq,
            _ => self.entries.push((row, sum_sq)),
        }
    }

    /// Append the rows of the partial that follows this one.
    pub fn merge(&mut self, next: RowAcc) {
        let mut it = next.entries.into_iter();
        if let Some(first) = it.next() {
            self.add(first.0, first.1);
        }
        self.entries.extend(it);
    }

    pub fn finish(&self, rows: u64, row_len: u64) -> Option<RowStats> {
        if self.entries.is_empty() || row_len == 0 {
            return None;
        }
        let mut rms: Vec<f32> = self
            .entries
            .iter()
            .map(|&(_, s)| (s / row_len as f64).sqrt() as f32)
            .collect();
        let n = rms.len();
        let min = rms.iter().copied().fold(f32::INFINITY, f32::min);
        let max = rms.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (_, &mut hi, _) = rms.select_nth_unstable_by(n / 2, f32::total_cmp);
        let median = if n % 2 == 1 {
            hi
        } else {
            // The lower middle is the largest of the lower half.
            let lo = rms[..n / 2]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            ((lo as f64 + hi as f64) / 2.0) as f32
        };
        Some(RowStats {
            rows,
            row_len,
            sampled: n as u64,
            min,
            median,
            max,
        })
    }
}

/// RMS of the rows of the innermost dimension (see docs/json.md, `stats.rows`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowStats {
    pub rows: u64,
    pub row_len: u64,
    /// Rows the min/median/max are over (all rows unless the tensor has more than the cap).
    pub sampled: u64,
    pub min: f32,
    pub median: f32,
    pub max: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_are_joined_and_median_is_exact() {
        let mut a = RowAcc::new(1);
        a.add(0, 4.0);
        a.add(1, 1.0); // row 1 continues in b
        let mut b = RowAcc::new(1);
        b.add(1, 3.0);
        b.add(2, 16.0);
        b.add(3, 36.0);
        a.merge(b);
        // row_len 4: rms = sqrt(sum/4) = 1, 1, 2, 3
        let s = a.finish(4, 4).unwrap();
        assert_eq!((s.sampled, s.min, s.max), (4, 1.0, 3.0));
        assert_eq!(s.median, 1.5);
    }

    #[test]
    fn sampling_keeps_every_stride_th_row() {
        assert_eq!(RowAcc::stride_for(10, 4), 3);
        assert_eq!(RowAcc::stride_for(4, 4), 1);
        let mut a = RowAcc::new(3);
        for r in 0..10 {
            a.add(r, (r * r) as f64);
        }
        let s = a.finish(10, 1).unwrap();
        assert_eq!(s.sampled, 4); // rows 0, 3, 6, 9
        assert_eq!((s.min, s.max, s.median), (0.0, 9.0, 4.5));
        assert!(RowAcc::new(1).finish(0, 4).is_none());
    }
}
