//! Health rules over scan statistics (non-finite values, collapsed norms, outliers, ...).
//!
//! Thresholds are calibrated so that healthy real files stay silent: llama.cpp's Gemma
//! GGUFs store norms as 1 + w with RMS from about 2 to 380, so norm checks compare a tensor
//! with the other layers' copies of the same norm rather than with a fixed "≈ 1" range.

use std::collections::BTreeMap;

use crate::encoding::Encoding;
use crate::finding::{grouped, Finding};
use crate::model::{Format, LogicalTensor, Model};
use crate::scan::ScanResult;
use crate::stats::TensorStats;

/// A whole norm family whose median effective RMS is below this has collapsed (the BitNet
/// export of seed 004 had 0.018 where ~1 was expected).
const NORM_COLLAPSED_RMS: f64 = 0.05;
/// One norm this many times below its family's median has collapsed on its own.
const NORM_FAMILY_RATIO: f64 = 100.0;
/// A single norm is collapsed when its RMS is below this and `NORM_ALONE_RATIO` times below
/// the median of the same norm in the other layers (both, so spread-out healthy families such
/// as Gemma's post-norms never trip it).
const NORM_ALONE_RMS: f64 = 0.1;
const NORM_ALONE_RATIO: f64 = 10.0;
/// No healthy norm comes near this (Gemma's post-norms, the largest seen, are ~380).
const NORM_EXPLODED_RMS: f64 = 1e5;
/// A projection this many times away from its family's median RMS is an outlier.
const PROJECTION_RATIO: f64 = 10.0;
/// Fewer layers than this give no meaningful median.
const MIN_FAMILY: usize = 4;
const EMBEDDING_LIMIT: f32 = 1e4;
/// Quant codes without scales: whole numbers no larger than an 8-bit code.
const CODE_LIMIT: f32 = 255.0;
/// Tensors smaller than this are too small for the integer and duplicate checks.
const MIN_ELEMENTS: u64 = 256;

const GGUF_PROJECTIONS: &[&str] = &[
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];
const HF_PROJECTIONS: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];
const EMBEDDING_NAMES: &[&str] = &[
    "token_embd.weight",
    "output.weight",
    "embed_tokens.weight",
    "lm_head.weight",
    "wte.weight",
    "word_embeddings.weight",
];

/// Header-only health rules (no scan needed).
pub fn check_header(model: &Model) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in &model.tensors {
        if !t.encoding.is_quantized() {
            continue;
        }
        let norm = is_norm(&t.name);
        if !norm && t.shape.len() != 1 {
            continue;
        }
        let what = if norm {
            "a normalization weight"
        } else {
            "a 1-D tensor"
        };
        out.push(Finding::error(
            "NORM_QUANTIZED",
            Some(&t.name),
            format!(
                "{} is {what} ({} values) stored as {}: llama.cpp's quantizer keeps 1-D tensors and norms in F32, because a few thousand values save nothing and their rounding scales every activation of the layer",
                t.name,
                grouped(t.n_elements()),
                t.encoding.label()
            ),
            "re-export the model keeping norms in F32/F16 (llama.cpp `convert_hf_to_gguf.py` then `llama-quantize` does this by itself); do not quantize 1-D tensors",
        ));
    }
    out
}

/// Rules over the statistics of a scan.
pub fn check(model: &Model, scan: &ScanResult) -> Vec<Finding> {
    let mut out = Vec::new();
    let stats: Vec<(&LogicalTensor, &TensorStats)> = model
        .tensors
        .iter()
        .filter_map(|t| scan.get(&t.name).map(|s| (t, s)))
        .collect();
    for &(t, s) in &stats {
        nonfinite_scale(t, s, &mut out);
        nonfinite_value(t, s, &mut out);
        embedding_magnitude(t, s, &mut out);
        unscaled_integers(t, s, &mut out);
        zero_or_constant(model, t, s, &mut out);
    }
    norm_rms(model, &stats, &mut out);
    projection_outliers(&stats, &mut out);
    duplicates(&stats, &mut out);
    out
}

