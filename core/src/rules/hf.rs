//! Diagnoses for Hugging Face checkpoints (quantization parts, configs, architecture).
//! Header-only: shapes, dtypes, names and config.json; no tensor data.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::dtype::Dtype;
use crate::encoding::{Bnb4Kind, Encoding};
use crate::finding::{grouped, Finding};
use crate::hf::arch::{layer_of, Dims};
use crate::hf::config::{dtype_from_torch, HfConfig, MlxParams};
use crate::hf::group::{mlx_candidates, mlx_shapes_fit};
use crate::hf::parts::{quant_part, PartFamily, QuantPart};
use crate::model::{Format, LogicalTensor, Model};
use crate::safetensors::ORPHAN_QUANT_STATE;

/// Per-tensor architecture findings beyond this many are summarised in one.
const MAX_ARCH_FINDINGS: usize = 40;

pub fn check(model: &Model) -> Vec<Finding> {
    if model.format != Format::Safetensors {
        return Vec::new();
    }
    let cfg = HfConfig::from_model(model);
    let mut out = Vec::new();
    packed_weights(model, &mut out);
    quant_parts(model, &cfg, &mut out);
    mlx_shape_mismatch(model, &mut out);
    config_quant(model, &cfg, &mut out);
    config_dtype(model, &cfg, &mut out);
    architecture(model, &cfg, &mut out);
    out
}

fn shape_str(s: &[u64]) -> String {
    format!(
        "[{}]",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn dense_dtype(t: &LogicalTensor) -> Option<Dtype> {
    match t.encoding {
        Encoding::Dense { dtype } => Some(dtype),
        _ => None,
    }
}

fn is_float(d: Dtype) -> bool {
    matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

// ------------------------------------------------------------------ BNB_PACKED_WEIGHT

fn packed_weights(model: &Model, out: &mut Vec<Finding>) {
    for t in &model.tensors {
        let Encoding::Bnb4 {
            quant_type,
            blocksize,
            nested,
            ..
        } = &t.encoding
        else {
            continue;
        };
        let p = t.primary();
        let kind = match quant_type {
            Bnb4Kind::Nf4 => "NF4",
            Bnb4Kind::Fp4 => "FP4",
        };
        let dims = t
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("×");
        out.push(Finding::info(
            "BNB_PACKED_WEIGHT",
            Some(&t.name),
            format!(
                "{} is stored as {} {} = {kind}-packed {} ({dims}/2 = {}), block size {blocksize}{}",
                t.name,
                shape_str(&p.shape),
                p.dtype.to_ascii_lowercase().replace("u8", "uint8"),
                shape_str(&t.shape),
                grouped(t.n_elements().div_ceil(2)),
                if nested.is_some() { ", double-quantized" } else { "" }
            ),
            "this is the normal bitsandbytes layout, not corruption: keep the tensor with its .absmax/.quant_map/.quant_state parts, or dequantize (quantdoc dequant) to get the dense weight",
        ));
    }
}

// ------------------------------------------- QUANT_PARTS_ORPHANED / _MISSING / ARTIFACTS_LEFT

/// Standalone quantization parts of one base tensor.
type Leftovers<'a> = (PartFamily, Vec<(&'a LogicalTensor, QuantPart)>);

fn quant_parts(model: &Model, cfg: &HfConfig, out: &mut Vec<Finding>) {
    let names: HashSet<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
    let by_name: HashMap<&str, &LogicalTensor> =
        model.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let exists = |n: &str| names.contains(n);
    // Leftover parts (still standalone tensors, so not grouped into a quantized tensor).
    let mut leftovers: BTreeMap<String, Leftovers<'_>> = BTreeMap::new();
    for t in &model.tensors {
        if !matches!(t.encoding, Encoding::Dense { .. }) {
            continue;
        }
        let Some(qp) = quant_part(&t.name, &exists) else {
            continue;
        };
        // An FP8 input_scale beside a grouped FP8 weight, or a part whose base is a grouped
        // quantized tensor, is in use.
        if by_name
            .get(qp.base.as_str())
            .is_some_and(|b| b.encoding.is_quantized())
        {
            continue;
        }
        if qp.family == PartFamily::GptOss
            && by_name.contains_key(qp.base.trim_end_matches("_blocks"))
        {
            continue;
        }
        // compressed-tensors keeps its codes in `<m>.weight_packed` beside `<m>.weight_scale`.
        if let Some(m) = qp.base.strip_suffix(".weight") {
            if by_name.contains_key(format!("{m}.weight_packed").as_str()) {
                continue;
            }
        }
        leftovers
            .entry(qp.base.clone())
            .or_insert((qp.family, Vec::new()))
            .1
            .push((t, qp));
    }
    for (base, (family, parts)) in &leftovers {
        let list = parts
            .iter()
            .map(|(t, _)| format!("{} ({} {})", t.name, t.primary().dtype, shape_str(&t.shape)))
            .collect::<Vec<_>>()
            .join(", ");
        match by_name.get(base.as_str()) {
            None => {
                let state = model
                    .meta(&format!("{ORPHAN_QUANT_STATE}{base}"))
                    .map(|v| v.to_json())
                    .map(|s| describe_quant_state(&s))
                    .unwrap_or_default();
                out.push(Finding::error(
                    "QUANT_PARTS_ORPHANED",
                    Some(base),
                    format!(
                        "{base} is missing, but its {} parts remain: {list}{state}. The weight was deleted (often as \"corrupt\" because its packed shape differs from the layer's) and cannot be rebuilt from these parts",
                        family.label()
                    ),
                    format!(
                        "restore {base} from the original checkpoint (it is packed, not corrupt); dequantize properly instead of deleting it"
                    ),
                ));
            }
            Some(w) if dense_dtype(w).is_some_and(is_float) => {
                out.push(Finding::warning(
                    "QUANT_ARTIFACTS_LEFT",
                    Some(base),
                    format!(
                        "{base} is dense {} {} but {} leftover {} part(s) remain beside it: {list}",
                        w.primary().dtype,
                        shape_str(&w.shape),
                        parts.len(),
                        family.label()
                    ),
                    "delete the leftover parts (and quantization_config in config.json) once the dense weight is verified; loaders may otherwise treat the model as quantized or refuse unexpected keys",
                ));
            }
            Some(_) => {}
        }
    }
    missing_parts(model, cfg, &by_name, out);
}

fn describe_quant_state(v: &serde_json::Value) -> String {
    let shape: Option<Vec<u64>> = v
        .get("shape")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|d| d.as_u64()).collect());
    match (v.get("quant_type").and_then(|q| q.as_str()), shape) {
        (Some(q), Some(shape)) => {
            let n: u64 = shape.iter().product();
            format!(
                "; its quant state says it was {} {} packed into [{}, 1] uint8",
                q.to_ascii_uppercase(),
                shape_str(&shape),
                grouped(n.div_ceil(2))
            )
        }
        _ => String::new(),
    }
}

