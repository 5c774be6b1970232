//! Stored tensors → logical tensors.
//!
//! A quantized weight is stored as several tensors (packed codes, scales, zeros, quant
//! state...). Grouping recognises each format by its tensor names, dtypes and shapes (and
//! config.json where shapes alone are ambiguous) and builds one logical tensor per weight,
//! with its logical row-major shape. A part whose main tensor is missing is left as its
//! own dense tensor, so the rules can report it as orphaned.

use std::collections::HashMap;

use crate::dtype::Dtype;
use crate::encoding::{Bnb4Kind, BnbNested, Encoding, Fp8Scale, MlxFloatMode};
use crate::finding::{grouped, Finding};
use crate::hf::config::{dtype_from_torch, HfConfig, MlxParams};
use crate::model::{LogicalTensor, StoredPart};

/// The result of grouping: logical tensors (in stored order of their main part) and what
/// grouping found wrong.
#[derive(Debug, Default)]
pub struct Grouping {
    pub tensors: Vec<LogicalTensor>,
    pub findings: Vec<Finding>,
    /// Quant-state JSON of bitsandbytes weights that are missing (weight name, JSON): the
    /// only record left of what the deleted tensor was.
    pub orphan_quant_states: Vec<(String, serde_json::Value)>,
}

/// Largest quant-state JSON that is read (real ones are under 300 bytes).
const MAX_QUANT_STATE: u64 = 64 << 10;

/// Default output dtype for formats whose stored parts do not carry one.
fn model_dtype(cfg: &HfConfig) -> Dtype {
    cfg.torch_dtype()
        .and_then(dtype_from_torch)
        .unwrap_or(Dtype::BF16)
}

struct Ctx<'a> {
    parts: Vec<Option<StoredPart>>,
    by_name: HashMap<String, usize>,
    cfg: &'a HfConfig,
    out: Vec<(usize, LogicalTensor)>,
    findings: Vec<Finding>,
    orphan_quant_states: Vec<(String, serde_json::Value)>,
}

impl Ctx<'_> {
    fn idx(&self, name: &str) -> Option<usize> {
        let &i = self.by_name.get(name)?;
        self.parts[i].is_some().then_some(i)
    }

    fn get(&self, i: usize) -> &StoredPart {
        self.parts[i].as_ref().expect("part taken twice")
    }

    fn dtype(&self, i: usize) -> Option<Dtype> {
        Dtype::from_name(&self.get(i).dtype)
    }

    /// Move parts into a logical tensor; the first is the primary part.
    fn take(&mut self, name: String, shape: Vec<u64>, encoding: Encoding, roles: &[(usize, &str)]) {
        let mut parts = Vec::with_capacity(roles.len());
        for &(i, role) in roles {
            let mut p = self.parts[i].take().expect("part taken twice");
            p.role = role.to_string();
            parts.push(p);
        }
        let order = roles[0].0;
        self.out.push((
            order,
            LogicalTensor {
                name,
                shape,
                encoding,
                parts,
            },
        ));
    }
}

