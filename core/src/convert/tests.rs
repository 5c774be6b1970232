use std::collections::BTreeMap;

use super::*;
use crate::dtype::Dtype;
use crate::encoding::dequantize_tensor;
use crate::load::{load, Input};
use crate::meta::{MetaValue, NumArray};
use crate::repair::{execute, verify};
use crate::source::SliceSource;
use crate::write::safetensors::{write_safetensors, SafetensorsPlan, StTensor};

fn checkpoint(shapes: &[(&str, Vec<u64>)]) -> Vec<u8> {
    let ts: Vec<StTensor> = shapes
        .iter()
        .map(|(n, s)| StTensor {
            name: n.to_string(),
            dtype: Dtype::F32,
            shape: s.clone(),
        })
        .collect();
    let plan = SafetensorsPlan::new(&ts, &BTreeMap::new()).unwrap();
    write_safetensors(&plan, Vec::new(), |i, t, sink| {
        let n: u64 = t.shape.iter().product();
        let vals: Vec<u8> = (0..n)
            .flat_map(|j| ((i * 1000) as f32 + j as f32 * 0.5).to_le_bytes())
            .collect();
        sink(&vals)
    })
    .unwrap()
}

fn load_one(path: &str, bytes: &[u8]) -> Model {
    let src = SliceSource::new(bytes);
    load(&[Input {
        path: path.into(),
        source: &src,
    }])
    .unwrap()
}

fn tokenizer() -> Value {
    serde_json::json!({
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "c": 4, "d": 5}, "merges": ["a b", ["Ġ", "c"]]},
        "added_tokens": [{"id": 6, "content": "<|end|>", "special": true}, {"id": 7, "content": "<x>", "special": false}],
        "decoder": {"type": "ByteLevel"}
    })
}

fn llama_shapes() -> Vec<(&'static str, Vec<u64>)> {
    vec![
        ("model.embed_tokens.weight", vec![8, 8]),
        ("model.layers.0.self_attn.q_proj.weight", vec![8, 8]),
        ("model.layers.0.self_attn.k_proj.weight", vec![4, 8]),
        ("model.layers.0.self_attn.v_proj.weight", vec![4, 8]),
        ("model.layers.0.self_attn.o_proj.weight", vec![8, 8]),
        ("model.layers.0.mlp.gate_proj.weight", vec![16, 8]),
        ("model.layers.0.mlp.up_proj.weight", vec![16, 8]),
        ("model.layers.0.mlp.down_proj.weight", vec![8, 16]),
        ("model.layers.0.input_layernorm.weight", vec![8]),
        ("model.layers.0.post_attention_layernorm.weight", vec![8]),
        ("model.norm.weight", vec![8]),
        ("lm_head.weight", vec![8, 8]),
    ]
}

#[allow(clippy::type_complexity)]
fn convert(
    config: Value,
    shapes: &[(&str, Vec<u64>)],
    outtype: GgmlType,
) -> (Model, Vec<u8>, Model, Vec<u8>) {
    let ckpt = checkpoint(shapes);
    let model = load_one("ckpt/model.safetensors", &ckpt);
    let tok = tokenizer();
    let tok_cfg = serde_json::json!({"eos_token": "<|end|>", "chat_template": "{{ x }}"});
    let side = Side {
        config: &config,
        tokenizer: TokenizerFiles {
            tokenizer_json: Some(&tok),
            tokenizer_config: Some(&tok_cfg),
            sentencepiece: None,
            added_tokens: None,
            chat_template: None,
        },
        name: "tiny",
    };
    let rw = plan_convert(&model, &side, outtype, &|_| false).unwrap();
    let src = SliceSource::new(&ckpt[..]);
    let plan = rw.plan().unwrap();
    let (out, _) = execute(&model, &[&src], &rw, &plan, Vec::new(), &mut ()).unwrap();
    let gg = load_one("out.gguf", &out);
    let osrc = SliceSource::new(&out[..]);
    verify(&model, &[&src], &rw, &gg, &osrc).unwrap();
    (model, ckpt, gg, out)
}

fn values(model: &Model, bytes: &[u8], name: &str) -> Vec<f32> {
    let src = SliceSource::new(bytes);
    dequantize_tensor(model, model.tensor(name).unwrap(), &[&src]).unwrap()
}

