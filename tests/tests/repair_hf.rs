//! `quantdoc repair CHECKPOINT -o DIR` on every Hugging Face fixture (bitsandbytes, MLX,
//! gpt-oss MXFP4): the dense output holds exactly the libraries' own dequantized values,
//! no quantization artifact or config survives, and Python's safetensors loads it.

mod repair_support;

use std::path::Path;

use quantdoc_core::encoding::dequantize_tensor;
use quantdoc_core::load::{load, Input};
use quantdoc_core::model::Model;
use quantdoc_core::source::SliceSource;
use quantdoc_tests::{assert_bits_eq, fixtures_or_skip, manifest, read_f32};
use repair_support::{check_script, gguf_py, ok, scratch};

fn load_dir(dir: &Path) -> (Model, Vec<(String, Vec<u8>)>) {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".safetensors") || n.ends_with(".json")
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn torch_dtype(f: &serde_json::Value) -> &'static str {
    let from = &f["expected_from"];
    let d = from["library_output_dtype"]
        .as_str()
        .or(from["native_output_dtype"].as_str())
        .unwrap_or("bfloat16");
    match d {
        "float16" => "f16",
        "float32" => "f32",
        _ => "bf16",
    }
}

#[test]
fn dequantized_checkpoints_hold_the_libraries_values() {
    let Some(fx) = fixtures_or_skip("dequantized_checkpoints_hold_the_libraries_values") else {
        return;
    };
    let m = manifest(&fx);
    let fixtures: Vec<&serde_json::Value> = m["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["format"]
                .as_str()
                .is_some_and(|s| s.starts_with("safetensors"))
        })
        .collect();
    let mut dirs: Vec<String> = fixtures
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            file.rsplit_once('/').unwrap().0.to_string()
        })
        .collect();
    dirs.dedup();
    assert!(dirs.len() >= 15, "{dirs:?}");
    let scratch_dir = scratch("hf");
    let py = gguf_py("dequantized_checkpoints_hold_the_libraries_values");
    let mut compared = 0;
    for dir in &dirs {
        let ours: Vec<&&serde_json::Value> = fixtures
            .iter()
            .filter(|f| f["file"].as_str().unwrap().starts_with(&format!("{dir}/")))
            .collect();
        let dtype = torch_dtype(ours[0]);
        let out = scratch_dir.join(dir.replace('/', "_"));
        let said = ok(&[
            "repair",
            fx.join(dir).to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--dtype",
            dtype,
            "--max-shard-size",
            "40KB",
        ]);
        assert!(said.contains("verified"), "{dir}: {said}");
        let (model, files) = load_dir(&out);
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert!(
            config.get("quantization_config").is_none(),
            "{dir}: config keeps quantization_config"
        );
        for t in &model.tensors {
            assert!(
                !t.encoding.is_quantized(),
                "{dir}: {} is still {}",
                t.name,
                t.encoding.label()
            );
            for bad in [
                ".absmax",
                ".quant_map",
                ".quant_state",
                ".SCB",
                ".scales",
                ".biases",
                "_blocks",
                "_scales",
            ] {
                assert!(!t.name.contains(bad), "{dir}: artifact {} left", t.name);
            }
        }
        if files
            .iter()
            .filter(|(p, _)| p.ends_with(".safetensors"))
            .count()
            > 1
        {
            assert!(
                out.join("model.safetensors.index.json").is_file(),
                "{dir}: no index"
            );
        }
        let srcs: Vec<SliceSource<&[u8]>> = files
            .iter()
            .map(|(_, b)| SliceSource::new(&b[..]))
            .collect();
        let srcs: Vec<&SliceSource<&[u8]>> = srcs.iter().collect();
        for f in &ours {
            let name = f["tensor"].as_str().unwrap();
            let t = model
                .tensor(name)
                .unwrap_or_else(|| panic!("{dir}: {name} missing from the output"));
            let mut got = dequantize_tensor(&model, t, &srcs).unwrap();
            let want = read_f32(&fx.join(f["expected"].as_str().unwrap()));
            let logical: Vec<u64> = f["shape_logical"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            if dir.starts_with("gptoss") {
                // gpt-oss experts are written [E, C, R]; the fixture is [E, R, C].
                let k = logical.len();
                let (r, c) = (logical[k - 2] as usize, logical[k - 1] as usize);
                assert_eq!(t.shape[..k - 2], logical[..k - 2]);
                assert_eq!((t.shape[k - 2], t.shape[k - 1]), (c as u64, r as u64));
                let mut back = vec![0f32; got.len()];
                for (src, dst) in got.chunks_exact(r * c).zip(back.chunks_exact_mut(r * c)) {
                    for i in 0..c {
                        for j in 0..r {
                            dst[j * c + i] = src[i * r + j];
                        }
                    }
                }
                got = back;
            }
            assert_bits_eq(&format!("{dir}/{name}"), &got, &want);
            compared += 1;
        }
        if let Some(py) = py {
            let shards: Vec<String> = files
                .iter()
                .filter(|(p, _)| p.ends_with(".safetensors"))
                .map(|(p, _)| p.clone())
                .collect();
            let mut args = vec!["dump-safetensors"];
            args.extend(shards.iter().map(|s| s.as_str()));
            let dump: serde_json::Value = serde_json::from_str(&check_script(py, &args)).unwrap();
            let tensors = dump["tensors"].as_object().unwrap();
            assert_eq!(tensors.len(), model.tensors.len(), "{dir}");
            for t in &model.tensors {
                let d = &tensors[&t.name];
                let shape: Vec<u64> = d["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                assert_eq!(shape, t.shape, "{dir}: {}", t.name);
                assert_eq!(d["dtype"], t.encoding.label().as_str(), "{dir}: {}", t.name);
                if let Some(h) = d.get("sha256").and_then(|v| v.as_str()) {
                    let p = t.primary();
                    let bytes = &files[p.file].1[p.offset as usize..(p.offset + p.nbytes) as usize];
                    assert_eq!(
                        h,
                        hex(&quantdoc_core::repair::sha256(bytes)),
                        "{dir}: {}",
                        t.name
                    );
                }
            }
        }
    }
    assert!(compared >= 60, "only {compared} tensors compared");
    std::fs::remove_dir_all(&scratch_dir).ok();
}