fn is_norm(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("norm")
        || n.split('.')
            .any(|seg| seg == "ln_f" || seg.starts_with("ln_"))
}

fn is_norm_weight(t: &LogicalTensor) -> bool {
    is_norm(&t.name) && !t.name.ends_with(".bias") && t.shape.len() == 1
}

/// Architectures whose checkpoints store norm weights as offsets w with output x * (1 + w).
/// llama.cpp adds the 1 when converting them, so this applies to safetensors only.
fn norm_offset_from_one(model: &Model) -> bool {
    if model.format != Format::Safetensors {
        return false;
    }
    let arch = model
        .meta("config.model_type")
        .and_then(|v| v.as_str())
        .or_else(|| model.architecture())
        .unwrap_or("")
        .to_ascii_lowercase();
    arch.starts_with("gemma")
        || arch.starts_with("recurrent_gemma")
        || arch.starts_with("paligemma")
        || arch == "qwen3_next"
}

/// The name with its layer number replaced by `*` ("blk.3.attn_q.weight" → "blk.*.attn_q.weight").
fn family_key(name: &str) -> String {
    let mut replaced = false;
    name.split('.')
        .map(|seg| {
            if !replaced && !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                replaced = true;
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn g(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&x.abs()) {
        format!("{:.4}", x)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{x:.3e}")
    }
}

fn nonfinite_scale(t: &LogicalTensor, s: &TensorStats, out: &mut Vec<Finding>) {
    let Some(sc) = &s.scales else { return };
    if sc.nan + sc.inf == 0 {
        return;
    }
    let Encoding::Ggml { ggml_type } = t.encoding else {
        return;
    };
    let block = sc.first_bad_block.unwrap_or(0);
    let first_elem = block * ggml_type.block_size();
    let row = first_elem / t.row_len().max(1);
    out.push(Finding::error(
        "NONFINITE_SCALE",
        Some(&t.name),
        format!(
            "{}: {} NaN and {} Inf block scales among {} scale fields of its {} blocks; the first bad block is #{} (elements from {}, row {}). Every value of such a block decodes to NaN or Inf",
            t.name,
            grouped(sc.nan),
            grouped(sc.inf),
            grouped(sc.fields),
            ggml_type.name(),
            grouped(block),
            grouped(first_elem),
            grouped(row)
        ),
        "the file was written with a broken scale (or the bytes were damaged): re-quantize this tensor from the original weights; if the blocks' layout is misread (an older or forked block format), the scales land on code bytes",
    ));
}

fn nonfinite_value(t: &LogicalTensor, s: &TensorStats, out: &mut Vec<Finding>) {
    if s.nan + s.inf == 0 {
        return;
    }
    out.push(Finding::error(
        "NONFINITE_VALUE",
        Some(&t.name),
        format!(
            "{}: {} NaN and {} Inf values among {} ({:.4}% non-finite); a single one turns every activation it touches into NaN",
            t.name,
            grouped(s.nan),
            grouped(s.inf),
            grouped(s.elements),
            (s.nan + s.inf) as f64 * 100.0 / s.elements.max(1) as f64
        ),
        "re-convert from a checkpoint that has finite values (check the source with `quantdoc scan`); for F16 overflow, convert to BF16 or F32 instead",
    ));
}

fn embedding_magnitude(t: &LogicalTensor, s: &TensorStats, out: &mut Vec<Finding>) {
    if !EMBEDDING_NAMES
        .iter()
        .any(|n| t.name == *n || t.name.ends_with(&format!(".{n}")))
    {
        return;
    }
    let Some(amax) = s.abs_max else { return };
    if amax <= EMBEDDING_LIMIT {
        return;
    }
    // Bins from 2^14 = 16384 up: histogram bin i starts at 2^(min_exp + i - 1).
    let from = (14 - s.histogram.min_exp + 1).clamp(0, 64) as usize;
    let big: u64 = s.histogram.counts.iter().skip(from).sum();
    out.push(Finding::error(
        "EMBEDDING_MAGNITUDE",
        Some(&t.name),
        format!(
            "{}: largest |value| is {} (RMS {}); {} values have |x| >= 16384. Trained embedding and output weights stay far below 1e4",
            t.name,
            g(amax as f64),
            g(s.rms.unwrap_or(0.0)),
            grouped(big)
        ),
        "the values are decoded with a wrong scale or from misaligned bytes: check the tensor's type and offset, or re-convert the model",
    ));
}

fn is_float_storage(e: &Encoding) -> bool {
    match e {
        Encoding::Ggml { ggml_type } => ggml_type.is_float(),
        Encoding::Dense { dtype } => dtype.is_float(),
        _ => false,
    }
}

fn unscaled_integers(t: &LogicalTensor, s: &TensorStats, out: &mut Vec<Finding>) {
    if !is_float_storage(&t.encoding)
        || !s.integer_valued
        || s.elements < MIN_ELEMENTS
        || s.finite != s.elements
    {
        return;
    }
    let (Some(min), Some(max), Some(amax)) = (s.min, s.max, s.abs_max) else {
        return;
    };
    // 0/1 tensors are masks; larger codes up to 255 are what quantizers emit.
    if !(2.0..=CODE_LIMIT).contains(&amax) || min == max {
        return;
    }
    out.push(Finding::error(
        "UNSCALED_INTEGERS",
        Some(&t.name),
        format!(
            "{}: all {} values are whole numbers from {} to {} although it is stored as {}: these look like quantization codes written without their scales",
            t.name,
            grouped(s.elements),
            g(min as f64),
            g(max as f64),
            t.encoding.label()
        ),
        "the exporter dropped the block scales (e.g. a Q4_0 read as 16-byte blocks): re-export from the original weights, or store the quantized type with its scales",
    ));
}

fn zero_or_constant(model: &Model, t: &LogicalTensor, s: &TensorStats, out: &mut Vec<Finding>) {
    if s.elements < 2 || s.finite != s.elements {
        return;
    }
    let is_bias = t.name.ends_with(".bias") || t.name.ends_with("_b");
    let one_d = t.shape.len() <= 1;
    if s.zeros == s.elements {
        if is_norm(&t.name) && norm_offset_from_one(model) {
            // w = 0 is a norm at identity in these checkpoints.
            return;
        }
        let msg = format!("{}: all {} values are zero", t.name, grouped(s.elements));
        let hint = "a tensor of zeros contributes nothing (a norm of zeros silences its layer): check that the exporter copied the trained weights";
        out.push(if is_bias || (one_d && !is_norm(&t.name)) {
            Finding::info("ALL_ZERO_TENSOR", Some(&t.name), msg, hint)
        } else {
            Finding::warning("ALL_ZERO_TENSOR", Some(&t.name), msg, hint)
        });
        return;
    }
    if let (Some(min), Some(max)) = (s.min, s.max) {
        if min == max {
            let msg = format!(
                "{}: all {} values equal {}",
                t.name,
                grouped(s.elements),
                g(min as f64)
            );
            let hint = "a trained weight matrix is never constant: the exporter wrote a fill value or an untrained initialisation";
            out.push(if one_d {
                Finding::info("CONSTANT_TENSOR", Some(&t.name), msg, hint)
            } else {
                Finding::warning("CONSTANT_TENSOR", Some(&t.name), msg, hint)
            });
        }
    }
}

fn norm_rms(model: &Model, stats: &[(&LogicalTensor, &TensorStats)], out: &mut Vec<Finding>) {
    let offset = norm_offset_from_one(model);
    let mut families: BTreeMap<String, Vec<(&LogicalTensor, f64)>> = BTreeMap::new();
    for &(t, s) in stats {
        if !is_norm_weight(t) {
            continue;
        }
        let (Some(rms), Some(mean)) = (s.rms, s.mean) else {
            continue;
        };
        let eff = if offset {
            (1.0 + 2.0 * mean + rms * rms).max(0.0).sqrt()
        } else {
            rms
        };
        families
            .entry(family_key(&t.name))
            .or_default()
            .push((t, eff));
    }
    let how = if offset {
        "RMS of 1 + w (this architecture stores norms as offsets from 1)"
    } else {
        "RMS"
    };
    for (family, members) in families {
        let mut v: Vec<f64> = members.iter().map(|m| m.1).collect();
        let med = median(&mut v);
        let (lo, hi) = (v[0], v[v.len() - 1]);
        if med < NORM_COLLAPSED_RMS {
            out.push(Finding::warning(
                "NORM_RMS_OUT_OF_RANGE",
                Some(&members[0].0.name),
                format!(
                    "{family}: median {how} {} over {} tensor(s) (from {} to {}); a working norm scales activations by about 1 or more, so these norms have collapsed",
                    g(med),
                    members.len(),
                    g(lo),
                    g(hi)
                ),
                "norm weights were quantized or rescaled on export: re-export keeping norms in F32/F16 and unmodified",
            ));
            continue;
        }
        for (i, (t, eff)) in members.iter().enumerate() {
            let mut others: Vec<f64> = members
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, m)| m.1)
                .collect();
            let alone = !others.is_empty() && *eff < NORM_ALONE_RMS && {
                let med_others = median(&mut others);
                *eff * NORM_ALONE_RATIO < med_others
            };
            let collapsed = (members.len() >= 2 && *eff * NORM_FAMILY_RATIO < med) || alone;
            if collapsed || *eff > NORM_EXPLODED_RMS {
                out.push(Finding::warning(
                    "NORM_RMS_OUT_OF_RANGE",
                    Some(&t.name),
                    format!(
                        "{}: {how} {} against a median of {} over the {} `{family}` tensors; {}",
                        t.name,
                        g(*eff),
                        g(med),
                        members.len(),
                        if collapsed { "this norm has collapsed" } else { "no trained norm is this large" }
                    ),
                    "this norm was damaged on export (rescaled, quantized, or read from the wrong bytes): re-export it from the original checkpoint",
                ));
            }
        }
    }
}