fn missing_parts(
    model: &Model,
    cfg: &HfConfig,
    by_name: &HashMap<&str, &LogicalTensor>,
    out: &mut Vec<Finding>,
) {
    let method = cfg.quant_method();
    let bnb4_declared =
        method.as_deref() == Some("bitsandbytes") && cfg.quant_bool("load_in_4bit") == Some(true);
    let bnb8_declared =
        method.as_deref() == Some("bitsandbytes") && cfg.quant_bool("load_in_8bit") == Some(true);
    let has = |n: String| by_name.contains_key(n.as_str());
    for t in &model.tensors {
        let Some(dtype) = dense_dtype(t) else {
            continue;
        };
        let name = t.name.as_str();
        let mut missing: Vec<String> = Vec::new();
        let mut what = "";
        if let Some(m) = name.strip_suffix(".weight") {
            if dtype == Dtype::U8 && t.shape.len() == 2 && t.shape[1] == 1 {
                let sibling = [
                    "absmax",
                    "quant_map",
                    "quant_state.bitsandbytes__nf4",
                    "quant_state.bitsandbytes__fp4",
                ]
                .iter()
                .any(|s| has(format!("{name}.{s}")));
                if sibling || bnb4_declared {
                    what = "a bitsandbytes 4-bit packed weight";
                    for s in ["absmax", "quant_map"] {
                        if !has(format!("{name}.{s}")) {
                            missing.push(format!("{name}.{s}"));
                        }
                    }
                    if !has(format!("{name}.quant_state.bitsandbytes__nf4"))
                        && !has(format!("{name}.quant_state.bitsandbytes__fp4"))
                    {
                        missing.push(format!("{name}.quant_state.bitsandbytes__nf4|fp4"));
                    }
                }
            } else if dtype == Dtype::I8
                && (bnb8_declared || has(format!("{m}.weight_format")))
                && !has(format!("{m}.SCB"))
            {
                what = "a bitsandbytes int8 weight";
                missing.push(format!("{m}.SCB"));
            } else if dtype == Dtype::U32 {
                let declared = cfg.mlx_params(m).flatten().is_some();
                if (declared || has(format!("{m}.biases"))) && !has(format!("{m}.scales")) {
                    what = "an MLX packed weight";
                    missing.push(format!("{m}.scales"));
                }
            }
        } else if let Some(m) = name.strip_suffix(".qweight") {
            what = "a GPTQ/AWQ packed weight";
            for s in ["qzeros", "scales"] {
                if !has(format!("{m}.{s}")) {
                    missing.push(format!("{m}.{s}"));
                }
            }
        } else if let Some(p) = name.strip_suffix("_blocks") {
            if dtype == Dtype::U8 && !has(format!("{p}_scales")) {
                what = "gpt-oss MXFP4 blocks";
                missing.push(format!("{p}_scales"));
            }
        }
        if missing.is_empty() {
            continue;
        }
        out.push(Finding::error(
            "QUANT_PARTS_MISSING",
            Some(name),
            format!(
                "{name} ({} {}) is {what}, but {} missing: {}; it cannot be dequantized and loaders will see a wrongly shaped weight",
                t.primary().dtype,
                shape_str(&t.shape),
                if missing.len() == 1 { "this part is" } else { "these parts are" },
                missing.join(", ")
            ),
            "copy the missing parts from the original quantized checkpoint (same shard set), or re-quantize the model",
        ));
    }
}

// ------------------------------------------------------------------ MLX_SHAPE_MISMATCH

/// What the stored shapes of one ungrouped MLX weight admit.
#[derive(Debug, Clone, PartialEq)]
pub struct MlxShapeReport {
    pub module: String,
    /// Parameters (mode, bits, group size) the stored shapes fit as they are.
    pub fits: Vec<MlxParams>,
    /// Parameters that fit once weight and scales are transposed.
    pub fits_transposed: Vec<MlxParams>,
    pub declared: Option<MlxParams>,
}

/// Analyse an MLX module whose weight, scales and biases did not group.
pub fn mlx_shape_report(model: &Model, module: &str) -> Option<MlxShapeReport> {
    let w = model.tensor(&format!("{module}.weight"))?;
    let s = model.tensor(&format!("{module}.scales"))?;
    let b = model.tensor(&format!("{module}.biases"));
    if dense_dtype(w) != Some(Dtype::U32) {
        return None;
    }
    let cfg = HfConfig::from_model(model);
    let cands = mlx_candidates(b.is_some());
    let fit = |ws: &[u64], ss: &[u64]| -> Vec<MlxParams> {
        cands
            .iter()
            .filter(|p| mlx_shapes_fit(ws, ss, p.bits, p.group_size).is_some())
            .cloned()
            .collect()
    };
    let swap = |s: &[u64]| -> Vec<u64> {
        let mut v = s.to_vec();
        let n = v.len();
        if n >= 2 {
            v.swap(n - 1, n - 2);
        }
        v
    };
    Some(MlxShapeReport {
        module: module.to_string(),
        fits: fit(&w.shape, &s.shape),
        fits_transposed: fit(&swap(&w.shape), &swap(&s.shape)),
        declared: cfg.mlx_params(module).flatten(),
    })
}

/// How well one candidate fits the stored codes.
#[derive(Debug, Clone, PartialEq)]
pub struct MlxSupport {
    pub params: MlxParams,
    /// Complete groups examined.
    pub groups: u64,
    /// Groups containing code 0.
    pub with_zero: u64,
    /// How many of those chance alone would give (codes drawn independently with the
    /// observed frequency of 0).
    pub expected_by_chance: f64,
}

impl MlxSupport {
    /// Groups with code 0 beyond chance, as a fraction of all groups (near 0 for a wrong
    /// reading; clearly positive for the right one).
    pub fn excess(&self) -> f64 {
        if self.groups == 0 {
            0.0
        } else {
            (self.with_zero as f64 - self.expected_by_chance) / self.groups as f64
        }
    }
}

