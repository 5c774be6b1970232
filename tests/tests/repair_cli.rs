//! `quantdoc repair`, `meta` and `requantize` end to end: outputs are read back by quantdoc
//! and by gguf-py with identical tensors, and no failed or killed run leaves a file under
//! the final name.

mod repair_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use quantdoc_core::gguf::rawbuilder::{RawGgufBuilder, RawValue};
use quantdoc_core::load::{load, Input};
use quantdoc_core::model::Model;
use quantdoc_core::repair::gguf_plan::header_findings;
use quantdoc_core::source::SliceSource;
use quantdoc_tests::fixtures_or_skip;
use repair_support::{check_script, gguf_py, ok, quantdoc, run, scratch};

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn values(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.37 + seed).sin()) * 0.1)
        .collect()
}

fn load_file(path: &Path) -> (Model, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let src = SliceSource::new(&bytes[..]);
    let model = load(&[Input {
        path: path.display().to_string(),
        source: &src,
    }])
    .unwrap();
    (model, bytes)
}

fn tensor_bytes<'a>(model: &Model, bytes: &'a [u8], name: &str) -> &'a [u8] {
    let p = model.tensor(name).unwrap().primary();
    &bytes[p.offset as usize..(p.offset + p.nbytes) as usize]
}

fn sha256_hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let digest = quantdoc_core::repair::sha256(b);
    let mut s = String::new();
    for x in digest {
        write!(s, "{x:02x}").unwrap();
    }
    s
}

