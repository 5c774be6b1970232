//! Share links: a report packed into a URL fragment.
//!
//! The fragment (`#qd1.…`) never reaches a server. It is versioned, deflate-compressed and
//! base64url-encoded, and it is built here so the CLI's `quantdoc link` and the web app's
//! "Copy link" produce the same text for the same report.
//!
//! What goes in, in order of priority, until the size budget is used up: the summary, every
//! finding and the header fingerprint (always); metadata values (optional, long values
//! collapsed); then tensor rows with their statistics, tensors named by a finding first.
//! The decoded link says how much was left out.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FileRow, Report, Summary, TensorRow};
use crate::finding::Finding;
use crate::model::Model;
use crate::scan::ScanResult;

/// Format version of the fragment payload; bumped on any incompatible change.
pub const LINK_VERSION: u32 = 1;
/// Where `trunk serve` puts the app (see docs/web.md).
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/";
/// Fragment length that keeps a whole link under 8,000 characters with a typical base URL.
pub const DEFAULT_MAX_FRAGMENT_CHARS: usize = 7_800;

/// Links longer than this are refused before decoding (nobody shares a megabyte URL).
const MAX_FRAGMENT_INPUT: usize = 1 << 20;
/// Inflated payloads are capped so a crafted link cannot exhaust memory.
const MAX_INFLATED: usize = 8 << 20;
/// Metadata arrays longer than this are shown as their first items and their length.
const COLLAPSE_ARRAY_ITEMS: usize = 16;
/// Metadata strings longer than this are cut in links (chat templates run to kilobytes).
const LINK_STRING_CHARS: usize = 240;
/// Significant digits kept for statistics in a link.
const STAT_DIGITS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("not a quantdoc link: the fragment must start with \"qd<version>.\"")]
    NotALink,
    #[error("this link was made by a newer quantdoc (link format {found}; this version reads format {LINK_VERSION})")]
    UnsupportedVersion { found: String },
    #[error("the link is damaged: {0}")]
    Corrupt(String),
    #[error("the link is too long ({0} characters)")]
    TooLong(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkOptions {
    /// Carry metadata values (collapsed); off leaves every metadata value out.
    pub include_metadata: bool,
    /// Budget for the fragment (without `#`).
    pub max_chars: usize,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            include_metadata: true,
            max_chars: DEFAULT_MAX_FRAGMENT_CHARS,
        }
    }
}

/// What the budget (or the metadata toggle) left out of a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    /// The sender chose to leave metadata out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub metadata_excluded: bool,
    /// Metadata entries left out for size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub metadata_entries: u64,
    /// Tensor rows (with their statistics) left out for size.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tensors: u64,
    /// Statistics the report had but the link could not carry.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stats: u64,
}

impl Omitted {
    pub fn is_nothing(&self) -> bool {
        *self == Omitted::default()
    }

    /// One sentence for the view and the CLI.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.metadata_excluded {
            parts.push("metadata values (left out by the sender)".to_string());
        }
        if self.metadata_entries > 0 {
            parts.push(format!("{} metadata entries", self.metadata_entries));
        }
        if self.tensors > 0 {
            parts.push(format!("{} tensor rows", self.tensors));
        }
        if self.stats > 0 {
            parts.push(format!("statistics of {} tensors", self.stats));
        }
        (!parts.is_empty()).then(|| format!("Left out of this link: {}.", parts.join(", ")))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A tensor as a link carries it: no offsets, statistics rounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LinkTensor {
    #[serde(rename = "n")]
    name: String,
    #[serde(rename = "t")]
    dtype: String,
    #[serde(rename = "s")]
    shape: Vec<u64>,
    #[serde(rename = "b")]
    nbytes: u64,
    #[serde(rename = "e", default, skip_serializing_if = "String::is_empty")]
    encoding: String,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    stats: Option<Value>,
}

/// The payload inside the fragment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payload {
    format: String,
    path: String,
    size: u64,
    version: u32,
    files: Vec<FileRow>,
    sha: String,
    summary: Summary,
    findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tensors: Vec<LinkTensor>,
    #[serde(default, skip_serializing_if = "Omitted::is_nothing")]
    omitted: Omitted,
}

/// A report read back from a link.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedReport {
    /// The report as far as the link carried it. Tensor offsets are not carried (0).
    pub report: Report,
    pub omitted: Omitted,
}

