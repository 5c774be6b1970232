//! Encodings: how a logical tensor is built from its stored parts, and how to decode it.
//!
//! Decoding is split from I/O so the same code runs over mmap natively and over
//! `Blob.slice` reads in a browser worker: `plan` says which byte ranges of which parts a
//! chunk of elements needs, the caller reads them however it can, and `decode` turns those
//! bytes into f32 without touching any source.

mod dense;
mod ggml;
mod hf;

use serde::{Deserialize, Serialize};

use crate::dtype::Dtype;
use crate::ggml::types::GgmlType;
use crate::model::{LogicalTensor, Model};
use crate::source::{ByteSource, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bnb4Kind {
    Nf4,
    Fp4,
}

/// bitsandbytes double quantization: the absmax values are themselves 8-bit quantized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BnbNested {
    pub blocksize: u64,
    /// Added to every dequantized absmax (the mean that was subtracted before quantizing).
    pub offset: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MlxFloatMode {
    Mxfp4,
    Mxfp8,
    Nvfp4,
}

/// Where the scale of an FP8 weight comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fp8Scale {
    /// No scale tensor: values as stored.
    None,
    /// One scale for the whole tensor (`weight_scale`, multiplied).
    PerTensor,
    /// One scale per output row (`weight_scale` of shape [rows, 1] or [rows]).
    PerChannel,
    /// DeepSeek-style `weight_scale_inv` over blocks of `block` = [rows, cols].
    Block { block: [u64; 2] },
}

/// How a logical tensor's values are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// A GGUF tensor of a ggml type (one part).
    Ggml { ggml_type: GgmlType },
    /// A GGUF tensor whose type id no current ggml defines (cannot be decoded).
    GgmlUnknown { type_id: u32 },
    /// A dense safetensors tensor (one part).
    Dense { dtype: Dtype },
    /// bitsandbytes 4-bit (NF4/FP4), optionally double-quantized.
    Bnb4 {
        quant_type: Bnb4Kind,
        blocksize: u64,
        nested: Option<BnbNested>,
        /// dtype the weight dequantizes to (from the quant state).
        out_dtype: Dtype,
    },
    /// bitsandbytes LLM.int8: int8 weight and per-row `SCB`.
    BnbInt8 { out_dtype: Dtype },
    /// MLX affine quantization: packed uint32 codes, per-group scales and biases.
    MlxAffine {
        bits: u32,
        group_size: u64,
        out_dtype: Dtype,
    },
    /// MLX microscaling float modes (no biases).
    MlxFloat {
        mode: MlxFloatMode,
        group_size: u64,
        out_dtype: Dtype,
    },
    /// gpt-oss MXFP4 experts: `*_blocks` + `*_scales` (E8M0).
    GptOssMxfp4 { out_dtype: Dtype },
    /// FP8 weight with an optional scale tensor.
    Fp8 {
        fp8: Dtype,
        scale: Fp8Scale,
        out_dtype: Dtype,
    },
    /// GPTQ: qweight/qzeros/scales/g_idx.
    Gptq {
        bits: u32,
        group_size: u64,
        act_order: bool,
        out_dtype: Dtype,
    },
    /// AWQ (GEMM packing): qweight/qzeros/scales.
    Awq {
        bits: u32,
        group_size: u64,
        out_dtype: Dtype,
    },
}

