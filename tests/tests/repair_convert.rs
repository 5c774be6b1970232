//! `quantdoc convert` on a real (bitsandbytes NF4) llama checkpoint from the fixtures, with
//! a byte-level BPE tokenizer.json added: llama.cpp names, Q/K permutation of the exact
//! dequantized values, side files, and gguf-py reading the same tensors.

mod repair_support;

use std::path::Path;

use quantdoc_core::encoding::dequantize_tensor;
use quantdoc_core::load::{load, Input};
use quantdoc_core::model::Model;
use quantdoc_core::source::SliceSource;
use quantdoc_tests::fixtures_or_skip;
use repair_support::{check_script, gguf_py, ok, scratch};

fn load_paths(paths: &[&Path]) -> (Model, Vec<(String, Vec<u8>)>) {
    let files: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let srcs: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(&b[..]))
        .collect();
    let inputs: Vec<Input<'_>> = files
        .iter()
        .zip(&srcs)
        .map(|((p, _), s)| Input {
            path: p.clone(),
            source: s,
        })
        .collect();
    let model = load(&inputs).unwrap();
    (model, files)
}

fn values(model: &Model, files: &[(String, Vec<u8>)], name: &str) -> Vec<f32> {
    let srcs: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(&b[..]))
        .collect();
    let srcs: Vec<&SliceSource<&[u8]>> = srcs.iter().collect();
    dequantize_tensor(model, model.tensor(name).unwrap(), &srcs).unwrap()
}

fn tokenizer_json() -> serde_json::Value {
    let mut vocab = serde_json::Map::new();
    for i in 0..250u32 {
        vocab.insert(format!("t{i}"), i.into());
    }
    serde_json::json!({
        "model": {"type": "BPE", "vocab": vocab, "merges": ["t1 t2", "t3 t4"]},
        "added_tokens": [
            {"id": 250, "content": "<s>", "special": true},
            {"id": 251, "content": "</s>", "special": true}
        ],
        "decoder": {"type": "ByteLevel"}
    })
}

