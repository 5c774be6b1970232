//! `scan_model`: plan, read, process and collect in one call, for any byte source that
//! several threads may read at once.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{plan, process, Collector, ScanJob, ScanOptions, ScanResult};
use crate::encoding::DecodeError;
use crate::model::Model;
use crate::source::{self, ByteSource};
use crate::stats::PartialStats;

/// The bytes of one job, or why they could not be read.
type JobInput<'a> = Result<Vec<Cow<'a, [u8]>>, DecodeError>;

/// Where a scan is, reported after every wave of jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanProgress {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub tensors_done: usize,
    pub tensors_total: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("scan cancelled")]
    Cancelled,
}

/// Scan every tensor of `model`; `sources[i]` backs `model.files[i]`.
///
/// Jobs run in waves of about `options.wave_bytes` of input: the bytes of a wave are
/// borrowed (mmap, slices) or read on the calling thread, then processed in parallel (with
/// the `parallel` feature: across jobs and within them). Between waves the caller gets a
/// progress report and `cancel` is checked. A tensor that cannot be read or decoded gets an
/// error in the result; the scan goes on with the others.
pub fn scan_model<S: ByteSource + Sync + ?Sized>(
    model: &Model,
    sources: &[&S],
    options: &ScanOptions,
    progress: &mut dyn FnMut(ScanProgress),
    cancel: &AtomicBool,
) -> Result<ScanResult, ScanError> {
    let plan = plan(model, options);
    let mut collector = Collector::new(model, &plan);
    let mut report = ScanProgress {
        bytes_done: 0,
        bytes_total: plan.total_bytes,
        tensors_done: collector.finished(),
        tensors_total: model.tensors.len(),
    };
    progress(report);
    let mut i = 0;
    while i < plan.jobs.len() {
        if cancel.load(Ordering::Relaxed) {
            return Err(ScanError::Cancelled);
        }
        let mut end = i;
        let mut bytes = 0u64;
        while end < plan.jobs.len() && (end == i || bytes < options.wave_bytes) {
            bytes += plan.jobs[end].bytes();
            end += 1;
        }
        let wave = &plan.jobs[i..end];
        let inputs: Vec<JobInput<'_>> = wave
            .iter()
            .map(|job| read_job(model, job, sources))
            .collect();
        let run = |(job, input): (&ScanJob, &JobInput<'_>)| -> Result<PartialStats, DecodeError> {
            let input = input.as_ref().map_err(Clone::clone)?;
            let slices: Vec<&[u8]> = input.iter().map(|c| c.as_ref()).collect();
            process(model, job, &slices, options)
        };
        #[cfg(feature = "parallel")]
        let results: Vec<Result<PartialStats, DecodeError>> = {
            use rayon::prelude::*;
            wave.par_iter().zip(inputs.par_iter()).map(run).collect()
        };
        #[cfg(not(feature = "parallel"))]
        let results: Vec<Result<PartialStats, DecodeError>> =
            wave.iter().zip(inputs.iter()).map(run).collect();
        drop(inputs);
        for (job, r) in wave.iter().zip(results) {
            collector.add(job, r);
        }
        report.bytes_done += bytes;
        report.tensors_done = collector.finished();
        progress(report);
        i = end;
    }
    Ok(collector.finish())
}

/// The bytes of a job: borrowed when the source can lend them, read otherwise.
fn read_job<'s, S: ByteSource + ?Sized>(
    model: &Model,
    job: &ScanJob,
    sources: &[&'s S],
) -> JobInput<'s> {
    job.reads(model)
        .into_iter()
        .map(|r| {
            let src: &'s S = sources.get(r.file).ok_or_else(|| {
                DecodeError::Invalid(format!(
                    "no byte source for file {} of {}",
                    r.file,
                    sources.len()
                ))
            })?;
            source::check_range(r.offset, r.len, src.len())?;
            let len = usize::try_from(r.len).map_err(|_| {
                DecodeError::Invalid(format!("a read of {} bytes is too large", r.len))
            })?;
            Ok(match src.borrow_at(r.offset, len) {
                Some(b) => Cow::Borrowed(b),
                None => Cow::Owned(source::read_vec(src, r.offset, r.len)?),
            })
        })
        .collect()
}