/// Bytes of packed codes examined by `mlx_data_support`.
const MLX_SUPPORT_BYTES: u64 = 64 << 10;

/// Which affine (bits, group size) candidates the stored codes of an ungrouped MLX weight
/// support, best first. MLX's affine quantizer makes each group's larger-magnitude extreme
/// the bias, so code 0 occurs in every group; read at the wrong width or grouping, groups
/// hold 0 about as often as chance gives. Candidates are ranked by groups holding 0 beyond
/// chance. Reads at most 64 KB of the weight. Float modes (no biases) have no such
/// signature and are not ranked.
pub fn mlx_data_support<S: crate::source::ByteSource + ?Sized>(
    model: &Model,
    module: &str,
    sources: &[&S],
) -> Result<Vec<MlxSupport>, crate::encoding::DecodeError> {
    use crate::encoding::DecodeError;
    let Some(r) = mlx_shape_report(model, module) else {
        return Ok(Vec::new());
    };
    let w = model
        .tensor(&format!("{module}.weight"))
        .expect("checked by mlx_shape_report");
    let p = w.primary();
    let src = sources
        .get(p.file)
        .ok_or_else(|| DecodeError::Invalid(format!("no byte source for file {}", p.file)))?;
    let len = p.nbytes.min(MLX_SUPPORT_BYTES);
    let bytes = crate::source::read_vec(*src, p.offset, len)?;
    let mut cands: Vec<MlxParams> = Vec::new();
    for c in r
        .fits
        .iter()
        .chain(&r.fits_transposed)
        .chain(r.declared.iter())
    {
        if c.mode == "affine" && !cands.contains(c) {
            cands.push(c.clone());
        }
    }
    let mut out: Vec<MlxSupport> = cands
        .into_iter()
        .filter(|c| c.bits > 0 && c.bits <= 8 && c.group_size > 0)
        .map(|c| {
            let mask = (1u32 << c.bits) - 1;
            let groups = len * 8 / c.bits as u64 / c.group_size;
            let (mut with_zero, mut zeros) = (0u64, 0u64);
            for g in 0..groups {
                let mut here = 0;
                for i in g * c.group_size..(g + 1) * c.group_size {
                    let bit = i * c.bits as u64;
                    let byte = (bit / 8) as usize;
                    let mut v = 0u32;
                    for (k, b) in bytes[byte..bytes.len().min(byte + 3)].iter().enumerate() {
                        v |= (*b as u32) << (8 * k);
                    }
                    if (v >> (bit % 8)) & mask == 0 {
                        here += 1;
                    }
                }
                zeros += here;
                with_zero += u64::from(here > 0);
            }
            let p0 = zeros as f64 / (groups * c.group_size).max(1) as f64;
            let expected_by_chance = groups as f64 * (1.0 - (1.0 - p0).powf(c.group_size as f64));
            MlxSupport {
                params: c,
                groups,
                with_zero,
                expected_by_chance,
            }
        })
        .collect();
    out.sort_by(|a, b| b.excess().total_cmp(&a.excess()));
    Ok(out)
}

fn params_str(p: &MlxParams) -> String {
    format!("{} {}-bit group {}", p.mode, p.bits, p.group_size)
}

fn mlx_shape_mismatch(model: &Model, out: &mut Vec<Finding>) {
    for t in &model.tensors {
        let Some(module) = t.name.strip_suffix(".scales") else {
            continue;
        };
        if !matches!(t.encoding, Encoding::Dense { .. })
            || model.tensor(&format!("{module}.qweight")).is_some()
        {
            continue;
        }
        let Some(r) = mlx_shape_report(model, module) else {
            continue;
        };
        let w = model
            .tensor(&format!("{module}.weight"))
            .expect("checked by mlx_shape_report");
        let b = model.tensor(&format!("{module}.biases"));
        let mut msg = format!(
            "{module}: weight {} U32, scales {} {}{}",
            shape_str(&w.shape),
            shape_str(&t.shape),
            t.primary().dtype,
            b.map(|b| format!(", biases {} {}", shape_str(&b.shape), b.primary().dtype))
                .unwrap_or_default()
        );
        if let Some(b) = b {
            if b.shape != t.shape {
                msg.push_str(" — scales and biases differ in shape");
            }
        }
        msg.push_str(
            ". mx.dequantize fails with \"Shape of scales and biases does not match the matrix\"",
        );
        match &r.declared {
            Some(p) => msg.push_str(&format!(
                "; config.json declares {}, which these shapes do not fit",
                params_str(p)
            )),
            None => msg.push_str("; config.json declares no quantization for it"),
        }
        let list = |v: &[MlxParams]| v.iter().map(params_str).collect::<Vec<_>>().join(", ");
        if !r.fits.is_empty() {
            msg.push_str(&format!("; the shapes as stored fit: {}", list(&r.fits)));
        }
        if !r.fits_transposed.is_empty() {
            msg.push_str(&format!(
                "; transposed (weight and scales swapped in their last two axes) they fit: {}",
                list(&r.fits_transposed)
            ));
        }
        if r.fits.is_empty() && r.fits_transposed.is_empty() {
            msg.push_str("; no MLX bits/group size fits them, as stored or transposed");
        }
        msg.push_str(". The header alone cannot tell which candidate the data supports (a scan can: rules::hf::mlx_data_support)");
        let hint = if r.fits.is_empty() && !r.fits_transposed.is_empty() {
            "weight and scales look transposed ([in, out] instead of MLX's [out, in]): transpose the packed tensors back before quantizing, or re-quantize from the float weights with mlx_lm.convert".to_string()
        } else if !r.fits.is_empty() {
            format!("set \"quantization\" in config.json to the parameters the model was quantized with ({}), or re-quantize with mlx_lm.convert", params_str(&r.fits[0]))
        } else {
            "the packed weight and its scales do not belong together; re-quantize from the float weights with mlx_lm.convert".to_string()
        };
        out.push(Finding::error(
            "MLX_SHAPE_MISMATCH",
            Some(&w.name),
            msg,
            hint,
        ));
    }
}

// ------------------------------------------------------------------ CONFIG_QUANT_MISMATCH

