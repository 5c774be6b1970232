//! Scanning one whole tensor inside one scan worker: read each job's bytes from the
//! worker's own byte sources, process, and merge in element order. Pure Rust over
//! `ByteSource`, so it is tested natively against the core's own `scan_model`.

use quantdoc_core::encoding::Encoding;
use quantdoc_core::model::Model;
use quantdoc_core::scan::{self, ScanJob, ScanOptions};
use quantdoc_core::source::{read_vec, ByteSource};
use quantdoc_core::stats::{PartialStats, TensorStats};

pub enum TensorOutcome {
    Stats(Box<TensorStats>),
    Error(String),
}

/// Largest span read at once: a few of these per worker stay far under the page's memory
/// budget, and reads this large run near the browser's Blob read speed.
const SPAN_BYTES: u64 = 32 << 20;

/// End (exclusive) of the run of jobs from `i` that each read one range, in the same file,
/// back to back, within `SPAN_BYTES`.
fn span_end(model: &Model, jobs: &[&ScanJob], i: usize) -> usize {
    let first = jobs[i].reads(model);
    if first.len() != 1 {
        return i + 1;
    }
    let (file, start) = (first[0].file, first[0].offset);
    let mut next = first[0].offset + first[0].len;
    let mut end = i + 1;
    while end < jobs.len() {
        let r = jobs[end].reads(model);
        if r.len() != 1
            || r[0].file != file
            || r[0].offset != next
            || r[0].offset + r[0].len - start > SPAN_BYTES
        {
            break;
        }
        next = r[0].offset + r[0].len;
        end += 1;
    }
    end
}

/// Scan `jobs` (all the jobs of one tensor, in order). `plan_error` is why the plan could
/// not cut the tensor into jobs. `progress` gets the bytes of every job read.
pub fn scan_tensor<S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    index: usize,
    jobs: &[&ScanJob],
    plan_error: Option<String>,
    options: &ScanOptions,
    progress: &mut dyn FnMut(u64),
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
    let mut acc: Option<PartialStats> = None;
    let mut i = 0;
    while i < jobs.len() {
        // Browsers read a Blob far faster in large slices than in small ones, so the
        // single-range jobs that follow each other in the file are read as one span.
        let end = span_end(model, jobs, i);
        let reads = jobs[i].reads(model);
        let span = if end > i + 1 {
            let last = jobs[end - 1].reads(model)[0];
            Some((
                reads[0].file,
                reads[0].offset,
                last.offset + last.len - reads[0].offset,
            ))
        } else {
            None
        };
        let span_bytes = match span {
            Some((file, offset, len)) => {
                let Some(src) = sources.get(file) else {
                    return TensorOutcome::Error(format!("{}: no file {file} was given", t.name));
                };
                match read_vec(*src, offset, len) {
                    Ok(b) => Some((offset, b)),
                    Err(e) => return TensorOutcome::Error(format!("{}: {e}", t.name)),
                }
            }
            None => None,
        };
        for job in &jobs[i..end] {
            let mut bufs = Vec::new();
            let inputs: Vec<&[u8]> = match &span_bytes {
                Some((base, bytes)) => {
                    let r = job.reads(model)[0];
                    let at = (r.offset - base) as usize;
                    vec![&bytes[at..at + r.len as usize]]
                }
                None => {
                    for r in job.reads(model) {
                        let Some(src) = sources.get(r.file) else {
                            return TensorOutcome::Error(format!(
                                "{}: no file {} was given",
                                t.name, r.file
                            ));
                        };
                        match read_vec(*src, r.offset, r.len) {
                            Ok(b) => bufs.push(b),
                            Err(e) => return TensorOutcome::Error(format!("{}: {e}", t.name)),
                        }
                    }
                    bufs.iter().map(Vec::as_slice).collect()
                }
            };
            let part = match scan::process(model, job, &inputs, options) {
                Ok(p) => p,
                Err(e) => return TensorOutcome::Error(e.to_string()),
            };
            progress(job.bytes());
            match &mut acc {
                None => acc = Some(part),
                Some(a) => {
                    if let Err(e) = a.merge(part) {
                        return TensorOutcome::Error(e);
                    }
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use quantdoc_core::load::{self, Input};
    use quantdoc_core::source::SliceSource;
    use std::sync::atomic::AtomicBool;

    fn fixture(name: &str) -> Option<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/gguf")
            .join(name);
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(_) => {
                eprintln!("SKIPPED: {} not found", p.display());
                None
            }
        }
    }

    /// The worker's tensor-at-a-time scan gives exactly what the core's own driver gives.
    #[test]
    fn per_tensor_scan_matches_core_scan_model() {
        for name in ["plain.gguf", "kquants.gguf", "legacy.gguf", "iquants.gguf"] {
            let Some(bytes) = fixture(name) else { return };
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
            for (i, t) in model.tensors.iter().enumerate() {
                let jobs: Vec<&ScanJob> = plan.jobs.iter().filter(|j| j.tensor == i).collect();
                let err = plan
                    .errors
                    .iter()
                    .find(|(k, _)| *k == i)
                    .map(|(_, e)| e.clone());
                let got = scan_tensor(&model, &[&src], i, &jobs, err, &opts, &mut |b| bytes += b);
                let w = &want.tensors[i];
                match got {
                    TensorOutcome::Stats(s) => {
                        assert_eq!(Some(&*s), w.stats.as_ref(), "{name} {}", t.name)
                    }
                    TensorOutcome::Error(e) => {
                        assert!(w.stats.is_none(), "{name} {}: {e}", t.name)
                    }
                }
            }
            assert_eq!(bytes, plan.total_bytes, "{name}");
        }
    }

    #[test]
    fn a_truncated_file_gives_an_error_not_a_panic() {
        let Some(bytes) = fixture("plain.gguf") else {
            return;
        };
        let src = SliceSource::new(bytes.clone());
        let model = load::load(&[Input {
            path: "plain.gguf".into(),
            source: &src,
        }])
        .unwrap();
        let short = SliceSource::new(bytes[..bytes.len() - 100].to_vec());
        let plan = scan::plan(&model, &ScanOptions::default());
        let last = model.tensors.len() - 1;
        let jobs: Vec<&ScanJob> = plan.jobs.iter().filter(|j| j.tensor == last).collect();
        match scan_tensor(
            &model,
            &[&short],
            last,
            &jobs,
            None,
            &plan.options,
            &mut |_| {},
        ) {
            TensorOutcome::Error(e) => assert!(e.contains("past the end"), "{e}"),
            TensorOutcome::Stats(_) => panic!("read past the end was not reported"),
        }
    }
}
