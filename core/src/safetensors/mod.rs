//! safetensors files, sharded sets and model directories, grouped into logical tensors.
//!
//! Only headers (and a few hundred bytes of bitsandbytes quant-state JSON) are read, so a
//! checkpoint of any size loads in milliseconds.

pub mod header;
mod index;

use std::collections::HashMap;

use crate::error::LoadError;
use crate::finding::Finding;
use crate::hf::config::{side_file_prefix, HfConfig};
use crate::hf::group;
use crate::load::{file_kind, FileKind, Input};
use crate::meta::{MetaEntry, MetaValue};
use crate::model::{FileInfo, Format, Model, StoredPart};
use crate::source::read_vec;

pub use header::{read_header, Header, HeaderTensor};

/// JSON side files larger than this are not parsed (tokenizer.json can be tens of MB and
/// says nothing about the weights).
const MAX_SIDE_JSON: u64 = 16 << 20;

/// Metadata key prefix for the quant state of a bitsandbytes weight that is missing
/// (followed by the weight name).
pub const ORPHAN_QUANT_STATE: &str = "bitsandbytes.orphan_quant_state.";

/// Load safetensors inputs (files, an index, config.json and other side files) as one model.
pub fn load(inputs: &[Input<'_>]) -> Result<Model, LoadError> {
    let mut files = Vec::with_capacity(inputs.len());
    let mut metadata: Vec<MetaEntry> = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut stored: Vec<StoredPart> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut indexes = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let name = file_name(&input.path);
        let kind = file_kind(&input.path, input.source);
        let mut data_start = 0;
        match kind {
            FileKind::Safetensors => {
                let h = read_header(input.source, &input.path)?;
                data_start = h.data_start;
                findings.extend(h.findings.iter().cloned());
                for (k, v) in &h.metadata {
                    let key = format!("safetensors.__metadata__.{k}");
                    if !metadata.iter().any(|e| e.key == key) {
                        metadata.push(entry(key, MetaValue::String(v.clone())));
                    }
                }
                for t in &h.tensors {
                    if let Some(&prev) = seen.get(&t.name) {
                        let other = file_name(&inputs[stored[prev].file].path);
                        findings.push(Finding::error(
                            "ST_DUPLICATE_KEY",
                            Some(&t.name),
                            format!("{} is stored in both {other} and {name}; loaders keep whichever shard they read last", t.name),
                            "remove the stale copy (often a leftover shard of an earlier export)",
                        ));
                        continue;
                    }
                    seen.insert(t.name.clone(), stored.len());
                    stored.push(StoredPart {
                        role: "data".into(),
                        name: t.name.clone(),
                        file: i,
                        dtype: t.dtype.name().to_string(),
                        shape: t.shape.clone(),
                        offset: h.data_start + t.begin,
                        nbytes: t.end - t.begin,
                    });
                }
            }
            FileKind::SafetensorsIndex => {
                let value = read_json(input)?;
                indexes.push((i, value));
            }
            FileKind::Json => {
                if let Some(prefix) = side_file_prefix(name) {
                    if input.source.len() <= MAX_SIDE_JSON {
                        match read_json(input) {
                            Ok(serde_json::Value::Object(o)) => {
                                for (k, v) in o {
                                    metadata.push(entry(format!("{prefix}.{k}"), MetaValue::Json(v)));
                                }
                            }
                            Ok(other) => findings.push(Finding::warning(
                                "CONFIG_INVALID",
                                None,
                                format!("{name} holds {} instead of a JSON object; it is ignored", json_kind(&other)),
                                format!("fix or regenerate {name}"),
                            )),
                            Err(e) => findings.push(Finding::warning(
                                "CONFIG_INVALID",
                                None,
                                format!("{name} could not be read: {}", e.message),
                                format!("fix or regenerate {name}; quantization parameters and architecture checks need it"),
                            )),
                        }
                    }
                }
            }
            FileKind::Gguf | FileKind::Other => {}
        }
        files.push(FileInfo {
            path: input.path.clone(),
            size: input.source.len(),
            data_start,
        });
    }
    if !inputs
        .iter()
        .any(|i| file_kind(&i.path, i.source) == FileKind::Safetensors)
    {
        let path = indexes
            .first()
            .map(|(i, _)| inputs[*i].path.as_str())
            .unwrap_or(
                inputs
                    .first()
                    .map(|i| i.path.as_str())
                    .unwrap_or("(no input)"),
            );
        return Err(LoadError::new(
            path,
            None,
            "input",
            "no .safetensors file given (pass the shards the index names, or the checkpoint directory)",
        ));
    }
    for (i, value) in &indexes {
        findings.extend(index::check(&inputs[*i].path, value, inputs, &stored));
    }
    let mut model = Model {
        format: Format::Safetensors,
        version: 0,
        files,
        metadata,
        tensors: Vec::new(),
        findings: Vec::new(),
        big_endian: false,
        alignment: 8,
    };
    let cfg = HfConfig::from_model(&model);
    let read_small = |p: &StoredPart| -> Result<Vec<u8>, String> {
        let src = inputs.get(p.file).ok_or("no such file")?.source;
        read_vec(src, p.offset, p.nbytes).map_err(|e| e.to_string())
    };
    let grouped = group::group(stored, &cfg, &read_small);
    model.tensors = grouped.tensors;
    for (weight, state) in grouped.orphan_quant_states {
        model.metadata.push(entry(
            format!("{ORPHAN_QUANT_STATE}{weight}"),
            MetaValue::Json(state),
        ));
    }
    findings.extend(grouped.findings);
    model.findings = findings;
    Ok(model)
}

fn entry(key: String, value: MetaValue) -> MetaEntry {
    MetaEntry {
        key,
        value_type: None,
        array_type: None,
        value,
        offset: None,
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn read_json(input: &Input<'_>) -> Result<serde_json::Value, LoadError> {
    let len = input.source.len();
    if len > MAX_SIDE_JSON {
        return Err(LoadError::new(
            &input.path,
            None,
            "json",
            format!("{len} bytes is too large for a JSON side file"),
        ));
    }
    let bytes = read_vec(input.source, 0, len)
        .map_err(|e| LoadError::new(&input.path, None, "json", e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        LoadError::new(
            &input.path,
            None,
            "json",
            format!(
                "invalid JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

#[cfg(test)]
pub(crate) mod testbuild;

#[cfg(test)]
mod tests;
