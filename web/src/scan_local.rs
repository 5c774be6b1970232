//! Scanning one whole tensor inside one scan worker: read each job's bytes in file order,
//! process, and merge in element order. Pure Rust over [`RunReader`], so it is tested
//! natively against the core's own `scan_model`.
//!
//! The bytes come in *runs*: the single-range jobs of a tensor that follow each other in
//! one file form one run, read from start to end in order. In the browser a run is one
//! `ReadableStream` of a `Blob` slice, read into one reusable buffer (`blob_stream.rs`):
//! nothing but the current job's bytes is held, whatever the size of the tensor or file.

use quantdoc_core::encoding::Encoding;
use quantdoc_core::model::Model;
use quantdoc_core::scan::{self, FileRead, ScanJob, ScanOptions};
#[cfg(test)]
use quantdoc_core::source::{check_range, ByteSource};
use quantdoc_core::stats::{PartialStats, TensorStats};

pub enum TensorOutcome {
    Stats(Box<TensorStats>),
    Error(String),
}

/// Where a scan worker's bytes come from: runs of bytes of the model's files, each read
/// once, in order.
#[allow(async_fn_in_trait)] // used with concrete types on one thread only
pub trait RunReader {
    /// Start a run: `len` bytes of file `file` (an index into `Model::files`) from
    /// `offset`. Fails when the range is not inside the file.
    fn open(&mut self, file: usize, offset: u64, len: u64) -> Result<(), String>;
    /// Fill `out` with the next bytes of the open run.
    async fn next(&mut self, out: &mut [u8]) -> Result<(), String>;
}

/// A [`RunReader`] over random-access sources, for the tests (any `ByteSource`).
#[cfg(test)]
pub struct SourceRuns<'a, S: ByteSource + ?Sized> {
    sources: &'a [&'a S],
    at: Option<(usize, u64, u64)>,
}

#[cfg(test)]
impl<'a, S: ByteSource + ?Sized> SourceRuns<'a, S> {
    pub fn new(sources: &'a [&'a S]) -> Self {
        SourceRuns { sources, at: None }
    }
}

#[cfg(test)]
impl<S: ByteSource + ?Sized> RunReader for SourceRuns<'_, S> {
    fn open(&mut self, file: usize, offset: u64, len: u64) -> Result<(), String> {
        let src = self
            .sources
            .get(file)
            .ok_or_else(|| format!("no file {file} was given"))?;
        check_range(offset, len, src.len()).map_err(|e| e.to_string())?;
        self.at = Some((file, offset, offset + len));
        Ok(())
    }

    async fn next(&mut self, out: &mut [u8]) -> Result<(), String> {
        let Some((file, offset, end)) = self.at else {
            return Err("no run is open".into());
        };
        if offset + out.len() as u64 > end {
            return Err(format!("read past the end of the run at {offset}"));
        }
        self.sources[file]
            .read_exact_at(offset, out)
            .map_err(|e| e.to_string())?;
        self.at = Some((file, offset + out.len() as u64, end));
        Ok(())
    }
}

/// Where a tensor's scan time went: waiting for bytes, or computing statistics.
pub struct Timing {
    clock: fn() -> f64,
    pub read_ms: f64,
    pub compute_ms: f64,
}

impl Timing {
    /// `clock` gives milliseconds (the worker's `performance.now`).
    pub fn new(clock: fn() -> f64) -> Self {
        Timing {
            clock,
            read_ms: 0.0,
            compute_ms: 0.0,
        }
    }
}

/// End (exclusive) of the run of jobs from `i` that each read one range, in the same file,
/// back to back.
fn run_end(reads: &[Vec<FileRead>], i: usize) -> usize {
    let [first] = reads[i].as_slice() else {
        return i + 1;
    };
    let mut next = first.offset + first.len;
    let mut end = i + 1;
    while let Some([r]) = reads.get(end).map(Vec::as_slice) {
        if r.file != first.file || r.offset != next {
            break;
        }
        next = r.offset + r.len;
        end += 1;
    }
    end
}

