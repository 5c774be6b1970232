//! `quantdoc repair FILE.gguf`: which findings a rewrite can fix without losing information,
//! and how.
//!
//! - GGUF_TENSOR_GAP, GGUF_TENSOR_MISALIGNED: every rewrite lays tensors out densely at the
//!   alignment, so these disappear by themselves.
//! - GGUF_TENSOR_OVERLAP: each tensor gets its own copy of the bytes it claims; the layout
//!   becomes valid but the values are whatever the overlap made them, so the finding stays.
//! - GGUF_BAD_ALIGNMENT: `general.alignment` is rewritten as UINT32 32 (what the reader
//!   assumed, and llama.cpp's default).
//! - GGUF_DUPLICATE_TENSOR / GGUF_DUPLICATE_KEY: later copies are dropped when they are
//!   byte-identical (or equal) to the first; different copies block the repair, since
//!   nothing says which one is right.
//! - NORM_QUANTIZED: the tensor is dequantized and stored as F32 (exactly the values the
//!   quantized form decodes to).
//! - GGUF_METADATA_BLOCK_COUNT: `{arch}.block_count` is set to the number of `blk.N`
//!   blocks, when those are numbered 0..N-1 without holes.
//!
//! Findings that mean tensor bytes are missing (GGUF_TRUNCATED, GGUF_TENSOR_OUT_OF_BOUNDS,
//! GGUF_TENSOR_SIZE_MISMATCH, GGUF_UNKNOWN_TYPE, ...) block the repair: no rewrite can
//! invent the data.

use std::collections::BTreeSet;

use super::{sha256_of_part, Fix, GgufRewrite, RepairError, TensorSource};
use crate::finding::{Finding, Severity};
use crate::ggml::types::GgmlType;
use crate::meta::GgufValueType;
use crate::model::Model;
use crate::source::ByteSource;
use crate::write::gguf::{entry_u32, set_entry};

/// Codes whose presence means some tensor's bytes cannot be read as declared.
const BLOCKING: &[&str] = &[
    "GGUF_TRUNCATED",
    "GGUF_TENSOR_OUT_OF_BOUNDS",
    "GGUF_TENSOR_SIZE_MISMATCH",
    "GGUF_TENSOR_SIZE_OVERFLOW",
    "GGUF_UNKNOWN_TYPE",
    "GGUF_ROW_NOT_BLOCK_MULTIPLE",
    "GGUF_TOO_MANY_DIMS",
    "GGUF_SPLIT_MISSING",
];

/// Every finding the header alone gives: the parser's, GGUF metadata rules, header health
/// rules.
pub fn header_findings(model: &Model) -> Vec<Finding> {
    let mut all = model.findings.clone();
    all.extend(crate::rules::gguf_meta::check(model));
    all.extend(crate::rules::health::check_header(model));
    all
}

pub fn plan_repair<S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
) -> Result<GgufRewrite, RepairError> {
    let findings = header_findings(model);
    let mut rw = GgufRewrite::identity_lenient(model);
    let mut handled_dups = false;
    let mut handled_keys = false;
    for f in &findings {
        let tensor = f.tensor.as_deref();
        match f.code.as_str() {
            c if BLOCKING.contains(&c) => rw.blocking.push(f.clone()),
            "GGUF_TENSOR_GAP" | "GGUF_TENSOR_MISALIGNED" => rw.fixes.push(Fix::new(
                c_of(f),
                tensor,
                format!(
                    "re-lay {} densely at offsets aligned to {}",
                    tensor.unwrap_or("the tensor data"),
                    model.alignment
                ),
            )),
            "GGUF_TENSOR_OVERLAP" => {
                rw.fixes.push(Fix::new(
                    c_of(f),
                    tensor,
                    "give each overlapping tensor its own copy of the bytes it claims (the layout becomes valid; the values stay what the overlap made them)",
                ));
                rw.remaining.push(f.clone());
            }
            "GGUF_BAD_ALIGNMENT" => {
                set_entry(&mut rw.metadata, entry_u32("general.alignment", 32));
                rw.fixes.push(Fix::new(
                    c_of(f),
                    None,
                    "write general.alignment as UINT32 32 (the alignment the data was read with)",
                ));
            }
            "GGUF_DUPLICATE_TENSOR" if !handled_dups => {
                handled_dups = true;
                drop_duplicate_tensors(model, sources, &mut rw, f)?;
            }
            "GGUF_DUPLICATE_TENSOR" => {}
            "GGUF_DUPLICATE_KEY" if !handled_keys => {
                handled_keys = true;
                drop_duplicate_keys(&mut rw, f);
            }
            "GGUF_DUPLICATE_KEY" => {}
            "NORM_QUANTIZED" => {
                match tensor.and_then(|n| rw.tensors.iter().position(|t| t.entry.name == n)) {
                    Some(i) => {
                        let from = rw.tensors[i].entry.ggml_type;
                        rw.tensors[i].entry.ggml_type = GgmlType::F32;
                        rw.tensors[i].source = TensorSource::Convert;
                        rw.fixes.push(Fix::new(
                            "NORM_QUANTIZED",
                            tensor,
                            format!("store as F32 (dequantized from {from}, values unchanged)"),
                        ));
                    }
                    None => rw.remaining.push(f.clone()),
                }
            }
            "GGUF_METADATA_BLOCK_COUNT" => fix_block_count(model, &mut rw, f),
            _ => rw.remaining.push(f.clone()),
        }
    }
    Ok(rw)
}