/// Group stored tensors. `read_small` reads the bytes of a small part (bitsandbytes
/// quant-state JSON); it is never called for large tensors.
pub fn group(
    stored: Vec<StoredPart>,
    cfg: &HfConfig,
    read_small: &dyn Fn(&StoredPart) -> Result<Vec<u8>, String>,
) -> Grouping {
    let by_name = stored
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i))
        .collect();
    let names: Vec<String> = stored.iter().map(|p| p.name.clone()).collect();
    let mut cx = Ctx {
        parts: stored.into_iter().map(Some).collect(),
        by_name,
        cfg,
        out: Vec::new(),
        findings: Vec::new(),
        orphan_quant_states: Vec::new(),
    };
    for n in &names {
        if let Some((prefix, kind)) = n.rsplit_once(".quant_state.bitsandbytes__") {
            group_bnb4(&mut cx, n, prefix, kind, read_small);
        }
    }
    for n in &names {
        if let Some(module) = n.strip_suffix(".SCB") {
            group_bnb8(&mut cx, module);
        }
    }
    for n in &names {
        if let Some(module) = n.strip_suffix(".scales") {
            group_mlx(&mut cx, module);
        }
    }
    for n in &names {
        if let Some(prefix) = n.strip_suffix("_blocks") {
            group_gptoss(&mut cx, prefix);
        }
    }
    for n in &names {
        if let Some(module) = n.strip_suffix(".qweight") {
            group_gptq_awq(&mut cx, module);
        }
    }
    for n in &names {
        if let Some(module) = n.strip_suffix(".weight") {
            group_fp8(&mut cx, module);
        }
    }
    for i in 0..cx.parts.len() {
        if cx.parts[i].is_none() {
            continue;
        }
        let p = cx.get(i);
        let (name, shape) = (p.name.clone(), p.shape.clone());
        let encoding = match Dtype::from_name(&p.dtype) {
            Some(dtype) => Encoding::Dense { dtype },
            None => continue,
        };
        cx.take(name, shape, encoding, &[(i, "data")]);
    }
    cx.out.sort_by_key(|(i, _)| *i);
    Grouping {
        tensors: cx.out.into_iter().map(|(_, t)| t).collect(),
        findings: cx.findings,
        orphan_quant_states: cx.orphan_quant_states,
    }
}

