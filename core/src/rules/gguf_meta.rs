//! GGUF metadata consistency: the keys llama.cpp needs exist, have the types it reads them
//! with, and agree with the tensors.

use std::collections::BTreeSet;

use crate::finding::Finding;
use crate::meta::{GgufValueType as T, MetaEntry};
use crate::model::{Format, Model};

/// (key suffix or full key, accepted scalar type, accepted array element type).
/// `{arch}.` keys are matched on their suffix. llama.cpp's loader checks these types
/// strictly ("key has wrong type").
const KNOWN_TYPES: &[(&str, Option<T>, Option<T>)] = &[
    ("general.architecture", Some(T::String), None),
    ("general.name", Some(T::String), None),
    ("general.alignment", Some(T::Uint32), None),
    ("general.file_type", Some(T::Uint32), None),
    ("general.quantization_version", Some(T::Uint32), None),
    (".block_count", Some(T::Uint32), None),
    (".context_length", Some(T::Uint32), None),
    (".embedding_length", Some(T::Uint32), None),
    (".feed_forward_length", Some(T::Uint32), Some(T::Uint32)),
    (".attention.head_count", Some(T::Uint32), Some(T::Uint32)),
    (".attention.head_count_kv", Some(T::Uint32), Some(T::Uint32)),
    (".attention.key_length", Some(T::Uint32), None),
    (".attention.value_length", Some(T::Uint32), None),
    (".attention.layer_norm_rms_epsilon", Some(T::Float32), None),
    (".attention.layer_norm_epsilon", Some(T::Float32), None),
    (".rope.freq_base", Some(T::Float32), None),
    (".rope.dimension_count", Some(T::Uint32), None),
    ("tokenizer.ggml.model", Some(T::String), None),
    ("tokenizer.ggml.pre", Some(T::String), None),
    ("tokenizer.ggml.tokens", None, Some(T::String)),
    ("tokenizer.ggml.scores", None, Some(T::Float32)),
    ("tokenizer.ggml.token_type", None, Some(T::Int32)),
    ("tokenizer.ggml.merges", None, Some(T::String)),
    ("tokenizer.ggml.bos_token_id", Some(T::Uint32), None),
    ("tokenizer.ggml.eos_token_id", Some(T::Uint32), None),
    ("tokenizer.ggml.unknown_token_id", Some(T::Uint32), None),
    ("tokenizer.ggml.padding_token_id", Some(T::Uint32), None),
    ("tokenizer.chat_template", Some(T::String), None),
    ("split.no", Some(T::Uint16), None),
    ("split.count", Some(T::Uint16), None),
    ("split.tensors.count", Some(T::Int32), None),
];

pub fn check(model: &Model) -> Vec<Finding> {
    if model.format != Format::Gguf {
        return Vec::new();
    }
    let mut out = Vec::new();
    architecture(model, &mut out);
    types(model, &mut out);
    block_count(model, &mut out);
    tokenizer(model, &mut out);
    out
}

fn architecture(model: &Model, out: &mut Vec<Finding>) {
    if model
        .meta("general.architecture")
        .and_then(|v| v.as_str())
        .is_none()
    {
        out.push(Finding::error(
            "GGUF_NO_ARCHITECTURE",
            None,
            "general.architecture is missing (or not a string): nothing says which model this is",
            "llama.cpp refuses the file (\"key not found in model: general.architecture\"). Add it with `quantdoc meta IN -o OUT --set general.architecture=str:llama` (the right architecture name)",
        ));
    }
}

fn expected_type(key: &str, arch: Option<&str>) -> Option<(Option<T>, Option<T>)> {
    KNOWN_TYPES.iter().find_map(|(k, s, a)| {
        let hit = if let Some(suffix) = k.strip_prefix('.') {
            arch.is_some_and(|arch| {
                key.strip_prefix(arch).and_then(|r| r.strip_prefix('.')) == Some(suffix)
            })
        } else {
            key == *k
        };
        hit.then_some((*s, *a))
    })
}

fn type_name(e: &MetaEntry) -> String {
    match (e.value_type, e.array_type) {
        (Some(T::Array), Some(a)) => format!("ARRAY of {}", a.name()),
        (Some(t), _) => t.name().to_string(),
        _ => "?".to_string(),
    }
}

