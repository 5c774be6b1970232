//! `quantdoc repair CHECKPOINT -o OUT_DIR` for Hugging Face checkpoints: every quantized
//! logical tensor (bitsandbytes, MLX, MXFP4, FP8, GPTQ/AWQ) is decoded and written dense;
//! every quantization artifact is dropped; every other tensor is copied byte for byte.
//! The output is sharded safetensors with `model.safetensors.index.json`, and a config.json
//! without `quantization_config` and with `torch_dtype` set.
//!
//! Converted tensors are verified exactly: the output must decode to the source values
//! rounded once to the output dtype.

use std::collections::{BTreeMap, HashSet};

use half::{bf16, f16};
use serde_json::Value;

use super::{sha256_of_part, Fix, RepairError, TensorSource, Totals};
use crate::dtype::Dtype;
use crate::encoding::{self, DecodeError, Encoding};
use crate::finding::Finding;
use crate::hf::parts::quant_part;
use crate::model::{LogicalTensor, Model};
use crate::source::ByteSource;
use crate::write::safetensors::{write_safetensors, SafetensorsPlan, StTensor};
use crate::write::WriteError;

#[derive(Debug, Clone, PartialEq)]
pub struct HfOutTensor {
    /// Index into the input `Model::tensors`.
    pub input: usize,
    pub tensor: StTensor,
    pub source: TensorSource,
    /// Write each [R, C] matrix of the logical [.., R, C] tensor transposed, as [.., C, R]:
    /// gpt-oss experts, whose dense form in transformers is [E, hidden, out] while the
    /// MXFP4 blocks are stored [E, out, hidden].
    pub transpose: bool,
}

#[derive(Debug, Clone)]
pub struct HfRewrite {
    pub tensors: Vec<HfOutTensor>,
    /// Indices into `tensors`, one list per output shard.
    pub shards: Vec<Vec<usize>>,
    /// The dtype converted tensors are written in (and config.json's `torch_dtype`).
    pub dtype: Dtype,
    pub fixes: Vec<Fix>,
    pub blocking: Vec<Finding>,
}

impl HfRewrite {
    /// File name of shard `i`, as transformers names them.
    pub fn shard_name(&self, i: usize) -> String {
        if self.shards.len() == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", i + 1, self.shards.len())
        }
    }

    pub fn shard_plan(&self, i: usize) -> Result<SafetensorsPlan, RepairError> {
        let ts: Vec<StTensor> = self.shards[i]
            .iter()
            .map(|&j| self.tensors[j].tensor.clone())
            .collect();
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        Ok(SafetensorsPlan::new(&ts, &meta)?)
    }

    /// `model.safetensors.index.json` (only meaningful with more than one shard).
    pub fn index_json(&self) -> Result<Value, RepairError> {
        let mut total = 0u64;
        let mut map = serde_json::Map::new();
        for (i, shard) in self.shards.iter().enumerate() {
            for &j in shard {
                let t = &self.tensors[j].tensor;
                total += t.nbytes()?;
                map.insert(t.name.clone(), Value::String(self.shard_name(i)));
            }
        }
        Ok(serde_json::json!({
            "metadata": { "total_size": total },
            "weight_map": Value::Object(map),
        }))
    }
}

fn out_dtype_of(e: &Encoding) -> Option<Dtype> {
    match e {
        Encoding::Bnb4 { out_dtype, .. }
        | Encoding::BnbInt8 { out_dtype }
        | Encoding::MlxAffine { out_dtype, .. }
        | Encoding::MlxFloat { out_dtype, .. }
        | Encoding::GptOssMxfp4 { out_dtype }
        | Encoding::Fp8 { out_dtype, .. }
        | Encoding::Gptq { out_dtype, .. }
        | Encoding::Awq { out_dtype, .. } => Some(*out_dtype),
        _ => None,
    }
}