/// Scan `jobs` (all the jobs of one tensor, in order). `plan_error` is why the plan could
/// not cut the tensor into jobs. `progress` gets the bytes of every job read; `timing`
/// adds up the time spent reading and computing.
#[allow(clippy::too_many_arguments)]
pub async fn scan_tensor<R: RunReader>(
    model: &Model,
    reader: &mut R,
    index: usize,
    jobs: &[&ScanJob],
    plan_error: Option<String>,
    options: &ScanOptions,
    progress: &mut dyn FnMut(u64),
    timing: &mut Timing,
) -> TensorOutcome {
    if let Some(e) = plan_error {
        return TensorOutcome::Error(e);
    }
    let Some(t) = model.tensors.get(index) else {
        return TensorOutcome::Error(format!("no tensor {index} in the model"));
    };
    if jobs.is_empty() {
        // Nothing to read: an empty tensor, with the statistics of nothing (as the core's
        // collector gives it).
        return TensorOutcome::Stats(Box::new(PartialStats::empty(0, 1, false).finish(
            0,
            t.row_len(),
            None,
            0,
        )));
    }
    let fail = |e: String| TensorOutcome::Error(format!("{}: {e}", t.name));
    let reads: Vec<Vec<FileRead>> = jobs.iter().map(|j| j.reads(model)).collect();
    // One buffer per byte range of a job, reused from job to job.
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    let mut acc: Option<PartialStats> = None;
    let mut i = 0;
    while i < jobs.len() {
        let end = run_end(&reads, i);
        let run = if let [first] = reads[i].as_slice() {
            let last = reads[end - 1][0];
            Some((
                first.file,
                first.offset,
                last.offset + last.len - first.offset,
            ))
        } else {
            None
        };
        if let Some((file, offset, len)) = run {
            if let Err(e) = reader.open(file, offset, len) {
                return fail(e);
            }
        }
        for (job, job_reads) in jobs[i..end].iter().zip(&reads[i..end]) {
            if bufs.len() < job_reads.len() {
                bufs.resize_with(job_reads.len(), Vec::new);
            }
            for (r, buf) in job_reads.iter().zip(bufs.iter_mut()) {
                if run.is_none() {
                    // A job of several ranges (e.g. packed codes and their scales): each
                    // range is a run of its own.
                    if let Err(e) = reader.open(r.file, r.offset, r.len) {
                        return fail(e);
                    }
                }
                buf.resize(r.len as usize, 0);
                let t0 = (timing.clock)();
                let read = reader.next(buf).await;
                timing.read_ms += (timing.clock)() - t0;
                if let Err(e) = read {
                    return fail(e);
                }
            }
            let t0 = (timing.clock)();
            let inputs: Vec<&[u8]> = bufs[..job_reads.len()].iter().map(Vec::as_slice).collect();
            let part = match scan::process(model, job, &inputs, options) {
                Ok(p) => p,
                Err(e) => return TensorOutcome::Error(e.to_string()),
            };
            let merged = match &mut acc {
                None => {
                    acc = Some(part);
                    Ok(())
                }
                Some(a) => a.merge(part),
            };
            timing.compute_ms += (timing.clock)() - t0;
            if let Err(e) = merged {
                return TensorOutcome::Error(e);
            }
            progress(job.bytes());
        }
        i = end;
    }
    let ggml_type = match t.encoding {
        Encoding::Ggml { ggml_type } => Some(ggml_type),
        _ => None,
    };
    match acc {
        Some(a) => TensorOutcome::Stats(Box::new(a.finish(
            t.n_elements(),
            t.row_len(),
            ggml_type,
            t.primary().nbytes,
        ))),
        None => TensorOutcome::Error(format!("{}: no jobs", t.name)),
    }
}

