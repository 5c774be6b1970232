use super::gguf_plan::{header_findings, plan_repair};
use super::meta_edit::{parse_typed, plan_meta_edit, MetaEdits};
use super::requant::{plan_requantize, Choice};
use super::*;
use crate::gguf::rawbuilder::{RawGgufBuilder, RawTensor, RawValue};
use crate::load::{load, Input};
use crate::meta::MetaValue;
use crate::source::SliceSource;

fn load_bytes(bytes: &[u8]) -> Model {
    let src = SliceSource::new(bytes);
    load(&[Input {
        path: "t.gguf".into(),
        source: &src,
    }])
    .unwrap()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn values(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.1)
        .collect()
}

/// Run a rewrite end to end: plan, write, reload, verify.
fn run(model: &Model, input: &[u8], rw: &GgufRewrite) -> (Vec<u8>, Model, VerifyReport) {
    let src = SliceSource::new(input);
    let plan = rw.plan().unwrap();
    let (out, totals) = execute(model, &[&src], rw, &plan, Vec::new(), &mut ()).unwrap();
    assert_eq!(totals.bytes_written, out.len() as u64);
    let reloaded = load_bytes(&out);
    let osrc = SliceSource::new(&out[..]);
    let report = verify(model, &[&src], rw, &reloaded, &osrc).unwrap();
    (out, reloaded, report)
}

/// A small llama-like file with a gap, a misaligned tensor, a Q8_0 norm, a wrong
/// block_count and an exact duplicate tensor.
fn broken_file() -> Vec<u8> {
    let q8_norm = crate::quantize::quantize_to_vec(GgmlType::Q8_0, &values(64, 1.0)).unwrap();
    let w0 = f32_bytes(&values(64 * 4, 2.0));
    let mut b = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .kv("llama.block_count", RawValue::U32(5))
        .tensor("token_embd.weight", &[4, 64], 0, w0.clone())
        .tensor("blk.0.attn_norm.weight", &[64], 8, q8_norm)
        .tensor(
            "blk.0.attn_q.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 3.0)),
        )
        .tensor(
            "blk.1.attn_q.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 4.0)),
        )
        .tensor(
            "blk.1.attn_q.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 4.0)),
        );
    let dense = b.dense_offsets();
    // A gap before tensor 2 and a misaligned tensor 3.
    b.tensors[2].offset = Some(dense[2] + 64);
    b.tensors[3].offset = Some(dense[3] + 64 + 4);
    b.tensors[4].offset = Some(dense[4] + 128);
    b.build()
}

#[test]
fn repair_fixes_layout_norms_block_count_and_duplicates() {
    let input = broken_file();
    let model = load_bytes(&input);
    let before: Vec<String> = header_findings(&model)
        .iter()
        .map(|f| f.code.clone())
        .collect();
    for code in [
        "GGUF_TENSOR_GAP",
        "GGUF_TENSOR_MISALIGNED",
        "NORM_QUANTIZED",
        "GGUF_METADATA_BLOCK_COUNT",
        "GGUF_DUPLICATE_TENSOR",
    ] {
        assert!(
            before.iter().any(|c| c == code),
            "{code} not found in {before:?}"
        );
    }
    let src = SliceSource::new(&input[..]);
    let rw = plan_repair(&model, &[&src]).unwrap();
    assert!(rw.blocking.is_empty(), "{:?}", rw.blocking);
    let fixed: Vec<&str> = rw.fixes.iter().map(|f| f.code.as_str()).collect();
    for code in [
        "GGUF_TENSOR_GAP",
        "GGUF_TENSOR_MISALIGNED",
        "NORM_QUANTIZED",
        "GGUF_METADATA_BLOCK_COUNT",
        "GGUF_DUPLICATE_TENSOR",
    ] {
        assert!(fixed.contains(&code), "no fix for {code}: {:?}", rw.fixes);
    }
    let (_, out, report) = run(&model, &input, &rw);
    assert_eq!(out.tensors.len(), 4);
    assert_eq!(report.tensors_compared, 1);
    assert_eq!(report.tensors_hashed, 3);
    let after: Vec<String> = header_findings(&out)
        .iter()
        .map(|f| f.code.clone())
        .collect();
    assert!(after.is_empty(), "findings left after repair: {after:?}");
    assert_eq!(out.meta("llama.block_count"), Some(&MetaValue::U64(2)));
    let norm = out.tensor("blk.0.attn_norm.weight").unwrap();
    assert_eq!(norm.encoding.label(), "F32");
}

#[test]
fn repair_refuses_missing_bytes_and_conflicting_duplicates() {
    let mut b = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .tensor("a", &[64], 0, f32_bytes(&values(64, 1.0)))
        .tensor("a", &[64], 0, f32_bytes(&values(64, 2.0)));
    b.tensors.push(RawTensor {
        name: "b".into(),
        ne: vec![64],
        type_id: 0,
        data: vec![],
        offset: Some(1 << 20),
    });
    let input = b.build();
    let model = load_bytes(&input);
    let src = SliceSource::new(&input[..]);
    let rw = plan_repair(&model, &[&src]).unwrap();
    let blocking: Vec<&str> = rw.blocking.iter().map(|f| f.code.as_str()).collect();
    assert!(blocking.contains(&"GGUF_DUPLICATE_TENSOR"), "{blocking:?}");
    assert!(
        blocking.contains(&"GGUF_TENSOR_OUT_OF_BOUNDS") || blocking.contains(&"GGUF_TRUNCATED"),
        "{blocking:?}"
    );
}