fn c_of(f: &Finding) -> &str {
    &f.code
}

fn drop_duplicate_tensors<S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    rw: &mut GgufRewrite,
    finding: &Finding,
) -> Result<(), RepairError> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut drop = BTreeSet::new();
    for (pos, out) in rw.tensors.iter().enumerate() {
        let name = &out.entry.name;
        let Some(&(_, first)) = seen.iter().find(|(n, _)| n == name) else {
            seen.push((name.clone(), pos));
            continue;
        };
        let a = &model.tensors[rw.tensors[first].input];
        let b = &model.tensors[out.input];
        let same_layout = a.shape == b.shape && a.encoding == b.encoding;
        if same_layout && sha256_of_part(a, sources)? == sha256_of_part(b, sources)? {
            drop.insert(pos);
            rw.fixes.push(Fix::new(
                &finding.code,
                Some(name),
                "drop the second copy (byte-identical to the first)",
            ));
        } else {
            rw.blocking.push(Finding::error(
                &finding.code,
                Some(name),
                format!(
                    "tensor {name} appears twice with different contents ({} {:?} and {} {:?}); nothing says which is right",
                    a.encoding.label(),
                    a.shape,
                    b.encoding.label(),
                    b.shape
                ),
                "re-export the model; quantdoc will not guess which copy llama.cpp should use",
            ));
        }
    }
    let mut pos = 0;
    rw.tensors.retain(|_| {
        let keep = !drop.contains(&pos);
        pos += 1;
        keep
    });
    Ok(())
}

fn drop_duplicate_keys(rw: &mut GgufRewrite, finding: &Finding) {
    let mut kept: Vec<crate::meta::MetaEntry> = Vec::with_capacity(rw.metadata.len());
    for e in std::mem::take(&mut rw.metadata) {
        match kept.iter().find(|k| k.key == e.key) {
            None => kept.push(e),
            Some(k) if k.value == e.value && k.value_type == e.value_type => {
                rw.fixes.push(Fix::new(
                    &finding.code,
                    None,
                    format!("drop the second {} (same value as the first)", e.key),
                ));
            }
            Some(k) => {
                rw.blocking.push(Finding::error(
                    &finding.code,
                    None,
                    format!(
                        "key {} appears twice with different values ({} and {})",
                        e.key,
                        k.value.summary(40),
                        e.value.summary(40)
                    ),
                    format!(
                        "choose the value yourself: `quantdoc meta IN -o OUT --set {}=<type>:<value>`",
                        e.key
                    ),
                ));
            }
        }
    }
    rw.metadata = kept;
}

fn fix_block_count(model: &Model, rw: &mut GgufRewrite, f: &Finding) {
    let Some(arch) = model.architecture() else {
        rw.remaining.push(f.clone());
        return;
    };
    let blocks: BTreeSet<u64> = model
        .tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk."))
        .filter_map(|r| r.split('.').next())
        .filter_map(|n| n.parse().ok())
        .collect();
    let n = blocks.len() as u64;
    let contiguous = blocks.iter().next_back().is_some_and(|&m| m + 1 == n);
    let key = format!("{arch}.block_count");
    if !contiguous || n > u32::MAX as u64 {
        rw.remaining.push(f.clone());
        return;
    }
    let old = model
        .meta_entry(&key)
        .map(|e| {
            format!(
                "{} ({})",
                e.value.summary(20),
                e.value_type.map(GgufValueType::name).unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "missing".into());
    set_entry(&mut rw.metadata, entry_u32(&key, n as u32));
    rw.fixes.push(Fix::new(
        &f.code,
        None,
        format!(
            "set {key} to UINT32 {n} (was {old}): the tensors hold blocks 0..{}",
            n - 1
        ),
    ));
}

/// Only errors and warnings matter for "what remains".
pub fn is_significant(f: &Finding) -> bool {
    f.severity >= Severity::Warning
}
