//! Every GGUF fixture written by gguf-py: the reader must report exactly what MANIFEST.json
//! says was written, and `dequant` must reproduce gguf-py's values bit for bit.

use quantdoc_core::encoding::dequantize_tensor;
use quantdoc_tests::{assert_bits_eq, fixtures_or_skip, manifest, read_f32, MemFiles};
use serde_json::Value;

fn gguf_files(m: &Value) -> Vec<&Value> {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["format"] == "gguf")
        .collect()
}

#[test]
fn metadata_matches_manifest() {
    let Some(dir) = fixtures_or_skip("metadata_matches_manifest") else {
        return;
    };
    let m = manifest(&dir);
    for f in gguf_files(&m) {
        let files = MemFiles::read(&[dir.join(f["file"].as_str().unwrap())]);
        let model = files.load().unwrap();
        assert_eq!(model.version, 3);
        assert_eq!(model.alignment, f["params"]["alignment"].as_u64().unwrap());
        assert_eq!(
            model.tensors.len() as u64,
            f["params"]["tensor_count"].as_u64().unwrap()
        );
        let listed = f
            .get("metadata")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for e in &listed {
            let key = e["key"].as_str().unwrap();
            let entry = model
                .meta_entry(key)
                .unwrap_or_else(|| panic!("{}: key {key} missing", f["file"]));
            if e["type"] != "ARRAY" {
                assert_eq!(
                    entry.value_type.unwrap().name(),
                    e["type"].as_str().unwrap(),
                    "{key} type"
                );
            }
            if let Some(sub) = e.get("sub_type") {
                assert_eq!(
                    entry.array_type.unwrap().name(),
                    sub.as_str().unwrap(),
                    "{key} array type"
                );
            }
            let got = entry.value.to_json();
            let want = &e["value"];
            if want.is_f64()
                || want
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v.is_f64()))
            {
                assert_eq!(
                    got.to_string().parse::<Value>().unwrap(),
                    *want,
                    "{key} value"
                );
            } else {
                assert_eq!(got, *want, "{key} value");
            }
        }
        // gguf-py wrote these files: no layout finding is allowed.
        assert!(
            model.findings.is_empty(),
            "{}: {:?}",
            f["file"],
            model.findings
        );
    }
}

#[test]
fn tensors_match_manifest() {
    let Some(dir) = fixtures_or_skip("tensors_match_manifest") else {
        return;
    };
    let m = manifest(&dir);
    let mut checked = 0;
    for fx in m["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["format"] == "gguf")
    {
        let files = MemFiles::read(&[dir.join(fx["file"].as_str().unwrap())]);
        let model = files.load().unwrap();
        let name = fx["tensor"].as_str().unwrap();
        let t = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let shape: Vec<u64> = fx["shape_logical"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, shape, "{name} shape");
        let part = t.primary();
        assert_eq!(part.dtype, fx["ggml_type"].as_str().unwrap(), "{name} type");
        assert_eq!(
            part.offset,
            fx["data_offset_in_file"].as_u64().unwrap(),
            "{name} offset"
        );
        assert_eq!(part.nbytes, fx["n_bytes"].as_u64().unwrap(), "{name} bytes");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} GGUF fixture tensors checked");
}

/// Types the foundation issue requires `dequant` for; the kernels add the rest.
#[test]
fn dequant_is_bit_exact() {
    let Some(dir) = fixtures_or_skip("dequant_is_bit_exact") else {
        return;
    };
    let m = manifest(&dir);
    let mut checked = 0;
    for fx in m["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["format"] == "gguf")
    {
        let files = MemFiles::read(&[dir.join(fx["file"].as_str().unwrap())]);
        let model = files.load().unwrap();
        let name = fx["tensor"].as_str().unwrap();
        let t = model.tensor(name).unwrap();
        let got = match dequantize_tensor(&model, t, &files.sources()) {
            Ok(v) => v,
            Err(e) => {
                let ty = fx["ggml_type"].as_str().unwrap();
                assert!(
                    !["F32", "F16", "BF16", "Q8_0", "Q4_0"].contains(&ty),
                    "{name}: {e}"
                );
                continue;
            }
        };
        let want = read_f32(&dir.join(fx["expected"].as_str().unwrap()));
        assert_bits_eq(name, &got, &want);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} tensors dequantized");
}
