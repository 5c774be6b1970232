//! The report: everything quantdoc knows about a model, as one serializable value.
//!
//! The CLI's `--json` output, the web app's view and the share link are all this struct
//! (documented in docs/json.md; field names are stable).

pub mod link;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::finding::{sort_findings, Finding, Severity};
use crate::meta::{MetaEntry, MetadataJson};
use crate::model::{LogicalTensor, Model, StoredPart};
use crate::source::{ByteSource, SourceError};

/// One row of the quant-type mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantMix {
    /// Encoding label ("Q4_K", "F32", "bnb-nf4-dq", ...).
    pub encoding: String,
    pub tensors: u64,
    pub parameters: u64,
    pub bytes: u64,
    /// Share of all tensor bytes, 0..1.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub parameters: u64,
    pub tensor_count: u64,
    pub tensor_bytes: u64,
    pub bits_per_weight: f64,
    pub quant_mix: Vec<QuantMix>,
    pub errors: u64,
    pub warnings: u64,
    pub infos: u64,
}

/// One stored part of a logical tensor (HF encodings have several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartRow {
    pub role: String,
    pub name: String,
    pub file: usize,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub offset: u64,
    pub nbytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorRow {
    pub name: String,
    /// GGUF: the ggml type name. safetensors: the stored dtype of a dense tensor, or the
    /// encoding label of a quantized one.
    pub dtype: String,
    /// Logical shape, row-major (outermost first; the reverse of GGUF's `ne`).
    pub shape: Vec<u64>,
    /// Absolute byte offset of the (primary) data in its file.
    pub offset: u64,
    /// Bytes of all stored parts.
    pub nbytes: u64,
    /// How the values are stored (see docs/json.md).
    pub encoding: String,
    /// Stored parts, when there is more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRow {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    /// The file the user named (first file for sets).
    pub path: String,
    /// Bytes of all files.
    pub file_size: u64,
    pub version: u32,
    pub files: Vec<FileRow>,
    /// sha256 (hex) of the header bytes of every file, in order: identifies the file
    /// without reading its data.
    pub header_sha256: String,
    pub summary: Summary,
    /// Every metadata key with its full value.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub tensors: Vec<TensorRow>,
    pub findings: Vec<Finding>,
    /// Per-tensor statistics after a scan (see docs/json.md `stats`).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub stats: serde_json::Map<String, serde_json::Value>,
}

fn part_row(p: &StoredPart) -> PartRow {
    PartRow {
        role: p.role.clone(),
        name: p.name.clone(),
        file: p.file,
        dtype: p.dtype.clone(),
        shape: p.shape.clone(),
        offset: p.offset,
        nbytes: p.nbytes,
    }
}

fn tensor_row(t: &LogicalTensor) -> TensorRow {
    let primary = t.primary();
    let dtype = if t.encoding.is_quantized() || t.parts.len() > 1 {
        match &t.encoding {
            crate::encoding::Encoding::Ggml { ggml_type } => ggml_type.name().to_string(),
            e => e.label(),
        }
    } else {
        primary.dtype.clone()
    };
    TensorRow {
        name: t.name.clone(),
        dtype,
        shape: t.shape.clone(),
        offset: primary.offset,
        nbytes: t.stored_bytes(),
        encoding: t.encoding.label(),
        parts: if t.parts.len() > 1 {
            t.parts.iter().map(part_row).collect()
        } else {
            Vec::new()
        },
    }
}