/// A link's fragment and what it left out.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedLink {
    /// Without the leading `#`.
    pub fragment: String,
    pub omitted: Omitted,
}

/// The report a link is made from after a deep scan: header findings plus the health rules
/// over the statistics, and every tensor's statistics. The CLI's `quantdoc link` and the web
/// app both build it here, so the same file gives the same link.
pub fn scanned_report(model: &Model, header_sha256: String, scan: &ScanResult) -> Report {
    let mut findings = super::header_findings(model);
    findings.extend(crate::rules::health::check(model, scan));
    let mut report = Report::new(model, findings, header_sha256);
    report.stats = scan
        .tensors
        .iter()
        .filter_map(|t| {
            Some((
                t.name.clone(),
                serde_json::to_value(t.stats.as_ref()?).ok()?,
            ))
        })
        .collect();
    report
}

/// A file name without its directories: links name files, never where they sit on the
/// sender's disk (and the CLI and the browser then agree).
fn file_name(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_string()
}

/// Collapse metadata for display and links: arrays longer than 16 items become
/// `{"collapsed_array": len, "head": [first 3]}`; other values stay whole.
pub fn collapse_metadata(meta: &Map<String, Value>) -> Map<String, Value> {
    meta.iter()
        .map(|(k, v)| (k.clone(), collapse_value(v)))
        .collect()
}

fn collapse_value(v: &Value) -> Value {
    match v {
        Value::Array(a) if a.len() > COLLAPSE_ARRAY_ITEMS => {
            let mut m = Map::new();
            m.insert("collapsed_array".into(), Value::from(a.len() as u64));
            m.insert(
                "head".into(),
                Value::Array(a.iter().take(3).map(collapse_value).collect()),
            );
            Value::Object(m)
        }
        Value::Array(a) => Value::Array(a.iter().map(collapse_value).collect()),
        other => other.clone(),
    }
}

/// The length of a collapsed array, when `v` is one.
pub fn collapsed_len(v: &Value) -> Option<u64> {
    v.as_object()?.get("collapsed_array")?.as_u64()
}

fn cut_strings(v: &Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > LINK_STRING_CHARS => {
            let head: String = s.chars().take(LINK_STRING_CHARS).collect();
            Value::String(format!("{head}… ({} chars)", s.chars().count()))
        }
        Value::Array(a) => Value::Array(a.iter().map(cut_strings).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), cut_strings(v))).collect())
        }
        other => other.clone(),
    }
}

/// Round to `STAT_DIGITS` significant digits so statistics compress; integers stay exact.
fn round_sig(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{:.*e}", STAT_DIGITS - 1, x).parse().unwrap_or(x)
}

/// Statistics as a link carries them: floats rounded, long arrays (histograms) dropped.
pub fn compact_stats(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .and_then(|x| serde_json::Number::from_f64(round_sig(x)))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Array(a) if a.len() > COLLAPSE_ARRAY_ITEMS => Value::Null,
        Value::Array(a) => Value::Array(a.iter().map(compact_stats).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), compact_stats(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
        other => other.clone(),
    }
}

fn pack(payload: &Payload) -> String {
    let json = serde_json::to_vec(payload).expect("a link payload is plain data");
    let deflated = miniz_oxide::deflate::compress_to_vec(&json, 10);
    format!(
        "qd{LINK_VERSION}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(deflated)
    )
}