fn types(model: &Model, out: &mut Vec<Finding>) {
    let arch = model.architecture();
    for e in &model.metadata {
        let Some((scalar, array)) = expected_type(&e.key, arch) else {
            continue;
        };
        let ok = match e.value_type {
            Some(T::Array) => array.is_some() && e.array_type == array,
            t => scalar.is_some() && t == scalar,
        };
        if ok {
            continue;
        }
        let want = match (scalar, array) {
            (Some(s), Some(a)) => format!("{} or ARRAY of {}", s.name(), a.name()),
            (Some(s), None) => s.name().to_string(),
            (None, Some(a)) => format!("ARRAY of {}", a.name()),
            (None, None) => continue,
        };
        out.push(Finding::error(
            "GGUF_METADATA_TYPE",
            None,
            format!(
                "{} (offset {}) is {} but llama.cpp reads it as {want}",
                e.key,
                e.offset.unwrap_or(0),
                type_name(e)
            ),
            format!(
                "llama.cpp refuses the file (\"key {} has wrong type\"). Rewrite the key with the right type: `quantdoc meta IN -o OUT --set {}=<type>:<value>`",
                e.key, e.key
            ),
        ));
    }
}

/// `blk.N.` indices present in tensor names.
fn block_indices(model: &Model) -> BTreeSet<u64> {
    model
        .tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk."))
        .filter_map(|r| r.split('.').next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn block_count(model: &Model, out: &mut Vec<Finding>) {
    let Some(arch) = model.architecture() else {
        return;
    };
    let blocks = block_indices(model);
    let key = format!("{arch}.block_count");
    let declared = model.meta(&key).and_then(|v| v.as_u64());
    let (Some(&max), n) = (blocks.iter().next_back(), blocks.len() as u64) else {
        return;
    };
    match declared {
        None => out.push(Finding::error(
            "GGUF_METADATA_BLOCK_COUNT",
            None,
            format!("{key} is missing; the tensors have {n} blocks (blk.0 … blk.{max})"),
            format!(
                "llama.cpp refuses the file (\"key not found in model: {key}\"). `quantdoc repair FILE -o OUT` sets it to {n}"
            ),
        )),
        Some(d) if d != max + 1 || n != max + 1 => {
            let missing: Vec<String> = (0..=max.max(d.saturating_sub(1)))
                .filter(|i| !blocks.contains(i))
                .take(8)
                .map(|i| i.to_string())
                .collect();
            out.push(Finding::error(
                "GGUF_METADATA_BLOCK_COUNT",
                None,
                format!(
                    "{key} is {d} but the tensors have {n} blocks with indices up to {max}{}",
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; no tensors for blocks {}", missing.join(", "))
                    }
                ),
                if n == max + 1 {
                    format!(
                        "llama.cpp will look for blocks that do not exist, or ignore some (\"missing tensor 'blk.{}…'\" or \"wrong number of tensors\"). `quantdoc repair FILE -o OUT` sets {key} to {n}",
                        max + 1
                    )
                } else {
                    "layers are missing from the file: re-convert the model; metadata cannot fix missing weights".to_string()
                },
            ))
        }
        _ => {}
    }
}

fn tokenizer(model: &Model, out: &mut Vec<Finding>) {
    let tokens = model
        .meta("tokenizer.ggml.tokens")
        .and_then(|v| v.array_len());
    let Some(n_tokens) = tokens else { return };
    for key in ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
        if let Some(n) = model.meta(key).and_then(|v| v.array_len()) {
            if n != n_tokens {
                out.push(Finding::error(
                    "GGUF_TOKENIZER_LENGTHS",
                    None,
                    format!("{key} has {n} entries but tokenizer.ggml.tokens has {n_tokens}"),
                    "llama.cpp indexes these arrays together; re-convert the tokenizer",
                ));
            }
        }
    }
    for key in [
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id",
    ] {
        if let Some(id) = model.meta(key).and_then(|v| v.as_u64()) {
            if id >= n_tokens as u64 {
                out.push(Finding::error(
                    "GGUF_TOKEN_ID_OUT_OF_RANGE",
                    None,
                    format!("{key} is {id} but the vocabulary has only {n_tokens} tokens"),
                    format!("set {key} to a valid token id with `quantdoc meta IN -o OUT --set {key}=u32:<id>`"),
                ));
            }
        }
    }
    if let Some(t) = model.tensor("token_embd.weight") {
        if let Some(&rows) = t.shape.first() {
            if t.shape.len() == 2 && rows != n_tokens as u64 {
                out.push(Finding::error(
                    "GGUF_TOKEN_COUNT_MISMATCH",
                    Some("token_embd.weight"),
                    format!(
                        "token_embd.weight has {rows} rows (shape {:?}) but tokenizer.ggml.tokens has {n_tokens} tokens",
                        t.shape
                    ),
                    format!(
                        "llama.cpp refuses the file (\"tensor 'token_embd.weight' has wrong shape; expected {}, {n_tokens}, got {}, {rows}\"). The tokenizer and the weights come from different models or the vocabulary was padded; re-convert with the matching tokenizer",
                        t.shape.get(1).copied().unwrap_or(0),
                        t.shape.get(1).copied().unwrap_or(0)
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::rawbuilder::{RawGgufBuilder, RawValue};
    use crate::load::{load, Input};
    use crate::source::SliceSource;

    fn run(b: RawGgufBuilder) -> Vec<Finding> {
        let src = SliceSource::new(b.build());
        let m = load(&[Input {
            path: "m.gguf".into(),
            source: &src,
        }])
        .unwrap();
        check(&m)
    }

    fn tokens(n: usize) -> RawValue {
        RawValue::Array(
            T::String,
            (0..n).map(|i| RawValue::Str(format!("t{i}"))).collect(),
        )
    }

    fn good() -> RawGgufBuilder {
        RawGgufBuilder::new()
            .kv("general.architecture", RawValue::Str("llama".into()))
            .kv("llama.block_count", RawValue::U32(2))
            .kv("llama.context_length", RawValue::U32(128))
            .kv("tokenizer.ggml.tokens", tokens(4))
            .kv(
                "tokenizer.ggml.scores",
                RawValue::Array(T::Float32, (0..4).map(|_| RawValue::F32(0.0)).collect()),
            )
            .kv("tokenizer.ggml.eos_token_id", RawValue::U32(3))
            .tensor("token_embd.weight", &[4, 8], 0, vec![0; 128])
            .tensor("blk.0.attn_q.weight", &[8, 8], 0, vec![0; 256])
            .tensor("blk.1.attn_q.weight", &[8, 8], 0, vec![0; 256])
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn consistent_metadata_has_no_findings() {
        assert!(run(good()).is_empty(), "{:?}", run(good()));
    }

    #[test]
    fn missing_architecture() {
        let mut b = good();
        b.kv.remove(0);
        assert!(codes(&run(b)).contains(&"GGUF_NO_ARCHITECTURE"));
    }

    #[test]
    fn block_count_disagreeing_with_tensors() {
        let mut b = good();
        b.kv[1].1 = RawValue::U32(3);
        let f = run(b);
        let bc = f
            .iter()
            .find(|f| f.code == "GGUF_METADATA_BLOCK_COUNT")
            .unwrap();
        assert!(
            bc.message.contains("is 3 but the tensors have 2 blocks"),
            "{}",
            bc.message
        );
        assert!(
            bc.hint.contains("sets llama.block_count to 2"),
            "{}",
            bc.hint
        );
    }

    #[test]
    fn token_count_against_embedding_rows() {
        let mut b = good();
        b.kv[3].1 = tokens(5);
        let f = run(b);
        let t = f
            .iter()
            .find(|f| f.code == "GGUF_TOKEN_COUNT_MISMATCH")
            .unwrap();
        assert!(
            t.message.contains("4 rows") && t.message.contains("5 tokens"),
            "{}",
            t.message
        );
        assert!(codes(&f).contains(&"GGUF_TOKENIZER_LENGTHS"));
    }

    #[test]
    fn wrong_types_are_named() {
        let mut b = good();
        b.kv[2].1 = RawValue::U64(128);
        let f = run(b);
        let t = f.iter().find(|f| f.code == "GGUF_METADATA_TYPE").unwrap();
        assert!(t.message.contains("llama.context_length"), "{}", t.message);
        assert!(
            t.message
                .contains("UINT64 but llama.cpp reads it as UINT32"),
            "{}",
            t.message
        );
    }

    #[test]
    fn token_id_out_of_range() {
        let mut b = good();
        b.kv[5].1 = RawValue::U32(4);
        assert!(codes(&run(b)).contains(&"GGUF_TOKEN_ID_OUT_OF_RANGE"));
    }
}
