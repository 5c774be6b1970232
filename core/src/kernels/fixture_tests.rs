//! The shared fixtures (written and dequantized by gguf-py 0.19.0) against these kernels.

use super::{dequantize, scalar};
use crate::ggml::types::GgmlType;
use crate::testutil::{assert_bits_eq, fixtures_or_skip, manifest, read_f32};

/// The types whose kernels live in this module rather than in `iquants`.
const OWN_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F64,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::Q8_K,
];

#[test]
fn gguf_fixture_tensors_match_gguf_py_bit_for_bit() {
    let Some(dir) = fixtures_or_skip("gguf_fixture_tensors_match_gguf_py_bit_for_bit") else {
        return;
    };
    let m = manifest(&dir);
    let mut checked = Vec::new();
    for f in m["fixtures"].as_array().expect("fixtures array") {
        if f["format"] != "gguf" {
            continue;
        }
        let name = f["ggml_type"].as_str().expect("ggml_type");
        let ty = GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"));
        if !OWN_TYPES.contains(&ty) {
            continue;
        }
        let id = f["id"].as_str().expect("id");
        let file = std::fs::read(dir.join(f["file"].as_str().expect("file"))).expect("read gguf");
        let offset = f["data_offset_in_file"].as_u64().expect("offset") as usize;
        let len = f["n_bytes"].as_u64().expect("n_bytes") as usize;
        let src = &file[offset..offset + len];
        let want = read_f32(&dir.join(f["expected"].as_str().expect("expected")));

        let mut got = vec![f32::NAN; want.len()];
        dequantize(ty, src, &mut got).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_bits_eq(id, &got, &want);

        let mut reference = vec![f32::NAN; want.len()];
        scalar::dequantize(ty, src, &mut reference).unwrap();
        assert_bits_eq(&format!("{id} (scalar)"), &reference, &want);
        checked.push(ty);
    }
    // Every type the fixtures were made for must have been seen, so a renamed manifest field
    // cannot turn this test into a no-op.
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::F64,
        GgmlType::I8,
        GgmlType::I64,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ] {
        assert!(checked.contains(&ty), "no fixture tensor of type {ty}");
    }
}

#[test]
fn shared_type_table_matches_ggml_type() {
    let Some(dir) = fixtures_or_skip("shared_type_table_matches_ggml_type") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("ggml_types.json")).expect("ggml_types.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse ggml_types.json");
    let types = json["types"].as_array().expect("types array");
    assert!(!types.is_empty());
    for t in types {
        let id = t["id"].as_u64().expect("id") as u32;
        let name = t["name"].as_str().expect("name");
        let ty = GgmlType::from_id(id).unwrap_or_else(|| panic!("id {id} ({name}) missing"));
        assert_eq!(ty.name(), name, "name of id {id}");
        assert_eq!(ty.block_size(), t["block_size"].as_u64().unwrap(), "{name}");
        assert_eq!(ty.type_size(), t["type_size"].as_u64().unwrap(), "{name}");
    }
}
