//! Bit-exact decoding of every safetensors fixture written by the real libraries
//! (bitsandbytes, MLX, gpt-oss layout): MANIFEST.json entries whose format is not gguf.

use std::collections::BTreeMap;
use std::path::Path;

use crate::encoding::dequantize_tensor;
use crate::load::{load, Input};
use crate::model::Model;
use crate::source::SliceSource;
use crate::testutil::{assert_bits_eq, fixtures_or_skip, manifest, read_f32};

/// Every file of a fixture directory, read into memory.
pub(crate) fn read_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

pub(crate) fn load_dir(files: &[(String, Vec<u8>)]) -> Model {
    let sources: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(b.as_slice()))
        .collect();
    let inputs: Vec<Input<'_>> = files
        .iter()
        .zip(&sources)
        .map(|((p, _), s)| Input {
            path: p.clone(),
            source: s,
        })
        .collect();
    load(&inputs).unwrap_or_else(|e| panic!("load: {e}"))
}

fn non_gguf_fixtures(dir: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let m = manifest(dir);
    let mut by_dir: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for f in m["fixtures"].as_array().unwrap() {
        if f["format"].as_str().unwrap_or("gguf") == "gguf" {
            continue;
        }
        let file = f["file"].as_str().unwrap();
        let d = file
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("")
            .to_string();
        by_dir.entry(d).or_default().push(f.clone());
    }
    by_dir
}

#[test]
fn every_safetensors_fixture_decodes_bit_exactly() {
    let Some(dir) = fixtures_or_skip("every_safetensors_fixture_decodes_bit_exactly") else {
        return;
    };
    let mut checked = 0;
    for (sub, entries) in non_gguf_fixtures(&dir) {
        let files = read_dir(&dir.join(&sub));
        let model = load_dir(&files);
        let sources: Vec<SliceSource<&[u8]>> = files
            .iter()
            .map(|(_, b)| SliceSource::new(b.as_slice()))
            .collect();
        let refs: Vec<&SliceSource<&[u8]>> = sources.iter().collect();
        for f in entries {
            let id = f["id"].as_str().unwrap();
            let name = f["tensor"].as_str().unwrap();
            let t = model.tensor(name).unwrap_or_else(|| {
                panic!(
                    "{id}: no logical tensor {name}; have {:?}",
                    model
                        .tensors
                        .iter()
                        .map(|t| (&t.name, t.encoding.label()))
                        .collect::<Vec<_>>()
                )
            });
            let shape: Vec<u64> = f["shape_logical"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(t.shape, shape, "{id}: logical shape");
            let got = dequantize_tensor(&model, t, &refs).unwrap_or_else(|e| panic!("{id}: {e}"));
            let want = read_f32(&dir.join(f["expected"].as_str().unwrap()));
            assert_bits_eq(id, &got, &want);
            checked += 1;
        }
        assert!(
            model
                .findings
                .iter()
                .all(|f| f.severity != crate::finding::Severity::Error),
            "{sub}: healthy fixture has error findings: {:?}",
            model.findings
        );
    }
    assert!(checked >= 100, "only {checked} fixtures checked");
}

/// Decoding chunk by chunk (granule-sized and odd multiples) equals decoding at once.
#[test]
fn chunked_decoding_matches_whole_tensor() {
    let Some(dir) = fixtures_or_skip("chunked_decoding_matches_whole_tensor") else {
        return;
    };
    for sub in [
        "bnb/tf_llama_nf4_dq",
        "bnb/tf_llama_int8",
        "mlx/affine_b3_g64_bf16",
        "mlx/nvfp4_bf16",
        "gptoss_mxfp4/experts_e2",
    ] {
        let files = read_dir(&dir.join(sub));
        let model = load_dir(&files);
        let sources: Vec<SliceSource<&[u8]>> = files
            .iter()
            .map(|(_, b)| SliceSource::new(b.as_slice()))
            .collect();
        let refs: Vec<&SliceSource<&[u8]>> = sources.iter().collect();
        for t in model.tensors.iter().filter(|t| t.encoding.is_quantized()) {
            let whole = dequantize_tensor(&model, t, &refs).unwrap();
            let g = crate::encoding::granule(t).unwrap();
            let n = t.n_elements();
            for step in [g, 3 * g] {
                let mut got = vec![0f32; n as usize];
                let mut s = 0;
                while s < n {
                    let e = (s + step).min(n);
                    crate::encoding::read_and_decode(
                        &model,
                        t,
                        &refs,
                        s,
                        &mut got[s as usize..e as usize],
                    )
                    .unwrap();
                    s = e;
                }
                assert_bits_eq(&format!("{sub} {} step {step}", t.name), &got, &whole);
            }
        }
    }
}

/// No false alarms: the healthy fixtures give no warning or error, from the loader or the
/// header rules, and every packed bitsandbytes weight is explained.
#[test]
fn healthy_fixtures_raise_no_alarm() {
    let Some(dir) = fixtures_or_skip("healthy_fixtures_raise_no_alarm") else {
        return;
    };
    for sub in non_gguf_fixtures(&dir).keys() {
        let model = load_dir(&read_dir(&dir.join(sub)));
        let mut findings = model.findings.clone();
        findings.extend(crate::rules::hf::check(&model));
        let alarms: Vec<_> = findings
            .iter()
            .filter(|f| f.severity != crate::finding::Severity::Info)
            .collect();
        assert!(alarms.is_empty(), "{sub}: {alarms:#?}");
        let packed = model
            .tensors
            .iter()
            .filter(|t| matches!(t.encoding, crate::encoding::Encoding::Bnb4 { .. }))
            .count();
        let explained = findings
            .iter()
            .filter(|f| f.code == "BNB_PACKED_WEIGHT")
            .count();
        assert_eq!(packed, explained, "{sub}");
        assert!(
            model
                .tensors
                .iter()
                .all(|t| !t.name.ends_with(".absmax") && !t.name.ends_with(".scales")),
            "{sub}: ungrouped parts"
        );
    }
}