fn projection_family(t: &LogicalTensor) -> Option<String> {
    if t.shape.len() < 2 {
        return None;
    }
    let is_proj = t
        .name
        .split('.')
        .any(|seg| GGUF_PROJECTIONS.contains(&seg) || HF_PROJECTIONS.contains(&seg));
    is_proj.then(|| family_key(&t.name))
}

fn projection_outliers(stats: &[(&LogicalTensor, &TensorStats)], out: &mut Vec<Finding>) {
    let mut families: BTreeMap<String, Vec<(&LogicalTensor, f64)>> = BTreeMap::new();
    for &(t, s) in stats {
        if let (Some(f), Some(rms)) = (projection_family(t), s.rms) {
            families.entry(f).or_default().push((t, rms));
        }
    }
    for (family, members) in families {
        if members.len() < MIN_FAMILY {
            continue;
        }
        let mut v: Vec<f64> = members.iter().map(|m| m.1).collect();
        let med = median(&mut v);
        if med <= 0.0 {
            continue;
        }
        for (t, rms) in &members {
            let ratio = rms / med;
            if ratio > PROJECTION_RATIO || ratio * PROJECTION_RATIO < 1.0 {
                out.push(Finding::warning(
                    "PROJECTION_RMS_OUTLIER",
                    Some(&t.name),
                    format!(
                        "{}: RMS {} is {}x the median RMS {} of the {} `{family}` tensors (limit {}x either way)",
                        t.name,
                        g(*rms),
                        g(ratio),
                        g(med),
                        members.len(),
                        PROJECTION_RATIO
                    ),
                    "one layer's weights were scaled or decoded differently from its siblings: check this tensor's type and scales, or re-convert it",
                ));
            }
        }
    }
}