fn quant_mix(model: &Model) -> Vec<QuantMix> {
    let total: u64 = model.tensors.iter().map(|t| t.stored_bytes()).sum();
    let mut rows: Vec<QuantMix> = Vec::new();
    for t in &model.tensors {
        let label = t.encoding.label();
        let i = match rows.iter().position(|r| r.encoding == label) {
            Some(i) => i,
            None => {
                rows.push(QuantMix {
                    encoding: label,
                    tensors: 0,
                    parameters: 0,
                    bytes: 0,
                    share: 0.0,
                });
                rows.len() - 1
            }
        };
        rows[i].tensors += 1;
        rows[i].parameters = rows[i].parameters.saturating_add(t.n_elements());
        rows[i].bytes += t.stored_bytes();
    }
    for r in &mut rows {
        r.share = if total > 0 {
            r.bytes as f64 / total as f64
        } else {
            0.0
        };
    }
    rows.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.encoding.cmp(&b.encoding))
    });
    rows
}

/// sha256 over each file's header bytes (`0..data_start`), in file order.
pub fn header_fingerprint<S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
) -> Result<String, SourceError> {
    let mut h = Sha256::new();
    for (f, src) in model.files.iter().zip(sources) {
        let len = f.data_start.min(src.len());
        // A mapped file is hashed in place, without copying the header out first.
        if let Some(bytes) = usize::try_from(len).ok().and_then(|n| src.borrow_at(0, n)) {
            h.update(bytes);
            continue;
        }
        let mut at = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        while at < len {
            let n = ((len - at) as usize).min(buf.len());
            src.read_exact_at(at, &mut buf[..n])?;
            h.update(&buf[..n]);
            at += n as u64;
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl Report {
    /// Build the report for a model and the findings known so far (the model's own plus
    /// whatever rules ran). `header_sha256` comes from [`header_fingerprint`].
    pub fn new(model: &Model, findings: Vec<Finding>, header_sha256: String) -> Report {
        Self::build(model, findings, header_sha256, true)
    }

    /// The same report without the `metadata` map, for output that shows metadata from the
    /// model itself (text output, or JSON written through [`ReportJson`]): copying a
    /// 262,144-token vocabulary into JSON values only to drop it was a quarter of
    /// `inspect`'s time.
    pub fn without_metadata(
        model: &Model,
        findings: Vec<Finding>,
        header_sha256: String,
    ) -> Report {
        Self::build(model, findings, header_sha256, false)
    }

    fn build(
        model: &Model,
        findings: Vec<Finding>,
        header_sha256: String,
        metadata: bool,
    ) -> Report {
        let mut findings = findings;
        sort_findings(&mut findings);
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count() as u64;
        let tensor_bytes: u64 = model.tensors.iter().map(|t| t.stored_bytes()).sum();
        let summary = Summary {
            architecture: model.architecture().map(str::to_string),
            name: model
                .meta("general.name")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            parameters: model.parameter_count(),
            tensor_count: model.tensors.len() as u64,
            tensor_bytes,
            bits_per_weight: model.bits_per_weight(),
            quant_mix: quant_mix(model),
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        };
        Report {
            format: model.format.as_str().to_string(),
            path: model
                .files
                .first()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            file_size: model.total_size(),
            version: model.version,
            files: model
                .files
                .iter()
                .map(|f| FileRow {
                    path: f.path.clone(),
                    size: f.size,
                })
                .collect(),
            header_sha256,
            summary,
            metadata: if metadata {
                model
                    .metadata
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect()
            } else {
                serde_json::Map::new()
            },
            tensors: model.tensors.iter().map(tensor_row).collect(),
            findings,
            stats: serde_json::Map::new(),
        }
    }

    /// True when any finding is an error (what `check`'s exit status reports).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// Replace the findings (after a scan adds more) and recount the summary.
    pub fn set_findings(&mut self, mut findings: Vec<Finding>) {
        sort_findings(&mut findings);
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count() as u64;
        self.summary.errors = count(Severity::Error);
        self.summary.warnings = count(Severity::Warning);
        self.summary.infos = count(Severity::Info);
        self.findings = findings;
    }
}

/// A report serialized with its `metadata` written straight from the model's entries:
/// the same JSON as `Report::new`'s report gives (field order, values, duplicate keys), but
/// without first copying every metadata value — a 262,144-token vocabulary — into
/// `serde_json::Value`s. The report's own `metadata` map is not written.
pub struct ReportJson<'a> {
    pub report: &'a Report,
    pub metadata: &'a [MetaEntry],
}

impl Serialize for ReportJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Field for field as `Report`'s derived Serialize (a test compares the two).
        let r = self.report;
        let with_stats = !r.stats.is_empty();
        let mut st = s.serialize_struct("Report", 10 + with_stats as usize)?;
        st.serialize_field("format", &r.format)?;
        st.serialize_field("path", &r.path)?;
        st.serialize_field("file_size", &r.file_size)?;
        st.serialize_field("version", &r.version)?;
        st.serialize_field("files", &r.files)?;
        st.serialize_field("header_sha256", &r.header_sha256)?;
        st.serialize_field("summary", &r.summary)?;
        st.serialize_field("metadata", &MetadataJson(self.metadata))?;
        st.serialize_field("tensors", &r.tensors)?;
        st.serialize_field("findings", &r.findings)?;
        if with_stats {
            st.serialize_field("stats", &r.stats)?;
        } else {
            st.skip_field("stats")?;
        }
        st.end()
    }
}

