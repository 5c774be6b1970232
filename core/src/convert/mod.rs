//! Hugging Face checkpoint → GGUF (`quantdoc convert`) for llama, mistral, qwen2 and gemma3
//! (text) checkpoints, following llama.cpp's convert_hf_to_gguf.py conventions: its tensor
//! names and metadata keys, the Q/K row permutation of llama/mistral, `1 + w` for Gemma norm
//! weights, F32 norms and 1-D tensors, and the vocabulary from a SentencePiece
//! `tokenizer.model` or tokenizer.json.
//!
//! The plan is a `GgufRewrite`, so writing, streaming and verification are the repair
//! engine's.

pub mod sentencepiece;
mod special_vocab;
mod spm_vocab;
mod tokenizer;

pub use tokenizer::TokenizerFiles;

use serde_json::Value;

use crate::ggml::types::GgmlType;
use crate::meta::MetaEntry;
use crate::model::Model;
use crate::repair::requant::is_norm;
use crate::repair::{Fix, GgufRewrite, OutTensor, RepairError, TensorSource, Transform};
use crate::write::gguf::{entry_f32, entry_str, entry_u32, TensorEntry};

/// The side files of a checkpoint.
pub struct Side<'a> {
    /// `config.json`.
    pub config: &'a Value,
    /// The tokenizer files.
    pub tokenizer: TokenizerFiles<'a>,
    /// `general.name`.
    pub name: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    Llama,
    Qwen2,
    Gemma3,
}

impl Arch {
    fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// Output types `--outtype` accepts.
pub const OUTTYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

fn refused(m: impl Into<String>) -> RepairError {
    RepairError::Refused(m.into())
}

/// A config value, looked up in `text_config` first (multimodal Gemma 3 nests it there).
fn cfg<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config
        .get("text_config")
        .and_then(|t| t.get(key))
        .or_else(|| config.get(key))
}

fn cfg_u64(config: &Value, key: &str) -> Option<u64> {
    cfg(config, key).and_then(Value::as_u64)
}

fn cfg_f64(config: &Value, key: &str) -> Option<f64> {
    cfg(config, key).and_then(Value::as_f64)
}

fn arch_of(config: &Value) -> Result<Arch, RepairError> {
    let mt = cfg(config, "model_type")
        .and_then(Value::as_str)
        .or_else(|| config.get("model_type").and_then(Value::as_str))
        .unwrap_or("");
    Ok(match mt {
        "llama" | "mistral" => Arch::Llama,
        "qwen2" => Arch::Qwen2,
        "gemma3" | "gemma3_text" => Arch::Gemma3,
        other => {
            return Err(refused(format!(
            "config.json model_type {other:?}: convert supports llama, mistral, qwen2 and gemma3"
        )))
        }
    })
}

/// HF tensor name → GGUF name; None for tensors llama.cpp does not use (rotary caches,
/// vision towers).
fn gguf_name(arch: Arch, hf: &str) -> Result<Option<String>, RepairError> {
    let mut n = hf.to_string();
    for (from, to) in [
        ("model.language_model.", "model."),
        ("language_model.model.", "model."),
        ("language_model.lm_head.", "lm_head."),
    ] {
        if let Some(rest) = n.strip_prefix(from) {
            n = format!("{to}{rest}");
        }
    }
    if n.contains("vision_tower")
        || n.contains("multi_modal_projector")
        || n.ends_with("rotary_emb.inv_freq")
    {
        return Ok(None);
    }
    let fixed = match n.as_str() {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Ok(Some(f.to_string()));
    }
    let unknown = || {
        refused(format!(
            "{hf}: no GGUF name for this tensor in {}",
            arch.name()
        ))
    };
    let rest = n.strip_prefix("model.layers.").ok_or_else(unknown)?;
    let (idx, part) = rest.split_once('.').ok_or_else(unknown)?;
    let idx: u64 = idx.parse().map_err(|_| unknown())?;
    let (module, suffix) = part.rsplit_once('.').ok_or_else(unknown)?;
    let gemma = arch == Arch::Gemma3;
    let g = match module {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" if gemma => "ffn_norm",
        "post_feedforward_layernorm" if gemma => "post_ffw_norm",
        _ => return Err(unknown()),
    };
    Ok(Some(format!("blk.{idx}.{g}.{suffix}")))
}

fn file_type(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q4_K => 14,
        GgmlType::Q6_K => 18,
        _ => 32, // BF16
    }
}

