//! The CLI end to end: exit statuses, the JSON schema, shard discovery, `dequant` output.

mod repair_support;

use quantdoc_core::gguf::rawbuilder::{RawGgufBuilder, RawValue};
use quantdoc_tests::{assert_bits_eq, fixtures_or_skip, read_f32};
use repair_support::run;
use serde_json::Value;

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("quantdoc-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn check_exit_status_is_0_1_or_2() {
    let d = tmpdir("exit");
    let good = RawGgufBuilder::new()
        .kv("general.architecture", RawValue::Str("llama".into()))
        .tensor(
            "w",
            &[2, 8],
            0,
            (0..16u32)
                .flat_map(|i| (i as f32 * 0.1 - 0.7).to_le_bytes())
                .collect(),
        );
    let good_bytes = good.build();
    std::fs::write(d.join("good.gguf"), &good_bytes).unwrap();
    std::fs::write(d.join("cut.gguf"), &good_bytes[..good_bytes.len() - 8]).unwrap();
    std::fs::write(d.join("not.gguf"), b"hello world, not a model").unwrap();

    let g = d.join("good.gguf");
    assert_eq!(run(&["check", g.to_str().unwrap()]).status.code(), Some(0));
    let c = d.join("cut.gguf");
    let out = run(&["check", c.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GGUF_TRUNCATED"));
    let n = d.join("not.gguf");
    let out = run(&["check", n.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not.gguf") && err.contains("offset 0") && err.contains("magic"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        run(&["check", "/nonexistent/x.gguf"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn inspect_json_follows_docs_json_md() {
    let Some(dir) = fixtures_or_skip("inspect_json_follows_docs_json_md") else {
        return;
    };
    let f = dir.join("gguf/legacy.gguf");
    let out = run(&["inspect", "--json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["format"], "gguf");
    assert_eq!(j["file_size"], 10496);
    assert_eq!(
        j["metadata"]["fixture.arr_nested"],
        serde_json::json!([[1, 2, 3], [4, 5]])
    );
    let t = &j["tensors"][0];
    assert_eq!(t["name"], "blk.0.q4_0.weight");
    assert_eq!(t["dtype"], "Q4_0");
    assert_eq!(t["shape"], serde_json::json!([16, 96]));
    assert_eq!(t["offset"], 1792);
    assert_eq!(t["nbytes"], 864);
    // The fixture says `llama` but has no llama.block_count: llama.cpp would refuse it.
    let f = &j["findings"][0];
    assert_eq!(f["code"], "GGUF_METADATA_BLOCK_COUNT");
    assert_eq!(f["severity"], "error");
    assert!(f["tensor"].is_null());
    assert!(f["message"].as_str().unwrap().contains("12 blocks"));
    assert!(f["hint"].is_string());
    assert_eq!(j["header_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn any_shard_opens_the_whole_set_and_missing_shards_are_reported() {
    let d = tmpdir("split");
    for no in 0..3u16 {
        let mut b = RawGgufBuilder::new()
            .kv("split.no", RawValue::U16(no))
            .kv("split.count", RawValue::U16(3))
            .kv("split.tensors.count", RawValue::I32(3));
        if no == 0 {
            b = b.kv("general.architecture", RawValue::Str("llama".into()));
        }
        b = b.tensor(&format!("t{no}"), &[8], 0, vec![0; 32]);
        std::fs::write(d.join(format!("m-{:05}-of-00003.gguf", no + 1)), b.build()).unwrap();
    }
    let second = d.join("m-00002-of-00003.gguf");
    let out = run(&["inspect", "--json", second.to_str().unwrap()]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["files"].as_array().unwrap().len(), 3);
    assert_eq!(j["tensors"].as_array().unwrap().len(), 3);
    assert_eq!(j["summary"]["architecture"], "llama");

    std::fs::remove_file(d.join("m-00003-of-00003.gguf")).unwrap();
    let out = run(&["check", "--fast", second.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("GGUF_SPLIT_MISSING") && text.contains("m-00003-of-00003.gguf"),
        "{text}"
    );
}

#[test]
fn dequant_writes_the_expected_f32() {
    let Some(dir) = fixtures_or_skip("dequant_writes_the_expected_f32") else {
        return;
    };
    let d = tmpdir("dequant");
    let out_path = d.join("t.f32");
    let f = dir.join("gguf/kquants.gguf");
    let out = run(&[
        "dequant",
        f.to_str().unwrap(),
        "--tensor",
        "blk.4.q6_k.weight",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = read_f32(&dir.join("expected/gguf/kquants/blk.4.q6_k.weight.f32"));
    assert_bits_eq("dequant q6_k", &read_f32(&out_path), &want);
    let out = run(&[
        "dequant",
        f.to_str().unwrap(),
        "--tensor",
        "nope",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn scan_json_carries_statistics_for_every_tensor() {
    let Some(dir) = fixtures_or_skip("scan_json_carries_statistics_for_every_tensor") else {
        return;
    };
    let f = dir.join("gguf/legacy.gguf");
    let out = run(&["scan", "--json", "--threads", "2", f.to_str().unwrap()]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stats = j["stats"].as_object().unwrap();
    assert_eq!(stats.len(), 12);
    let s = &stats["blk.0.q4_0.weight"];
    assert_eq!(s["elements"], 1536);
    assert_eq!(s["nan"], 0);
    // MANIFEST: expected_absmax of this tensor.
    assert_eq!(s["abs_max"].as_f64().unwrap(), 0.6796875);
}

#[test]
fn link_prints_a_url_whose_fragment_decodes_to_the_report() {
    let Some(dir) = fixtures_or_skip("link_prints_a_url_whose_fragment_decodes_to_the_report")
    else {
        return;
    };
    let f = dir.join("gguf/legacy.gguf");
    let out = run(&[
        "link",
        "--base-url",
        "http://example.test/qd/",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let url = String::from_utf8(out.stdout).unwrap();
    let url = url.trim();
    let (base, fragment) = url.split_once('#').unwrap();
    assert_eq!(base, "http://example.test/qd/");
    assert!(url.len() < 8000);
    let back = quantdoc_core::report::link::decode(fragment).unwrap();
    let codes: Vec<&str> = back
        .report
        .findings
        .iter()
        .map(|f| f.code.as_str())
        .collect();
    assert_eq!(codes, vec!["GGUF_METADATA_BLOCK_COUNT"]);
    assert_eq!(back.report.tensors.len(), 12);
}

#[test]
fn demo_makes_files_whose_checks_find_the_planted_defects() {
    let d = tmpdir("demo");
    let out = run(&["demo", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for (file, code) in [
        ("broken-q4_0-no-scales.gguf", "GGUF_TENSOR_SIZE_MISMATCH"),
        ("broken-quantized-norm.gguf", "NORM_QUANTIZED"),
        ("broken-truncated.gguf", "GGUF_TRUNCATED"),
    ] {
        assert!(d.join(file).is_file(), "{file}");
        let o = run(&["check", "--json", d.join(file).to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{file}");
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            j["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["code"] == code),
            "{file}: {j}"
        );
    }
    let o = run(&["check", d.join("healthy.gguf").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text.contains("(exit status 1)"));
}