/// Plan the repair. `dtype` None: the dtype the quantization library itself dequantizes to
/// (the first quantized tensor's), or BF16.
pub fn plan_hf_repair(
    model: &Model,
    dtype: Option<Dtype>,
    max_shard_bytes: u64,
) -> Result<HfRewrite, RepairError> {
    if let Some(d) = dtype {
        if !matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32) {
            return Err(RepairError::Refused(format!(
                "--dtype {d}: choose F16, BF16 or F32"
            )));
        }
    }
    let dtype = dtype
        .or_else(|| {
            model
                .tensors
                .iter()
                .find_map(|t| out_dtype_of(&t.encoding))
                .filter(|d| matches!(d, Dtype::F16 | Dtype::BF16 | Dtype::F32))
        })
        .unwrap_or(Dtype::BF16);
    let names: HashSet<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
    let exists = |n: &str| names.contains(n);
    let mut rw = HfRewrite {
        tensors: Vec::new(),
        shards: Vec::new(),
        dtype,
        fixes: Vec::new(),
        blocking: Vec::new(),
    };
    for f in &model.findings {
        if f.severity == crate::finding::Severity::Error && f.code.starts_with("ST_") {
            rw.blocking.push(f.clone());
        }
    }
    for (i, t) in model.tensors.iter().enumerate() {
        match &t.encoding {
            Encoding::Dense { dtype: stored } => {
                if let Some(qp) = quant_part(&t.name, &exists) {
                    if exists(&qp.base) {
                        rw.fixes.push(Fix::new(
                            "QUANT_ARTIFACTS_LEFT",
                            Some(&t.name),
                            format!("drop this {} part of {}", qp.family.label(), qp.base),
                        ));
                    } else {
                        rw.blocking.push(Finding::error(
                            "QUANT_PARTS_ORPHANED",
                            Some(&qp.base),
                            format!(
                                "{} is a {} part of {}, which is missing: the weight cannot be rebuilt",
                                t.name,
                                qp.family.label(),
                                qp.base
                            ),
                            format!("restore {} from the original checkpoint", qp.base),
                        ));
                    }
                    continue;
                }
                // FP8 weights without a scale tensor are still quantized storage.
                let fp8 = matches!(stored, Dtype::F8_E4M3 | Dtype::F8_E5M2);
                if fp8 {
                    rw.fixes.push(Fix::new(
                        "",
                        Some(&t.name),
                        format!("convert {stored} to dense {dtype}"),
                    ));
                }
                rw.tensors.push(HfOutTensor {
                    input: i,
                    tensor: StTensor {
                        name: t.name.clone(),
                        dtype: if fp8 { dtype } else { *stored },
                        shape: t.shape.clone(),
                    },
                    source: if fp8 {
                        TensorSource::Convert
                    } else {
                        TensorSource::Copy
                    },
                    transpose: false,
                });
            }
            Encoding::Ggml { .. } | Encoding::GgmlUnknown { .. } => {
                return Err(RepairError::Refused(format!(
                    "{} is a GGUF tensor; repair GGUF files with `quantdoc repair FILE.gguf`",
                    t.name
                )));
            }
            quantized => {
                if let Err(e) = encoding::granule(t) {
                    rw.blocking.push(Finding::error(
                        "DECODE_UNSUPPORTED",
                        Some(&t.name),
                        format!("{} ({}) cannot be decoded: {e}", t.name, quantized.label()),
                        "nothing can be written without decoding every quantized tensor",
                    ));
                    continue;
                }
                rw.fixes.push(Fix::new(
                    "",
                    Some(&t.name),
                    format!("dequantize {} to dense {dtype}", quantized.label()),
                ));
                let transpose =
                    matches!(quantized, Encoding::GptOssMxfp4 { .. }) && t.shape.len() >= 2;
                let mut shape = t.shape.clone();
                if transpose {
                    let k = shape.len();
                    shape.swap(k - 2, k - 1);
                    rw.fixes.push(Fix::new(
                        "",
                        Some(&t.name),
                        format!(
                            "write as {shape:?} (transformers' dense layout of gpt-oss experts)"
                        ),
                    ));
                }
                rw.tensors.push(HfOutTensor {
                    input: i,
                    tensor: StTensor {
                        name: t.name.clone(),
                        dtype,
                        shape,
                    },
                    source: TensorSource::Convert,
                    transpose,
                });
            }
        }
    }
    // Greedy sharding in tensor order; a tensor larger than the limit gets a shard alone.
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0u64;
    for (j, t) in rw.tensors.iter().enumerate() {
        let n = t.tensor.nbytes()?;
        if !current.is_empty() && size + n > max_shard_bytes {
            rw.shards.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(j);
        size += n;
    }
    if !current.is_empty() || rw.shards.is_empty() {
        rw.shards.push(current);
    }
    Ok(rw)
}

