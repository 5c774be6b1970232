//! Hugging Face checkpoints through the public API, as the CLI uses it: every safetensors
//! fixture directory (bitsandbytes, MLX, gpt-oss) decodes bit for bit, stays free of
//! alarms, and the two seed write-ups' broken checkpoints (a deleted NF4 weight; MLX
//! weights stored transposed) are diagnosed. The broken checkpoints are made in memory
//! from the healthy fixtures.

use std::path::{Path, PathBuf};

use quantdoc_core::encoding::{dequantize_tensor, Encoding};
use quantdoc_core::finding::{Finding, Severity};
use quantdoc_core::model::Model;
use quantdoc_core::rules::header_rules;
use quantdoc_tests::{assert_bits_eq, fixtures_or_skip, manifest, read_f32, MemFiles};
use serde_json::{Map, Value};

fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn findings(model: &Model) -> Vec<Finding> {
    let mut f = model.findings.clone();
    f.extend(header_rules(model));
    f
}

#[test]
fn safetensors_fixture_directories_decode_bit_exactly() {
    let Some(dir) = fixtures_or_skip("safetensors_fixture_directories_decode_bit_exactly") else {
        return;
    };
    let m = manifest(&dir);
    let mut checked = 0;
    for f in m["fixtures"].as_array().unwrap() {
        if f["format"] == "gguf" {
            continue;
        }
        let file = dir.join(f["file"].as_str().unwrap());
        let files = MemFiles::read(&dir_files(file.parent().unwrap()));
        let model = files.load().unwrap();
        let alarms: Vec<Finding> = findings(&model)
            .into_iter()
            .filter(|x| x.severity != Severity::Info)
            .collect();
        assert!(alarms.is_empty(), "{}: {alarms:#?}", f["id"]);
        let t = model.tensor(f["tensor"].as_str().unwrap()).unwrap();
        let got = dequantize_tensor(&model, t, &files.sources()).unwrap();
        let want = read_f32(&dir.join(f["expected"].as_str().unwrap()));
        assert_bits_eq(f["id"].as_str().unwrap(), &got, &want);
        checked += 1;
    }
    assert!(checked >= 100, "{checked} fixtures");
}

/// Re-write a safetensors file with `edit` applied to its header entries (None drops a
/// tensor); data is re-laid out contiguously in the new order.
fn rewrite(bytes: &[u8], edit: &dyn Fn(&str, &mut Map<String, Value>) -> bool) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out_header = Map::new();
    let mut out_data = Vec::new();
    for (name, mut entry) in header {
        if name == "__metadata__" {
            out_header.insert(name, entry);
            continue;
        }
        let obj = entry.as_object_mut().unwrap();
        let offs: Vec<usize> = obj["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        if !edit(&name, obj) {
            continue;
        }
        let start = out_data.len();
        out_data.extend_from_slice(&data[offs[0]..offs[1]]);
        obj.insert(
            "data_offsets".into(),
            serde_json::json!([start, out_data.len()]),
        );
        out_header.insert(name, entry);
    }
    let mut h = serde_json::to_vec(&out_header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(out_data);
    out
}

/// A fixture directory in memory with its model.safetensors rewritten.
fn edited(dir: &Path, edit: &dyn Fn(&str, &mut Map<String, Value>) -> bool) -> MemFiles {
    let mut files = MemFiles::read(&dir_files(dir));
    for (path, src) in files.files.iter_mut() {
        if path.ends_with("model.safetensors") {
            let bytes = std::fs::read(path.as_str()).unwrap();
            *src = quantdoc_core::source::SliceSource::new(rewrite(&bytes, edit));
        }
    }
    files
}

/// Seed 000: the user deleted the "[N, 1] corrupted tensor" – the packed NF4 weight.
#[test]
fn deleting_a_packed_nf4_weight_is_diagnosed() {
    let Some(dir) = fixtures_or_skip("deleting_a_packed_nf4_weight_is_diagnosed") else {
        return;
    };
    let dir = dir.join("bnb/tf_llama_nf4_dq");
    let w = "model.layers.0.mlp.down_proj.weight";
    let healthy = MemFiles::read(&dir_files(&dir)).load().unwrap();
    let f = findings(&healthy);
    let packed = f
        .iter()
        .find(|x| x.code == "BNB_PACKED_WEIGHT" && x.tensor.as_deref() == Some(w))
        .expect("packed weight explained");
    assert_eq!(
        packed.message,
        "model.layers.0.mlp.down_proj.weight is stored as [20480, 1] uint8 = NF4-packed [128, 320] (128×320/2 = 20,480), block size 64, double-quantized"
    );

    let broken = edited(&dir, &|name, _| name != w).load().unwrap();
    let f = findings(&broken);
    let orphan = f
        .iter()
        .find(|x| x.code == "QUANT_PARTS_ORPHANED")
        .expect("orphaned parts reported");
    assert_eq!(orphan.tensor.as_deref(), Some(w));
    assert!(
        orphan
            .message
            .contains("its quant state says it was NF4 [128, 320] packed into [20,480, 1] uint8"),
        "{}",
        orphan.message
    );
    assert!(f
        .iter()
        .any(|x| x.code == "MISSING_TENSOR" && x.tensor.as_deref() == Some(w)));
    // The other six packed weights are still whole.
    let still = broken
        .tensors
        .iter()
        .filter(|t| matches!(t.encoding, Encoding::Bnb4 { .. }))
        .count();
    assert_eq!(still, 6);
}

/// Seed 001: `mx.dequantize` says "Shape of scales and biases does not match the matrix"
/// because the packed weight and its scales were stored transposed.
#[test]
fn transposed_mlx_weights_are_diagnosed() {
    let Some(dir) = fixtures_or_skip("transposed_mlx_weights_are_diagnosed") else {
        return;
    };
    let dir = dir.join("mlx/affine_b4_g64_bf16");
    let q = "model.layers.0.self_attn.q_proj";
    let broken = edited(&dir, &|name, entry| {
        if name.starts_with(q) {
            let mut shape = entry["shape"].as_array().unwrap().clone();
            shape.reverse();
            entry.insert("shape".into(), Value::Array(shape));
        }
        true
    })
    .load()
    .unwrap();
    let f = findings(&broken);
    let x = f
        .iter()
        .find(|x| x.code == "MLX_SHAPE_MISMATCH")
        .expect("reported");
    assert_eq!(
        x.tensor.as_deref(),
        Some("model.layers.0.self_attn.q_proj.weight")
    );
    assert!(
        x.message
            .contains("config.json declares affine 4-bit group 64, which these shapes do not fit"),
        "{}",
        x.message
    );
    assert!(
        x.message.contains("they fit: affine 4-bit group 64"),
        "{}",
        x.message
    );
    assert!(x.hint.contains("look transposed"), "{}", x.hint);
    // Only the edited module is affected.
    assert_eq!(
        f.iter().filter(|x| x.code == "MLX_SHAPE_MISMATCH").count(),
        1
    );
}