impl Encoding {
    /// Short human name: "Q4_K", "F16", "bnb-nf4", "mlx-affine-4b-g64", ...
    pub fn label(&self) -> String {
        match self {
            Encoding::Ggml { ggml_type } => ggml_type.name().to_string(),
            Encoding::GgmlUnknown { type_id } => crate::ggml::types::type_name_for_id(*type_id),
            Encoding::Dense { dtype } => dtype.name().to_string(),
            Encoding::Bnb4 {
                quant_type, nested, ..
            } => format!(
                "bnb-{}{}",
                match quant_type {
                    Bnb4Kind::Nf4 => "nf4",
                    Bnb4Kind::Fp4 => "fp4",
                },
                if nested.is_some() { "-dq" } else { "" }
            ),
            Encoding::BnbInt8 { .. } => "bnb-int8".to_string(),
            Encoding::MlxAffine {
                bits, group_size, ..
            } => format!("mlx-affine-{bits}b-g{group_size}"),
            Encoding::MlxFloat { mode, .. } => format!(
                "mlx-{}",
                match mode {
                    MlxFloatMode::Mxfp4 => "mxfp4",
                    MlxFloatMode::Mxfp8 => "mxfp8",
                    MlxFloatMode::Nvfp4 => "nvfp4",
                }
            ),
            Encoding::GptOssMxfp4 { .. } => "gpt-oss-mxfp4".to_string(),
            Encoding::Fp8 { fp8, .. } => format!("fp8-{}", fp8.name()),
            Encoding::Gptq {
                bits, group_size, ..
            } => format!("gptq-{bits}b-g{group_size}"),
            Encoding::Awq {
                bits, group_size, ..
            } => format!("awq-{bits}b-g{group_size}"),
        }
    }

    /// True when the stored form is not plain floats.
    pub fn is_quantized(&self) -> bool {
        match self {
            Encoding::Ggml { ggml_type } => ggml_type.is_quantized(),
            Encoding::Dense { .. } => false,
            Encoding::GgmlUnknown { .. } => false,
            _ => true,
        }
    }
}

/// Why a tensor could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// A byte range of one stored part, relative to the part's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRange {
    /// Index into `LogicalTensor::parts`.
    pub part: usize,
    pub offset: u64,
    pub len: u64,
}

/// The byte range `offset..offset+len` of a tensor stored as one contiguous part (GGUF
/// tensors, dense safetensors), refused when the part does not own those bytes.
fn single_part_range(
    t: &LogicalTensor,
    offset: u64,
    len: u64,
) -> Result<Vec<PartRange>, DecodeError> {
    let part = t.primary();
    if offset.saturating_add(len) > part.nbytes {
        return Err(DecodeError::Invalid(format!(
            "{} needs bytes {}..{} of its data but owns only {} bytes",
            t.name,
            offset,
            offset.saturating_add(len),
            part.nbytes
        )));
    }
    Ok(vec![PartRange {
        part: 0,
        offset,
        len,
    }])
}

/// Elements per decode unit: chunks start at multiples of it (and end there, or at the end).
pub fn granule(t: &LogicalTensor) -> Result<u64, DecodeError> {
    match &t.encoding {
        Encoding::Ggml { ggml_type } => Ok(ggml_type.block_size()),
        Encoding::Dense { dtype } => Ok(dense::granule(*dtype)),
        Encoding::GgmlUnknown { .. } => Err(DecodeError::Unsupported(format!(
            "{} has {}: it cannot be decoded",
            t.name,
            t.encoding.label()
        ))),
        _ => hf::granule(t),
    }
}

/// Which bytes decoding elements `start..start+count` needs.
pub fn plan(t: &LogicalTensor, start: u64, count: u64) -> Result<Vec<PartRange>, DecodeError> {
    check_chunk(t, start, count)?;
    match &t.encoding {
        Encoding::Ggml { ggml_type } => ggml::plan(*ggml_type, t, start, count),
        Encoding::Dense { dtype } => dense::plan(*dtype, t, start, count),
        _ => hf::plan(t, start, count),
    }
}

/// Decode elements `start..start+count` from the bytes `plan` asked for (in the same order)
/// into `out` (length `count`).
pub fn decode(
    t: &LogicalTensor,
    start: u64,
    inputs: &[&[u8]],
    out: &mut [f32],
) -> Result<(), DecodeError> {
    check_chunk(t, start, out.len() as u64)?;
    match &t.encoding {
        Encoding::Ggml { ggml_type } => ggml::decode(*ggml_type, inputs, out),
        Encoding::Dense { dtype } => dense::decode(*dtype, inputs, out),
        _ => hf::decode(t, start, inputs, out),
    }
}