fn n_elements(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

// ---------------------------------------------------------------- bitsandbytes 4-bit

/// The JSON that bitsandbytes stores as `<weight>.quant_state.bitsandbytes__<type>`.
#[derive(Debug, serde::Deserialize)]
struct QuantStateJson {
    quant_type: String,
    blocksize: u64,
    dtype: String,
    shape: Vec<u64>,
    nested_blocksize: Option<u64>,
    nested_offset: Option<f64>,
}

fn group_bnb4(
    cx: &mut Ctx<'_>,
    qs_name: &str,
    weight: &str,
    kind: &str,
    read_small: &dyn Fn(&StoredPart) -> Result<Vec<u8>, String>,
) {
    let Some(qs) = cx.idx(qs_name) else { return };
    let Some(w) = cx.idx(weight) else {
        let p = cx.get(qs);
        if p.nbytes <= MAX_QUANT_STATE {
            if let Ok(v) =
                read_small(p).and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                cx.orphan_quant_states.push((weight.to_string(), v));
            }
        }
        return;
    };
    let bad = |cx: &mut Ctx<'_>, msg: String| {
        cx.findings.push(Finding::error(
            "BNB_QUANT_STATE_INVALID",
            Some(weight),
            format!("{weight}: {msg}; the weight cannot be dequantized"),
            "re-export the checkpoint with save_pretrained; the quant state must describe the packed weight",
        ));
    };
    let qs_part = cx.get(qs).clone();
    if qs_part.nbytes > MAX_QUANT_STATE {
        return bad(
            cx,
            format!(
                "{qs_name} is {} bytes, too large for a quant state",
                qs_part.nbytes
            ),
        );
    }
    let state: QuantStateJson = match read_small(&qs_part)
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("not the expected JSON: {e}")))
    {
        Ok(s) => s,
        Err(e) => return bad(cx, format!("{qs_name} could not be read: {e}")),
    };
    let quant_type = match state.quant_type.as_str() {
        "nf4" => Bnb4Kind::Nf4,
        "fp4" => Bnb4Kind::Fp4,
        other => return bad(cx, format!("quant_type {other:?} is neither nf4 nor fp4")),
    };
    if state.quant_type != kind {
        return bad(
            cx,
            format!(
                "the quant state is named __{kind} but says quant_type {:?}",
                state.quant_type
            ),
        );
    }
    let Some(out_dtype) = dtype_from_torch(&state.dtype) else {
        return bad(
            cx,
            format!("quant state dtype {:?} is not a float type", state.dtype),
        );
    };
    let n = match n_elements(&state.shape) {
        Some(n) if n > 0 => n,
        _ => {
            return bad(
                cx,
                format!("quant state shape {:?} is empty or too large", state.shape),
            )
        }
    };
    let bs = state.blocksize;
    if bs == 0 || !bs.is_multiple_of(2) {
        return bad(cx, format!("block size {bs} is not a positive even number"));
    }
    let packed = cx.get(w).nbytes;
    if packed != n.div_ceil(2) {
        return bad(
            cx,
            format!(
                "the packed weight holds {} bytes but the quant state shape {:?} needs {} ({} elements / 2)",
                grouped(packed),
                state.shape,
                grouped(n.div_ceil(2)),
                grouped(n)
            ),
        );
    }
    let n_blocks = n.div_ceil(bs);
    let find = |cx: &Ctx<'_>, suffix: &str| cx.idx(&format!("{weight}.{suffix}"));
    let (Some(absmax), Some(qmap)) = (find(cx, "absmax"), find(cx, "quant_map")) else {
        // QUANT_PARTS_MISSING (rules) reports the missing parts.
        return;
    };
    if cx.dtype(qmap) != Some(Dtype::F32) || cx.get(qmap).nbytes != 64 {
        return bad(cx, format!("{weight}.quant_map is not 16 F32 values"));
    }
    let mut roles = vec![(w, "weight"), (absmax, "absmax"), (qmap, "quant_map")];
    let nested = match (state.nested_blocksize, state.nested_offset) {
        (Some(nbs), Some(off)) => {
            let (Some(nabs), Some(nmap)) =
                (find(cx, "nested_absmax"), find(cx, "nested_quant_map"))
            else {
                return;
            };
            if nbs == 0 {
                return bad(cx, "nested block size is 0".into());
            }
            if cx.dtype(absmax) != Some(Dtype::U8) || cx.get(absmax).nbytes != n_blocks {
                return bad(
                    cx,
                    format!(
                        "double-quantized absmax should be {n_blocks} U8 codes ({} elements / block size {bs}), found {} {:?}",
                        grouped(n),
                        cx.get(absmax).dtype,
                        cx.get(absmax).shape
                    ),
                );
            }
            if cx.dtype(nmap) != Some(Dtype::F32) || cx.get(nmap).nbytes != 256 * 4 {
                return bad(
                    cx,
                    format!("{weight}.nested_quant_map is not 256 F32 values"),
                );
            }
            let want = n_blocks.div_ceil(nbs) * 4;
            if cx.dtype(nabs) != Some(Dtype::F32) || cx.get(nabs).nbytes != want {
                return bad(
                    cx,
                    format!("nested_absmax should be {} F32 values ({n_blocks} blocks / nested block size {nbs})", want / 4),
                );
            }
            roles.push((nabs, "nested_absmax"));
            roles.push((nmap, "nested_quant_map"));
            Some(BnbNested {
                blocksize: nbs,
                offset: off as f32,
            })
        }
        _ => {
            if cx.dtype(absmax) != Some(Dtype::F32) || cx.get(absmax).nbytes != n_blocks * 4 {
                return bad(
                    cx,
                    format!(
                        "absmax should be {n_blocks} F32 values ({} elements / block size {bs}), found {} {:?}",
                        grouped(n),
                        cx.get(absmax).dtype,
                        cx.get(absmax).shape
                    ),
                );
            }
            None
        }
    };
    roles.push((qs, "quant_state"));
    let encoding = Encoding::Bnb4 {
        quant_type,
        blocksize: bs,
        nested,
        out_dtype,
    };
    cx.take(weight.to_string(), state.shape.clone(), encoding, &roles);
}

// ---------------------------------------------------------------- bitsandbytes int8