#[test]
fn converts_a_dequantized_llama_with_llama_cpp_conventions() {
    let Some(fx) = fixtures_or_skip("converts_a_dequantized_llama_with_llama_cpp_conventions")
    else {
        return;
    };
    let dir = scratch("convert");
    let ckpt = dir.join("tiny-llama");
    std::fs::create_dir_all(&ckpt).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fx.join("bnb/tf_llama_nf4_dq").join(f), ckpt.join(f)).unwrap();
    }
    std::fs::write(ckpt.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    std::fs::write(
        ckpt.join("tokenizer_config.json"),
        r#"{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true, "chat_template": "{{ bos_token }}"}"#,
    )
    .unwrap();

    let out = dir.join("tiny-f32.gguf");
    let said = ok(&[
        "convert",
        ckpt.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--outtype",
        "f32",
    ]);
    assert!(said.contains("verified"), "{said}");
    let (gg, gfiles) = load_paths(&[&out]);
    let (src, sfiles) = load_paths(&[&ckpt.join("model.safetensors"), &ckpt.join("config.json")]);
    assert_eq!(gg.architecture(), Some("llama"));
    assert_eq!(
        gg.meta("llama.block_count").and_then(|v| v.as_u64()),
        Some(1)
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.bos_token_id")
            .and_then(|v| v.as_u64()),
        Some(250)
    );
    assert_eq!(
        gg.meta("tokenizer.ggml.tokens").and_then(|v| v.array_len()),
        Some(256)
    );
    // Q: 4 heads of 32 rows; K: 2 heads. Output row (h, i, j) = source row (h, j, i).
    for (hf, name, heads) in [
        (
            "model.layers.0.self_attn.q_proj.weight",
            "blk.0.attn_q.weight",
            4usize,
        ),
        (
            "model.layers.0.self_attn.k_proj.weight",
            "blk.0.attn_k.weight",
            2,
        ),
    ] {
        let s = values(&src, &sfiles, hf);
        let g = values(&gg, &gfiles, name);
        let cols = 128;
        let rows = s.len() / cols;
        let half = rows / heads / 2;
        for o in 0..rows {
            let (h, rest) = (o / (2 * half), o % (2 * half));
            let (i, j) = (rest / 2, rest % 2);
            let r = h * 2 * half + j * half + i;
            assert_eq!(
                &g[o * cols..(o + 1) * cols],
                &s[r * cols..(r + 1) * cols],
                "{name} row {o}"
            );
        }
    }
    let v = values(&src, &sfiles, "model.layers.0.self_attn.v_proj.weight");
    assert_eq!(values(&gg, &gfiles, "blk.0.attn_v.weight"), v);
    assert!(gg.tensor("output_norm.weight").is_some());

    // A quantized conversion: side files, gguf-py agreement.
    let q8 = dir.join("tiny-q8_0.gguf");
    ok(&[
        "convert",
        ckpt.to_str().unwrap(),
        "-o",
        q8.to_str().unwrap(),
        "--outtype",
        "q8_0",
        "--keep-float",
        "embed_tokens",
    ]);
    let (gq, qfiles) = load_paths(&[&q8]);
    assert_eq!(
        gq.tensor("blk.0.ffn_up.weight").unwrap().encoding.label(),
        "Q8_0"
    );
    assert_eq!(
        gq.tensor("token_embd.weight").unwrap().encoding.label(),
        "F16"
    );
    assert_eq!(
        gq.tensor("blk.0.attn_norm.weight")
            .unwrap()
            .encoding
            .label(),
        "F32"
    );
    let sha_line = std::fs::read_to_string(dir.join("tiny-q8_0.gguf.sha256")).unwrap();
    let digest: String = quantdoc_core::repair::sha256(&qfiles[0].1)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha_line, format!("{digest}  tiny-q8_0.gguf\n"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tiny-q8_0.gguf.meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["sha256"], digest.as_str());
    assert_eq!(meta["tensors"].as_array().unwrap().len(), gq.tensors.len());
    if let Some(py) = gguf_py("converts_a_dequantized_llama_with_llama_cpp_conventions") {
        let dump: serde_json::Value =
            serde_json::from_str(&check_script(py, &["dump-gguf", q8.to_str().unwrap()])).unwrap();
        let tensors = dump["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), gq.tensors.len());
        for (t, d) in gq.tensors.iter().zip(tensors) {
            let p = t.primary();
            let bytes = &qfiles[0].1[p.offset as usize..(p.offset + p.nbytes) as usize];
            let h: String = quantdoc_core::repair::sha256(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(d["name"], t.name.as_str());
            assert_eq!(d["type"], t.encoding.label().as_str());
            assert_eq!(d["sha256"], h.as_str(), "{}", t.name);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The SentencePiece model trained by the sentencepiece library that the core's unit tests
/// use, with its pieces as protobuf decodes them.
fn sentencepiece_fixture() -> (Vec<u8>, Vec<(String, f64, u64)>) {
    let dir = repair_support::workspace_root().join("core/src/convert/testdata");
    let model = std::fs::read(dir.join("llama-bpe.model")).unwrap();
    let pieces =
        serde_json::from_slice(&std::fs::read(dir.join("llama-bpe.pieces.json")).unwrap()).unwrap();
    (model, pieces)
}

#[test]
fn convert_reads_tokenizer_model_and_added_tokens_json() {
    let Some(fx) = fixtures_or_skip("convert_reads_tokenizer_model_and_added_tokens_json") else {
        return;
    };
    let dir = scratch("convert-spm");
    let ckpt = dir.join("tiny-llama-spm");
    std::fs::create_dir_all(&ckpt).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fx.join("bnb/tf_llama_nf4_dq").join(f), ckpt.join(f)).unwrap();
    }
    let (model, pieces) = sentencepiece_fixture();
    std::fs::write(ckpt.join("tokenizer.model"), &model).unwrap();
    // tokenizer.model wins over tokenizer.json, as in convert_hf_to_gguf.py.
    std::fs::write(ckpt.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    std::fs::write(ckpt.join("added_tokens.json"), r#"{"<extra>": 200}"#).unwrap();
    std::fs::write(
        ckpt.join("tokenizer_config.json"),
        r#"{"bos_token": "<s>", "add_bos_token": true, "add_eos_token": false}"#,
    )
    .unwrap();
    let out = dir.join("spm.gguf");
    ok(&[
        "convert",
        ckpt.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let (gg, _) = load_paths(&[&out]);
    let meta = |k: &str| gg.meta(k).unwrap_or_else(|| panic!("{k} missing")).clone();
    assert_eq!(meta("tokenizer.ggml.model").as_str(), Some("llama"));
    let tokens = meta("tokenizer.ggml.tokens");
    let tokens = tokens.strings().unwrap();
    // config.json's vocab_size (256) cuts the model's 448 pieces.
    assert_eq!(tokens.len(), 256);
    for (i, t) in tokens.iter().enumerate() {
        let want = if i == 200 {
            "<extra>"
        } else {
            pieces[i].0.as_str()
        };
        assert_eq!(t, want, "token {i}");
    }
    let Some(quantdoc_core::meta::MetaValue::Numbers(quantdoc_core::meta::NumArray::F32(scores))) =
        gg.meta("tokenizer.ggml.scores").cloned()
    else {
        panic!("no F32 scores");
    };
    for (i, s) in scores.iter().enumerate() {
        let want = if i == 200 {
            -1000.0
        } else {
            pieces[i].1 as f32
        };
        assert_eq!(s.to_bits(), want.to_bits(), "score {i}");
    }
    // gguf-py's SpecialVocab looks special tokens up in tokenizer.json's added tokens even
    // when the vocabulary comes from tokenizer.model: "<s>" is 250 there (config.json says 1).
    assert_eq!(meta("tokenizer.ggml.bos_token_id").as_u64(), Some(250));
    assert_eq!(meta("tokenizer.ggml.eos_token_id").as_u64(), Some(2));
    assert_eq!(
        meta("tokenizer.ggml.add_bos_token"),
        quantdoc_core::meta::MetaValue::Bool(true)
    );
    assert_eq!(meta("llama.vocab_size").as_u64(), Some(256));

    // A damaged tokenizer.model stops the conversion with where it broke; nothing written.
    std::fs::write(ckpt.join("tokenizer.model"), &model[..model.len() / 2]).unwrap();
    let bad = dir.join("bad.gguf");
    let run = repair_support::run(&[
        "convert",
        ckpt.to_str().unwrap(),
        "-o",
        bad.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(said.contains("tokenizer.model: byte "), "{said}");
    assert!(!bad.exists());
    std::fs::remove_dir_all(&dir).ok();
}