fn config_quant(model: &Model, cfg: &HfConfig, out: &mut Vec<Finding>) {
    if cfg.config.is_empty() && cfg.quant.is_none() {
        return;
    }
    let count =
        |f: &dyn Fn(&Encoding) -> bool| model.tensors.iter().filter(|t| f(&t.encoding)).count();
    let n_bnb4 = count(&|e| matches!(e, Encoding::Bnb4 { .. }));
    let n_bnb8 = count(&|e| matches!(e, Encoding::BnbInt8 { .. }));
    let n_mlx = count(&|e| matches!(e, Encoding::MlxAffine { .. } | Encoding::MlxFloat { .. }));
    let n_gptq = count(&|e| matches!(e, Encoding::Gptq { .. }));
    let n_awq = count(&|e| matches!(e, Encoding::Awq { .. }));
    let n_fp8 = count(&|e| matches!(e, Encoding::Fp8 { .. }));
    let n_oss = count(&|e| matches!(e, Encoding::GptOssMxfp4 { .. }));
    // Packed weights that lost their parts still show what the checkpoint was.
    let orphans = model.tensors.iter().any(|t| {
        quant_part(&t.name, &|_| false).is_some_and(|p| p.family == PartFamily::Bnb4)
            || (t.name.ends_with(".weight")
                && dense_dtype(t) == Some(Dtype::U8)
                && t.shape.len() == 2
                && t.shape[1] == 1)
    });
    let method = cfg.quant_method();
    let src = if cfg.quant_source.is_empty() {
        "config.json"
    } else {
        cfg.quant_source
    };
    let mut push = |tensor: Option<&str>, msg: String, hint: &str| {
        out.push(Finding::error(
            "CONFIG_QUANT_MISMATCH",
            tensor,
            msg,
            hint.to_string(),
        ));
    };
    match method.as_deref() {
        Some("bitsandbytes") => {
            let four = cfg.quant_bool("load_in_4bit") == Some(true);
            let eight = cfg.quant_bool("load_in_8bit") == Some(true);
            if n_bnb4 + n_bnb8 == 0 && !orphans {
                push(
                    None,
                    format!("{src} declares quant_method \"bitsandbytes\" ({}) but every weight is dense: no packed weights, absmax or SCB tensors. transformers will try to re-quantize or reject the weights, and llama.cpp's convert_hf_to_gguf.py stops with \"Quant method is not yet supported: 'bitsandbytes'\"",
                        if four { "load_in_4bit" } else if eight { "load_in_8bit" } else { "no load_in_4bit/8bit" }),
                    "the weights were dequantized but the config was not: delete quantization_config from config.json",
                );
            } else if n_bnb4 > 0 && !four {
                push(None, format!("{src} does not set load_in_4bit, but {n_bnb4} weight(s) are bitsandbytes 4-bit packed"), "set load_in_4bit: true (and the matching bnb_4bit_* fields) or re-export the model");
            } else if n_bnb8 > 0 && !eight {
                push(None, format!("{src} does not set load_in_8bit, but {n_bnb8} weight(s) are bitsandbytes int8 with SCB scales"), "set load_in_8bit: true or re-export the model");
            }
            if four && n_bnb4 > 0 {
                bnb4_fields(model, cfg, src, &mut push);
            }
        }
        Some(m) => {
            let (n, label) = match m {
                "gptq" => (n_gptq, "GPTQ qweight/qzeros/scales"),
                "awq" => (n_awq, "AWQ qweight/qzeros/scales"),
                "fp8" => (n_fp8, "FP8 weights with scales"),
                "mxfp4" => (n_oss, "MXFP4 *_blocks/*_scales"),
                "mlx" => (n_mlx, "MLX packed weights with scales"),
                _ => (usize::MAX, ""),
            };
            if n == 0 {
                push(
                    None,
                    format!("{src} declares quantization \"{m}\" but no weight is stored as {label}: the weights are dense (or in another format) and loaders will look for tensors that do not exist"),
                    "delete the quantization block from config.json if the weights were dequantized, or restore the quantized shards",
                );
            }
            if m == "gptq" {
                if let Some(bits) = cfg.quant_u64("bits") {
                    let other: Vec<&str> = model
                        .tensors
                        .iter()
                        .filter(|t| matches!(t.encoding, Encoding::Gptq { bits: b, .. } if b as u64 != bits))
                        .map(|t| t.name.as_str())
                        .collect();
                    if let Some(first) = other.first() {
                        push(Some(first), format!("{src} declares {bits}-bit GPTQ but {} weight(s) have packed shapes of another width, e.g. {first}", other.len()), "fix \"bits\" in the quantization config");
                    }
                }
            }
        }
        None => {
            let total = n_bnb4 + n_bnb8 + n_gptq + n_awq + n_fp8 + n_oss;
            if total > 0 && !cfg.config.is_empty() {
                let what = if n_bnb4 + n_bnb8 > 0 {
                    "bitsandbytes packed weights; transformers will then load them as plain tensors and fail with \"size mismatch for weight: copying a param with shape torch.Size([N, 1])\""
                } else {
                    "quantized weights; loaders will treat them as plain tensors"
                };
                push(None, format!("config.json has no quantization_config, but {total} weight(s) are {what}"), "restore quantization_config from the original export, or dequantize the weights");
            }
        }
    }
}

fn bnb4_fields(
    model: &Model,
    cfg: &HfConfig,
    src: &str,
    push: &mut dyn FnMut(Option<&str>, String, &str),
) {
    let declared_type = cfg
        .quant_str("bnb_4bit_quant_type")
        .map(|s| s.to_ascii_lowercase());
    let declared_dq = cfg.quant_bool("bnb_4bit_use_double_quant");
    for t in &model.tensors {
        let Encoding::Bnb4 {
            quant_type, nested, ..
        } = &t.encoding
        else {
            continue;
        };
        let actual = match quant_type {
            Bnb4Kind::Nf4 => "nf4",
            Bnb4Kind::Fp4 => "fp4",
        };
        if let Some(d) = &declared_type {
            if d != actual {
                push(Some(&t.name), format!("{src} says bnb_4bit_quant_type \"{d}\" but {} is {actual} (per its quant state); the quant state wins when loading, but re-quantizing tools read the config", t.name), "make bnb_4bit_quant_type match the stored quant states");
                return;
            }
        }
        if let Some(dq) = declared_dq {
            if dq != nested.is_some() {
                push(
                    Some(&t.name),
                    format!(
                        "{src} says bnb_4bit_use_double_quant {dq} but {} is {}double-quantized",
                        t.name,
                        if nested.is_some() { "" } else { "not " }
                    ),
                    "make bnb_4bit_use_double_quant match the stored tensors",
                );
                return;
            }
        }
    }
}