fn group_bnb8(cx: &mut Ctx<'_>, module: &str) {
    let weight = format!("{module}.weight");
    let (Some(w), Some(scb)) = (cx.idx(&weight), cx.idx(&format!("{module}.SCB"))) else {
        return;
    };
    let wp = cx.get(w);
    if cx.dtype(w) != Some(Dtype::I8) || wp.shape.len() != 2 {
        return;
    }
    let rows = wp.shape[0];
    let shape = wp.shape.clone();
    if cx.dtype(scb) != Some(Dtype::F32) || cx.get(scb).nbytes != rows * 4 {
        cx.findings.push(Finding::error(
            "BNB_QUANT_STATE_INVALID",
            Some(&weight),
            format!(
                "{weight} has {rows} rows but {module}.SCB is {} {:?} (one F32 per row expected)",
                cx.get(scb).dtype,
                cx.get(scb).shape
            ),
            "re-export the checkpoint; SCB must hold one scale per output row",
        ));
        return;
    }
    let mut roles = vec![(w, "weight"), (scb, "SCB")];
    if let Some(f) = cx.idx(&format!("{module}.weight_format")) {
        roles.push((f, "weight_format"));
    }
    cx.take(
        weight,
        shape,
        Encoding::BnbInt8 {
            out_dtype: Dtype::F32,
        },
        &roles,
    );
}

// ---------------------------------------------------------------- MLX

/// Why MLX parts could not be grouped (used by the MLX_SHAPE_MISMATCH rule too).
pub fn mlx_shapes_fit(
    w_shape: &[u64],
    s_shape: &[u64],
    bits: u32,
    group_size: u64,
) -> Option<Vec<u64>> {
    let (wl, sl) = (w_shape.len(), s_shape.len());
    if wl < 2 || sl != wl || w_shape[..wl - 1] != s_shape[..sl - 1] || bits == 0 || group_size == 0
    {
        return None;
    }
    let in_features = w_shape[wl - 1].checked_mul(32)?;
    if !in_features.is_multiple_of(bits as u64) {
        return None;
    }
    let in_features = in_features / bits as u64;
    if s_shape[sl - 1].checked_mul(group_size)? != in_features {
        return None;
    }
    let mut shape = w_shape[..wl - 1].to_vec();
    shape.push(in_features);
    Some(shape)
}

/// Every (mode, bits, group size) MLX supports.
pub fn mlx_candidates(affine: bool) -> Vec<MlxParams> {
    let mut v = Vec::new();
    if affine {
        for gs in [64u64, 32, 128] {
            for bits in [4u32, 2, 3, 5, 6, 8] {
                v.push(MlxParams {
                    mode: "affine".into(),
                    bits,
                    group_size: gs,
                });
            }
        }
    } else {
        v.push(MlxParams {
            mode: "mxfp4".into(),
            bits: 4,
            group_size: 32,
        });
        v.push(MlxParams {
            mode: "nvfp4".into(),
            bits: 4,
            group_size: 16,
        });
        v.push(MlxParams {
            mode: "mxfp8".into(),
            bits: 8,
            group_size: 32,
        });
    }
    v
}