/// Largest `k` in `0..=max` for which `fits(k)` holds, given `fits` is monotone and
/// `fits(0)` is known to hold.
fn largest_fitting(max: usize, mut fits: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Encode a report into a link fragment within `opts.max_chars` (the summary, findings and
/// fingerprint always go in, even when they alone exceed the budget).
pub fn encode(report: &Report, opts: &LinkOptions) -> EncodedLink {
    let meta_all: Vec<(String, Value)> = if opts.include_metadata {
        collapse_metadata(&report.metadata)
            .iter()
            .map(|(k, v)| (k.clone(), cut_strings(v)))
            .collect()
    } else {
        Vec::new()
    };

    // Tensors a finding names come first: they are what the receiver will look at.
    let named: std::collections::HashSet<&str> = report
        .findings
        .iter()
        .filter_map(|f| f.tensor.as_deref())
        .collect();
    let mut order: Vec<&TensorRow> = report.tensors.iter().collect();
    order.sort_by_key(|t| !named.contains(t.name.as_str()));
    let tensors_all: Vec<LinkTensor> = order
        .iter()
        .map(|t| LinkTensor {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            nbytes: t.nbytes,
            encoding: if t.encoding == t.dtype {
                String::new()
            } else {
                t.encoding.clone()
            },
            stats: report.stats.get(&t.name).map(compact_stats),
        })
        .collect();

    let mut payload = Payload {
        format: report.format.clone(),
        path: file_name(&report.path),
        size: report.file_size,
        version: report.version,
        files: report
            .files
            .iter()
            .map(|f| FileRow {
                path: file_name(&f.path),
                size: f.size,
            })
            .collect(),
        sha: report.header_sha256.clone(),
        summary: report.summary.clone(),
        findings: report.findings.clone(),
        meta: Map::new(),
        tensors: Vec::new(),
        omitted: Omitted::default(),
    };
    let with = |p: &Payload, n_meta: usize, n_tensors: usize| -> Payload {
        let mut p = p.clone();
        p.meta = meta_all[..n_meta].iter().cloned().collect();
        p.tensors = tensors_all[..n_tensors].to_vec();
        p.omitted = Omitted {
            metadata_excluded: !opts.include_metadata && !report.metadata.is_empty(),
            metadata_entries: (meta_all.len() - n_meta) as u64,
            tensors: (tensors_all.len() - n_tensors) as u64,
            stats: tensors_all[n_tensors..]
                .iter()
                .filter(|t| t.stats.is_some())
                .count() as u64,
        };
        p
    };
    let fits = |p: &Payload| pack(p).len() <= opts.max_chars;

    let n_meta = largest_fitting(meta_all.len(), |k| fits(&with(&payload, k, 0)));
    let n_tensors = largest_fitting(tensors_all.len(), |k| fits(&with(&payload, n_meta, k)));
    payload = with(&payload, n_meta, n_tensors);
    EncodedLink {
        fragment: pack(&payload),
        omitted: payload.omitted,
    }
}

/// The full link: `base_url` (its own fragment dropped) + `#` + fragment.
pub fn share_url(base_url: &str, report: &Report, opts: &LinkOptions) -> (String, Omitted) {
    let base = base_url.split('#').next().unwrap_or(base_url);
    let link = encode(report, opts);
    (format!("{base}#{}", link.fragment), link.omitted)
}

/// Decode a fragment (with or without `#`, or a whole URL).
pub fn decode(link: &str) -> Result<SharedReport, LinkError> {
    let fragment = link.rsplit('#').next().unwrap_or(link).trim();
    if fragment.len() > MAX_FRAGMENT_INPUT {
        return Err(LinkError::TooLong(fragment.len()));
    }
    let rest = fragment.strip_prefix("qd").ok_or(LinkError::NotALink)?;
    let (version, body) = rest.split_once('.').ok_or(LinkError::NotALink)?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LinkError::NotALink);
    }
    if version.parse::<u32>().ok() != Some(LINK_VERSION) {
        return Err(LinkError::UnsupportedVersion {
            found: version.to_string(),
        });
    }
    let deflated = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| LinkError::Corrupt(format!("base64: {e}")))?;
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_INFLATED)
        .map_err(|e| LinkError::Corrupt(format!("deflate: {:?}", e.status)))?;
    let p: Payload =
        serde_json::from_slice(&json).map_err(|e| LinkError::Corrupt(format!("payload: {e}")))?;

    let mut stats = Map::new();
    let tensors = p
        .tensors
        .into_iter()
        .map(|t| {
            if let Some(s) = t.stats {
                stats.insert(t.name.clone(), s);
            }
            TensorRow {
                encoding: if t.encoding.is_empty() {
                    t.dtype.clone()
                } else {
                    t.encoding
                },
                name: t.name,
                dtype: t.dtype,
                shape: t.shape,
                offset: 0,
                nbytes: t.nbytes,
                parts: Vec::new(),
            }
        })
        .collect();
    Ok(SharedReport {
        report: Report {
            format: p.format,
            path: p.path,
            file_size: p.size,
            version: p.version,
            files: p.files,
            header_sha256: p.sha,
            summary: p.summary,
            metadata: p.meta,
            tensors,
            findings: p.findings,
            stats,
        },
        omitted: p.omitted,
    })
}