// ------------------------------------------------------------------ CONFIG_DTYPE

fn config_dtype(model: &Model, cfg: &HfConfig, out: &mut Vec<Finding>) {
    if cfg.config.is_empty()
        || !cfg.config.contains_key("architectures") && cfg.model_type().is_none()
    {
        return;
    }
    // Float dtypes of dense matrices (norms are often kept in f32 on purpose).
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for t in &model.tensors {
        if let Some(d) = dense_dtype(t) {
            if is_float(d) && t.shape.len() >= 2 {
                *counts.entry(d.name()).or_default() += 1;
            }
        }
    }
    let majority = counts.iter().max_by_key(|(_, n)| **n).map(|(d, _)| *d);
    match cfg.torch_dtype() {
        None => {
            if cfg.config.get("torch_dtype").is_some_and(|v| !v.is_null())
                || cfg.config.get("dtype").is_some_and(|v| !v.is_null())
            {
                out.push(Finding::warning(
                    "CONFIG_DTYPE",
                    None,
                    "config.json torch_dtype/dtype is not a string".to_string(),
                    "set \"torch_dtype\" to the stored dtype, e.g. \"bfloat16\"",
                ));
            } else {
                out.push(Finding::info(
                    "CONFIG_DTYPE",
                    None,
                    format!(
                        "config.json has no torch_dtype (or dtype){}; loaders that honour it (transformers 4 without torch_dtype=\"auto\", converters) fall back to float32, doubling memory for 16-bit weights",
                        majority.map(|d| format!(" while the dense weights are {d}")).unwrap_or_default()
                    ),
                    "add \"torch_dtype\" with the stored dtype to config.json",
                ));
            }
        }
        Some(s) => match dtype_from_torch(s) {
            None => out.push(Finding::warning(
                "CONFIG_DTYPE",
                None,
                format!("config.json torch_dtype {s:?} is not a dtype transformers knows"),
                "use float16, bfloat16 or float32",
            )),
            Some(d) => {
                if let Some(m) = majority {
                    if m != d.name() && counts.get(d.name()).copied().unwrap_or(0) == 0 {
                        out.push(Finding::warning(
                            "CONFIG_DTYPE",
                            None,
                            format!("config.json says torch_dtype {s} but the dense matrices are {} ({})", m, counts.iter().map(|(d, n)| format!("{n} {d}")).collect::<Vec<_>>().join(", ")),
                            "set torch_dtype to the stored dtype; loaders cast every weight to the config's dtype",
                        ));
                    }
                }
            }
        },
    }
    if cfg.quant_bool("load_in_4bit") == Some(true) {
        let compute = cfg.quant_str("bnb_4bit_compute_dtype");
        let stored: HashSet<Dtype> = model
            .tensors
            .iter()
            .filter_map(|t| match t.encoding {
                Encoding::Bnb4 { out_dtype, .. } => Some(out_dtype),
                _ => None,
            })
            .collect();
        if let (Some(c), Some(first)) = (compute, stored.iter().next()) {
            if dtype_from_torch(c).is_some_and(|cd| !stored.contains(&cd)) {
                out.push(Finding::warning(
                    "CONFIG_DTYPE",
                    None,
                    format!("bnb_4bit_compute_dtype is {c} but the 4-bit weights dequantize to {first}; every matmul converts between them (bitsandbytes warns \"Input type into Linear4bit is ... This will lead to slow inference\")"),
                    format!("set bnb_4bit_compute_dtype to {}", match first { Dtype::BF16 => "bfloat16", Dtype::F32 => "float32", _ => "float16" }),
                ));
            }
        }
    }
}

// ------------------------------------------------------------------ MISSING/UNEXPECTED_TENSOR

fn architecture(model: &Model, cfg: &HfConfig, out: &mut Vec<Finding>) {
    let Some(dims) = Dims::from_config(cfg) else {
        return;
    };
    let by_name: HashMap<&str, &LogicalTensor> =
        model.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let exists = |n: &str| by_name.contains_key(n);
    let expected = dims.expected();
    let expected_names: HashSet<&str> = expected.iter().map(|e| e.name.as_str()).collect();
    let mut arch = Vec::new();
    for e in &expected {
        match by_name.get(e.name.as_str()) {
            None => arch.push(Finding::error(
                "MISSING_TENSOR",
                Some(&e.name),
                format!(
                    "{} ({}) is missing: config.json ({}, {} layers, hidden {}, intermediate {}, {} heads, {} KV heads, head_dim {}, vocab {}) requires it",
                    e.name,
                    shape_str(&e.shape),
                    dims.model_type,
                    dims.layers,
                    dims.hidden,
                    dims.intermediate,
                    dims.heads,
                    dims.kv_heads,
                    dims.head_dim,
                    dims.vocab
                ),
                "restore the tensor from the original checkpoint; loaders fail or initialise it randomly",
            )),
            Some(t) => {
                let comparable = t.encoding.is_quantized() || dense_dtype(t).is_some_and(is_float);
                if comparable && t.shape != e.shape {
                    arch.push(Finding::error(
                        "TENSOR_SHAPE_MISMATCH",
                        Some(&e.name),
                        format!("{} is {} but config.json implies {}", e.name, shape_str(&t.shape), shape_str(&e.shape)),
                        "the tensor or config.json belongs to a different model size; fix the config or restore the tensor",
                    ));
                }
            }
        }
    }
    for t in &model.tensors {
        let n = t.name.as_str();
        if expected_names.contains(n) || quant_part(n, &exists).is_some() {
            continue;
        }
        let beyond = layer_of(n).is_some_and(|i| i >= dims.layers);
        if beyond {
            arch.push(Finding::warning(
                "UNEXPECTED_TENSOR",
                Some(n),
                format!("{n} belongs to layer {} but config.json says num_hidden_layers = {}", layer_of(n).unwrap_or(0), dims.layers),
                "fix num_hidden_layers, or remove the extra layer's tensors (a merge or pruning left them behind)",
            ));
        } else if n == "lm_head.weight" && dims.tied {
            arch.push(Finding::info(
                "UNEXPECTED_TENSOR",
                Some(n),
                "lm_head.weight is stored although config.json ties the word embeddings (tie_word_embeddings); loaders ignore it".to_string(),
                "set tie_word_embeddings to false if the head differs from the embeddings, otherwise drop lm_head.weight",
            ));
        } else if n.starts_with("model.layers.") && !benign_extra(n, &exists) {
            arch.push(Finding::warning(
                "UNEXPECTED_TENSOR",
                Some(n),
                format!("{n} is not part of a {} layer as config.json describes it", dims.model_type),
                "check model_type in config.json; loaders report unexpected keys and drop this tensor",
            ));
        }
    }
    if arch.len() > MAX_ARCH_FINDINGS {
        let extra = arch.len() - MAX_ARCH_FINDINGS;
        let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
        for f in &arch[MAX_ARCH_FINDINGS..] {
            *by_code.entry(f.code.clone()).or_default() += 1;
        }
        arch.truncate(MAX_ARCH_FINDINGS);
        let code = by_code
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "MISSING_TENSOR".into());
        arch.push(Finding::error(
            &code,
            None,
            format!(
                "{extra} more architecture findings not listed ({})",
                by_code.iter().map(|(c, n)| format!("{n} {c}")).collect::<Vec<_>>().join(", ")
            ),
            "the checkpoint and config.json describe different models; compare them with the original",
        ));
    }
    out.extend(arch);
}

