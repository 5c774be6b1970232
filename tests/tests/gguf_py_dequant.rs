//! Fresh fixtures made by gguf-py at test time (scripts/gguf-py-fixtures.py `dequant`), not the
//! files in ../shared/: random but valid blocks of every ggml type the installed gguf-py
//! dequantizes, written with `gguf.GGUFWriter`, with NaN/Inf/subnormal/zero scales planted in
//! a few blocks. quantdoc must reproduce `gguf.quants.dequantize` bit for bit on every path:
//! the chunked decode the CLI and the scan use, the dispatching (SIMD) kernels, and the scalar
//! references.
//!
//! NaNs are compared by their bits like every other value: gguf-py's numpy arithmetic and
//! quantdoc's run the same IEEE operations on the same x86/wasm hardware rules, and the kernels
//! are written to keep gguf-py's operand order, so even NaN payloads and signs agree.

mod repair_support;

use std::collections::BTreeSet;

use quantdoc_core::encoding::{dequantize_tensor, read_and_decode, Encoding};
use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::kernels::{self, iquants, scalar, KernelError};
use quantdoc_tests::{assert_bits_eq, read_f32, MemFiles};
use repair_support::{fixtures_script, gguf_py, ok, scratch};
use serde_json::Value;

/// What gguf-py 0.19.0's `gguf.quants.dequantize` handles (F32 and F16 by special case, the rest
/// through its per-type classes). The script finds the list by asking gguf-py; this floor keeps a
/// broken discovery from passing with fewer types.
const GGUF_PY_0_19_0: &[&str] = &[
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL", "IQ4_XS",
    "TQ1_0", "TQ2_0", "MXFP4", "NVFP4",
];

/// The scalar reference of a type: `scalar::dequantize` hands the i-quant family to
/// `iquants::dequantize`, which takes SIMD paths, so those use `dequantize_reference`.
fn reference(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    if iquants::TYPES.contains(&ty) {
        iquants::dequantize_reference(ty, src, dst)
    } else {
        scalar::dequantize(ty, src, dst)
    }
}

