//! The vocabulary as convert_hf_to_gguf.py writes it into `tokenizer.ggml.*`:
//! a SentencePiece `tokenizer.model` becomes `llama` (its pieces, scores and types, see
//! `spm_vocab`); otherwise tokenizer.json: byte-level BPE becomes `gpt2` (tokens, token
//! types, merges), SentencePiece-style BPE with byte fallback becomes `llama` (tokens,
//! scores of -1000 as `LlamaHfVocab` writes, token types with BYTE for `<0xNN>`). Special
//! token ids, `add_*_token` flags and the chat template come from `SpecialVocab`.

use serde_json::Value;

use super::sentencepiece::parse_model;
use super::special_vocab::SpecialVocab;
use super::{cfg_u64, refused, spm_vocab};
use crate::meta::{GgufValueType as T, MetaEntry, MetaValue, NumArray, StrArray};
use crate::repair::RepairError;
use crate::write::gguf::{entry, entry_bool, entry_str};

// llama.cpp token types.
pub(super) const NORMAL: i32 = 1;
pub(super) const CONTROL: i32 = 3;
pub(super) const USER_DEFINED: i32 = 4;
pub(super) const UNUSED: i32 = 5;
pub(super) const BYTE: i32 = 6;

/// Most tokens a vocabulary may declare (the largest real vocabularies hold ~260k).
pub(super) const MAX_VOCAB: u64 = 1 << 22;

/// The tokenizer side files of a checkpoint.
#[derive(Default)]
pub struct TokenizerFiles<'a> {
    /// `tokenizer.json`.
    pub tokenizer_json: Option<&'a Value>,
    /// `tokenizer_config.json`.
    pub tokenizer_config: Option<&'a Value>,
    /// The bytes of `tokenizer.model` (a SentencePiece model), when the checkpoint has one.
    pub sentencepiece: Option<&'a [u8]>,
    /// `added_tokens.json`, when the checkpoint has one.
    pub added_tokens: Option<&'a Value>,
    /// A chat template from `chat_template.jinja`, when the checkpoint has one (used when
    /// tokenizer_config.json has none, as gguf-py does).
    pub chat_template: Option<&'a str>,
}

fn is_byte_token(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 6
        && t.starts_with("<0x")
        && t.ends_with('>')
        && b[3..5].iter().all(u8::is_ascii_hexdigit)
}

fn strings(key: &str, items: Vec<String>) -> MetaEntry {
    entry(key, T::Array, MetaValue::strings_from(&items))
}

/// Every `tokenizer.*` entry for `arch` (llama, qwen2, gemma3). A `tokenizer.model` is
/// preferred to tokenizer.json, as llama.cpp prefers it for these architectures.
/// `vocab_size` is config.json's; the SentencePiece path prefers
/// `vocab_size_per_layer_input` to it, as `_create_vocab_sentencepiece` does.
pub(super) fn entries(
    arch: &str,
    files: &TokenizerFiles<'_>,
    config: &Value,
    vocab_size: Option<u64>,
) -> Result<Vec<MetaEntry>, RepairError> {
    let mut out = Vec::new();
    // LlamaModel.set_vocab reads add_prefix_space before choosing a vocabulary.
    if arch == "llama" {
        if let Some(b) = files
            .tokenizer_config
            .and_then(|c| c.get("add_prefix_space"))
            .and_then(Value::as_bool)
        {
            out.push(entry_bool("tokenizer.ggml.add_space_prefix", b));
        }
    }
    let n_vocab = if let Some(bytes) = files.sentencepiece {
        let pieces = parse_model(bytes).map_err(|e| refused(e.to_string()))?;
        let v = spm_vocab::build(
            pieces,
            cfg_u64(config, "vocab_size_per_layer_input").or(vocab_size),
            files.added_tokens,
            files.tokenizer_config,
        )?;
        let n = v.tokens.len();
        out.push(entry_str("tokenizer.ggml.model", "llama"));
        out.push(entry_str("tokenizer.ggml.pre", "default"));
        out.push(strings("tokenizer.ggml.tokens", v.tokens));
        out.push(entry(
            "tokenizer.ggml.scores",
            T::Array,
            MetaValue::Numbers(NumArray::F32(v.scores)),
        ));
        out.push(entry(
            "tokenizer.ggml.token_type",
            T::Array,
            MetaValue::Numbers(NumArray::I32(v.types)),
        ));
        n
    } else {
        let tok = files.tokenizer_json.ok_or_else(|| {
            refused(
                "neither tokenizer.model nor tokenizer.json: convert needs one for the vocabulary",
            )
        })?;
        json_vocab(arch, tok, vocab_size, &mut out)?
    };
    let special = SpecialVocab::load(
        files.tokenizer_json,
        files.tokenizer_config,
        config,
        files.chat_template,
        n_vocab as u64,
    )?;
    out.extend(special.entries());
    // Gemma3Model.set_vocab turns the space prefix off after a SentencePiece vocabulary.
    if arch == "gemma3" && files.sentencepiece.is_some() {
        out.push(entry_bool("tokenizer.ggml.add_space_prefix", false));
    }
    Ok(out)
}

