//! Rewriting GGUF files: one `GgufRewrite` (output metadata + output tensors, each copied byte
//! for byte or converted to another ggml type) serves `repair`, `meta` and `requantize`.
//!
//! `execute` streams the output into any `std::io::Write`, reading the input through byte
//! sources chunk by chunk, so memory stays bounded whatever the model size. `verify` reopens
//! the output and proves it: copied tensors by SHA-256, converted tensors by statistics
//! against the source values and by exact re-quantization of sampled chunks.

pub mod gguf_plan;
pub mod hf_plan;
pub mod meta_edit;
pub mod requant;

use sha2::{Digest, Sha256};

use crate::encoding::{self, DecodeError, Encoding};
use crate::finding::Finding;
use crate::ggml::types::GgmlType;
use crate::meta::MetaEntry;
use crate::model::{LogicalTensor, Model};
use crate::quantize;
use crate::source::{bytes_at, ByteSource};
use crate::write::gguf::{write_gguf, GgufPlan, TensorEntry};
use crate::write::WriteError;

/// Why a rewrite could not be planned, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Quantize(#[from] quantize::QuantizeError),
    #[error("verification failed: {0}")]
    Verify(String),
}

/// Where an output tensor's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorSource {
    /// The input tensor's stored bytes, unchanged.
    Copy,
    /// The input tensor decoded to f32 and quantized to the output type.
    Convert,
}

/// A change of values applied while converting (HF → GGUF conventions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transform {
    #[default]
    None,
    /// llama.cpp's Q/K row permutation for rotary embeddings (HF "rotate half" → GGUF
    /// interleaved): rows viewed as [n_head, 2, half] are written as [n_head, half, 2].
    PermuteQk { n_head: u64 },
    /// Norm weights stored as offsets from 1 (Gemma): write 1 + w.
    AddOne,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutTensor {
    /// Index into the input `Model::tensors`.
    pub input: usize,
    pub entry: TensorEntry,
    pub source: TensorSource,
    /// Only with `TensorSource::Convert`.
    pub transform: Transform,
}

/// One change a plan makes, with the finding code it answers (empty for changes the user
/// asked for that answer no finding).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fix {
    pub code: String,
    pub tensor: Option<String>,
    pub action: String,
}

impl Fix {
    pub fn new(code: &str, tensor: Option<&str>, action: impl Into<String>) -> Self {
        Fix {
            code: code.to_string(),
            tensor: tensor.map(str::to_string),
            action: action.into(),
        }
    }
}

/// The output of a GGUF rewrite, before any byte is written.
#[derive(Debug, Clone)]
pub struct GgufRewrite {
    pub version: u32,
    pub metadata: Vec<MetaEntry>,
    pub tensors: Vec<OutTensor>,
    pub fixes: Vec<Fix>,
    /// Findings the rewrite leaves as they are (not fixable losslessly, or not asked for).
    pub remaining: Vec<Finding>,
    /// Findings that make writing impossible (tensor bytes missing, ambiguous duplicates).
    pub blocking: Vec<Finding>,
}

impl GgufRewrite {
    /// Every tensor copied as it is, metadata unchanged: the identity rewrite that re-lays
    /// the file densely. Fails on tensors whose type ggml no longer defines.
    pub fn identity(model: &Model) -> Result<Self, RepairError> {
        let rw = Self::identity_lenient(model);
        if rw.tensors.len() != model.tensors.len() {
            let bad = model
                .tensors
                .iter()
                .find(|t| ggml_type_of(t).is_err())
                .expect("a tensor was skipped");
            return Err(RepairError::Refused(format!(
                "{} is stored as {}, which cannot be rewritten",
                bad.name,
                bad.encoding.label()
            )));
        }
        Ok(rw)
    }

    /// Like `identity`, but skips tensors of unknown types (callers report them).
    pub(crate) fn identity_lenient(model: &Model) -> Self {
        let tensors = model
            .tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let ty = ggml_type_of(t).ok()?;
                Some(OutTensor {
                    input: i,
                    entry: TensorEntry::new(&t.name, &t.shape, ty),
                    source: TensorSource::Copy,
                    transform: Transform::None,
                })
            })
            .collect();
        GgufRewrite {
            version: if model.version == 2 { 2 } else { 3 },
            metadata: model.metadata.clone(),
            tensors,
            fixes: Vec::new(),
            remaining: Vec::new(),
            blocking: Vec::new(),
        }
    }

    pub fn plan(&self) -> Result<GgufPlan, RepairError> {
        let entries: Vec<TensorEntry> = self.tensors.iter().map(|t| t.entry.clone()).collect();
        Ok(GgufPlan::new(self.version, &self.metadata, &entries)?)
    }
}

