//! Statistics of a tensor's values, computed in one streaming pass and merged across chunks.
//!
//! Every accumulator here merges exactly in its counts (histogram, NaN/Inf/zero counts,
//! scale counts) and up to rounding in its moments (Chan's update), so the same tensor
//! scanned with any chunking or thread count gives the same counts and nearly the same
//! floats. A scan with a fixed chunking merges in a fixed order and is bit-reproducible.

pub mod codes;
pub mod hash;
pub mod histogram;
pub mod moments;
pub mod rows;
pub mod scales;
#[cfg(test)]
pub(crate) mod testrng;

use serde::{Deserialize, Serialize};

pub use histogram::Histogram;
pub use moments::Moments;
pub use rows::RowStats;
pub use scales::ScaleStats;

use hash::HashAcc;
use histogram::HistogramAcc;
use rows::RowAcc;
use scales::ScaleAcc;

/// AVX2, FMA and POPCNT, checked once: the x86 fast paths of the statistics need them (every
/// AVX2 CPU has the other two).
#[cfg(target_arch = "x86_64")]
pub(crate) fn x86_fast() -> bool {
    static STATE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    probed_once(&STATE, || {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("popcnt")
    })
}

/// The answer of `probe` (a CPU feature check: cheap but not free), run the first time only;
/// `state` remembers it (0 = not probed yet, 1 = no, 2 = yes).
#[cfg(target_arch = "x86_64")]
pub(crate) fn probed_once(
    state: &std::sync::atomic::AtomicU8,
    probe: impl FnOnce() -> bool,
) -> bool {
    use std::sync::atomic::Ordering;
    match state.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => {
            let yes = probe();
            state.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// Statistics of one contiguous element range of one tensor, ready to merge with the range
/// that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialStats {
    /// Element range covered.
    pub start: u64,
    pub end: u64,
    pub moments: Moments,
    pub hist: HistogramAcc,
    pub rows: RowAcc,
    /// Present for block-quantized ggml types.
    pub scales: Option<ScaleAcc>,
    /// Hash of the primary part's bytes seen so far; None once the ranges stop tiling the
    /// part (or for encodings whose chunks read overlapping bytes).
    pub hash: Option<HashAcc>,
}

impl PartialStats {
    pub fn empty(start: u64, row_stride: u64, with_scales: bool) -> Self {
        PartialStats {
            start,
            end: start,
            moments: Moments::default(),
            hist: HistogramAcc::default(),
            rows: RowAcc::new(row_stride),
            scales: with_scales.then(ScaleAcc::default),
            hash: None,
        }
    }

    /// Append the statistics of the range that directly follows this one.
    pub fn merge(&mut self, next: PartialStats) -> Result<(), String> {
        if next.start != self.end {
            return Err(format!(
                "cannot merge statistics of elements {}..{} after {}..{}",
                next.start, next.end, self.start, self.end
            ));
        }
        self.end = next.end;
        self.moments.merge(&next.moments);
        self.hist.merge(&next.hist);
        self.rows.merge(next.rows);
        if let (Some(a), Some(b)) = (&mut self.scales, &next.scales) {
            a.merge(b);
        }
        self.hash = match (self.hash.take(), next.hash) {
            (Some(a), Some(b)) => a.merge(b),
            _ => None,
        };
        Ok(())
    }

    /// Final statistics of a tensor of `elements` values in rows of `row_len`.
    /// `ggml_type` names the block type for the scale summary.
    pub fn finish(
        &self,
        elements: u64,
        row_len: u64,
        ggml_type: Option<crate::ggml::types::GgmlType>,
        primary_bytes: u64,
    ) -> TensorStats {
        let m = &self.moments;
        let has = m.n > 0;
        let n = m.n as f64;
        let rows = elements.checked_div(row_len).unwrap_or(0);
        TensorStats {
            elements,
            finite: m.n,
            nan: m.nan,
            inf: m.inf,
            zeros: m.zeros,
            zero_fraction: if elements == 0 {
                0.0
            } else {
                m.zeros as f64 / elements as f64
            },
            min: has.then_some(m.min),
            max: has.then_some(m.max),
            abs_max: has.then(|| m.min.abs().max(m.max.abs())),
            mean: has.then_some(m.mean),
            std: has.then(|| (m.m2 / n).sqrt()),
            rms: has.then(|| (m.sum_sq() / n).sqrt()),
            integer_valued: has && m.non_integer == 0,
            histogram: self.hist.finish(),
            rows: self.rows.finish(rows, row_len),
            scales: match (&self.scales, ggml_type) {
                (Some(s), Some(t)) => Some(s.finish(t)),
                _ => None,
            },
            content_hash: self
                .hash
                .as_ref()
                .filter(|h| h.end() == primary_bytes)
                .and_then(|h| h.finish()),
        }
    }
}

/// Statistics of one tensor's decoded values (documented in docs/json.md, `## stats`).
/// Moments are over the finite values; counts are over all values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    pub elements: u64,
    pub finite: u64,
    pub nan: u64,
    pub inf: u64,
    /// Values equal to zero (either sign).
    pub zeros: u64,
    pub zero_fraction: f64,
    pub min: Option<f32>,
    pub max: Option<f32>,
    pub abs_max: Option<f32>,
    pub mean: Option<f64>,
    /// Population standard deviation.
    pub std: Option<f64>,
    pub rms: Option<f64>,
    /// Every finite value is a whole number (and there is at least one).
    pub integer_valued: bool,
    pub histogram: Histogram,
    pub rows: Option<RowStats>,
    /// Block-scale counts, for block-quantized ggml types.
    pub scales: Option<ScaleStats>,
    /// 128-bit content hash of the stored bytes of the primary part (hex), when the scan
    /// read them as one tiling of the part.
    pub content_hash: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(start: u64, xs: &[f32], row_len: u64) -> PartialStats {
        let mut p = PartialStats::empty(start, 1, false);
        p.end = start + xs.len() as u64;
        p.moments = Moments::of(xs);
        p.hist.add_slice(xs);
        for (i, &x) in xs.iter().enumerate() {
            p.rows
                .add((start + i as u64) / row_len, (x as f64) * (x as f64));
        }
        p
    }

    #[test]
    fn finish_derives_rms_std_and_abs_max() {
        let xs = [3.0f32, -4.0, 0.0, 0.0];
        let s = partial(0, &xs, 2).finish(4, 2, None, 0);
        assert_eq!(s.abs_max, Some(4.0));
        assert_eq!(s.zeros, 2);
        assert_eq!(s.zero_fraction, 0.5);
        assert!((s.rms.unwrap() - 2.5).abs() < 1e-12);
        assert!((s.mean.unwrap() + 0.25).abs() < 1e-12);
        assert!(s.integer_valued);
        let rows = s.rows.unwrap();
        assert_eq!((rows.rows, rows.min, rows.max), (2, 0.0, 12.5f32.sqrt()));
        assert!(s.content_hash.is_none());
    }

    #[test]
    fn merge_requires_adjacent_ranges() {
        let mut a = partial(0, &[1.0, 2.0], 4);
        assert!(a.merge(partial(3, &[1.0], 4)).is_err());
        a.merge(partial(2, &[3.0, 4.5], 4)).unwrap();
        let s = a.finish(4, 4, None, 0);
        assert!(!s.integer_valued);
        assert_eq!(s.rows.unwrap().sampled, 1);
        assert_eq!(s.max, Some(4.5));
    }

    #[test]
    fn empty_tensor_has_no_moments() {
        let s = PartialStats::empty(0, 1, false).finish(0, 0, None, 0);
        assert_eq!(
            (s.min, s.rms, s.rows.is_none(), s.integer_valued),
            (None, None, true, false)
        );
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["min"].is_null());
        assert_eq!(json["histogram"]["counts"].as_array().unwrap().len(), 64);
    }
}
