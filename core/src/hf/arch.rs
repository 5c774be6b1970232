//! The tensors a Llama-family config.json implies (llama, mistral, qwen2, qwen3, gemma,
//! gemma2, gemma3 text, phi3), with their logical shapes.

use crate::hf::config::HfConfig;

pub const FAMILY: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "phi3",
];

/// One tensor the architecture needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub shape: Vec<u64>,
}

/// Dimensions read from config.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dims {
    pub model_type: String,
    pub layers: u64,
    pub hidden: u64,
    pub intermediate: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub vocab: u64,
    pub tied: bool,
}

impl Dims {
    /// None when the config is not of the family or lacks a dimension.
    pub fn from_config(cfg: &HfConfig) -> Option<Dims> {
        let model_type = cfg.model_type()?.to_string();
        if !FAMILY.contains(&model_type.as_str()) {
            return None;
        }
        let hidden = cfg.u64("hidden_size")?;
        let heads = cfg.u64("num_attention_heads")?;
        if heads == 0 || hidden == 0 {
            return None;
        }
        // transformers' defaults when a key is absent: Gemma ties embeddings, the others
        // (LlamaConfig, MistralConfig, Qwen2Config, Phi3Config...) do not.
        let tied_default = model_type.starts_with("gemma");
        // Absurd sizes (a corrupt or hostile config) are not expanded into tensor lists.
        let sane = |v: u64| v <= 1 << 24;
        let (layers, intermediate, vocab) = (
            cfg.u64("num_hidden_layers")?,
            cfg.u64("intermediate_size")?,
            cfg.u64("vocab_size")?,
        );
        let kv_heads = cfg.u64("num_key_value_heads").unwrap_or(heads);
        let head_dim = cfg.u64("head_dim").unwrap_or(hidden / heads);
        if layers > 4096
            || ![hidden, heads, intermediate, vocab, kv_heads, head_dim]
                .into_iter()
                .all(sane)
        {
            return None;
        }
        Some(Dims {
            layers,
            intermediate,
            kv_heads,
            head_dim,
            vocab,
            tied: cfg
                .config
                .get("tie_word_embeddings")
                .and_then(|v| v.as_bool())
                .unwrap_or(tied_default),
            hidden,
            heads,
            model_type,
        })
    }

    /// Every tensor the config implies, in checkpoint order.
    pub fn expected(&self) -> Vec<Expected> {
        let mut v = Vec::new();
        let mut add = |name: String, shape: Vec<u64>| v.push(Expected { name, shape });
        let (h, q, kv, ffn) = (
            self.hidden,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
            self.intermediate,
        );
        add("model.embed_tokens.weight".into(), vec![self.vocab, h]);
        let mt = self.model_type.as_str();
        for i in 0..self.layers {
            let l = format!("model.layers.{i}");
            if mt == "phi3" {
                add(
                    format!("{l}.self_attn.qkv_proj.weight"),
                    vec![q + 2 * kv, h],
                );
                add(format!("{l}.mlp.gate_up_proj.weight"), vec![2 * ffn, h]);
            } else {
                add(format!("{l}.self_attn.q_proj.weight"), vec![q, h]);
                add(format!("{l}.self_attn.k_proj.weight"), vec![kv, h]);
                add(format!("{l}.self_attn.v_proj.weight"), vec![kv, h]);
                add(format!("{l}.mlp.gate_proj.weight"), vec![ffn, h]);
                add(format!("{l}.mlp.up_proj.weight"), vec![ffn, h]);
            }
            add(format!("{l}.self_attn.o_proj.weight"), vec![h, q]);
            add(format!("{l}.mlp.down_proj.weight"), vec![h, ffn]);
            add(format!("{l}.input_layernorm.weight"), vec![h]);
            add(format!("{l}.post_attention_layernorm.weight"), vec![h]);
            if mt == "qwen2" {
                add(format!("{l}.self_attn.q_proj.bias"), vec![q]);
                add(format!("{l}.self_attn.k_proj.bias"), vec![kv]);
                add(format!("{l}.self_attn.v_proj.bias"), vec![kv]);
            }
            if matches!(mt, "gemma2" | "gemma3" | "gemma3_text") {
                add(format!("{l}.pre_feedforward_layernorm.weight"), vec![h]);
                add(format!("{l}.post_feedforward_layernorm.weight"), vec![h]);
            }
            if matches!(mt, "qwen3" | "gemma3" | "gemma3_text") {
                add(format!("{l}.self_attn.q_norm.weight"), vec![self.head_dim]);
                add(format!("{l}.self_attn.k_norm.weight"), vec![self.head_dim]);
            }
        }
        add("model.norm.weight".into(), vec![h]);
        if !self.tied {
            add("lm_head.weight".into(), vec![self.vocab, h]);
        }
        v
    }
}

/// Layer index of a `model.layers.<i>.` name.
pub fn layer_of(name: &str) -> Option<u64> {
    name.strip_prefix("model.layers.")?
        .split('.')
        .next()?
        .parse()
        .ok()
}