fn check_chunk(t: &LogicalTensor, start: u64, count: u64) -> Result<(), DecodeError> {
    let n = t.n_elements();
    let g = granule(t)?;
    let end = start
        .checked_add(count)
        .filter(|&e| e <= n)
        .ok_or_else(|| {
            DecodeError::Invalid(format!(
                "elements {start}..{} are outside tensor {} ({n} elements)",
                start.saturating_add(count),
                t.name
            ))
        })?;
    if !start.is_multiple_of(g) || (end % g != 0 && end != n) {
        return Err(DecodeError::Invalid(format!(
            "chunk {start}..{end} of {} is not aligned to its {g}-element granule",
            t.name
        )));
    }
    Ok(())
}

/// Read what `plan` asks for from the model's files and decode it.
/// `sources[i]` is the byte source of `model.files[i]`.
pub fn read_and_decode<S: ByteSource + ?Sized>(
    model: &Model,
    t: &LogicalTensor,
    sources: &[&S],
    start: u64,
    out: &mut [f32],
) -> Result<(), DecodeError> {
    let ranges = plan(t, start, out.len() as u64)?;
    let mut scratch: Vec<Vec<u8>> = Vec::with_capacity(ranges.len());
    let mut borrowed: Vec<Option<&[u8]>> = Vec::with_capacity(ranges.len());
    for r in &ranges {
        let part = &t.parts[r.part];
        let src = sources.get(part.file).ok_or_else(|| {
            DecodeError::Invalid(format!(
                "no byte source for file {} ({})",
                part.file,
                model
                    .files
                    .get(part.file)
                    .map(|f| f.path.as_str())
                    .unwrap_or("?")
            ))
        })?;
        let abs = part.offset + r.offset;
        let len = usize::try_from(r.len)
            .map_err(|_| DecodeError::Invalid(format!("range of {} bytes is too large", r.len)))?;
        crate::source::check_range(abs, r.len, src.len())?;
        match src.borrow_at(abs, len) {
            Some(b) => {
                borrowed.push(Some(b));
                scratch.push(Vec::new());
            }
            None => {
                borrowed.push(None);
                scratch.push(crate::source::read_vec(*src, abs, r.len)?);
            }
        }
    }
    let inputs: Vec<&[u8]> = borrowed
        .iter()
        .zip(&scratch)
        .map(|(b, s)| b.unwrap_or(s.as_slice()))
        .collect();
    decode(t, start, &inputs, out)
}

/// Decode a whole tensor into memory (for `dequant` and tests; scans go chunk by chunk).
pub fn dequantize_tensor<S: ByteSource + ?Sized>(
    model: &Model,
    t: &LogicalTensor,
    sources: &[&S],
) -> Result<Vec<f32>, DecodeError> {
    // The output is sized by the header's shape, so first make sure the stored parts really
    // exist in the files: a corrupt shape must not drive a huge allocation.
    for part in &t.parts {
        let src = sources.get(part.file).ok_or_else(|| {
            DecodeError::Invalid(format!("no byte source for file {}", part.file))
        })?;
        crate::source::check_range(part.offset, part.nbytes, src.len())?;
    }
    let n = usize::try_from(t.n_elements())
        .map_err(|_| DecodeError::Invalid("tensor too large".into()))?;
    // Even the densest encodings (ternary, ~1.6 bits) expand at most 32x from stored bytes.
    let stored = t.stored_bytes();
    if (n as u64) > stored.saturating_mul(32).max(64) {
        return Err(DecodeError::Invalid(format!(
            "{} claims {n} elements but stores only {stored} bytes",
            t.name
        )));
    }
    let mut out = vec![0f32; n];
    let g = granule(t)? as usize;
    let chunk = (1usize << 20).div_ceil(g) * g;
    let mut start = 0usize;
    while start < n {
        let end = (start + chunk).min(n);
        read_and_decode(model, t, sources, start as u64, &mut out[start..end])?;
        start = end;
    }
    Ok(out)
}