/// Names of tensors whose statistics in `local` differ from those a link carried, beyond
/// the link's rounding. Tensors the link has no statistics for are not compared.
pub fn differing_tensors(shared: &Map<String, Value>, local: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = shared
        .iter()
        .filter(|(name, theirs)| match local.get(*name) {
            Some(ours) => !close(theirs, &compact_stats(ours)),
            None => false,
        })
        .map(|(name, _)| name.clone())
        .collect();
    out.sort();
    out
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => {
                x == y || (x - y).abs() <= 2e-3 * x.abs().max(y.abs()) || (x - y).abs() < 1e-30
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            // Only keys both sides carry: a newer sender may add fields.
            x.iter().all(|(k, v)| y.get(k).is_none_or(|w| close(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;
    use crate::report::QuantMix;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn summary() -> Summary {
        Summary {
            architecture: Some("llama".into()),
            name: Some("Test <b>model</b>".into()),
            parameters: 6_738_415_616,
            tensor_count: 291,
            tensor_bytes: 3_825_065_984,
            bits_per_weight: 4.54,
            quant_mix: vec![QuantMix {
                encoding: "Q4_K".into(),
                tensors: 225,
                parameters: 6_476_005_376,
                bytes: 3_640_000_000,
                share: 0.95,
            }],
            errors: 1,
            warnings: 1,
            infos: 0,
        }
    }

    /// A report shaped like a 7B llama GGUF: 291 tensors, a large tokenizer, statistics.
    fn llama7b_like(with_stats: bool) -> Report {
        let mut tensors = vec![
            ("token_embd.weight", "Q4_K", vec![32000u64, 4096]),
            ("output_norm.weight", "F32", vec![4096]),
            ("output.weight", "Q6_K", vec![32000, 4096]),
        ];
        let per_layer = [
            ("attn_q.weight", "Q4_K", vec![4096u64, 4096]),
            ("attn_k.weight", "Q4_K", vec![4096, 4096]),
            ("attn_v.weight", "Q6_K", vec![4096, 4096]),
            ("attn_output.weight", "Q4_K", vec![4096, 4096]),
            ("ffn_gate.weight", "Q4_K", vec![11008, 4096]),
            ("ffn_up.weight", "Q4_K", vec![11008, 4096]),
            ("ffn_down.weight", "Q6_K", vec![4096, 11008]),
            ("attn_norm.weight", "F32", vec![4096]),
            ("ffn_norm.weight", "F32", vec![4096]),
        ];
        let mut names = Vec::new();
        for l in 0..32 {
            for (n, t, s) in &per_layer {
                names.push((format!("blk.{l}.{n}"), *t, s.clone()));
            }
        }
        let mut rows: Vec<TensorRow> = tensors
            .drain(..)
            .map(|(n, t, s)| (n.to_string(), t, s))
            .chain(names)
            .enumerate()
            .map(|(i, (name, t, shape))| TensorRow {
                name,
                dtype: t.into(),
                shape: shape.clone(),
                offset: 1_000_000 + i as u64 * 9_437_184,
                nbytes: shape.iter().product::<u64>() * 9 / 16,
                encoding: t.into(),
                parts: vec![],
            })
            .collect();
        rows.truncate(291);
        let mut stats = Map::new();
        if with_stats {
            for (i, t) in rows.iter().enumerate() {
                let x = 0.0123 + i as f64 * 1.37e-5;
                stats.insert(
                    t.name.clone(),
                    json!({
                        "min": -x * 9.1, "max": x * 8.7, "mean": x * 1e-3, "std": x,
                        "rms": x * 1.0001, "nan": 0, "inf": 0, "zeros": i * 3,
                        "histogram": (0..64).map(|b| b * i).collect::<Vec<_>>(),
                    }),
                );
            }
        }
        let mut metadata = Map::new();
        metadata.insert("general.architecture".into(), json!("llama"));
        metadata.insert("general.name".into(), json!("Test <b>model</b>"));
        metadata.insert("llama.context_length".into(), json!(4096));
        metadata.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array((0..32000).map(|i| json!(format!("tok{i}"))).collect()),
        );
        metadata.insert(
            "tokenizer.chat_template".into(),
            json!("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}".repeat(20)),
        );
        Report {
            format: "gguf".into(),
            path: "llama-7b.Q4_K_M.gguf".into(),
            file_size: 4_081_004_224,
            version: 3,
            files: vec![FileRow {
                path: "llama-7b.Q4_K_M.gguf".into(),
                size: 4_081_004_224,
            }],
            header_sha256: "ab".repeat(32),
            summary: summary(),
            metadata,
            tensors: rows,
            findings: vec![
                Finding::error(
                    "nonfinite",
                    Some("blk.3.ffn_down.weight"),
                    "12 NaN values",
                    "re-quantize from the source weights",
                ),
                Finding::warning(
                    "norm-collapsed",
                    Some("blk.7.attn_norm.weight"),
                    "rms 1e-7",
                    "check the conversion",
                ),
            ],
            stats,
        }
    }

    #[test]
    fn round_trip_keeps_summary_findings_and_fingerprint() {
        let r = llama7b_like(false);
        let link = encode(&r, &LinkOptions::default());
        let back = decode(&link.fragment).unwrap();
        assert_eq!(back.report.summary, r.summary);
        assert_eq!(back.report.findings, r.findings);
        assert_eq!(back.report.header_sha256, r.header_sha256);
        assert_eq!(back.report.files, r.files);
        assert_eq!(
            back.report.metadata["general.name"],
            json!("Test <b>model</b>")
        );
        assert_eq!(
            collapsed_len(&back.report.metadata["tokenizer.ggml.tokens"]),
            Some(32000)
        );
    }

    #[test]
    fn typical_7b_link_stays_under_8000_chars_and_says_what_is_left_out() {
        let r = llama7b_like(true);
        let (url, omitted) = share_url(DEFAULT_BASE_URL, &r, &LinkOptions::default());
        assert!(url.len() < 8000, "link is {} chars", url.len());
        let back = decode(&url).unwrap();
        assert_eq!(back.report.findings.len(), 2);
        assert_eq!(back.omitted, omitted);
        // The tensors a finding names come first, with their statistics.
        assert_eq!(back.report.tensors[0].name, "blk.3.ffn_down.weight");
        assert!(back.report.stats.contains_key("blk.7.attn_norm.weight"));
        let carried = back.report.tensors.len() as u64;
        assert_eq!(carried + omitted.tensors, 291);
        if omitted.tensors > 0 {
            assert!(omitted.describe().unwrap().contains("tensor rows"));
        }
        // Histograms are dropped, rounded statistics kept.
        let s = &back.report.stats["blk.3.ffn_down.weight"];
        assert!(s.get("histogram").is_none());
        assert!(s["std"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn small_reports_carry_everything() {
        let mut r = llama7b_like(true);
        r.tensors.truncate(20);
        r.metadata.remove("tokenizer.chat_template");
        let link = encode(&r, &LinkOptions::default());
        assert!(link.omitted.is_nothing(), "{:?}", link.omitted);
        let back = decode(&link.fragment).unwrap();
        assert_eq!(back.report.tensors.len(), 20);
        assert_eq!(back.report.tensors[5].shape, r.tensors[5].shape);
        assert_eq!(back.report.stats.len(), 20);
    }

    #[test]
    fn links_name_files_without_their_directories() {
        let mut r = llama7b_like(false);
        r.path = "/home/alice/models/llama-7b.Q4_K_M.gguf".into();
        r.files[0].path = r"C:\models\llama-7b.Q4_K_M.gguf".into();
        let back = decode(&encode(&r, &LinkOptions::default()).fragment).unwrap();
        assert_eq!(back.report.path, "llama-7b.Q4_K_M.gguf");
        assert_eq!(back.report.files[0].path, "llama-7b.Q4_K_M.gguf");
    }

    #[test]
    fn metadata_toggle_leaves_values_out() {
        let r = llama7b_like(false);
        let link = encode(
            &r,
            &LinkOptions {
                include_metadata: false,
                ..LinkOptions::default()
            },
        );
        let back = decode(&link.fragment).unwrap();
        assert!(back.report.metadata.is_empty());
        assert!(back.omitted.metadata_excluded);
        assert!(back.omitted.describe().unwrap().contains("metadata"));
    }

    #[test]
    fn long_metadata_strings_are_cut_in_links() {
        let r = llama7b_like(false);
        let back = decode(&encode(&r, &LinkOptions::default()).fragment).unwrap();
        let t = back.report.metadata["tokenizer.chat_template"]
            .as_str()
            .unwrap();
        assert!(t.ends_with(" chars)"), "{t}");
        assert!(t.chars().count() < 300);
    }

    #[test]
    fn version_and_damage_are_reported() {
        let r = llama7b_like(false);
        let link = encode(&r, &LinkOptions::default()).fragment;
        let newer = link.replacen("qd1.", "qd2.", 1);
        assert_eq!(
            decode(&newer),
            Err(LinkError::UnsupportedVersion { found: "2".into() })
        );
        assert_eq!(decode("#hello"), Err(LinkError::NotALink));
        assert_eq!(decode("qdx.abc"), Err(LinkError::NotALink));
        assert!(matches!(decode("qd1.!!!"), Err(LinkError::Corrupt(_))));
        let mut cut = link.clone();
        cut.truncate(link.len() / 2);
        assert!(matches!(decode(&cut), Err(LinkError::Corrupt(_))));
        // Valid deflate + base64 of something that is not a payload.
        let junk = miniz_oxide::deflate::compress_to_vec(b"{\"a\":1}", 6);
        let junk = format!(
            "qd1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(junk)
        );
        assert!(matches!(decode(&junk), Err(LinkError::Corrupt(_))));
    }

    #[test]
    fn inflation_is_capped() {
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b' '; MAX_INFLATED + 10], 10);
        let link = format!(
            "qd1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bomb)
        );
        assert!(matches!(decode(&link), Err(LinkError::Corrupt(_))));
    }

    #[test]
    fn differing_tensors_ignores_rounding_but_not_changes() {
        let r = llama7b_like(true);
        let back = decode(&encode(&r, &LinkOptions::default()).fragment).unwrap();
        assert!(differing_tensors(&back.report.stats, &r.stats).is_empty());
        let mut changed = r.stats.clone();
        changed["blk.3.ffn_down.weight"]["std"] = json!(0.5);
        assert_eq!(
            differing_tensors(&back.report.stats, &changed),
            vec!["blk.3.ffn_down.weight".to_string()]
        );
    }

    /// A real file end to end: scan, link, decode; the same bytes under another path give
    /// the same link. (No file system on wasm: not run there.)
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn fixture_link_round_trips_and_ignores_where_the_file_is() {
        use crate::load::{load, Input};
        use crate::source::SliceSource;
        let Some(dir) = crate::testutil::fixtures_or_skip("fixture_link_round_trips") else {
            return;
        };
        let bytes = std::fs::read(dir.join("gguf/kquants.gguf")).unwrap();
        let src = SliceSource::new(bytes);
        let link_for = |path: &str| {
            let model = load(&[Input {
                path: path.into(),
                source: &src,
            }])
            .unwrap();
            let sha = crate::report::header_fingerprint(&model, &[&src]).unwrap();
            let scan = crate::scan::scan_model(
                &model,
                &[&src],
                &crate::scan::ScanOptions::default(),
                &mut |_| {},
                &std::sync::atomic::AtomicBool::new(false),
            )
            .unwrap();
            let report = scanned_report(&model, sha, &scan);
            (
                share_url(DEFAULT_BASE_URL, &report, &LinkOptions::default()).0,
                report,
            )
        };
        let (url, report) = link_for("/data/a/kquants.gguf");
        assert_eq!(url, link_for("kquants.gguf").0);
        let back = decode(&url).unwrap();
        assert_eq!(back.report.findings, report.findings);
        // serde_json parses floats to within an ulp, not always exactly.
        let (a, b) = (&back.report.summary, &report.summary);
        assert_eq!(
            (a.parameters, a.tensor_count, a.errors),
            (b.parameters, b.tensor_count, b.errors)
        );
        assert!((a.bits_per_weight - b.bits_per_weight).abs() < 1e-12);
        for (x, y) in a.quant_mix.iter().zip(&b.quant_mix) {
            assert_eq!((&x.encoding, x.bytes), (&y.encoding, y.bytes));
            assert!((x.share - y.share).abs() < 1e-12);
        }
        assert_eq!(back.report.tensors.len(), report.tensors.len());
        assert!(back.omitted.is_nothing(), "{:?}", back.omitted);
        assert!(differing_tensors(&back.report.stats, &report.stats).is_empty());
        assert_eq!(back.report.stats.len(), report.stats.len());
    }

    #[test]
    fn rounding_keeps_four_significant_digits() {
        assert_eq!(round_sig(0.0123456), 0.01235);
        assert_eq!(round_sig(-98765.4), -98770.0);
        assert_eq!(round_sig(0.0), 0.0);
        assert!(round_sig(f64::NAN).is_nan());
    }
}