fn group_mlx(cx: &mut Ctx<'_>, module: &str) {
    let weight = format!("{module}.weight");
    let (Some(w), Some(s)) = (cx.idx(&weight), cx.idx(&format!("{module}.scales"))) else {
        return;
    };
    if cx.dtype(w) != Some(Dtype::U32) {
        return;
    }
    let biases = cx.idx(&format!("{module}.biases"));
    let w_shape = cx.get(w).shape.clone();
    let s_shape = cx.get(s).shape.clone();
    let Some(s_dtype) = cx.dtype(s) else { return };
    if let Some(b) = biases {
        if cx.get(b).shape != s_shape || cx.dtype(b) != Some(s_dtype) {
            // MLX_SHAPE_MISMATCH (rules) explains it.
            return;
        }
    }
    let declared = cx.cfg.mlx_params(module).flatten();
    let params = match declared {
        Some(p) => p,
        None => {
            let fits: Vec<MlxParams> = mlx_candidates(biases.is_some())
                .into_iter()
                .filter(|p| mlx_shapes_fit(&w_shape, &s_shape, p.bits, p.group_size).is_some())
                .collect();
            let Some(first) = fits.first().cloned() else {
                return;
            };
            if fits.len() > 1 || biases.is_none() {
                cx.findings.push(Finding::info(
                    "MLX_PARAMS_INFERRED",
                    Some(&weight),
                    format!(
                        "config.json declares no quantization for {module}; the shapes ({w_shape:?} U32, scales {s_shape:?}) fit {} and {} is assumed (MLX's default group size first)",
                        fits.iter().map(|p| format!("{} {}-bit g{}", p.mode, p.bits, p.group_size)).collect::<Vec<_>>().join(", "),
                        format_args!("{} {}-bit g{}", first.mode, first.bits, first.group_size)
                    ),
                    "add the \"quantization\" block mlx_lm writes to config.json so loaders need not guess",
                ));
            }
            first
        }
    };
    let Some(shape) = mlx_shapes_fit(&w_shape, &s_shape, params.bits, params.group_size) else {
        return;
    };
    let mut roles = vec![(w, "weight"), (s, "scales")];
    let encoding = if params.mode == "affine" {
        let Some(b) = biases else { return };
        if !matches!(s_dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32)
            || !matches!(params.bits, 2..=6 | 8)
        {
            return;
        }
        roles.push((b, "biases"));
        Encoding::MlxAffine {
            bits: params.bits,
            group_size: params.group_size,
            out_dtype: s_dtype,
        }
    } else {
        let mode = match (params.mode.as_str(), params.bits, params.group_size) {
            ("mxfp4", 4, 32) => MlxFloatMode::Mxfp4,
            ("mxfp8", 8, 32) => MlxFloatMode::Mxfp8,
            ("nvfp4", 4, 16) => MlxFloatMode::Nvfp4,
            _ => return,
        };
        if biases.is_some() || !matches!(s_dtype, Dtype::U8 | Dtype::F8_E8M0 | Dtype::F8_E4M3) {
            return;
        }
        Encoding::MlxFloat {
            mode,
            group_size: params.group_size,
            out_dtype: model_dtype(cx.cfg),
        }
    };
    cx.take(weight, shape, encoding, &roles);
}

// ---------------------------------------------------------------- gpt-oss MXFP4

fn group_gptoss(cx: &mut Ctx<'_>, prefix: &str) {
    let (Some(b), Some(s)) = (
        cx.idx(&format!("{prefix}_blocks")),
        cx.idx(&format!("{prefix}_scales")),
    ) else {
        return;
    };
    if cx.dtype(b) != Some(Dtype::U8) || cx.dtype(s) != Some(Dtype::U8) {
        return;
    }
    let (bs, ss) = (cx.get(b).shape.clone(), cx.get(s).shape.clone());
    if bs.len() < 2 || bs[bs.len() - 1] != 16 || bs[..bs.len() - 1] != ss[..] {
        cx.findings.push(Finding::error(
            "GPTOSS_SHAPE_MISMATCH",
            Some(prefix),
            format!("{prefix}_blocks is {bs:?} and {prefix}_scales is {ss:?}; MXFP4 needs blocks [..., G, 16] with scales [..., G]"),
            "re-export the experts; each 32-element block needs one scale byte",
        ));
        return;
    }
    let mut shape = ss[..ss.len() - 1].to_vec();
    shape.push(ss[ss.len() - 1] * 32);
    let encoding = Encoding::GptOssMxfp4 {
        out_dtype: model_dtype(cx.cfg),
    };
    cx.take(
        prefix.to_string(),
        shape,
        encoding,
        &[(b, "blocks"), (s, "scales")],
    );
}

// ---------------------------------------------------------------- GPTQ / AWQ

