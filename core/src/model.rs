//! One model of a file (or a set of files): logical tensors built from stored parts.
//!
//! GGUF and safetensors both become a `Model`, so scan, rules, report and repair code is
//! written once. A GGUF tensor is one logical tensor with one part; a bitsandbytes NF4
//! weight is one logical tensor whose parts are the packed bytes, absmax, quant map,
//! nested statistics and the quant-state JSON.

use serde::{Deserialize, Serialize};

use crate::encoding::Encoding;
use crate::finding::Finding;
use crate::meta::{MetaEntry, MetaValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Gguf,
    Safetensors,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gguf => "gguf",
            Format::Safetensors => "safetensors",
        }
    }
}

/// One file of the model (a GGUF shard, a safetensors shard, config.json, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    /// Where tensor data starts (GGUF data section, safetensors 8 + header length).
    pub data_start: u64,
}

/// A stored tensor that a logical tensor is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPart {
    /// What this part is for: "data" (GGUF, dense), "weight", "absmax", "quant_map",
    /// "nested_absmax", "nested_quant_map", "quant_state", "scales", "biases", "blocks", "SCB",
    /// "qweight", "qzeros", "g_idx", "weight_scale_inv", "weight_scale", ...
    pub role: String,
    /// Name of the stored tensor.
    pub name: String,
    /// Index into `Model::files`.
    pub file: usize,
    /// Stored type as the file names it ("Q4_0", "U8", "F16", ...).
    pub dtype: String,
    /// Stored shape, row-major (outermost first).
    pub shape: Vec<u64>,
    /// Absolute offset of the data in its file.
    pub offset: u64,
    /// Bytes the part owns in the file.
    pub nbytes: u64,
}

/// A tensor as the model uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogicalTensor {
    pub name: String,
    /// Logical shape, row-major (outermost first).
    pub shape: Vec<u64>,
    pub encoding: Encoding,
    pub parts: Vec<StoredPart>,
}

impl LogicalTensor {
    pub fn n_elements(&self) -> u64 {
        self.shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// Bytes of all stored parts.
    pub fn stored_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.nbytes).sum()
    }

    /// Length of the innermost dimension (a "row").
    pub fn row_len(&self) -> u64 {
        self.shape.last().copied().unwrap_or(1)
    }

    pub fn part(&self, role: &str) -> Option<&StoredPart> {
        self.parts.iter().find(|p| p.role == role)
    }

    /// The main stored part (GGUF data, or the packed weight).
    pub fn primary(&self) -> &StoredPart {
        &self.parts[0]
    }
}

/// A parsed model: its files, metadata, logical tensors, and what the parser itself found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: Format,
    /// Format version (GGUF version; 0 for safetensors).
    pub version: u32,
    pub files: Vec<FileInfo>,
    pub metadata: Vec<MetaEntry>,
    pub tensors: Vec<LogicalTensor>,
    /// Findings from parsing (layout, header problems). Rules add more.
    pub findings: Vec<Finding>,
    /// GGUF: true when the file is big-endian.
    pub big_endian: bool,
    /// GGUF: `general.alignment` in force.
    pub alignment: u64,
}

impl Model {
    pub fn meta(&self, key: &str) -> Option<&MetaValue> {
        self.metadata
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    pub fn meta_entry(&self, key: &str) -> Option<&MetaEntry> {
        self.metadata.iter().find(|e| e.key == key)
    }

    pub fn tensor(&self, name: &str) -> Option<&LogicalTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// GGUF `general.architecture`, or a Hugging Face config's `model_type`.
    pub fn architecture(&self) -> Option<&str> {
        self.meta("general.architecture")
            .or_else(|| self.meta("config.model_type"))
            .and_then(|v| v.as_str())
    }

    pub fn parameter_count(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.n_elements())
            .fold(0u64, |a, n| a.saturating_add(n))
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Bytes of tensor data divided by parameters, in bits.
    pub fn bits_per_weight(&self) -> f64 {
        let params = self.parameter_count();
        if params == 0 {
            return 0.0;
        }
        let bytes: u64 = self.tensors.iter().map(|t| t.stored_bytes()).sum();
        bytes as f64 * 8.0 / params as f64
    }
}