/// Tensors some exports keep that loaders accept: rotary caches and the biases of
/// projections that exist (attention_bias / mlp_bias models).
fn benign_extra(name: &str, exists: &dyn Fn(&str) -> bool) -> bool {
    if name.ends_with("rotary_emb.inv_freq") {
        return true;
    }
    name.strip_suffix(".bias")
        .is_some_and(|m| exists(&format!("{m}.weight")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safetensors::testbuild::*;

    const BNB_CONFIG: &str = r#"{"model_type":"llama","architectures":["LlamaForCausalLM"],"torch_dtype":"float16","quantization_config":{"quant_method":"bitsandbytes","load_in_4bit":true,"load_in_8bit":false,"bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true,"bnb_4bit_compute_dtype":"float16"}}"#;

    fn run(tensors: &[TestTensor], config: Option<&str>) -> (Model, Vec<Finding>) {
        let mut files = vec![("d/model.safetensors", build(tensors, &[("format", "pt")]))];
        if let Some(c) = config {
            files.push(("d/config.json", c.as_bytes().to_vec()));
        }
        let m = load_files(&files);
        let mut f = m.findings.clone();
        f.extend(check(&m));
        (m, f)
    }

    fn with_code<'a>(f: &'a [Finding], code: &str) -> Vec<&'a Finding> {
        f.iter().filter(|x| x.code == code).collect()
    }

    const W: &str = "model.layers.3.mlp.down_proj.weight";

    #[test]
    fn packed_bnb_weight_is_explained_with_its_arithmetic() {
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, true), Some(BNB_CONFIG));
        let p = with_code(&f, "BNB_PACKED_WEIGHT");
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].message,
            "model.layers.3.mlp.down_proj.weight is stored as [3072, 1] uint8 = NF4-packed [64, 96] (64×96/2 = 3,072), block size 64, double-quantized"
        );
        assert!(
            f.iter()
                .all(|x| x.severity == crate::finding::Severity::Info),
            "{f:#?}"
        );
        let (_, f) = run(&[zeros(W, Dtype::F16, &[64, 96])], None);
        assert!(with_code(&f, "BNB_PACKED_WEIGHT").is_empty());
    }

    #[test]
    fn deleting_the_packed_weight_orphans_its_parts() {
        let parts: Vec<TestTensor> = bnb4_tensors(W, 64, 96, 64, true)
            .into_iter()
            .filter(|t| t.name != W)
            .collect();
        let (_, f) = run(&parts, Some(BNB_CONFIG));
        let o = with_code(&f, "QUANT_PARTS_ORPHANED");
        assert_eq!(o.len(), 1, "{f:#?}");
        assert_eq!(o[0].tensor.as_deref(), Some(W));
        assert!(
            o[0].message.contains(".absmax (U8 [96])"),
            "{}",
            o[0].message
        );
        assert!(
            o[0].message
                .contains("it was NF4 [64, 96] packed into [3,072, 1] uint8"),
            "{}",
            o[0].message
        );
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, true), Some(BNB_CONFIG));
        assert!(with_code(&f, "QUANT_PARTS_ORPHANED").is_empty());
    }

    #[test]
    fn packed_weight_without_its_parts_is_reported() {
        let parts: Vec<TestTensor> = bnb4_tensors(W, 64, 96, 64, false)
            .into_iter()
            .filter(|t| !t.name.ends_with(".absmax"))
            .collect();
        let (m, f) = run(&parts, Some(BNB_CONFIG));
        assert!(matches!(
            m.tensor(W).unwrap().encoding,
            Encoding::Dense { dtype: Dtype::U8 }
        ));
        let q = with_code(&f, "QUANT_PARTS_MISSING");
        assert_eq!(q.len(), 1, "{f:#?}");
        assert!(
            q[0].message
                .contains(&format!("this part is missing: {W}.absmax")),
            "{}",
            q[0].message
        );
        // Only the packed weight, with a bitsandbytes config: every part is missing.
        let (_, f) = run(&[zeros(W, Dtype::U8, &[3072, 1])], Some(BNB_CONFIG));
        assert!(with_code(&f, "QUANT_PARTS_MISSING")[0]
            .message
            .contains("these parts are missing"));
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, false), Some(BNB_CONFIG));
        assert!(with_code(&f, "QUANT_PARTS_MISSING").is_empty());
    }

    #[test]
    fn dense_weight_beside_leftover_parts() {
        let mut t: Vec<TestTensor> = bnb4_tensors(W, 64, 96, 64, false)
            .into_iter()
            .filter(|t| t.name != W)
            .collect();
        t.push(zeros(W, Dtype::F16, &[64, 96]));
        let (_, f) = run(&t, None);
        let a = with_code(&f, "QUANT_ARTIFACTS_LEFT");
        assert_eq!(a.len(), 1, "{f:#?}");
        assert!(
            a[0].message.starts_with(&format!(
                "{W} is dense F16 [64, 96] but 3 leftover bitsandbytes 4-bit part(s)"
            )),
            "{}",
            a[0].message
        );
        assert!(with_code(&f, "QUANT_PARTS_ORPHANED").is_empty());
        let (_, f) = run(
            &[
                zeros(W, Dtype::F16, &[64, 96]),
                zeros("model.layers.3.mlp.down_proj.bias", Dtype::F16, &[64]),
            ],
            None,
        );
        assert!(with_code(&f, "QUANT_ARTIFACTS_LEFT").is_empty());
    }

    const MLX_CONFIG: &str = r#"{"model_type":"llama","torch_dtype":"bfloat16","quantization":{"group_size":64,"bits":4}}"#;

    #[test]
    fn mlx_scales_that_do_not_match_the_matrix() {
        // Seed 001: weight and scales stored transposed ([in, out] instead of [out, in]).
        let q = "model.layers.0.self_attn.q_proj";
        let t = [
            zeros(&format!("{q}.weight"), Dtype::U32, &[16, 64]),
            zeros(&format!("{q}.scales"), Dtype::BF16, &[2, 64]),
            zeros(&format!("{q}.biases"), Dtype::BF16, &[2, 64]),
        ];
        let (_, f) = run(&t, Some(MLX_CONFIG));
        let x = with_code(&f, "MLX_SHAPE_MISMATCH");
        assert_eq!(x.len(), 1, "{f:#?}");
        let msg = &x[0].message;
        assert!(
            msg.contains("Shape of scales and biases does not match the matrix"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "config.json declares affine 4-bit group 64, which these shapes do not fit"
            ),
            "{msg}"
        );
        assert!(msg.contains("transposed (weight and scales swapped in their last two axes) they fit: affine 4-bit group 64"), "{msg}");
        assert!(x[0].hint.contains("look transposed"));
        // Untransposed but declared with the wrong bits: the stored shapes fit other params.
        let t = [
            zeros(&format!("{q}.weight"), Dtype::U32, &[64, 16]),
            zeros(&format!("{q}.scales"), Dtype::BF16, &[64, 2]),
            zeros(&format!("{q}.biases"), Dtype::BF16, &[64, 2]),
        ];
        let (_, f) = run(&t, Some(r#"{"quantization":{"group_size":64,"bits":8}}"#));
        let x = with_code(&f, "MLX_SHAPE_MISMATCH");
        assert!(
            x[0].message
                .contains("the shapes as stored fit: affine 4-bit group 64"),
            "{}",
            x[0].message
        );
        let (m, f) = run(&t, Some(MLX_CONFIG));
        assert!(with_code(&f, "MLX_SHAPE_MISMATCH").is_empty());
        assert!(matches!(
            m.tensor(&format!("{q}.weight")).unwrap().encoding,
            Encoding::MlxAffine {
                bits: 4,
                group_size: 64,
                ..
            }
        ));
    }

    #[test]
    fn config_declaring_bitsandbytes_for_dense_weights_and_the_reverse() {
        let (_, f) = run(&[zeros(W, Dtype::F16, &[64, 96])], Some(BNB_CONFIG));
        let c = with_code(&f, "CONFIG_QUANT_MISMATCH");
        assert_eq!(c.len(), 1, "{f:#?}");
        assert!(c[0]
            .message
            .contains("Quant method is not yet supported: 'bitsandbytes'"));
        let (_, f) = run(
            &bnb4_tensors(W, 64, 96, 64, true),
            Some(r#"{"model_type":"llama","torch_dtype":"float16"}"#),
        );
        let c = with_code(&f, "CONFIG_QUANT_MISMATCH");
        assert_eq!(c.len(), 1, "{f:#?}");
        assert!(c[0].message.contains("size mismatch for weight"));
        let wrong_dq = BNB_CONFIG.replace(
            "\"bnb_4bit_use_double_quant\":true",
            "\"bnb_4bit_use_double_quant\":false",
        );
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, true), Some(&wrong_dq));
        assert!(with_code(&f, "CONFIG_QUANT_MISMATCH")[0]
            .message
            .contains("bnb_4bit_use_double_quant false"));
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, true), Some(BNB_CONFIG));
        assert!(with_code(&f, "CONFIG_QUANT_MISMATCH").is_empty());
        let (_, f) = run(
            &[zeros(W, Dtype::F16, &[64, 96])],
            Some(r#"{"quantization_config":{"quant_method":"gptq","bits":4}}"#),
        );
        assert_eq!(with_code(&f, "CONFIG_QUANT_MISMATCH").len(), 1);
    }

    #[test]
    fn config_dtype_disagreements() {
        let dense = [
            zeros("a.weight", Dtype::BF16, &[4, 4]),
            zeros("b.weight", Dtype::BF16, &[4, 4]),
        ];
        let (_, f) = run(
            &dense,
            Some(r#"{"model_type":"llama","torch_dtype":"float16"}"#),
        );
        let d = with_code(&f, "CONFIG_DTYPE");
        assert_eq!(d.len(), 1);
        assert!(
            d[0].message
                .contains("torch_dtype float16 but the dense matrices are BF16 (2 BF16)"),
            "{}",
            d[0].message
        );
        let (_, f) = run(
            &dense,
            Some(r#"{"model_type":"llama","torch_dtype":"bfloat16"}"#),
        );
        assert!(with_code(&f, "CONFIG_DTYPE").is_empty());
        let (_, f) = run(
            &dense,
            Some(r#"{"model_type":"llama","torch_dtype":"bfloat17"}"#),
        );
        assert_eq!(
            with_code(&f, "CONFIG_DTYPE")[0].severity,
            crate::finding::Severity::Warning
        );
        let slow = BNB_CONFIG.replace(
            "\"bnb_4bit_compute_dtype\":\"float16\"",
            "\"bnb_4bit_compute_dtype\":\"float32\"",
        );
        let (_, f) = run(&bnb4_tensors(W, 64, 96, 64, true), Some(&slow));
        assert!(with_code(&f, "CONFIG_DTYPE")[0]
            .message
            .contains("bnb_4bit_compute_dtype is float32"));
    }

    fn llama(layers: u64, skip: &str, extra: &[TestTensor]) -> Vec<TestTensor> {
        let (h, i, q, kv, v) = (8u64, 16u64, 8u64, 4u64, 10u64);
        let mut t = vec![zeros("model.embed_tokens.weight", Dtype::F16, &[v, h])];
        for l in 0..layers {
            let p = format!("model.layers.{l}");
            for (n, s) in [
                ("self_attn.q_proj.weight", vec![q, h]),
                ("self_attn.k_proj.weight", vec![kv, h]),
                ("self_attn.v_proj.weight", vec![kv, h]),
                ("self_attn.o_proj.weight", vec![h, q]),
                ("mlp.gate_proj.weight", vec![i, h]),
                ("mlp.up_proj.weight", vec![i, h]),
                ("mlp.down_proj.weight", vec![h, i]),
                ("input_layernorm.weight", vec![h]),
                ("post_attention_layernorm.weight", vec![h]),
            ] {
                let name = format!("{p}.{n}");
                if name != skip {
                    t.push(zeros(&name, Dtype::F16, &s));
                }
            }
        }
        t.push(zeros("model.norm.weight", Dtype::F16, &[h]));
        t.push(zeros("lm_head.weight", Dtype::F16, &[v, h]));
        t.extend_from_slice(extra);
        t
    }

    const LLAMA: &str = r#"{"model_type":"llama","torch_dtype":"float16","hidden_size":8,"intermediate_size":16,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"num_hidden_layers":2,"vocab_size":10,"tie_word_embeddings":false}"#;

    #[test]
    fn llama_family_tensor_inventory() {
        let (_, f) = run(&llama(2, "", &[]), Some(LLAMA));
        assert!(f.is_empty(), "{f:#?}");
        let (_, f) = run(
            &llama(2, "model.layers.1.mlp.up_proj.weight", &[]),
            Some(LLAMA),
        );
        let m = with_code(&f, "MISSING_TENSOR");
        assert_eq!(m.len(), 1);
        assert!(
            m[0].message
                .starts_with("model.layers.1.mlp.up_proj.weight ([16, 8]) is missing"),
            "{}",
            m[0].message
        );
        let (_, f) = run(&llama(3, "", &[]), Some(LLAMA));
        assert_eq!(with_code(&f, "UNEXPECTED_TENSOR").len(), 9);
        let bad = [zeros(
            "model.layers.0.self_attn.k_proj.weight",
            Dtype::F16,
            &[8, 8],
        )];
        let (_, f) = run(
            &llama(2, "model.layers.0.self_attn.k_proj.weight", &bad),
            Some(LLAMA),
        );
        let s = with_code(&f, "TENSOR_SHAPE_MISMATCH");
        assert_eq!(s.len(), 1);
        assert!(s[0]
            .message
            .contains("is [8, 8] but config.json implies [4, 8]"));
        // A tied model must not store lm_head (info), and must not miss it.
        let tied = LLAMA.replace(
            "\"tie_word_embeddings\":false",
            "\"tie_word_embeddings\":true",
        );
        let (_, f) = run(&llama(2, "", &[]), Some(&tied));
        assert_eq!(
            with_code(&f, "UNEXPECTED_TENSOR")[0].severity,
            crate::finding::Severity::Info
        );
        // Hundreds of missing tensors collapse into a bounded list.
        let many = LLAMA.replace("\"num_hidden_layers\":2", "\"num_hidden_layers\":60");
        let (_, f) = run(&llama(2, "", &[]), Some(&many));
        assert_eq!(
            f.iter().filter(|x| x.code == "MISSING_TENSOR").count(),
            MAX_ARCH_FINDINGS + 1
        );
    }

    #[test]
    fn mlx_data_support_picks_the_parameters_the_codes_were_made_with() {
        let Some(dir) = crate::testutil::fixtures_or_skip("mlx_data_support") else {
            return;
        };
        for (sub, bits, gs) in [
            ("mlx/affine_b4_g64_bf16", 4, 64),
            ("mlx/affine_b2_g32_f16", 2, 32),
            ("mlx/affine_b8_g64_f16", 8, 64),
            ("mlx/affine_b3_g64_bf16", 3, 64),
            ("mlx/affine_b5_g32_f32", 5, 32),
            ("mlx/affine_b6_g128_bf16", 6, 128),
        ] {
            let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| (p.to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
                .collect();
            files.sort();
            // Claim a width the codes were not made with, so the module does not group.
            for (p, b) in files.iter_mut() {
                if p.ends_with("config.json") {
                    let text = String::from_utf8(b.clone())
                        .unwrap()
                        .replace(&format!("\"bits\": {bits}"), "\"bits\": 7");
                    *b = text.into_bytes();
                }
            }
            let named: Vec<(&str, Vec<u8>)> =
                files.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
            let m = load_files(&named);
            let sources: Vec<crate::source::SliceSource<&[u8]>> = files
                .iter()
                .map(|(_, b)| crate::source::SliceSource::new(b.as_slice()))
                .collect();
            let refs: Vec<&crate::source::SliceSource<&[u8]>> = sources.iter().collect();
            let module = "model.layers.0.mlp.up_proj";
            assert!(check(&m).iter().any(|f| f.code == "MLX_SHAPE_MISMATCH"
                && f.tensor.as_deref() == Some("model.layers.0.mlp.up_proj.weight")));
            let support = mlx_data_support(&m, module, &refs).unwrap();
            assert!(support.len() >= 2, "{sub}: {support:?}");
            assert_eq!(
                (support[0].params.bits, support[0].params.group_size),
                (bits, gs),
                "{sub}: {support:?}"
            );
            assert!(
                support[0].excess() > 0.1 && support[1].excess() < support[0].excess() / 2.0,
                "{sub}: {support:?}"
            );
        }
    }

    #[test]
    fn compressed_tensors_scales_are_not_orphans() {
        let m = "model.layers.0.mlp.up_proj";
        let t = [
            zeros(&format!("{m}.weight_packed"), Dtype::I32, &[16, 2]),
            zeros(&format!("{m}.weight_scale"), Dtype::BF16, &[16, 1]),
        ];
        let (_, f) = run(&t, None);
        assert!(with_code(&f, "QUANT_PARTS_ORPHANED").is_empty(), "{f:#?}");
        let (_, f) = run(&t[1..], None);
        assert_eq!(with_code(&f, "QUANT_PARTS_ORPHANED").len(), 1);
    }

    #[test]
    fn absurd_config_sizes_are_not_expanded() {
        let huge = LLAMA.replace(
            "\"num_hidden_layers\":2",
            "\"num_hidden_layers\":1000000000000",
        );
        let (_, f) = run(&llama(2, "", &[]), Some(&huge));
        assert!(with_code(&f, "MISSING_TENSOR").is_empty());
        let huge = LLAMA.replace("\"hidden_size\":8", "\"hidden_size\":18446744073709551615");
        let (_, f) = run(&llama(2, "", &[]), Some(&huge));
        assert!(with_code(&f, "TENSOR_SHAPE_MISMATCH").is_empty());
    }

    #[test]
    fn gguf_models_are_not_checked() {
        let (mut m, _) = run(&bnb4_tensors(W, 64, 96, 64, true), None);
        m.format = Format::Gguf;
        assert!(check(&m).is_empty());
    }
}