pub fn ggml_type_of(t: &LogicalTensor) -> Result<GgmlType, RepairError> {
    match &t.encoding {
        Encoding::Ggml { ggml_type } => Ok(*ggml_type),
        other => Err(RepairError::Refused(format!(
            "{} is stored as {}, which a GGUF file cannot hold",
            t.name,
            other.label()
        ))),
    }
}

/// Progress of a rewrite: called after every chunk with (bytes read, bytes written).
pub trait Progress {
    fn update(&mut self, _tensor: &str, _read: u64, _written: u64) {}
}

impl Progress for () {}

/// Elements per conversion chunk: about a million, rounded to whole blocks of both types.
fn chunk_elements(t: &LogicalTensor, out: GgmlType) -> Result<u64, RepairError> {
    let g = encoding::granule(t)?;
    let b = out.block_size();
    let lcm = g / gcd(g, b) * b;
    Ok((1u64 << 20).div_ceil(lcm) * lcm)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Bytes per copy chunk.
const COPY_CHUNK: u64 = 8 << 20;

/// Counters of one rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Write the rewrite's output into `w`. `sources[i]` is the byte source of
/// `model.files[i]`.
pub fn execute<W: std::io::Write, S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    rewrite: &GgufRewrite,
    plan: &GgufPlan,
    w: W,
    progress: &mut dyn Progress,
) -> Result<(W, Totals), RepairError> {
    if model.big_endian {
        // Tensor bytes would need swapping element by element; the writer is little-endian.
        return Err(RepairError::Refused(
            "big-endian GGUF files cannot be rewritten (byte-order conversion is not supported)"
                .into(),
        ));
    }
    let mut totals = Totals {
        bytes_read: 0,
        bytes_written: plan.data_start(),
    };
    let mut failure: Option<RepairError> = None;
    let result = write_gguf(plan, w, |i, entry, sink| {
        let out = &rewrite.tensors[i];
        let t = &model.tensors[out.input];
        let r = match out.source {
            TensorSource::Copy => copy_tensor(t, sources, &mut |b| sink.write_data(b), &mut totals),
            TensorSource::Convert => convert_tensor(
                model,
                t,
                sources,
                out.transform,
                entry.ggml_type,
                &mut |b| sink.write_data(b),
                &mut totals,
            ),
        };
        match r {
            Ok(()) => {
                progress.update(&t.name, totals.bytes_read, totals.bytes_written);
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                failure = Some(e);
                Err(WriteError::Invalid(msg))
            }
        }
    });
    match result {
        Ok(w) => {
            totals.bytes_written = plan.total_len();
            Ok((w, totals))
        }
        Err(e) => Err(failure.unwrap_or(RepairError::Write(e))),
    }
}

type Sink<'a> = dyn FnMut(&[u8]) -> Result<(), WriteError> + 'a;

fn copy_tensor<S: ByteSource + ?Sized>(
    t: &LogicalTensor,
    sources: &[&S],
    sink: &mut Sink<'_>,
    totals: &mut Totals,
) -> Result<(), RepairError> {
    let part = t.primary();
    let src = source_of(sources, part.file)?;
    let mut scratch = Vec::new();
    let mut off = 0u64;
    while off < part.nbytes {
        let n = (part.nbytes - off).min(COPY_CHUNK);
        let bytes = bytes_at(src, part.offset + off, n as usize, &mut scratch)
            .map_err(DecodeError::from)?;
        sink(bytes)?;
        off += n;
        totals.bytes_read += n;
        totals.bytes_written += n;
    }
    Ok(())
}

fn source_of<'a, S: ByteSource + ?Sized>(
    sources: &[&'a S],
    file: usize,
) -> Result<&'a S, RepairError> {
    sources
        .get(file)
        .copied()
        .ok_or_else(|| RepairError::Refused(format!("no byte source for input file {file}")))
}

fn convert_tensor<S: ByteSource + ?Sized>(
    model: &Model,
    t: &LogicalTensor,
    sources: &[&S],
    transform: Transform,
    out: GgmlType,
    sink: &mut Sink<'_>,
    totals: &mut Totals,
) -> Result<(), RepairError> {
    let n = t.n_elements();
    let chunk = transform_chunk(t, transform, chunk_elements(t, out)?)?;
    let mut values = Vec::new();
    let mut bytes = Vec::new();
    let mut start = 0u64;
    while start < n {
        let count = (n - start).min(chunk);
        values.resize(count as usize, 0f32);
        totals.bytes_read += read_values(model, t, sources, transform, start, &mut values)?;
        bytes.resize((count / out.block_size() * out.type_size()) as usize, 0);
        quantize::quantize(out, &values, &mut bytes)?;
        sink(&bytes)?;
        totals.bytes_written += bytes.len() as u64;
        start += count;
    }
    Ok(())
}

