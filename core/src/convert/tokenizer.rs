//! tokenizer.json → `tokenizer.ggml.*`, as gguf-py's vocab classes do it:
//! byte-level BPE becomes `gpt2` (tokens, token types, merges), SentencePiece-style BPE
//! with byte fallback becomes `llama` (tokens, scores of -1000 as `LlamaHfVocab` writes,
//! token types with BYTE for `<0xNN>`).

use serde_json::Value;

use crate::meta::{GgufValueType as T, MetaEntry, MetaValue, NumArray};
use crate::repair::RepairError;
use crate::write::gguf::{entry, entry_bool, entry_str, entry_u32};

// llama.cpp token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// Most tokens a vocabulary may declare (the largest real vocabularies hold ~260k).
const MAX_VOCAB: u64 = 1 << 22;

fn refused(m: impl Into<String>) -> RepairError {
    RepairError::Refused(m.into())
}

fn is_byte_token(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 6
        && t.starts_with("<0x")
        && t.ends_with('>')
        && b[3..5].iter().all(u8::is_ascii_hexdigit)
}

/// A special token's text from tokenizer_config.json (a string or `{"content": ...}`).
fn token_text(v: &Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
}

pub(super) fn entries(
    arch: &str,
    tok: &Value,
    tok_config: Option<&Value>,
    config: &Value,
    vocab_size: Option<u64>,
) -> Result<Vec<MetaEntry>, RepairError> {
    let model = tok
        .get("model")
        .ok_or_else(|| refused("tokenizer.json has no \"model\""))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "BPE" {
        return Err(refused(format!(
            "tokenizer.json model type {kind:?}: convert handles BPE tokenizers (byte-level or SentencePiece-style)"
        )));
    }
    let spm = model.get("byte_fallback").and_then(Value::as_bool) == Some(true)
        && tok.pointer("/decoder/type").and_then(Value::as_str) == Some("Sequence");
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| refused("tokenizer.json model has no vocab"))?;
    let mut added: Vec<(u64, String, bool)> = Vec::new();
    for a in tok
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(id), Some(content)) = (
            a.get("id").and_then(Value::as_u64),
            a.get("content").and_then(Value::as_str),
        ) {
            let special = a.get("special").and_then(Value::as_bool).unwrap_or(false);
            added.push((id, content.to_string(), special));
        }
    }
    let max_id = vocab
        .values()
        .filter_map(Value::as_u64)
        .chain(added.iter().map(|a| a.0))
        .max()
        .ok_or_else(|| refused("tokenizer.json vocabulary is empty"))?;
    let n = vocab_size.unwrap_or(0).max(max_id + 1);
    if n > MAX_VOCAB {
        return Err(refused(format!(
            "vocabulary of {n} tokens is implausibly large"
        )));
    }
    let n = n as usize;
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut types = vec![NORMAL; n];
    for (t, id) in vocab {
        if let Some(id) = id.as_u64() {
            tokens[id as usize] = Some(t.clone());
            if spm && is_byte_token(t) {
                types[id as usize] = BYTE;
            }
        }
    }
    for (id, content, special) in &added {
        let i = *id as usize;
        tokens[i] = Some(content.clone());
        types[i] = if *special { CONTROL } else { USER_DEFINED };
    }
    let mut token_list = Vec::with_capacity(n);
    for (i, t) in tokens.into_iter().enumerate() {
        match t {
            Some(t) => token_list.push(MetaValue::String(t)),
            None => {
                token_list.push(MetaValue::String(format!("[PAD{i}]")));
                types[i] = UNUSED;
            }
        }
    }
    let id_of = |text: &str| -> Option<u64> {
        added
            .iter()
            .find(|a| a.1 == text)
            .map(|a| a.0)
            .or_else(|| vocab.get(text).and_then(Value::as_u64))
    };
    let mut out = vec![entry_str(
        "tokenizer.ggml.model",
        if spm { "llama" } else { "gpt2" },
    )];
    if !spm {
        let pre = match arch {
            "qwen2" => "qwen2",
            "llama" => "llama-bpe",
            _ => "default",
        };
        out.push(entry_str("tokenizer.ggml.pre", pre));
    }
    out.push(entry(
        "tokenizer.ggml.tokens",
        T::Array,
        MetaValue::Array(token_list),
    ));
    if spm {
        out.push(entry(
            "tokenizer.ggml.scores",
            T::Array,
            MetaValue::Numbers(NumArray::F32(vec![-1000.0; n])),
        ));
    }
    out.push(entry(
        "tokenizer.ggml.token_type",
        T::Array,
        MetaValue::Numbers(NumArray::I32(types)),
    ));
    if !spm {
        let merges: Vec<MetaValue> = model
            .get("merges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                Value::String(s) => Some(s.clone()),
                Value::Array(p) if p.len() == 2 => {
                    Some(format!("{} {}", p[0].as_str()?, p[1].as_str()?))
                }
                _ => None,
            })
            .map(MetaValue::String)
            .collect();
        out.push(entry(
            "tokenizer.ggml.merges",
            T::Array,
            MetaValue::Array(merges),
        ));
    }
    for (key, name) in [
        ("bos_token", "bos"),
        ("eos_token", "eos"),
        ("unk_token", "unknown"),
        ("pad_token", "padding"),
    ] {
        let from_tok = tok_config
            .and_then(|c| c.get(key))
            .and_then(token_text)
            .and_then(id_of);
        let from_cfg = config.get(format!("{key}_id")).and_then(Value::as_u64);
        if let Some(id) = from_tok.or(from_cfg) {
            if id < n as u64 {
                out.push(entry_u32(
                    &format!("tokenizer.ggml.{name}_token_id"),
                    id as u32,
                ));
            }
        }
    }
    for key in ["add_bos_token", "add_eos_token"] {
        if let Some(b) = tok_config.and_then(|c| c.get(key)).and_then(Value::as_bool) {
            out.push(entry_bool(&format!("tokenizer.ggml.{key}"), b));
        }
    }
    Ok(out)
}