fn group_gptq_awq(cx: &mut Ctx<'_>, module: &str) {
    let find = |cx: &Ctx<'_>, s: &str| cx.idx(&format!("{module}.{s}"));
    let (Some(qw), Some(qz), Some(sc)) =
        (find(cx, "qweight"), find(cx, "qzeros"), find(cx, "scales"))
    else {
        return;
    };
    let g_idx = find(cx, "g_idx");
    let (qws, qzs, scs) = (
        cx.get(qw).shape.clone(),
        cx.get(qz).shape.clone(),
        cx.get(sc).shape.clone(),
    );
    if qws.len() != 2 || qzs.len() != 2 || scs.len() != 2 || cx.dtype(qw) != Some(Dtype::I32) {
        return;
    }
    let Some(out_dtype) = cx
        .dtype(sc)
        .filter(|d| matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32))
    else {
        return;
    };
    let method = cx.cfg.quant_method();
    let (groups, n) = (scs[0], scs[1]);
    let cfg_bits = cx
        .cfg
        .quant_u64("bits")
        .or_else(|| cx.cfg.quant_u64("w_bit"))
        .and_then(|b| u32::try_from(b).ok());
    let cfg_gs = cx
        .cfg
        .quant_u64("group_size")
        .or_else(|| cx.cfg.quant_u64("q_group_size"));
    let is_awq = match method.as_deref() {
        Some("awq") => true,
        Some("gptq") => false,
        _ => qws[1] != n,
    };
    let weight = format!("{module}.weight");
    // Packings decoded differently from the two implemented: refuse rather than decode
    // wrong values.
    let variant = if is_awq {
        cx.cfg
            .quant_str("version")
            .map(str::to_ascii_lowercase)
            .filter(|v| v != "gemm")
    } else {
        cx.cfg
            .quant_str("checkpoint_format")
            .map(str::to_ascii_lowercase)
            .filter(|v| v != "gptq")
    };
    if let Some(v) = variant {
        cx.findings.push(Finding::info(
            "QUANT_FORMAT_UNSUPPORTED",
            Some(&weight),
            format!("{module} is {} packed as {v:?}; quantdoc decodes only AutoGPTQ v1 (\"gptq\") and AutoAWQ GEMM packing, so it stays undecoded", if is_awq { "AWQ" } else { "GPTQ" }),
            "header checks still apply; dequantize with the library that wrote it",
        ));
        return;
    }
    if is_awq {
        let bits = cfg_bits.unwrap_or(4);
        let k = qws[0];
        if bits != 4
            || qws[1] * 8 != n
            || qzs[0] != groups
            || qzs[1] * 8 != n
            || groups == 0
            || k % groups != 0
        {
            return;
        }
        let group_size = k / groups;
        if cfg_gs.is_some_and(|g| g != group_size) && groups > 1 {
            return;
        }
        let encoding = Encoding::Awq {
            bits,
            group_size,
            out_dtype,
        };
        cx.take(
            weight,
            vec![n, k],
            encoding,
            &[(qw, "qweight"), (qz, "qzeros"), (sc, "scales")],
        );
    } else {
        if qws[1] != n || qzs[0] != groups {
            return;
        }
        let k = match g_idx {
            Some(g) => cx.get(g).nbytes / 4,
            None => match (cfg_bits, cfg_gs) {
                (Some(b), _) if b > 0 => qws[0] * 32 / b as u64,
                (_, Some(gs)) => groups * gs,
                _ => return,
            },
        };
        if k == 0 || !(qws[0] * 32).is_multiple_of(k) {
            return;
        }
        let bits = u32::try_from(qws[0] * 32 / k).unwrap_or(0);
        if !matches!(bits, 2 | 3 | 4 | 8)
            || cfg_bits.is_some_and(|b| b != bits)
            || qzs[1] * 32 != n * bits as u64
        {
            return;
        }
        let group_size = match cfg_gs {
            Some(g) if g != u64::MAX && g > 0 => g,
            _ => k.div_ceil(groups),
        };
        let act_order = cx.cfg.quant_bool("desc_act").unwrap_or(false);
        let mut roles = vec![(qw, "qweight"), (qz, "qzeros"), (sc, "scales")];
        if let Some(g) = g_idx {
            roles.push((g, "g_idx"));
        }
        let encoding = Encoding::Gptq {
            bits,
            group_size,
            act_order,
            out_dtype,
        };
        cx.take(weight, vec![n, k], encoding, &roles);
    }
}