/// config.json for the dequantized checkpoint: quantization settings removed, dtype set.
pub fn clean_config(mut config: Value, dtype: Dtype) -> (Value, Vec<Fix>) {
    let mut fixes = Vec::new();
    let name = match dtype {
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        _ => "float32",
    };
    if let Value::Object(o) = &mut config {
        for key in ["quantization_config", "quantization"] {
            if o.remove(key).is_some() {
                fixes.push(Fix::new(
                    "CONFIG_QUANT_MISMATCH",
                    None,
                    format!("remove {key} from config.json"),
                ));
            }
        }
        o.insert("torch_dtype".into(), Value::String(name.into()));
        // transformers 5 writes `dtype`; keep both in agreement when present.
        if o.contains_key("dtype") {
            o.insert("dtype".into(), Value::String(name.into()));
        }
        fixes.push(Fix::new(
            "",
            None,
            format!("set torch_dtype to {name} in config.json"),
        ));
    }
    (config, fixes)
}

fn encode_dense(dtype: Dtype, values: &[f32], out: &mut Vec<u8>) {
    out.clear();
    match dtype {
        Dtype::F16 => out.extend(values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes())),
        Dtype::BF16 => out.extend(values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes())),
        _ => out.extend(values.iter().flat_map(|v| v.to_le_bytes())),
    }
}

/// Values per decode chunk.
const CHUNK: u64 = 1 << 20;

fn chunk_for(t: &LogicalTensor) -> Result<u64, DecodeError> {
    let g = encoding::granule(t)?;
    Ok(CHUNK.div_ceil(g) * g)
}

/// Write shard `shard` into `w`.
pub fn execute_shard<W: std::io::Write, S: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    rw: &HfRewrite,
    shard: usize,
    plan: &SafetensorsPlan,
    w: W,
) -> Result<(W, Totals), RepairError> {
    let mut totals = Totals {
        bytes_read: 0,
        bytes_written: plan.header().len() as u64,
    };
    let mut failure = None;
    let result = write_safetensors(plan, w, |k, _, sink| {
        let out = &rw.tensors[rw.shards[shard][k]];
        let t = &model.tensors[out.input];
        let r = match out.source {
            TensorSource::Copy => super::copy_tensor(t, sources, sink, &mut totals),
            TensorSource::Convert => (|| {
                let n = t.n_elements();
                let chunk = chunk_of(t, out.transpose)?;
                let (mut vals, mut bytes) = (Vec::new(), Vec::new());
                let mut start = 0u64;
                while start < n {
                    let count = (n - start).min(chunk);
                    vals.resize(count as usize, 0f32);
                    encoding::read_and_decode(model, t, sources, start, &mut vals)?;
                    let read: u64 = encoding::plan(t, start, count)?.iter().map(|r| r.len).sum();
                    if out.transpose {
                        vals = transposed(t, &vals);
                    }
                    encode_dense(out.tensor.dtype, &vals, &mut bytes);
                    sink(&bytes)?;
                    totals.bytes_read += read;
                    totals.bytes_written += bytes.len() as u64;
                    start += count;
                }
                Ok(())
            })(),
        };
        r.map_err(|e: RepairError| {
            let msg = e.to_string();
            failure = Some(e);
            WriteError::Invalid(msg)
        })
    });
    match result {
        Ok(w) => Ok((w, totals)),
        Err(e) => Err(failure.unwrap_or(RepairError::Write(e))),
    }
}