/// All header-only findings for a model: what the parser found plus every header rule.
pub fn header_findings(model: &Model) -> Vec<Finding> {
    let mut f = model.findings.clone();
    f.extend(crate::rules::header_rules(model));
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::rawbuilder::{RawGgufBuilder, RawValue};
    use crate::load::{load, Input};
    use crate::meta::GgufValueType as T;
    use crate::source::SliceSource;

    /// `ReportJson` writes the same bytes as serializing `Report::new`'s report: field
    /// order, packed string arrays, floats (f32 widened, NaN as text), duplicate keys.
    #[test]
    fn report_json_writes_what_report_new_writes() {
        let toks: Vec<RawValue> = (0..300)
            .map(|i| RawValue::Str(format!("tok\"{i}\n✓")))
            .collect();
        let bytes = RawGgufBuilder::new()
            .kv("general.architecture", RawValue::Str("llama".into()))
            .kv("general.name", RawValue::Str("first".into()))
            .kv("tokenizer.ggml.tokens", RawValue::Array(T::String, toks))
            .kv(
                "tokenizer.ggml.scores",
                RawValue::Array(
                    T::Float32,
                    (0..300)
                        .map(|i| RawValue::F32(if i == 7 { f32::NAN } else { i as f32 * 0.1 }))
                        .collect(),
                ),
            )
            .kv(
                "nested",
                RawValue::Array(
                    T::Array,
                    vec![RawValue::Array(T::String, vec![RawValue::Str("a".into())])],
                ),
            )
            .kv("x.f64", RawValue::F64(f64::INFINITY))
            .kv("general.name", RawValue::Str("second".into()))
            .tensor("t", &[4], 0, vec![0; 16])
            .build();
        let src = SliceSource::new(bytes);
        let model = load(&[Input {
            path: "t.gguf".into(),
            source: &src,
        }])
        .unwrap();
        assert!(matches!(
            model.meta("tokenizer.ggml.tokens"),
            Some(crate::meta::MetaValue::Strings(_))
        ));
        let findings = header_findings(&model);
        let full = Report::new(&model, findings.clone(), "ab".into());
        let mut bare = Report::without_metadata(&model, findings, "ab".into());
        assert!(bare.metadata.is_empty());
        for with_stats in [false, true] {
            let mut full = full.clone();
            if with_stats {
                full.stats
                    .insert("t".into(), serde_json::json!({"mean": 0.5}));
                bare.stats = full.stats.clone();
            }
            let view = ReportJson {
                report: &bare,
                metadata: &model.metadata,
            };
            assert_eq!(
                serde_json::to_string_pretty(&view).unwrap(),
                serde_json::to_string_pretty(&full).unwrap()
            );
            assert_eq!(
                serde_json::to_string(&view).unwrap(),
                serde_json::to_string(&full).unwrap()
            );
        }
    }
}