#[test]
fn llama_names_metadata_tokenizer_and_qk_permutation() {
    let config = serde_json::json!({
        "model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1,
        "num_hidden_layers": 1, "intermediate_size": 16, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": 8
    });
    let (src_model, ckpt, gg, out) = convert(config, &llama_shapes(), GgmlType::F32);
    let names: Vec<&str> = gg.tensors.iter().map(|t| t.name.as_str()).collect();
    for n in [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.0.ffn_norm.weight",
        "output_norm.weight",
        "output.weight",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    assert_eq!(gg.architecture(), Some("llama"));
    assert_eq!(
        gg.meta("llama.attention.head_count_kv"),
        Some(&MetaValue::U64(1))
    );
    assert_eq!(
        gg.meta("llama.rope.dimension_count"),
        Some(&MetaValue::U64(4))
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.model").and_then(|v| v.as_str()),
        Some("gpt2")
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.eos_token_id"),
        Some(&MetaValue::U64(6))
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.tokens").and_then(|v| v.array_len()),
        Some(8)
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.token_type"),
        Some(&MetaValue::Numbers(NumArray::I32(vec![
            1, 1, 1, 1, 1, 1, 3, 4
        ])))
    );
    let merges = gg.meta("tokenizer.ggml.merges").unwrap().strings().unwrap();
    assert_eq!(merges.get(1), Some("Ġ c"));
    assert_eq!(
        gg.meta("tokenizer.chat_template").and_then(|v| v.as_str()),
        Some("{{ x }}")
    );

    // Q: 2 heads of 4 rows: source rows [0 1 | 2 3] [4 5 | 6 7] become 0 2 1 3 4 6 5 7;
    // K: 1 head: [0 1 | 2 3] becomes 0 2 1 3.
    for (hf, gguf, perm) in [
        (
            "model.layers.0.self_attn.q_proj.weight",
            "blk.0.attn_q.weight",
            vec![0usize, 2, 1, 3, 4, 6, 5, 7],
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            "blk.0.attn_k.weight",
            vec![0, 2, 1, 3],
        ),
    ] {
        let src = values(&src_model, &ckpt, hf);
        let got = values(&gg, &out, gguf);
        for (o, &r) in perm.iter().enumerate() {
            assert_eq!(
                &got[o * 8..o * 8 + 8],
                &src[r * 8..r * 8 + 8],
                "{gguf} row {o}"
            );
        }
    }
    // Everything else keeps its values; norms are F32.
    let v = values(&src_model, &ckpt, "model.layers.0.self_attn.v_proj.weight");
    assert_eq!(values(&gg, &out, "blk.0.attn_v.weight"), v);
    assert_eq!(
        gg.tensor("blk.0.attn_norm.weight")
            .unwrap()
            .encoding
            .label(),
        "F32"
    );
}

#[test]
fn gemma3_norms_get_one_added_and_no_permutation() {
    let config = serde_json::json!({
        "model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "hidden_size": 8,
        "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "num_hidden_layers": 1,
        "intermediate_size": 16, "max_position_embeddings": 64, "sliding_window": 32}
    });
    let mut shapes = llama_shapes();
    shapes.retain(|(n, _)| *n != "lm_head.weight");
    for (n, s) in shapes.iter_mut() {
        *n = match *n {
            "model.embed_tokens.weight" => "language_model.model.embed_tokens.weight",
            other => other,
        };
        let _ = s;
    }
    shapes.push(("model.layers.0.pre_feedforward_layernorm.weight", vec![8]));
    shapes.push(("model.layers.0.post_feedforward_layernorm.weight", vec![8]));
    shapes.push(("vision_tower.patch.weight", vec![4]));
    let (src_model, ckpt, gg, out) = convert(config, &shapes, GgmlType::F16);
    assert_eq!(gg.architecture(), Some("gemma3"));
    assert!(gg.tensor("vision_tower.patch.weight").is_none());
    assert!(gg.tensor("token_embd.weight").is_some());
    assert_eq!(
        gg.meta("gemma3.attention.key_length"),
        Some(&MetaValue::U64(4))
    );
    let src = values(
        &src_model,
        &ckpt,
        "model.layers.0.post_attention_layernorm.weight",
    );
    let got = values(&gg, &out, "blk.0.post_attention_norm.weight");
    let want: Vec<f32> = src.iter().map(|v| v + 1.0).collect();
    assert_eq!(got, want);
    let q = values(&src_model, &ckpt, "model.layers.0.self_attn.q_proj.weight");
    let got = values(&gg, &out, "blk.0.attn_q.weight");
    let want: Vec<f32> = q.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    assert_eq!(got, want);
    assert!(gg.tensor("blk.0.ffn_norm.weight").is_some());
    assert!(gg.tensor("blk.0.post_ffw_norm.weight").is_some());
}