fn duplicates(stats: &[(&LogicalTensor, &TensorStats)], out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(String, u64, String), Vec<&LogicalTensor>> = BTreeMap::new();
    for &(t, s) in stats {
        let Some(h) = &s.content_hash else { continue };
        // Constant and zero tensors repeat legitimately (and have their own rules).
        if s.elements < MIN_ELEMENTS || s.min == s.max {
            continue;
        }
        groups
            .entry((h.clone(), t.primary().nbytes, t.encoding.label()))
            .or_default()
            .push(t);
    }
    for ((_, nbytes, label), members) in groups {
        if members.len() < 2 {
            continue;
        }
        let names: Vec<&str> = members.iter().map(|t| t.name.as_str()).collect();
        let tied = names.iter().all(|n| {
            EMBEDDING_NAMES
                .iter()
                .any(|e| n == e || n.ends_with(&format!(".{e}")))
        });
        let msg = format!(
            "{} tensors hold identical {label} bytes ({} bytes each): {}",
            members.len(),
            grouped(nbytes),
            names.join(", ")
        );
        out.push(if tied {
            Finding::info(
                "DUPLICATE_TENSOR_DATA",
                Some(names[0]),
                format!("{msg}; the input embedding and the output projection are tied in this model"),
                "harmless: a tied output can be dropped from the file to save space (llama.cpp then reuses the embedding)",
            )
        } else {
            Finding::warning(
                "DUPLICATE_TENSOR_DATA",
                Some(names[0]),
                msg,
                "distinct layers never train to identical weights: the exporter wrote one tensor's data under several names; re-export the model",
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use half::f16;

    use super::*;
    use crate::finding::Severity;
    use crate::ggml::types::GgmlType;
    use crate::scan::testmodel::{encode, values, Builder};
    use crate::scan::{scan_model, ScanOptions};
    use crate::source::SliceSource;

    fn run(b: Builder) -> (Model, Vec<Finding>) {
        let (model, bytes) = b.build();
        let src = SliceSource::new(bytes);
        let scan = scan_model(
            &model,
            &[&src],
            &ScanOptions::default(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        for t in &scan.tensors {
            assert!(t.error.is_none(), "{}: {:?}", t.name, t.error);
        }
        let f = check(&model, &scan);
        (model, f)
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Severity, Option<&str>)> {
        f.iter()
            .map(|x| (x.code.as_str(), x.severity, x.tensor.as_deref()))
            .collect()
    }

    /// A small healthy llama-like model: 4 layers of projections and norms.
    fn healthy() -> Builder {
        let mut b = Builder::default();
        b = b.values(
            "token_embd.weight",
            vec![64, 32],
            GgmlType::Q8_0,
            &values(64 * 32, 1, 0.05),
        );
        for l in 0..4u64 {
            let norm: Vec<f32> = values(32, 10 + l, 0.2).iter().map(|x| 1.0 + x).collect();
            b = b.values(
                &format!("blk.{l}.attn_norm.weight"),
                vec![32],
                GgmlType::F32,
                &norm,
            );
            b = b.values(
                &format!("blk.{l}.attn_q.weight"),
                vec![32, 32],
                GgmlType::Q8_0,
                &values(1024, 20 + l, 0.04),
            );
            b = b.values(
                &format!("blk.{l}.ffn_down.weight"),
                vec![32, 64],
                GgmlType::F16,
                &values(2048, 30 + l, 0.03),
            );
        }
        b.values(
            "output_norm.weight",
            vec![32],
            GgmlType::F32,
            &values(32, 5, 0.1)
                .iter()
                .map(|x| 2.0 + x)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn healthy_model_is_silent() {
        let (model, f) = run(healthy());
        assert!(f.is_empty(), "{f:#?}");
        assert!(check_header(&model).is_empty());
    }

    #[test]
    fn quantized_norm_is_reported_from_the_header() {
        let (model, _) = healthy()
            .values(
                "blk.9.ffn_norm.weight",
                vec![64],
                GgmlType::Q8_0,
                &values(64, 3, 1.0),
            )
            .values(
                "blk.9.ffn_up.bias",
                vec![64],
                GgmlType::Q8_0,
                &values(64, 4, 1.0),
            )
            .build();
        let f = check_header(&model);
        assert_eq!(
            codes(&f),
            vec![
                (
                    "NORM_QUANTIZED",
                    Severity::Error,
                    Some("blk.9.ffn_norm.weight")
                ),
                ("NORM_QUANTIZED", Severity::Error, Some("blk.9.ffn_up.bias"))
            ]
        );
        assert!(f[0].message.contains("Q8_0"));
    }

    #[test]
    fn nan_block_scale_is_reported_with_its_block() {
        let mut bytes = encode(GgmlType::Q8_0, &values(256, 9, 0.1));
        bytes[5 * 34..5 * 34 + 2].copy_from_slice(&f16::NAN.to_le_bytes());
        let (_, f) = run(healthy().raw("blk.0.attn_v.weight", vec![4, 64], GgmlType::Q8_0, &bytes));
        assert_eq!(
            codes(&f),
            vec![
                (
                    "NONFINITE_SCALE",
                    Severity::Error,
                    Some("blk.0.attn_v.weight")
                ),
                (
                    "NONFINITE_VALUE",
                    Severity::Error,
                    Some("blk.0.attn_v.weight")
                )
            ]
        );
        assert!(f[0].message.contains("block is #5"), "{}", f[0].message);
        assert!(f[0].message.contains("row 2"), "{}", f[0].message);
        assert!(f[1].message.contains("32 NaN"), "{}", f[1].message);
    }

    #[test]
    fn nonfinite_values_are_counted() {
        let mut xs = values(128, 2, 1.0);
        xs[7] = f32::INFINITY;
        xs[8] = f32::NAN;
        let (_, f) = run(Builder::default().values("x.weight", vec![2, 64], GgmlType::F32, &xs));
        assert_eq!(
            codes(&f),
            vec![("NONFINITE_VALUE", Severity::Error, Some("x.weight"))]
        );
        assert!(f[0].message.contains("1 NaN and 1 Inf"));
    }

    #[test]
    fn collapsed_norms_are_reported_and_large_gemma_norms_are_not() {
        // Seed 004: every norm at RMS ~0.018.
        let mut b = Builder::default();
        for l in 0..4u64 {
            let xs: Vec<f32> = values(64, l, 0.01)
                .iter()
                .map(|x| 0.018 + x * 0.1)
                .collect();
            b = b.values(
                &format!("blk.{l}.attn_norm.weight"),
                vec![64],
                GgmlType::F32,
                &xs,
            );
        }
        let (_, f) = run(b);
        assert_eq!(
            codes(&f),
            vec![(
                "NORM_RMS_OUT_OF_RANGE",
                Severity::Warning,
                Some("blk.0.attn_norm.weight")
            )]
        );
        assert!(
            f[0].message.contains("median RMS 0.018"),
            "{}",
            f[0].message
        );

        // Gemma GGUF: 1 + w, post-norms in the hundreds; all healthy.
        let mut b = Builder::default();
        for l in 0..4u64 {
            let pre: Vec<f32> = values(64, l, 1.0).iter().map(|x| 2.5 + x).collect();
            let post: Vec<f32> = values(64, l + 9, 50.0).iter().map(|x| 300.0 + x).collect();
            b = b.values(
                &format!("blk.{l}.attn_norm.weight"),
                vec![64],
                GgmlType::F32,
                &pre,
            );
            b = b.values(
                &format!("blk.{l}.post_ffw_norm.weight"),
                vec![64],
                GgmlType::F32,
                &post,
            );
        }
        assert!(run(b).1.is_empty());
    }

    #[test]
    fn one_collapsed_norm_among_healthy_ones_is_reported() {
        let mut b = Builder::default();
        for l in 0..5u64 {
            let level = if l == 3 { 0.001 } else { 1.0 };
            let xs: Vec<f32> = values(64, l, 0.1)
                .iter()
                .map(|x| level * (1.0 + x))
                .collect();
            b = b.values(
                &format!("blk.{l}.ffn_norm.weight"),
                vec![64],
                GgmlType::F32,
                &xs,
            );
        }
        let (_, f) = run(b);
        assert_eq!(
            codes(&f),
            vec![(
                "NORM_RMS_OUT_OF_RANGE",
                Severity::Warning,
                Some("blk.3.ffn_norm.weight")
            )]
        );
    }

    #[test]
    fn seed_level_norm_in_a_two_layer_model_is_reported_and_a_low_healthy_family_is_not() {
        // Layer 0 at the seed's 0.018 next to one healthy layer: the family median (0.51)
        // hides it; the other layers' median (1.0) does not.
        let mut b = Builder::default();
        for l in 0..2u64 {
            let level = if l == 0 { 0.018 } else { 1.0 };
            let xs: Vec<f32> = values(64, l, 0.05)
                .iter()
                .map(|x| level * (1.0 + x))
                .collect();
            b = b.values(
                &format!("blk.{l}.attn_norm.weight"),
                vec![64],
                GgmlType::F32,
                &xs,
            );
        }
        let (_, f) = run(b);
        assert_eq!(
            codes(&f),
            vec![(
                "NORM_RMS_OUT_OF_RANGE",
                Severity::Warning,
                Some("blk.0.attn_norm.weight")
            )]
        );

        // A family spread 0.3 … 6 (well above the absolute floor) stays quiet.
        let mut b = Builder::default();
        for (l, level) in [0.3f32, 1.0, 3.0, 6.0].iter().enumerate() {
            let xs: Vec<f32> = values(64, l as u64, 0.05)
                .iter()
                .map(|x| level * (1.0 + x))
                .collect();
            b = b.values(
                &format!("blk.{l}.ffn_norm.weight"),
                vec![64],
                GgmlType::F32,
                &xs,
            );
        }
        assert!(run(b).1.is_empty());
    }

    #[test]
    fn projection_outlier_is_reported() {
        let (_, f) = run(healthy().values(
            "blk.4.attn_q.weight",
            vec![32, 32],
            GgmlType::Q8_0,
            &values(1024, 99, 2.0),
        ));
        assert_eq!(
            codes(&f),
            vec![(
                "PROJECTION_RMS_OUTLIER",
                Severity::Warning,
                Some("blk.4.attn_q.weight")
            )]
        );
        assert!(f[0].message.contains("median RMS"), "{}", f[0].message);
    }

    #[test]
    fn huge_embedding_values_are_reported() {
        let mut xs = values(64 * 32, 1, 0.05);
        xs[100] = 3e5;
        let (_, f) =
            run(Builder::default().values("token_embd.weight", vec![64, 32], GgmlType::F32, &xs));
        assert_eq!(
            codes(&f),
            vec![(
                "EMBEDDING_MAGNITUDE",
                Severity::Error,
                Some("token_embd.weight")
            )]
        );
        assert!(f[0].message.contains("1 values have"), "{}", f[0].message);
    }

    #[test]
    fn unscaled_quant_codes_are_reported_but_masks_are_not() {
        let codes_xs: Vec<f32> = values(1024, 4, 8.0)
            .iter()
            .map(|x| x.floor().clamp(-8.0, 7.0))
            .collect();
        let (_, f) = run(Builder::default().values(
            "blk.0.attn_q.weight",
            vec![32, 32],
            GgmlType::F32,
            &codes_xs,
        ));
        assert_eq!(
            codes(&f),
            vec![(
                "UNSCALED_INTEGERS",
                Severity::Error,
                Some("blk.0.attn_q.weight")
            )]
        );
        assert!(f[0].message.contains("from -8 to 7"), "{}", f[0].message);

        let mask: Vec<f32> = (0..1024).map(|i| ((i % 3) == 0) as u8 as f32).collect();
        assert!(run(Builder::default().values(
            "h.0.attn.bias",
            vec![32, 32],
            GgmlType::F16,
            &mask
        ))
        .1
        .is_empty());
    }

    #[test]
    fn zero_and_constant_tensors_are_reported() {
        let (_, f) = run(Builder::default()
            .values("a.weight", vec![4, 32], GgmlType::F16, &[0.0; 128])
            .values("b.weight", vec![4, 32], GgmlType::F32, &[0.5; 128])
            .values("c.bias", vec![32], GgmlType::F32, &[0.0; 32])
            .values("d_norm.weight", vec![32], GgmlType::F32, &[1.0; 32]));
        assert_eq!(
            codes(&f),
            vec![
                ("ALL_ZERO_TENSOR", Severity::Warning, Some("a.weight")),
                ("CONSTANT_TENSOR", Severity::Warning, Some("b.weight")),
                ("ALL_ZERO_TENSOR", Severity::Info, Some("c.bias")),
                ("CONSTANT_TENSOR", Severity::Info, Some("d_norm.weight")),
            ]
        );
    }

    #[test]
    fn duplicate_data_is_reported_and_tied_embeddings_are_info() {
        let xs = values(1024, 77, 0.1);
        let (_, f) = run(Builder::default()
            .values("blk.0.ffn_up.weight", vec![32, 32], GgmlType::Q8_0, &xs)
            .values("blk.0.ffn_gate.weight", vec![32, 32], GgmlType::Q8_0, &xs));
        assert_eq!(
            codes(&f),
            vec![(
                "DUPLICATE_TENSOR_DATA",
                Severity::Warning,
                Some("blk.0.ffn_up.weight")
            )]
        );
        assert!(f[0].message.contains("blk.0.ffn_gate.weight"));

        let (_, f) = run(Builder::default()
            .values("token_embd.weight", vec![32, 32], GgmlType::F16, &xs)
            .values("output.weight", vec![32, 32], GgmlType::F16, &xs));
        assert_eq!(
            codes(&f),
            vec![(
                "DUPLICATE_TENSOR_DATA",
                Severity::Info,
                Some("token_embd.weight")
            )]
        );
    }

    #[test]
    fn family_keys_and_offset_norms() {
        assert_eq!(family_key("blk.12.attn_q.weight"), "blk.*.attn_q.weight");
        assert_eq!(
            family_key("model.layers.3.mlp.down_proj.weight"),
            "model.layers.*.mlp.down_proj.weight"
        );
        assert_eq!(family_key("output_norm.weight"), "output_norm.weight");
        assert!(
            is_norm("h.0.ln_1.weight")
                && is_norm("blk.0.attn_norm.weight")
                && !is_norm("blk.0.attn_q.weight")
        );
        // HF Gemma: w = 0 means a scale of 1, so zeros are healthy there.
        let (mut model, bytes) = Builder::default()
            .meta(
                "config.model_type",
                crate::meta::MetaValue::String("gemma3_text".into()),
            )
            .values(
                "model.layers.0.input_layernorm.weight",
                vec![32],
                GgmlType::F32,
                &[0.0; 32],
            )
            .build();
        model.format = Format::Safetensors;
        let src = SliceSource::new(bytes);
        let scan = scan_model(
            &model,
            &[&src],
            &ScanOptions::default(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(check(&model, &scan).is_empty());
    }
}