// ---------------------------------------------------------------- FP8

fn group_fp8(cx: &mut Ctx<'_>, module: &str) {
    let weight = format!("{module}.weight");
    let Some(w) = cx.idx(&weight) else { return };
    let Some(fp8) = cx
        .dtype(w)
        .filter(|d| matches!(d, Dtype::F8_E4M3 | Dtype::F8_E5M2))
    else {
        return;
    };
    let w_shape = cx.get(w).shape.clone();
    let out_dtype = model_dtype(cx.cfg);
    if let Some(s) = cx.idx(&format!("{module}.weight_scale_inv")) {
        let ss = cx.get(s).shape.clone();
        if w_shape.len() != 2 || ss.len() != 2 || ss[0] == 0 || ss[1] == 0 {
            return;
        }
        let declared = cx
            .cfg
            .quant
            .as_ref()
            .and_then(|q| q.get("weight_block_size"))
            .and_then(|v| v.as_array())
            .and_then(|a| Some([a.first()?.as_u64()?, a.get(1)?.as_u64()?]));
        // Without a declared block size: DeepSeek's 128×128 if it tiles the weight, else
        // an exact division; anything else is reported rather than guessed.
        let block = declared.unwrap_or_else(|| {
            if w_shape[0].div_ceil(128) == ss[0] && w_shape[1].div_ceil(128) == ss[1] {
                [128, 128]
            } else if w_shape[0].is_multiple_of(ss[0]) && w_shape[1].is_multiple_of(ss[1]) {
                [w_shape[0] / ss[0], w_shape[1] / ss[1]]
            } else {
                [0, 0]
            }
        });
        if block[0] == 0
            || block[1] == 0
            || w_shape[0].div_ceil(block[0]) != ss[0]
            || w_shape[1].div_ceil(block[1]) != ss[1]
        {
            cx.findings.push(Finding::error(
                "FP8_SCALE_MISMATCH",
                Some(&weight),
                format!(
                    "{weight} is {w_shape:?} but {module}.weight_scale_inv is {ss:?}, which does not tile it in {}",
                    if block[0] == 0 { "equal blocks (nor 128×128)".to_string() } else { format!("the declared {}×{} blocks", block[0], block[1]) }
                ),
                "the scales belong to a different weight or block size; re-export the checkpoint",
            ));
            return;
        }
        let encoding = Encoding::Fp8 {
            fp8,
            scale: Fp8Scale::Block { block },
            out_dtype,
        };
        cx.take(
            weight,
            w_shape,
            encoding,
            &[(w, "weight"), (s, "weight_scale_inv")],
        );
    } else if let Some(s) = cx.idx(&format!("{module}.weight_scale")) {
        let n = cx.get(s).shape.iter().product::<u64>();
        let scale = if n == 1 {
            Fp8Scale::PerTensor
        } else if w_shape.first() == Some(&n) {
            Fp8Scale::PerChannel
        } else {
            cx.findings.push(Finding::error(
                "FP8_SCALE_MISMATCH",
                Some(&weight),
                format!("{weight} is {w_shape:?} but {module}.weight_scale has {n} values (1 or one per row expected)"),
                "the scale belongs to a different weight; re-export the checkpoint",
            ));
            return;
        };
        let encoding = Encoding::Fp8 {
            fp8,
            scale,
            out_dtype,
        };
        cx.take(
            weight,
            w_shape,
            encoding,
            &[(w, "weight"), (s, "weight_scale")],
        );
    }
}
