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