fn make_fixtures(test: &str) -> Option<(std::path::PathBuf, Value)> {
    let py = gguf_py(test)?;
    let dir = scratch(test);
    fixtures_script(py, &["dequant", dir.to_str().unwrap()]);
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let m: Value = serde_json::from_str(&text).expect("parse manifest.json");
    assert_eq!(
        m["gguf_version"], "0.19.0",
        "the venv must hold gguf 0.19.0"
    );
    Some((dir, m))
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn count_nonfinite(xs: &[f32]) -> (u64, u64) {
    let nan = xs.iter().filter(|x| x.is_nan()).count() as u64;
    let inf = xs.iter().filter(|x| x.is_infinite()).count() as u64;
    (nan, inf)
}

#[test]
fn every_type_gguf_py_dequantizes_is_bit_exact() {
    let test = "every_type_gguf_py_dequantizes_is_bit_exact";
    let Some((dir, m)) = make_fixtures(test) else {
        return;
    };
    let gguf_path = dir.join(m["gguf"].as_str().unwrap());
    let file_bytes = std::fs::read(&gguf_path).unwrap();
    let files = MemFiles::read(std::slice::from_ref(&gguf_path));
    let model = files.load().expect("quantdoc loads the gguf-py file");
    // GGUFWriter wrote it: no layout finding is allowed.
    assert!(model.findings.is_empty(), "{:?}", model.findings);
    let sources = files.sources();

    let discovered = names(&m["gguf_py_dequantizes"]);
    for ty in GGUF_PY_0_19_0 {
        assert!(
            discovered.contains(*ty),
            "gguf-py 0.19.0 dequantizes {ty} but the script did not find it: {discovered:?}"
        );
    }

    let mut by_gguf_py = BTreeSet::new();
    let mut by_numpy = BTreeSet::new();
    let mut specials = 0usize;
    for e in m["tensors"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let ty_name = e["type"].as_str().unwrap();
        let ty = GgmlType::from_name(ty_name)
            .unwrap_or_else(|| panic!("gguf-py writes {ty_name}, a type quantdoc does not know"));
        let t = model
            .tensor(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(t.encoding, Encoding::Ggml { ggml_type: ty }, "{name}");
        let shape: Vec<u64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, shape, "{name} shape");
        let part = t.primary();
        assert_eq!(part.offset, e["offset"].as_u64().unwrap(), "{name} offset");
        assert_eq!(part.nbytes, e["n_bytes"].as_u64().unwrap(), "{name} bytes");
        let raw = &file_bytes[part.offset as usize..(part.offset + part.nbytes) as usize];

        let want = read_f32(&dir.join(e["expected"].as_str().unwrap()));
        assert_eq!(want.len() as u64, t.n_elements(), "{name}: expected values");
        // The planted scales really produced what the manifest says (the oracle is not vacuous).
        let (nan, inf) = count_nonfinite(&want);
        assert_eq!(nan, e["nan"].as_u64().unwrap(), "{name}: NaN count");
        assert_eq!(inf, e["inf"].as_u64().unwrap(), "{name}: Inf count");

        // 1. The decode path of `quantdoc dequant` and the scan (encoding::plan/decode).
        let got = dequantize_tensor(&model, t, &sources)
            .unwrap_or_else(|err| panic!("{name}: dequantize_tensor: {err}"));
        assert_bits_eq(&format!("{name} (dequantize_tensor)"), &got, &want);

        // 2. The same, one row per chunk.
        let row = t.row_len() as usize;
        let mut rows = vec![0f32; want.len()];
        for (i, chunk) in rows.chunks_mut(row).enumerate() {
            read_and_decode(&model, t, &sources, (i * row) as u64, chunk)
                .unwrap_or_else(|err| panic!("{name} row {i}: {err}"));
        }
        assert_bits_eq(&format!("{name} (row chunks)"), &rows, &want);

        // 3. The dispatching kernel (SIMD where this machine has it) over the whole tensor.
        let mut simd = vec![0f32; want.len()];
        kernels::dequantize(ty, raw, &mut simd)
            .unwrap_or_else(|err| panic!("{name}: kernels::dequantize: {err}"));
        assert_bits_eq(&format!("{name} (kernels::dequantize)"), &simd, &want);

        // 4. The scalar reference.
        let mut scalar_out = vec![0f32; want.len()];
        reference(ty, raw, &mut scalar_out)
            .unwrap_or_else(|err| panic!("{name}: scalar reference: {err}"));
        assert_bits_eq(&format!("{name} (scalar reference)"), &scalar_out, &want);

        specials += e["special"].as_array().map_or(0, |s| s.len());
        match e["oracle"].as_str().unwrap() {
            "gguf.quants.dequantize" => by_gguf_py.insert(ty_name.to_string()),
            "numpy.astype(float32)" => by_numpy.insert(ty_name.to_string()),
            other => panic!("{name}: unknown oracle {other}"),
        };
    }

    // Every type gguf-py dequantizes was written, read and compared.
    let missing: Vec<&String> = discovered.difference(&by_gguf_py).collect();
    assert!(
        missing.is_empty(),
        "gguf-py dequantizes {missing:?} but no fixture of it was checked"
    );
    assert_eq!(by_numpy, names(&m["numpy_oracle"]), "numpy-oracle types");
    assert!(specials >= 200, "only {specials} planted special values");
    eprintln!(
        "{test}: {} types bit-exact against gguf.quants.dequantize ({}), {} against numpy astype ({}), {specials} planted special scales/values; gguf-py {} does not dequantize {}",
        by_gguf_py.len(),
        by_gguf_py.iter().cloned().collect::<Vec<_>>().join(" "),
        by_numpy.len(),
        by_numpy.iter().cloned().collect::<Vec<_>>().join(" "),
        m["gguf_version"].as_str().unwrap(),
        names(&m["not_dequantized_by_gguf_py"])
            .into_iter()
            .collect::<Vec<_>>()
            .join(" "),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `quantdoc dequant` end to end (file mapping, chunked decode, f32 output) on a few types
/// with SIMD paths and planted non-finite scales.
#[test]
fn cli_dequant_writes_gguf_py_values() {
    let test = "cli_dequant_writes_gguf_py_values";
    let Some((dir, m)) = make_fixtures(test) else {
        return;
    };
    let gguf = dir.join(m["gguf"].as_str().unwrap());
    for ty in ["Q4_K", "IQ4_XS", "MXFP4", "F16"] {
        let out = dir.join(format!("cli-{ty}.f32"));
        ok(&[
            "dequant",
            gguf.to_str().unwrap(),
            "--tensor",
            &format!("dequant.{ty}"),
            "--out",
            out.to_str().unwrap(),
        ]);
        let got = std::fs::read(&out).unwrap();
        let want = std::fs::read(dir.join(format!("{ty}.f32"))).unwrap();
        assert_eq!(got.len(), want.len(), "{ty}: output length");
        if got != want {
            assert_bits_eq(
                &format!("quantdoc dequant {ty}"),
                &read_f32(&out),
                &read_f32(&dir.join(format!("{ty}.f32"))),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
