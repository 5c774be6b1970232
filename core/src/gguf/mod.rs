//! GGUF: header reader, layout analysis, split sets.

mod cursor;
pub mod layout;
pub mod rawbuilder;
pub mod reader;
pub mod split;

use crate::encoding::Encoding;
use crate::error::LoadError;
use crate::finding::Finding;
use crate::ggml::types::GgmlType;
use crate::load::Input;
use crate::meta::MetaValue;
use crate::model::{FileInfo, Format, LogicalTensor, Model, StoredPart};

pub use reader::{parse_header, Header, TensorInfo};

/// Load one GGUF file, or the shards of a gguf-split set (in any order; missing shards are
/// reported as findings).
pub fn load(inputs: &[Input<'_>]) -> Result<Model, LoadError> {
    let mut headers = Vec::with_capacity(inputs.len());
    for input in inputs {
        headers.push(parse_header(input.source, &input.path)?);
    }
    let mut findings = Vec::new();
    let mut tensors = Vec::new();
    let mut files = Vec::new();
    for (i, (input, h)) in inputs.iter().zip(&headers).enumerate() {
        let label = file_label(&input.path);
        files.push(FileInfo {
            path: input.path.clone(),
            size: input.source.len(),
            data_start: h.data_start,
        });
        findings.extend(h.findings.iter().cloned());
        findings.extend(layout::check(h, input.source.len(), &label));
        for l in layout::tensor_layouts(h) {
            tensors.push(logical_tensor(&l, h, i));
        }
    }
    // Shard 0 (split.no == 0) carries the model metadata; a single file is its own shard 0.
    let main = headers
        .iter()
        .position(|h| split_no(h) == Some(0))
        .unwrap_or(0);
    findings.extend(split_findings(inputs, &headers, tensors.len()));
    let h0 = &mut headers[main];
    Ok(Model {
        format: Format::Gguf,
        version: h0.version,
        files,
        // Moved, not cloned: a vocabulary can be megabytes.
        metadata: std::mem::take(&mut h0.metadata),
        tensors,
        findings,
        big_endian: h0.big_endian,
        alignment: h0.alignment,
    })
}

fn file_label(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_string()
}

fn logical_tensor(l: &layout::TensorLayout<'_>, h: &Header, file: usize) -> LogicalTensor {
    let shape: Vec<u64> = l.info.ne.iter().rev().copied().collect();
    let dtype =
        l.ty.map(|t| t.name().to_string())
            .unwrap_or_else(|| crate::ggml::types::type_name_for_id(l.info.type_id));
    let encoding = match l.ty {
        Some(t) => Encoding::Ggml { ggml_type: t },
        None => Encoding::GgmlUnknown {
            type_id: l.info.type_id,
        },
    };
    LogicalTensor {
        name: l.info.name.clone(),
        shape: shape.clone(),
        encoding,
        parts: vec![StoredPart {
            role: "data".to_string(),
            name: l.info.name.clone(),
            file,
            dtype,
            shape,
            offset: h.data_start.saturating_add(l.info.rel_offset),
            nbytes: l.expected.unwrap_or(0),
        }],
    }
}

fn meta_u64(h: &Header, key: &str) -> Option<u64> {
    h.metadata
        .iter()
        .find(|e| e.key == key)
        .and_then(|e| e.value.as_u64())
}

fn split_no(h: &Header) -> Option<u64> {
    meta_u64(h, "split.no")
}

fn split_findings(inputs: &[Input<'_>], headers: &[Header], n_tensors: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(count) = headers.iter().find_map(|h| meta_u64(h, "split.count")) else {
        return out;
    };
    if count <= 1 && headers.len() <= 1 {
        return out;
    }
    let present: Vec<u64> = headers.iter().filter_map(split_no).collect();
    let missing: Vec<u64> = (0..count).filter(|n| !present.contains(n)).collect();
    if !missing.is_empty() {
        let names: Vec<String> = match split::shard_paths(&inputs[0].path) {
            Some(paths) => missing
                .iter()
                .filter_map(|&n| paths.get(n as usize))
                .map(|p| file_label(p))
                .collect(),
            None => missing.iter().map(|n| format!("shard {}", n + 1)).collect(),
        };
        out.push(Finding::error(
            "GGUF_SPLIT_MISSING",
            None,
            format!(
                "split set of {count} shards: {} of them missing ({}); found {}",
                missing.len(),
                names.join(", "),
                present.len()
            ),
            "put every shard next to the others with its original name; llama.cpp loads a split model from its first shard and needs all of them",
        ));
    }
    if let Some(total) = headers
        .iter()
        .find_map(|h| h.metadata.iter().find(|e| e.key == "split.tensors.count"))
        .and_then(|e| match &e.value {
            MetaValue::I64(v) => Some(*v as u64),
            v => v.as_u64(),
        })
    {
        if missing.is_empty() && total != n_tensors as u64 {
            out.push(Finding::error(
                "GGUF_SPLIT_TENSOR_COUNT",
                None,
                format!(
                    "split.tensors.count says {total} tensors but the {} shards hold {n_tensors}",
                    headers.len()
                ),
                "a shard is from a different split run or was modified; re-split the model",
            ));
        }
    }
    out
}

/// Bytes per block of a known type (helper for callers that hold only an id).
pub fn type_size(id: u32) -> Option<u64> {
    GgmlType::from_id(id).map(|t| t.type_size())
}