fn metadata(arch: Arch, side: &Side<'_>, outtype: GgmlType) -> Result<Vec<MetaEntry>, RepairError> {
    let c = side.config;
    let a = arch.name();
    let need =
        |k: &str| cfg_u64(c, k).ok_or_else(|| refused(format!("config.json has no integer {k}")));
    let hidden = need("hidden_size")?;
    let heads = need("num_attention_heads")?;
    let heads_kv = cfg_u64(c, "num_key_value_heads").unwrap_or(heads);
    let layers = need("num_hidden_layers")?;
    let head_dim = cfg_u64(c, "head_dim").unwrap_or(hidden / heads.max(1));
    let u32_of = |k: &str, v: u64| -> Result<MetaEntry, RepairError> {
        let v = u32::try_from(v).map_err(|_| refused(format!("{k} = {v} does not fit UINT32")))?;
        Ok(entry_u32(k, v))
    };
    let mut m = vec![
        entry_str("general.architecture", a),
        entry_str("general.name", side.name),
        u32_of(&format!("{a}.block_count"), layers)?,
        u32_of(
            &format!("{a}.context_length"),
            need("max_position_embeddings")?,
        )?,
        u32_of(&format!("{a}.embedding_length"), hidden)?,
        u32_of(
            &format!("{a}.feed_forward_length"),
            need("intermediate_size")?,
        )?,
        u32_of(&format!("{a}.attention.head_count"), heads)?,
        u32_of(&format!("{a}.attention.head_count_kv"), heads_kv)?,
        entry_f32(
            &format!("{a}.attention.layer_norm_rms_epsilon"),
            cfg_f64(c, "rms_norm_eps").unwrap_or(1e-6) as f32,
        ),
        u32_of(&format!("{a}.rope.dimension_count"), head_dim)?,
    ];
    // LlamaModel (llama, mistral) also records the vocabulary size.
    if arch == Arch::Llama {
        if let Some(v) = cfg_u64(c, "vocab_size") {
            m.push(u32_of(&format!("{a}.vocab_size"), v)?);
        }
    }
    let theta = cfg_f64(c, "rope_theta").or_else(|| {
        cfg(c, "rope_parameters")
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
    });
    if let Some(t) = theta {
        m.push(entry_f32(&format!("{a}.rope.freq_base"), t as f32));
    }
    if cfg_u64(c, "head_dim").is_some() || arch == Arch::Gemma3 {
        m.push(u32_of(&format!("{a}.attention.key_length"), head_dim)?);
        m.push(u32_of(&format!("{a}.attention.value_length"), head_dim)?);
    }
    if arch == Arch::Gemma3 {
        if let Some(w) = cfg_u64(c, "sliding_window") {
            m.push(u32_of(&format!("{a}.attention.sliding_window"), w)?);
        }
    }
    m.push(entry_u32("general.file_type", file_type(outtype)));
    if outtype.is_quantized() {
        m.push(entry_u32("general.quantization_version", 2));
    }
    Ok(m)
}

/// Plan the conversion. `keep_float` tensors (by HF name) stay F16 (F32/BF16 when that is
/// the output type).
pub fn plan_convert(
    model: &Model,
    side: &Side<'_>,
    outtype: GgmlType,
    keep_float: &dyn Fn(&str) -> bool,
) -> Result<GgufRewrite, RepairError> {
    if !OUTTYPES.contains(&outtype) {
        return Err(refused(format!("--outtype {outtype} is not supported")));
    }
    let arch = arch_of(side.config)?;
    let mut metadata = metadata(arch, side, outtype)?;
    metadata.extend(tokenizer::entries(
        arch.name(),
        &side.tokenizer,
        side.config,
        cfg_u64(side.config, "vocab_size"),
    )?);
    let heads = cfg_u64(side.config, "num_attention_heads").unwrap_or(1);
    let heads_kv = cfg_u64(side.config, "num_key_value_heads").unwrap_or(heads);
    let keep_type = match outtype {
        GgmlType::F32 => GgmlType::F32,
        GgmlType::BF16 => GgmlType::BF16,
        _ => GgmlType::F16,
    };
    let mut rw = GgufRewrite {
        version: 3,
        metadata,
        tensors: Vec::new(),
        fixes: Vec::new(),
        remaining: Vec::new(),
        blocking: Vec::new(),
    };
    for (i, t) in model.tensors.iter().enumerate() {
        let Some(name) = gguf_name(arch, &t.name)? else {
            rw.fixes
                .push(Fix::new("", Some(&t.name), "skip (not used by llama.cpp)"));
            continue;
        };
        if crate::encoding::granule(t).is_err() {
            return Err(refused(format!(
                "{} ({}) cannot be decoded",
                t.name,
                t.encoding.label()
            )));
        }
        let transform = if arch == Arch::Llama && name.ends_with("attn_q.weight") {
            Transform::PermuteQk { n_head: heads }
        } else if arch == Arch::Llama && name.ends_with("attn_k.weight") {
            Transform::PermuteQk { n_head: heads_kv }
        } else if arch == Arch::Gemma3 && name.ends_with("norm.weight") {
            Transform::AddOne
        } else {
            Transform::None
        };
        let row = t.row_len();
        let mut ty = if t.shape.len() <= 1 || is_norm(&name) {
            GgmlType::F32
        } else if keep_float(&t.name) {
            keep_type
        } else {
            outtype
        };
        if row % ty.block_size() != 0 {
            let fallback = if row % 32 == 0 {
                GgmlType::Q8_0
            } else {
                GgmlType::F16
            };
            rw.fixes.push(Fix::new(
                "",
                Some(&name),
                format!("rows of {row} are not whole {ty} blocks: using {fallback}"),
            ));
            ty = fallback;
        }
        rw.tensors.push(OutTensor {
            input: i,
            entry: TensorEntry::new(name, &t.shape, ty),
            source: TensorSource::Convert,
            transform,
        });
    }
    if !rw.tensors.iter().any(|t| t.entry.name == "output.weight") {
        rw.fixes.push(Fix::new(
            "",
            None,
            "no lm_head: output shares token_embd (tied embeddings)",
        ));
    }
    Ok(rw)
}

#[cfg(test)]
mod tests;