/// Chunk length for a transform: whole rows when rows are permuted.
fn transform_chunk(
    t: &LogicalTensor,
    transform: Transform,
    chunk: u64,
) -> Result<u64, RepairError> {
    match transform {
        Transform::PermuteQk { n_head } => {
            let cols = t.row_len().max(1);
            let rows = t.n_elements() / cols;
            if t.shape.len() < 2 || n_head == 0 || !rows.is_multiple_of(2 * n_head) {
                return Err(RepairError::Refused(format!(
                    "{}: {rows} rows cannot be split into {n_head} heads of two rotary halves",
                    t.name
                )));
            }
            let g = encoding::granule(t)?;
            if !cols.is_multiple_of(g) {
                return Err(RepairError::Refused(format!(
                    "{}: rows of {cols} are not whole {g}-element decode units",
                    t.name
                )));
            }
            // `chunk` is a multiple of the output block, which divides the row length.
            Ok(chunk.div_ceil(cols).max(1) * cols)
        }
        _ => Ok(chunk),
    }
}

/// Source values of elements `start..start+out.len()` in output order (after the
/// transform). Returns the bytes read.
fn read_values<S: ByteSource + ?Sized>(
    model: &Model,
    t: &LogicalTensor,
    sources: &[&S],
    transform: Transform,
    start: u64,
    out: &mut [f32],
) -> Result<u64, RepairError> {
    let count = out.len() as u64;
    let planned = |s: u64, c: u64| -> Result<u64, RepairError> {
        Ok(encoding::plan(t, s, c)?.iter().map(|r| r.len).sum())
    };
    match transform {
        Transform::None => {
            encoding::read_and_decode(model, t, sources, start, out)?;
            planned(start, count)
        }
        Transform::AddOne => {
            encoding::read_and_decode(model, t, sources, start, out)?;
            out.iter_mut().for_each(|v| *v += 1.0);
            planned(start, count)
        }
        Transform::PermuteQk { n_head } => {
            let cols = t.row_len();
            let rows = t.n_elements() / cols;
            let half = rows / n_head / 2;
            let mut read = 0;
            for (k, row) in out.chunks_mut(cols as usize).enumerate() {
                let o = start / cols + k as u64;
                // Output row (h, i, j) of [n_head, half, 2] takes source row (h, j, i) of
                // [n_head, 2, half].
                let (h, rest) = (o / (2 * half), o % (2 * half));
                let (i, j) = (rest / 2, rest % 2);
                let src_row = h * 2 * half + j * half + i;
                encoding::read_and_decode(model, t, sources, src_row * cols, row)?;
                read += planned(src_row * cols, cols)?;
            }
            Ok(read)
        }
    }
}

/// SHA-256 of a byte string (exposed for tests and manifests).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of a whole source, read in chunks.
pub fn sha256_source<S: ByteSource + ?Sized>(src: &S) -> Result<[u8; 32], RepairError> {
    let mut h = Sha256::new();
    let mut scratch = Vec::new();
    let mut off = 0u64;
    while off < src.len() {
        let n = (src.len() - off).min(COPY_CHUNK);
        h.update(bytes_at(src, off, n as usize, &mut scratch).map_err(DecodeError::from)?);
        off += n;
    }
    Ok(h.finalize().into())
}

fn sha256_of_part<S: ByteSource + ?Sized>(
    t: &LogicalTensor,
    sources: &[&S],
) -> Result<[u8; 32], RepairError> {
    let mut h = Sha256::new();
    let mut totals = Totals::default();
    copy_tensor(
        t,
        sources,
        &mut |b| {
            h.update(b);
            Ok(())
        },
        &mut totals,
    )?;
    Ok(h.finalize().into())
}

/// What verification checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    pub tensors_hashed: usize,
    pub tensors_compared: usize,
    /// Largest relative RMS difference between a converted tensor and its source values.
    pub worst_relative_rms: f64,
    pub worst_tensor: Option<String>,
}

/// Relative RMS error a conversion to `ty` may show: well above what the format's bit
/// width gives on real weights, far below the ~100% of a packing or layout bug.
fn error_bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 | GgmlType::BF16 => 0.01,
        GgmlType::Q8_0 => 0.02,
        GgmlType::Q6_K => 0.06,
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5_K => 0.12,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4_K => 0.25,
        _ => 0.75,
    }
}

