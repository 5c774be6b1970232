//! The deep scan: statistics of every tensor's values, streamed in bounded chunks.
//!
//! I/O is split from compute so the same scan runs natively (rayon, bytes borrowed from
//! mmap) and in a browser worker (bytes read on one thread with `FileReaderSync`, compute on
//! wasm rayon threads):
//!
//! 1. [`plan`] cuts every tensor into [`ScanJob`]s: an element range and the byte ranges of
//!    the stored parts it needs ([`ScanJob::reads`] gives them as file offsets).
//! 2. The caller reads those bytes however it can and calls [`process`], which is pure and
//!    (with the `parallel` feature) splits the job over threads itself.
//! 3. A [`Collector`] merges the partial statistics of each tensor in element order and
//!    finishes a tensor as soon as its last job arrives, so memory stays bounded.
//!
//! [`scan_model`] does all three for any `ByteSource + Sync`.

mod collect;
mod driver;
mod process;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::encoding::Encoding;
use crate::encoding::{self, PartRange};
use crate::model::Model;

pub use collect::Collector;
pub use driver::{scan_model, ScanError, ScanProgress};
pub use process::process;

/// Chunk sizes of a scan. The defaults keep a job's decoded values in L1 and a job's input
/// well under a few MiB.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOptions {
    /// Elements per job: the unit of I/O (rounded to whole rows and granules).
    pub job_elements: u64,
    /// Elements per piece: the unit of parallel work inside a job.
    pub piece_elements: u64,
    /// Elements decoded at a time into a buffer that stays in L1.
    pub buffer_elements: u64,
    /// At most this many rows per tensor are kept for the row-RMS summary.
    pub max_row_samples: u64,
    /// `scan_model` reads (or borrows) about this many bytes of jobs per parallel wave.
    pub wave_bytes: u64,
    /// Compute the statistics of block types that allow it (Q4_K: `stats::codes`) from
    /// the quant codes instead of decoding every value. Off, every value is decoded then
    /// measured: the reference the code path is tested against (same counts, min, max,
    /// histogram; moments up to rounding).
    pub from_codes: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            job_elements: 1 << 22,
            piece_elements: 1 << 18,
            buffer_elements: 4096,
            max_row_samples: 1 << 20,
            wave_bytes: 64 << 20,
            from_codes: true,
        }
    }
}

/// One unit of scan work: elements `start..start+count` of tensor `tensor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanJob {
    pub tensor: usize,
    /// Position of this job among its tensor's jobs.
    pub ordinal: usize,
    pub start: u64,
    pub count: u64,
    /// Byte ranges of the tensor's parts, in the order `process` wants them.
    pub ranges: Vec<PartRange>,
}

/// A byte range to read from one of the model's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRead {
    /// Index into `Model::files`.
    pub file: usize,
    pub offset: u64,
    pub len: u64,
}

impl ScanJob {
    /// The file ranges to read, one per entry of `ranges`.
    pub fn reads(&self, model: &Model) -> Vec<FileRead> {
        let t = &model.tensors[self.tensor];
        self.ranges
            .iter()
            .map(|r| {
                let p = &t.parts[r.part];
                FileRead {
                    file: p.file,
                    offset: p.offset.saturating_add(r.offset),
                    len: r.len,
                }
            })
            .collect()
    }

    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.len).sum()
    }
}

/// All jobs of a scan, and the tensors that cannot be scanned.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPlan {
    pub options: ScanOptions,
    /// Jobs in tensor order, each tensor's jobs in element order.
    pub jobs: Vec<ScanJob>,
    /// Jobs per tensor (0 for empty or unscannable tensors).
    pub jobs_per_tensor: Vec<usize>,
    /// Tensors that cannot be decoded, with the reason.
    pub errors: Vec<(usize, String)>,
    pub total_bytes: u64,
}

/// Cut every tensor of `model` into jobs.
pub fn plan(model: &Model, options: &ScanOptions) -> ScanPlan {
    let mut out = ScanPlan {
        options: options.clone(),
        jobs: Vec::new(),
        jobs_per_tensor: vec![0; model.tensors.len()],
        errors: Vec::new(),
        total_bytes: 0,
    };
    for (ti, t) in model.tensors.iter().enumerate() {
        let n = t.n_elements();
        if n == 0 {
            continue;
        }
        let g = match encoding::granule(t) {
            Ok(g) if g > 0 => g,
            Ok(_) => {
                out.errors
                    .push((ti, format!("{}: zero-sized decode granule", t.name)));
                continue;
            }
            Err(e) => {
                out.errors.push((ti, e.to_string()));
                continue;
            }
        };
        let step = job_step(options.job_elements, g, t.row_len());
        let mut jobs = Vec::new();
        let mut start = 0u64;
        let mut failed = None;
        while start < n {
            let count = step.min(n - start);
            match encoding::plan(t, start, count) {
                Ok(ranges) => jobs.push(ScanJob {
                    tensor: ti,
                    ordinal: jobs.len(),
                    start,
                    count,
                    ranges,
                }),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
            start += count;
        }
        if let Some(e) = failed {
            out.errors.push((ti, e));
            continue;
        }
        out.total_bytes += jobs.iter().map(ScanJob::bytes).sum::<u64>();
        out.jobs_per_tensor[ti] = jobs.len();
        out.jobs.extend(jobs);
    }
    out
}

/// Elements per job: a multiple of the granule, and of the row length when rows are small
/// enough, so most jobs hold whole rows.
fn job_step(target: u64, granule: u64, row_len: u64) -> u64 {
    let target = target.max(granule);
    if row_len > 0 && row_len <= target && row_len.is_multiple_of(granule) {
        target / row_len * row_len
    } else {
        (target / granule).max(1) * granule
    }
}

/// Result of scanning one tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorScan {
    pub name: String,
    pub stats: Option<crate::stats::TensorStats>,
    /// Why the tensor has no statistics.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Statistics of every tensor, in model order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    pub tensors: Vec<TensorScan>,
}

impl ScanResult {
    pub fn get(&self, name: &str) -> Option<&crate::stats::TensorStats> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.stats.as_ref())
    }
}

#[cfg(test)]
pub(crate) mod testmodel;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod plan_tests {
    use super::*;
    use crate::ggml::types::GgmlType;

    #[test]
    fn jobs_are_row_aligned_and_cover_the_tensor() {
        assert_eq!(job_step(1000, 32, 320), 960);
        assert_eq!(job_step(1000, 32, 5000), 992);
        assert_eq!(job_step(10, 32, 64), 32);
        let (model, _) = testmodel::ggml_model(&[("a", vec![7, 96], GgmlType::Q8_0, 1.0)]);
        let opts = ScanOptions {
            job_elements: 200,
            ..Default::default()
        };
        let p = plan(&model, &opts);
        assert_eq!(p.jobs_per_tensor, vec![4]);
        let starts: Vec<u64> = p.jobs.iter().map(|j| j.start).collect();
        assert_eq!(starts, vec![0, 192, 384, 576]);
        assert_eq!(p.jobs.iter().map(|j| j.count).sum::<u64>(), 7 * 96);
        assert_eq!(p.total_bytes, 7 * 3 * 34);
        let reads = p.jobs[1].reads(&model);
        assert_eq!(reads[0].offset, model.tensors[0].parts[0].offset + 6 * 34);
    }
}