#[test]
fn refuses_unknown_architectures_and_tensors() {
    let ckpt = checkpoint(&[("model.embed_tokens.weight", vec![8, 8])]);
    let model = load_one("m.safetensors", &ckpt);
    let tok = tokenizer();
    let cfg = serde_json::json!({"model_type": "gpt_neox"});
    let side = Side {
        config: &cfg,
        tokenizer: TokenizerFiles {
            tokenizer_json: Some(&tok),
            ..TokenizerFiles::default()
        },
        name: "x",
    };
    assert!(plan_convert(&model, &side, GgmlType::F16, &|_| false).is_err());
    let ckpt = checkpoint(&[("model.weird.weight", vec![8])]);
    let model = load_one("m.safetensors", &ckpt);
    let cfg = serde_json::json!({"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 16, "max_position_embeddings": 64});
    let side = Side {
        config: &cfg,
        tokenizer: TokenizerFiles {
            tokenizer_json: Some(&tok),
            ..TokenizerFiles::default()
        },
        name: "x",
    };
    assert!(plan_convert(&model, &side, GgmlType::F16, &|_| false).is_err());
}

#[test]
fn sentencepiece_tokenizer_model_gives_llama_cpp_vocabulary() {
    let config = serde_json::json!({
        "model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1,
        "num_hidden_layers": 1, "intermediate_size": 16, "max_position_embeddings": 64,
        "vocab_size": 10, "bos_token_id": 1, "eos_token_id": 2
    });
    let spm = crate::convert::sentencepiece::tests::model_bytes(&[
        ("<unk>", 0.0, 2),
        ("<s>", 0.0, 3),
        ("</s>", 0.0, 3),
        ("<0x0A>", 0.0, 6),
        ("\u{2581}a", -1.25, 1),
        ("b", -2.5, 1),
        ("<sep>", 0.0, 4),
    ]);
    let added = serde_json::json!({"<extra>": 7});
    let tok_cfg = serde_json::json!({
        "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "add_eos_token": false,
        "add_prefix_space": true,
        "added_tokens_decoder": {"8": {"content": "<|im_end|>", "special": false}}
    });
    let ckpt = checkpoint(&[("model.embed_tokens.weight", vec![10, 8])]);
    let model = load_one("ckpt/model.safetensors", &ckpt);
    let side = Side {
        config: &config,
        tokenizer: TokenizerFiles {
            tokenizer_json: None,
            tokenizer_config: Some(&tok_cfg),
            sentencepiece: Some(&spm),
            added_tokens: Some(&added),
            chat_template: Some("{{ jinja }}"),
        },
        name: "spm",
    };
    let rw = plan_convert(&model, &side, GgmlType::F16, &|_| false).unwrap();
    let meta = |k: &str| {
        rw.metadata
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    assert_eq!(
        meta("tokenizer.ggml.model"),
        MetaValue::String("llama".into())
    );
    assert_eq!(
        meta("tokenizer.ggml.pre"),
        MetaValue::String("default".into())
    );
    let tokens: Vec<String> = meta("tokenizer.ggml.tokens").strings().unwrap().to_vec();
    assert_eq!(
        tokens,
        [
            "<unk>",
            "<s>",
            "</s>",
            "<0x0A>",
            "\u{2581}a",
            "b",
            "<sep>",
            "<extra>",
            "<|im_end|>",
            "[PAD9]"
        ]
    );
    assert_eq!(
        meta("tokenizer.ggml.scores"),
        MetaValue::Numbers(NumArray::F32(vec![
            0.0, 0.0, 0.0, 0.0, -1.25, -2.5, 0.0, -1000.0, -1000.0, -10000.0
        ]))
    );
    // The model's USER_DEFINED <sep> reads NORMAL (llama.cpp never asks for that type);
    // added_tokens.json gives USER_DEFINED, a `<|...|>` decoder entry CONTROL.
    assert_eq!(
        meta("tokenizer.ggml.token_type"),
        MetaValue::Numbers(NumArray::I32(vec![2, 3, 3, 6, 1, 1, 1, 4, 3, 5]))
    );
    // No tokenizer.json: the ids come from config.json, as gguf-py's SpecialVocab does.
    assert_eq!(meta("tokenizer.ggml.bos_token_id"), MetaValue::U64(1));
    assert_eq!(meta("tokenizer.ggml.eos_token_id"), MetaValue::U64(2));
    assert_eq!(meta("tokenizer.ggml.add_bos_token"), MetaValue::Bool(true));
    assert_eq!(meta("tokenizer.ggml.add_eos_token"), MetaValue::Bool(false));
    assert_eq!(
        meta("tokenizer.ggml.add_space_prefix"),
        MetaValue::Bool(true)
    );
    assert_eq!(
        meta("tokenizer.chat_template"),
        MetaValue::String("{{ jinja }}".into())
    );
    assert_eq!(meta("llama.vocab_size"), MetaValue::U64(10));

    // A damaged tokenizer.model is refused with where it broke.
    let cut = &spm[..spm.len() - 3];
    let side = Side {
        tokenizer: TokenizerFiles {
            sentencepiece: Some(cut),
            ..side.tokenizer
        },
        ..side
    };
    let err = plan_convert(&model, &side, GgmlType::F16, &|_| false)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("tokenizer.model: byte "), "{err}");
}