/// Reopened output vs input: same tensors in the same order with the planned shapes and
/// types; copied tensors hash identically; converted tensors decode close to the source
/// values, and sampled chunks re-quantize to exactly the written bytes.
pub fn verify<S: ByteSource + ?Sized, O: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    rewrite: &GgufRewrite,
    output: &Model,
    out_source: &O,
) -> Result<VerifyReport, RepairError> {
    let fail = |m: String| Err(RepairError::Verify(m));
    if output.tensors.len() != rewrite.tensors.len() {
        return fail(format!(
            "output has {} tensors, planned {}",
            output.tensors.len(),
            rewrite.tensors.len()
        ));
    }
    if let Some(f) = output
        .findings
        .iter()
        .find(|f| f.severity == crate::finding::Severity::Error)
    {
        return fail(format!(
            "output has a layout error: {} {}",
            f.code, f.message
        ));
    }
    let outs: [&O; 1] = [out_source];
    let mut report = VerifyReport::default();
    for (planned, got) in rewrite.tensors.iter().zip(&output.tensors) {
        let e = &planned.entry;
        if got.name != e.name || got.shape != e.shape || ggml_type_of(got)? != e.ggml_type {
            return fail(format!(
                "tensor {} came back as {} {:?} {}; planned {:?} {}",
                e.name,
                got.name,
                got.shape,
                got.encoding.label(),
                e.shape,
                e.ggml_type
            ));
        }
        let input = &model.tensors[planned.input];
        match planned.source {
            TensorSource::Copy => {
                if sha256_of_part(input, sources)? != sha256_of_part(got, &outs)? {
                    return fail(format!("tensor {}: bytes differ from the input", e.name));
                }
                report.tensors_hashed += 1;
            }
            TensorSource::Convert => {
                let rel = compare_converted(
                    model,
                    input,
                    sources,
                    planned.transform,
                    output,
                    got,
                    &outs,
                )?;
                if rel > error_bound(e.ggml_type) {
                    return fail(format!(
                        "tensor {}: relative RMS difference {rel:.4} from the source exceeds {} for {}",
                        e.name,
                        error_bound(e.ggml_type),
                        e.ggml_type
                    ));
                }
                if rel > report.worst_relative_rms || report.worst_tensor.is_none() {
                    report.worst_relative_rms = rel;
                    report.worst_tensor = Some(e.name.clone());
                }
                report.tensors_compared += 1;
            }
        }
    }
    Ok(report)
}

/// Relative RMS difference between the decoded output and the decoded input; also checks
/// that the first and last chunks re-quantize to the exact bytes written.
#[allow(clippy::too_many_arguments)]
fn compare_converted<S: ByteSource + ?Sized, O: ByteSource + ?Sized>(
    model: &Model,
    input: &LogicalTensor,
    sources: &[&S],
    transform: Transform,
    output: &Model,
    got: &LogicalTensor,
    outs: &[&O],
) -> Result<f64, RepairError> {
    let ty = ggml_type_of(got)?;
    let n = input.n_elements();
    let chunk = transform_chunk(
        input,
        transform,
        chunk_elements(input, ty)?.max(chunk_elements(got, ty)?),
    )?;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let (mut err2, mut ref2) = (0f64, 0f64);
    let mut start = 0u64;
    let last_start = if n == 0 { 0 } else { (n - 1) / chunk * chunk };
    while start < n {
        let count = (n - start).min(chunk);
        a.resize(count as usize, 0f32);
        b.resize(count as usize, 0f32);
        read_values(model, input, sources, transform, start, &mut a)?;
        encoding::read_and_decode(output, got, outs, start, &mut b)?;
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (*x as f64, *y as f64);
            if x.is_finite() && y.is_finite() {
                err2 += (x - y) * (x - y);
                ref2 += x * x;
            } else if !(x == y || x.is_nan() && y.is_nan()) {
                return Err(RepairError::Verify(format!(
                    "tensor {}: non-finite value {x} came back as {y}",
                    got.name
                )));
            }
        }
        if start == 0 || start == last_start {
            let want = quantize::quantize_to_vec(ty, &a)?;
            let bs = ty.block_size();
            let off = start / bs * ty.type_size();
            let part = got.primary();
            let mut scratch = Vec::new();
            let written = bytes_at(outs[0], part.offset + off, want.len(), &mut scratch)
                .map_err(DecodeError::from)?;
            if written != want.as_slice() {
                return Err(RepairError::Verify(format!(
                    "tensor {}: bytes at element {start} are not the quantization of the source values",
                    got.name
                )));
            }
        }
        start += count;
    }
    Ok(if ref2 > 0.0 {
        (err2 / ref2).sqrt()
    } else if err2 > 0.0 {
        f64::INFINITY
    } else {
        0.0
    })
}

#[cfg(test)]
mod tests;