/// Run a future whose awaits never wait (a [`SourceRuns`] scan) to completion.
#[cfg(test)]
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quantdoc_core::load::{self, Input};
    use quantdoc_core::source::SliceSource;
    use std::sync::atomic::AtomicBool;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A GGUF made here (so the test also runs on wasm32, where there is no file system):
    /// float, legacy and k-quant tensors, several of them spanning many scan jobs.
    fn generated() -> Vec<u8> {
        use quantdoc_core::ggml::types::GgmlType;
        use quantdoc_core::gguf::rawbuilder::RawGgufBuilder;
        use quantdoc_core::quantize::quantize_to_vec;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut values = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
                })
                .collect()
        };
        let q = |ty: GgmlType, v: &[f32]| quantize_to_vec(ty, v).unwrap();
        let norm: Vec<f32> = values(256, 0.2).iter().map(|x| 1.0 + x).collect();
        RawGgufBuilder::new()
            .tensor(
                "norm.weight",
                &[256],
                GgmlType::F32 as u32,
                q(GgmlType::F32, &norm),
            )
            .tensor(
                "a.f16",
                &[8, 512],
                GgmlType::F16 as u32,
                q(GgmlType::F16, &values(4096, 2.0)),
            )
            .tensor(
                "b.q8_0",
                &[16, 512],
                GgmlType::Q8_0 as u32,
                q(GgmlType::Q8_0, &values(8192, 0.1)),
            )
            .tensor(
                "c.q4_k",
                &[12, 256],
                GgmlType::Q4_K as u32,
                q(GgmlType::Q4_K, &values(3072, 0.05)),
            )
            .tensor(
                "d.q6_k",
                &[4, 512],
                GgmlType::Q6_K as u32,
                q(GgmlType::Q6_K, &values(2048, 3.0)),
            )
            .tensor(
                "e.q4_0",
                &[4, 64],
                GgmlType::Q4_0 as u32,
                q(GgmlType::Q4_0, &values(256, 1.0)),
            )
            .build()
    }

    /// The generated file, and natively also the shared fixtures written by gguf-py.
    fn models() -> Vec<(String, Vec<u8>)> {
        let mut out = vec![("generated.gguf".to_string(), generated())];
        if cfg!(not(target_arch = "wasm32")) {
            let dir =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/gguf");
            for name in ["plain.gguf", "kquants.gguf", "legacy.gguf", "iquants.gguf"] {
                match std::fs::read(dir.join(name)) {
                    Ok(b) => out.push((name.to_string(), b)),
                    Err(_) => eprintln!("SKIPPED {name}: not found in {}", dir.display()),
                }
            }
        }
        out
    }

    /// A reader that records the runs it was asked for.
    struct Recording<'a> {
        inner: SourceRuns<'a, SliceSource<Vec<u8>>>,
        runs: Vec<(usize, u64, u64)>,
        largest_read: usize,
    }

    impl RunReader for Recording<'_> {
        fn open(&mut self, file: usize, offset: u64, len: u64) -> Result<(), String> {
            self.runs.push((file, offset, len));
            self.inner.open(file, offset, len)
        }
        async fn next(&mut self, out: &mut [u8]) -> Result<(), String> {
            self.largest_read = self.largest_read.max(out.len());
            self.inner.next(out).await
        }
    }

    /// The worker's tensor-at-a-time scan gives exactly what the core's own driver gives,
    /// reading each tensor as one run in small pieces.
    #[test]
    fn per_tensor_scan_matches_core_scan_model() {
        for (name, bytes) in models() {
            let name = name.as_str();
            let src = SliceSource::new(bytes);
            let model = load::load(&[Input {
                path: name.into(),
                source: &src,
            }])
            .unwrap();
            // Small jobs so tensors span several jobs and merging is exercised.
            let opts = ScanOptions {
                job_elements: 256,
                ..ScanOptions::default()
            };
            let want =
                scan::scan_model(&model, &[&src], &opts, &mut |_| {}, &AtomicBool::new(false))
                    .unwrap();
            let plan = scan::plan(&model, &opts);
            let mut bytes = 0;
            let srcs = [&src];
            for (i, t) in model.tensors.iter().enumerate() {
                let jobs: Vec<&ScanJob> = plan.jobs.iter().filter(|j| j.tensor == i).collect();
                let err = plan
                    .errors
                    .iter()
                    .find(|(k, _)| *k == i)
                    .map(|(_, e)| e.clone());
                let mut reader = Recording {
                    inner: SourceRuns::new(&srcs),
                    runs: Vec::new(),
                    largest_read: 0,
                };
                let got = block_on(scan_tensor(
                    &model,
                    &mut reader,
                    i,
                    &jobs,
                    err,
                    &opts,
                    &mut |b| bytes += b,
                    &mut Timing::new(|| 0.0),
                ));
                let w = &want.tensors[i];
                match got {
                    TensorOutcome::Stats(s) => {
                        assert_eq!(Some(&*s), w.stats.as_ref(), "{name} {}", t.name)
                    }
                    TensorOutcome::Error(e) => {
                        assert!(w.stats.is_none(), "{name} {}: {e}", t.name)
                    }
                }
                if jobs.len() > 1 {
                    // A GGUF tensor is one range of its file: one run, read a job at a time.
                    assert_eq!(reader.runs.len(), 1, "{name} {}", t.name);
                    assert_eq!(reader.runs[0].2, t.primary().nbytes, "{name} {}", t.name);
                    assert!((reader.largest_read as u64) < t.primary().nbytes);
                }
            }
            assert_eq!(bytes, plan.total_bytes, "{name}");
        }
    }

    #[test]
    fn a_truncated_file_gives_an_error_not_a_panic() {
        let bytes = generated();
        let src = SliceSource::new(bytes.clone());
        let model = load::load(&[Input {
            path: "generated.gguf".into(),
            source: &src,
        }])
        .unwrap();
        let short = SliceSource::new(bytes[..bytes.len() - 100].to_vec());
        let plan = scan::plan(&model, &ScanOptions::default());
        let last = model.tensors.len() - 1;
        let jobs: Vec<&ScanJob> = plan.jobs.iter().filter(|j| j.tensor == last).collect();
        let srcs = [&short];
        match block_on(scan_tensor(
            &model,
            &mut SourceRuns::new(&srcs),
            last,
            &jobs,
            None,
            &plan.options,
            &mut |_| {},
            &mut Timing::new(|| 0.0),
        )) {
            TensorOutcome::Error(e) => assert!(e.contains("past the end"), "{e}"),
            TensorOutcome::Stats(_) => panic!("read past the end was not reported"),
        }
    }

    #[test]
    fn runs_join_only_back_to_back_single_ranges() {
        let r = |file, offset, len| FileRead { file, offset, len };
        let reads = vec![
            vec![r(0, 0, 10)],
            vec![r(0, 10, 5)],
            vec![r(1, 15, 5)], // another file
            vec![r(1, 20, 5)],
            vec![r(1, 30, 5)], // a gap
            vec![r(1, 35, 1), r(1, 100, 1)],
            vec![r(1, 36, 1)],
        ];
        assert_eq!(run_end(&reads, 0), 2);
        assert_eq!(run_end(&reads, 2), 4);
        assert_eq!(run_end(&reads, 4), 5);
        assert_eq!(run_end(&reads, 5), 6);
        assert_eq!(run_end(&reads, 6), 7);
    }
}