/// gguf-py reads `path` and sees exactly the tensors (name, type, shape, bytes) and the
/// metadata keys that quantdoc sees.
fn assert_gguf_py_agrees(test: &str, path: &Path) {
    let Some(py) = gguf_py(test) else {
        return;
    };
    let dump: serde_json::Value =
        serde_json::from_str(&check_script(py, &["dump-gguf", path.to_str().unwrap()])).unwrap();
    let (model, bytes) = load_file(path);
    let tensors = dump["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), model.tensors.len());
    for (t, d) in model.tensors.iter().zip(tensors) {
        assert_eq!(d["name"], t.name.as_str());
        assert_eq!(d["type"], t.encoding.label().as_str(), "{}", t.name);
        let shape: Vec<u64> = d["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(shape, t.shape, "{}", t.name);
        assert_eq!(
            d["sha256"].as_str().unwrap(),
            sha256_hex(tensor_bytes(&model, &bytes, &t.name)),
            "{}: gguf-py reads different bytes",
            t.name
        );
    }
    let keys: Vec<&str> = dump["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    let ours: Vec<&str> = model.metadata.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ours);
    for (m, e) in dump["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&model.metadata)
    {
        let types = m["types"].as_array().unwrap();
        assert_eq!(types[0], e.value_type.unwrap().name(), "{}", e.key);
        if let Some(a) = e.array_type {
            assert_eq!(types[1], a.name(), "{}", e.key);
        }
    }
}

/// A llama-like file with a gap, a misaligned tensor, a Q8_0 norm and a wrong block_count.
fn broken_gguf() -> Vec<u8> {
    let q8_norm = quantdoc_core::quantize::quantize_to_vec(
        quantdoc_core::ggml::types::GgmlType::Q8_0,
        &values(64, 1.0),
    )
    .unwrap();
    let mut b = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .kv("general.name", RawValue::Str("broken".into()))
        .kv("llama.block_count", RawValue::U32(9))
        .kv(
            "tokenizer.ggml.tokens",
            RawValue::Array(
                quantdoc_core::meta::GgufValueType::String,
                vec![RawValue::Str("<s>".into()), RawValue::Str("a".into())],
            ),
        )
        .tensor("token_embd.weight", &[2, 64], 1, vec![0x3c; 256])
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
        );
    let dense = b.dense_offsets();
    b.tensors[2].offset = Some(dense[2] + 96);
    b.tensors[3].offset = Some(dense[3] + 96 + 8);
    b.build()
}

#[test]
fn repair_fixes_a_broken_file_and_gguf_py_agrees() {
    let dir = scratch("repair");
    let input = dir.join("broken.gguf");
    std::fs::write(&input, broken_gguf()).unwrap();
    let out = dir.join("fixed.gguf");

    let plan = ok(&["repair", input.to_str().unwrap(), "--dry-run"]);
    for code in [
        "GGUF_TENSOR_GAP",
        "GGUF_TENSOR_MISALIGNED",
        "NORM_QUANTIZED",
        "GGUF_METADATA_BLOCK_COUNT",
    ] {
        assert!(plan.contains(code), "dry run does not name {code}:\n{plan}");
    }
    assert!(!out.exists(), "--dry-run wrote a file");

    let said = ok(&[
        "repair",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(said.contains("verified"), "{said}");
    let (model, bytes) = load_file(&out);
    let left: Vec<String> = header_findings(&model)
        .iter()
        .map(|f| f.code.clone())
        .collect();
    assert!(left.is_empty(), "findings after repair: {left:?}");
    let (orig, orig_bytes) = load_file(&input);
    for name in [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.1.attn_q.weight",
    ] {
        assert_eq!(
            tensor_bytes(&model, &bytes, name),
            tensor_bytes(&orig, &orig_bytes, name),
            "{name} was not copied byte for byte"
        );
    }
    assert_gguf_py_agrees("repair_fixes_a_broken_file_and_gguf_py_agrees", &out);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn requantized_fixture_reads_back_identically_in_gguf_py() {
    let Some(fx) = fixtures_or_skip("requantized_fixture_reads_back_identically_in_gguf_py") else {
        return;
    };
    let dir = scratch("requant");
    let out = dir.join("q8.gguf");
    let said = ok(&[
        "requantize",
        fx.join("gguf/legacy.gguf").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--type",
        "q8_0",
        "--keep-float",
        r"^blk\.1\.",
        "--tensor-type",
        r"q5_1=q5_0",
    ]);
    assert!(said.contains("verified"), "{said}");
    let (model, _) = load_file(&out);
    let label = |n: &str| model.tensor(n).unwrap().encoding.label();
    assert_eq!(label("blk.0.q4_0.weight"), "Q8_0");
    assert_eq!(label("blk.1.q4_0.weight"), "F32"); // --keep-float on a quantized tensor
    assert_eq!(label("blk.6.q5_1.weight"), "Q5_0");
    assert_eq!(label("blk.10.iq4_nl.weight"), "Q8_0");
    // Metadata of every type survives with its type.
    let (orig, _) = load_file(&fx.join("gguf/legacy.gguf"));
    for e in &orig.metadata {
        if e.key.starts_with("fixture.") {
            let got = model.meta_entry(&e.key).unwrap();
            assert_eq!(
                (got.value_type, got.array_type),
                (e.value_type, e.array_type),
                "{}",
                e.key
            );
            assert_eq!(got.value, e.value, "{}", e.key);
        }
    }
    assert_gguf_py_agrees(
        "requantized_fixture_reads_back_identically_in_gguf_py",
        &out,
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn meta_sets_and_deletes_typed_keys() {
    let dir = scratch("meta");
    let input = dir.join("in.gguf");
    std::fs::write(&input, broken_gguf()).unwrap();
    let out = dir.join("out.gguf");
    let tpl = dir.join("tpl.jinja");
    std::fs::write(&tpl, "{% for m in messages %}{{ m.content }}{% endfor %}").unwrap();
    // The input has layout problems too: meta re-lays it densely as a side effect.
    ok(&[
        "meta",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--set",
        "llama.block_count=u32:2",
        "--set",
        "llama.rope.freq_base=f32:10000",
        "--set",
        "quantdoc.test=arr[i16]:1,-2,3",
        "--delete",
        "general.name",
        "--chat-template-file",
        tpl.to_str().unwrap(),
    ]);
    let (model, _) = load_file(&out);
    use quantdoc_core::meta::{GgufValueType as T, MetaValue, NumArray};
    let e = model.meta_entry("llama.rope.freq_base").unwrap();
    assert_eq!(
        (e.value_type, e.value.clone()),
        (Some(T::Float32), MetaValue::F64(10000.0))
    );
    assert_eq!(
        model.meta("quantdoc.test"),
        Some(&MetaValue::Numbers(NumArray::I16(vec![1, -2, 3])))
    );
    assert!(model.meta("general.name").is_none());
    assert!(model
        .meta("tokenizer.chat_template")
        .and_then(|v| v.as_str())
        .is_some_and(|s| s.starts_with("{% for")));
    // The norm is still Q8_0: meta copies tensors, it does not repair them.
    assert_eq!(
        model
            .tensor("blk.0.attn_norm.weight")
            .unwrap()
            .encoding
            .label(),
        "Q8_0"
    );

    let bad = run(&[
        "meta",
        input.to_str().unwrap(),
        "-o",
        dir.join("x.gguf").to_str().unwrap(),
        "--set",
        "k=u8:300",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("larger than 255"));
    let same = run(&[
        "meta",
        input.to_str().unwrap(),
        "-o",
        input.to_str().unwrap(),
        "--set",
        "k=u8:3",
    ]);
    assert!(!same.status.success(), "overwrote its own input");
    assert_eq!(std::fs::read(&input).unwrap(), broken_gguf());
    std::fs::remove_dir_all(&dir).ok();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn failed_run_leaves_no_file() {
    let dir = scratch("failed");
    let mut bytes = broken_gguf();
    bytes.truncate(bytes.len() - 100);
    let input = dir.join("truncated.gguf");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.join("out.gguf");
    let r = run(&[
        "meta",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--set",
        "general.name=str:x",
    ]);
    assert!(!r.status.success());
    let r2 = run(&[
        "repair",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        r2.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r2.stdout)
    );
    assert!(String::from_utf8_lossy(&r2.stdout).contains("GGUF_TRUNCATED"));
    assert_eq!(
        names_in(&dir),
        vec!["truncated.gguf".to_string()],
        "leftovers"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn killed_run_leaves_no_file_under_the_final_name() {
    let dir = scratch("killed");
    // 48 MiB of F32 weights: converting them takes long enough to be interrupted.
    let n = 12 << 20;
    let data: Vec<u8> = (0..n)
        .flat_map(|i| (((i % 4099) as f32) * 1e-4 - 0.2).to_le_bytes())
        .collect();
    let big = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .tensor("blk.0.ffn_up.weight", &[(n / 4096) as u64, 4096], 0, data)
        .build();
    let input = dir.join("big.gguf");
    std::fs::write(&input, big).unwrap();
    let out = dir.join("out.gguf");
    let mut child = Command::new(quantdoc())
        .args([
            "requantize",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--type",
            "q4_0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Kill as soon as the temporary file appears (or after a short while).
    while started.elapsed() < Duration::from_secs(5) {
        if names_in(&dir).iter().any(|n| n.ends_with(".tmp")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().ok();
    let status = child.wait().unwrap();
    eprintln!("killed after {:?}: {status:?}", started.elapsed());
    if status.success() {
        // It finished first: then the output must be complete and valid.
        let (model, _) = load_file(&out);
        assert_eq!(model.tensors[0].encoding.label(), "Q4_0");
    } else {
        assert!(!out.exists(), "a killed run left {}", out.display());
    }
    std::fs::remove_dir_all(&dir).ok();
}