/// A merge as gguf-py writes it: the pair joined by a space, spaces inside a part encoded
/// as U+0120 (`Ġ`), which is how the old string format spelled them.
fn merge_string(a: &str, b: &str) -> String {
    let enc = |s: &str| s.replace(' ', "\u{120}");
    format!("{} {}", enc(a), enc(b))
}

/// The vocabulary of tokenizer.json; returns its size.
fn json_vocab(
    arch: &str,
    tok: &Value,
    vocab_size: Option<u64>,
    out: &mut Vec<MetaEntry>,
) -> Result<usize, RepairError> {
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
    let mut token_list = StrArray::with_capacity(n, 0);
    for (i, t) in tokens.into_iter().enumerate() {
        match t {
            Some(t) => token_list.push(&t),
            None => {
                token_list.push(&format!("[PAD{i}]"));
                types[i] = UNUSED;
            }
        }
    }
    out.push(entry_str(
        "tokenizer.ggml.model",
        if spm { "llama" } else { "gpt2" },
    ));
    let pre = match arch {
        _ if spm => "default",
        "qwen2" => "qwen2",
        "llama" => "llama-bpe",
        _ => "default",
    };
    out.push(entry_str("tokenizer.ggml.pre", pre));
    out.push(entry(
        "tokenizer.ggml.tokens",
        T::Array,
        MetaValue::Strings(token_list),
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
        let merges: Vec<String> = model
            .get("merges")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                Value::String(s) => Some(s.clone()),
                Value::Array(p) if p.len() == 2 => {
                    Some(merge_string(p[0].as_str()?, p[1].as_str()?))
                }
                _ => None,
            })
            .collect();
        out.push(strings("tokenizer.ggml.merges", merges));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys_and_values(e: &[MetaEntry]) -> Vec<(String, MetaValue)> {
        e.iter().map(|e| (e.key.clone(), e.value.clone())).collect()
    }

    #[test]
    fn merges_with_spaces_are_written_with_g_dot() {
        let tok = json!({"model": {"type": "BPE", "vocab": {"a b": 0, "c": 1},
            "merges": [["a b", "c"], "a c"]}});
        let files = TokenizerFiles {
            tokenizer_json: Some(&tok),
            tokenizer_config: None,
            sentencepiece: None,
            added_tokens: None,
            chat_template: None,
        };
        let out = keys_and_values(&entries("qwen2", &files, &json!({}), None).unwrap());
        let merges = &out
            .iter()
            .find(|(k, _)| k == "tokenizer.ggml.merges")
            .unwrap()
            .1;
        assert_eq!(merges.strings().unwrap().to_vec(), ["a\u{120}b c", "a c"]);
        assert_eq!(
            merges,
            &MetaValue::Array(vec![
                MetaValue::String("a\u{120}b c".into()),
                MetaValue::String("a c".into())
            ])
        );
    }

    #[test]
    fn gemma3_sentencepiece_turns_the_space_prefix_off_and_llama_reads_it() {
        let spm = crate::convert::sentencepiece::tests::model_bytes(&[("<unk>", 0.0, 2)]);
        let tc = json!({"add_prefix_space": false});
        let files = TokenizerFiles {
            tokenizer_json: None,
            tokenizer_config: Some(&tc),
            sentencepiece: Some(&spm),
            added_tokens: None,
            chat_template: None,
        };
        let prefix = |arch: &str| {
            keys_and_values(&entries(arch, &files, &json!({}), None).unwrap())
                .into_iter()
                .filter(|(k, _)| k == "tokenizer.ggml.add_space_prefix")
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        };
        assert_eq!(prefix("gemma3"), vec![MetaValue::Bool(false)]);
        assert_eq!(prefix("llama"), vec![MetaValue::Bool(false)]);
        assert_eq!(prefix("qwen2"), Vec::<MetaValue>::new());
        let none = TokenizerFiles {
            sentencepiece: None,
            ..files
        };
        assert!(entries("llama", &none, &json!({}), None).is_err());
    }
}