/// Check a reopened output shard: names, dtypes and shapes as planned; copied tensors
/// hash-identical; converted tensors decode to exactly the source values rounded to the
/// output dtype. Returns (hashed, compared).
pub fn verify_shard<S: ByteSource + ?Sized, O: ByteSource + ?Sized>(
    model: &Model,
    sources: &[&S],
    rw: &HfRewrite,
    shard: usize,
    output: &Model,
    out_source: &O,
) -> Result<(usize, usize), RepairError> {
    let fail = |m: String| Err(RepairError::Verify(m));
    let outs: [&O; 1] = [out_source];
    let (mut hashed, mut compared) = (0, 0);
    let want: Vec<&HfOutTensor> = rw.shards[shard].iter().map(|&j| &rw.tensors[j]).collect();
    if output.tensors.len() != want.len() {
        return fail(format!(
            "{} holds {} tensors, planned {}",
            rw.shard_name(shard),
            output.tensors.len(),
            want.len()
        ));
    }
    for planned in want {
        let p = &planned.tensor;
        let Some(got) = output.tensor(&p.name) else {
            return fail(format!(
                "{} is missing from {}",
                p.name,
                rw.shard_name(shard)
            ));
        };
        let ok_type = matches!(got.encoding, Encoding::Dense { dtype } if dtype == p.dtype);
        if !ok_type || got.shape != p.shape {
            return fail(format!(
                "{} came back as {} {:?}; planned {} {:?}",
                p.name,
                got.encoding.label(),
                got.shape,
                p.dtype,
                p.shape
            ));
        }
        let input = &model.tensors[planned.input];
        match planned.source {
            TensorSource::Copy => {
                if sha256_of_part(input, sources)? != sha256_of_part(got, &outs)? {
                    return fail(format!("{}: bytes differ from the input", p.name));
                }
                hashed += 1;
            }
            TensorSource::Convert => {
                let n = input.n_elements();
                // Decoding the dense output works at any chunk size.
                let chunk = chunk_of(input, planned.transpose)?;
                let (mut a, mut b, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
                let mut start = 0u64;
                while start < n {
                    let count = (n - start).min(chunk);
                    a.resize(count as usize, 0f32);
                    b.resize(count as usize, 0f32);
                    encoding::read_and_decode(model, input, sources, start, &mut a)?;
                    encoding::read_and_decode(output, got, &outs, start, &mut b)?;
                    if planned.transpose {
                        a = transposed(input, &a);
                    }
                    encode_dense(p.dtype, &a, &mut bytes);
                    let mut want = vec![0f32; a.len()];
                    decode_dense(p.dtype, &bytes, &mut want);
                    if let Some(k) = (0..b.len()).find(|&k| b[k].to_bits() != want[k].to_bits()) {
                        return fail(format!(
                            "{}: element {} is {} but the source decodes to {} ({} in {})",
                            p.name,
                            start + k as u64,
                            b[k],
                            a[k],
                            want[k],
                            p.dtype
                        ));
                    }
                    start += count;
                }
                compared += 1;
            }
        }
    }
    Ok((hashed, compared))
}

/// Decode chunks: whole [R, C] matrices when transposing (a gpt-oss expert is at most a
/// few tens of millions of values), about a million values otherwise.
fn chunk_of(t: &LogicalTensor, transpose: bool) -> Result<u64, RepairError> {
    if !transpose {
        return Ok(chunk_for(t)?);
    }
    let k = t.shape.len();
    let m = t.shape[k - 2].saturating_mul(t.shape[k - 1]);
    if m > 1 << 25 {
        return Err(RepairError::Refused(format!(
            "{}: a {}x{} expert matrix is too large to transpose in memory",
            t.name,
            t.shape[k - 2],
            t.shape[k - 1]
        )));
    }
    Ok(m.max(1))
}

/// Transpose every [R, C] matrix in `vals` (whole matrices of `t`'s last two dims).
fn transposed(t: &LogicalTensor, vals: &[f32]) -> Vec<f32> {
    let k = t.shape.len();
    let (r, c) = (t.shape[k - 2] as usize, t.shape[k - 1] as usize);
    let mut out = vec![0f32; vals.len()];
    for (src, dst) in vals.chunks_exact(r * c).zip(out.chunks_exact_mut(r * c)) {
        for i in 0..r {
            for j in 0..c {
                dst[j * r + i] = src[i * c + j];
            }
        }
    }
    out
}

fn decode_dense(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Input};
    use crate::source::SliceSource;

    fn st_file(tensors: &[(&str, Dtype, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
        let ts: Vec<StTensor> = tensors
            .iter()
            .map(|(n, d, s, _)| StTensor {
                name: n.to_string(),
                dtype: *d,
                shape: s.clone(),
            })
            .collect();
        let plan = SafetensorsPlan::new(&ts, &BTreeMap::new()).unwrap();
        write_safetensors(&plan, Vec::new(), |i, _, sink| sink(&tensors[i].3)).unwrap()
    }

    fn load_files(files: &[(String, Vec<u8>)]) -> Model {
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
        load(&inputs).unwrap()
    }

    #[test]
    fn copies_dense_drops_leftovers_shards_and_verifies() {
        let e4m3_one = 0x38u8;
        let ckpt = st_file(&[
            (
                "model.embed_tokens.weight",
                Dtype::BF16,
                vec![4, 8],
                vec![0x3f; 64],
            ),
            (
                "model.layers.0.mlp.down_proj.weight",
                Dtype::F16,
                vec![4, 8],
                vec![0x3c; 64],
            ),
            (
                "model.layers.0.mlp.down_proj.weight.absmax",
                Dtype::F32,
                vec![1],
                vec![0; 4],
            ),
            (
                "model.layers.0.mlp.up_proj.weight",
                Dtype::F8_E4M3,
                vec![4, 8],
                vec![e4m3_one; 32],
            ),
        ]);
        let files = vec![("ckpt/model.safetensors".to_string(), ckpt)];
        let model = load_files(&files);
        let rw = plan_hf_repair(&model, Some(Dtype::BF16), 100).unwrap();
        assert!(rw.fixes.iter().any(|f| f.code == "QUANT_ARTIFACTS_LEFT"
            && f.tensor.as_deref() == Some("model.layers.0.mlp.down_proj.weight.absmax")));
        let names: Vec<&str> = rw.tensors.iter().map(|t| t.tensor.name.as_str()).collect();
        assert!(!names.contains(&"model.layers.0.mlp.down_proj.weight.absmax"));
        let up = rw
            .tensors
            .iter()
            .find(|t| t.tensor.name == "model.layers.0.mlp.up_proj.weight")
            .unwrap();
        assert_eq!(
            (up.tensor.dtype, &up.source),
            (Dtype::BF16, &TensorSource::Convert)
        );
        assert!(rw.blocking.is_empty(), "{:?}", rw.blocking);
        assert!(rw.shards.len() >= 2, "{:?}", rw.shards);
        let srcs = [SliceSource::new(&files[0].1[..])];
        let srcs: Vec<&SliceSource<&[u8]>> = srcs.iter().collect();
        for s in 0..rw.shards.len() {
            let plan = rw.shard_plan(s).unwrap();
            let (bytes, _) = execute_shard(&model, &srcs, &rw, s, &plan, Vec::new()).unwrap();
            let out = load_files(&[(rw.shard_name(s), bytes.clone())]);
            let osrc = SliceSource::new(&bytes[..]);
            verify_shard(&model, &srcs, &rw, s, &out, &osrc).unwrap();
            // A flipped byte in a copied tensor is caught.
            let mut bad = bytes.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let out = load_files(&[(rw.shard_name(s), bad.clone())]);
            let bsrc = SliceSource::new(&bad[..]);
            assert!(verify_shard(&model, &srcs, &rw, s, &out, &bsrc).is_err());
        }
        let idx = rw.index_json().unwrap();
        assert_eq!(idx["metadata"]["total_size"], 64 + 64 + 64);
    }

    #[test]
    fn config_loses_quantization_and_gets_dtype() {
        let cfg = serde_json::json!({
            "model_type": "llama",
            "torch_dtype": "float16",
            "quantization_config": {"quant_method": "bitsandbytes"}
        });
        let (out, fixes) = clean_config(cfg, Dtype::BF16);
        assert!(out.get("quantization_config").is_none());
        assert_eq!(out["torch_dtype"], "bfloat16");
        assert!(fixes.iter().any(|f| f.code == "CONFIG_QUANT_MISMATCH"));
    }

    #[test]
    fn refuses_orphaned_parts_and_bad_dtype() {
        let ckpt = st_file(&[
            (
                "model.layers.0.mlp.down_proj.weight.absmax",
                Dtype::F32,
                vec![1],
                vec![0; 4],
            ),
            ("model.norm.weight", Dtype::F32, vec![2], vec![0; 8]),
        ]);
        let model = load_files(&[("m.safetensors".to_string(), ckpt)]);
        let rw = plan_hf_repair(&model, None, 1 << 30).unwrap();
        assert!(rw.blocking.iter().any(|f| f.code == "QUANT_PARTS_ORPHANED"));
        assert!(plan_hf_repair(&model, Some(Dtype::I8), 1 << 30).is_err());
    }
}