#[test]
fn meta_edit_changes_only_metadata() {
    let input = broken_file();
    let model = load_bytes(&input);
    let edits = MetaEdits {
        set: vec![
            parse_typed("llama.block_count", "u32:2").unwrap(),
            parse_typed("general.name", "str:edited").unwrap(),
        ],
        delete: vec!["general.architecture".into()],
        chat_template: Some("{{ messages }}".into()),
    };
    // Duplicate tensor names cannot be written: the identity rewrite refuses them.
    let rw = plan_meta_edit(&model, &edits).unwrap();
    assert!(rw.plan().is_err());

    let clean = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .kv("llama.block_count", RawValue::U32(7))
        .tensor(
            "blk.0.attn_q.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 3.0)),
        )
        .build();
    let model = load_bytes(&clean);
    let rw = plan_meta_edit(&model, &edits).unwrap();
    let (_, out, report) = run(&model, &clean, &rw);
    assert_eq!(report.tensors_hashed, 1);
    assert_eq!(out.meta("llama.block_count"), Some(&MetaValue::U64(2)));
    assert_eq!(
        out.meta("general.name").and_then(|v| v.as_str()),
        Some("edited")
    );
    assert!(out.meta("general.architecture").is_none());
    assert_eq!(
        out.meta("tokenizer.chat_template").and_then(|v| v.as_str()),
        Some("{{ messages }}")
    );
    let missing = MetaEdits {
        set: vec![],
        delete: vec!["no.such.key".into()],
        chat_template: None,
    };
    assert!(plan_meta_edit(&model, &missing).is_err());
}

#[test]
fn requantize_keeps_norms_and_honours_choices() {
    let input = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .tensor(
            "token_embd.weight",
            &[8, 256],
            0,
            f32_bytes(&values(2048, 1.0)),
        )
        .tensor(
            "blk.0.attn_norm.weight",
            &[256],
            0,
            f32_bytes(&values(256, 2.0)),
        )
        .tensor(
            "blk.0.attn_q.weight",
            &[8, 256],
            0,
            f32_bytes(&values(2048, 3.0)),
        )
        .tensor(
            "blk.0.ffn_down.weight",
            &[8, 96],
            0,
            f32_bytes(&values(768, 4.0)),
        )
        .tensor("output.weight", &[8, 256], 0, f32_bytes(&values(2048, 5.0)))
        .build();
    let model = load_bytes(&input);
    let choose = |name: &str| match name {
        "token_embd.weight" => Choice::KeepFloat,
        "output.weight" => Choice::Type(GgmlType::Q6_K),
        _ => Choice::Default,
    };
    let rw = plan_requantize(&model, GgmlType::Q4_K, &choose).unwrap();
    let (_, out, report) = run(&model, &input, &rw);
    let label = |n: &str| out.tensor(n).unwrap().encoding.label();
    assert_eq!(label("token_embd.weight"), "F32");
    assert_eq!(label("blk.0.attn_norm.weight"), "F32");
    assert_eq!(label("blk.0.attn_q.weight"), "Q4_K");
    // 96 is not a multiple of 256: falls back to Q8_0.
    assert_eq!(label("blk.0.ffn_down.weight"), "Q8_0");
    assert_eq!(label("output.weight"), "Q6_K");
    assert_eq!(report.tensors_compared, 3);
    assert_eq!(out.meta("general.file_type"), Some(&MetaValue::U64(14)));
}

#[test]
fn verify_catches_corrupted_output() {
    let input = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .tensor(
            "blk.0.attn_q.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 3.0)),
        )
        .tensor(
            "blk.0.attn_k.weight",
            &[4, 64],
            0,
            f32_bytes(&values(256, 4.0)),
        )
        .build();
    let model = load_bytes(&input);
    let rw = plan_requantize(&model, GgmlType::Q8_0, &|n: &str| {
        if n.contains("attn_k") {
            Choice::KeepFloat
        } else {
            Choice::Default
        }
    })
    .unwrap();
    let src = SliceSource::new(&input[..]);
    let plan = rw.plan().unwrap();
    let (mut out, _) = execute(&model, &[&src], &rw, &plan, Vec::new(), &mut ()).unwrap();
    // Flip one byte of each tensor in turn: verification must notice both.
    for i in 0..2 {
        let mut bad = out.clone();
        let at = (plan.data_start() + plan.offset(i) + 5) as usize;
        bad[at] ^= 0x40;
        let reloaded = load_bytes(&bad);
        let osrc = SliceSource::new(&bad[..]);
        assert!(
            verify(&model, &[&src], &rw, &reloaded, &osrc).is_err(),
            "tensor {i}"
        );
    }
    out.truncate(out.len() - 1);
    let reloaded = load_bytes(&out);
    let osrc = SliceSource::new(&out[..]);
    assert!(verify(&model, &[&src], &rw, &reloaded, &osrc).is_err());
}
