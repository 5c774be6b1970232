//! A tiny safetensors writer for tests: builds checkpoints (healthy or broken) in memory.

use crate::dtype::Dtype;
use crate::load::{load, Input};
use crate::model::Model;
use crate::source::SliceSource;

/// One tensor to write: name, dtype, shape and its raw bytes.
#[derive(Clone)]
pub struct TestTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

pub fn tensor(name: &str, dtype: Dtype, shape: &[u64], data: Vec<u8>) -> TestTensor {
    TestTensor {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        data,
    }
}

/// A tensor of the right size filled with a byte pattern.
pub fn zeros(name: &str, dtype: Dtype, shape: &[u64]) -> TestTensor {
    let n: u64 = shape.iter().product();
    let len = dtype.bytes_for(n).expect("whole bytes") as usize;
    tensor(
        name,
        dtype,
        shape,
        (0..len).map(|i| (i * 7 % 251) as u8).collect(),
    )
}

/// Serialize tensors contiguously (in the given order) with an optional raw header
/// override, padding the header to 8 bytes like the reference writer.
pub fn build(tensors: &[TestTensor], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut entries = Vec::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        entries.push(format!("\"__metadata__\":{}", serde_json::Value::Object(m)));
    }
    let mut off = 0usize;
    for t in tensors {
        entries.push(format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":{:?},\"data_offsets\":[{},{}]}}",
            serde_json::Value::String(t.name.clone()),
            t.dtype.name(),
            t.shape,
            off,
            off + t.data.len()
        ));
        off += t.data.len();
    }
    let header = format!("{{{}}}", entries.join(","));
    from_header(
        &header,
        &tensors
            .iter()
            .flat_map(|t| t.data.clone())
            .collect::<Vec<u8>>(),
    )
}

/// A file from a literal header and data bytes.
pub fn from_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// Load in-memory files (name, bytes) as a model.
pub fn load_files(files: &[(&str, Vec<u8>)]) -> Model {
    try_load_files(files).expect("load")
}

pub fn try_load_files(files: &[(&str, Vec<u8>)]) -> Result<Model, crate::error::LoadError> {
    let sources: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(b.as_slice()))
        .collect();
    let inputs: Vec<Input<'_>> = files
        .iter()
        .zip(&sources)
        .map(|((n, _), s)| Input {
            path: n.to_string(),
            source: s,
        })
        .collect();
    load(&inputs)
}

/// Decode a tensor of an in-memory checkpoint.
pub fn decode_all(files: &[(&str, Vec<u8>)], model: &Model, name: &str) -> Vec<f32> {
    let sources: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(b.as_slice()))
        .collect();
    let refs: Vec<&SliceSource<&[u8]>> = sources.iter().collect();
    let t = model
        .tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    crate::encoding::dequantize_tensor(model, t, &refs).expect("decode")
}

/// The stored tensors of a bitsandbytes 4-bit weight `name` of logical shape
/// [rows, cols] (NF4, F16 output), optionally double-quantized.
pub fn bnb4_tensors(
    name: &str,
    rows: u64,
    cols: u64,
    blocksize: u64,
    nested: bool,
) -> Vec<TestTensor> {
    let n = rows * cols;
    let blocks = n.div_ceil(blocksize);
    let f32b = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let mut v = vec![tensor(
        name,
        Dtype::U8,
        &[n.div_ceil(2), 1],
        (0..n.div_ceil(2)).map(|i| (i * 37 % 256) as u8).collect(),
    )];
    let nested_json = if nested {
        v.push(tensor(
            &format!("{name}.absmax"),
            Dtype::U8,
            &[blocks],
            (0..blocks).map(|i| (i % 256) as u8).collect(),
        ));
        v.push(tensor(
            &format!("{name}.nested_absmax"),
            Dtype::F32,
            &[blocks.div_ceil(256)],
            f32b(vec![0.01; blocks.div_ceil(256) as usize]),
        ));
        v.push(tensor(
            &format!("{name}.nested_quant_map"),
            Dtype::F32,
            &[256],
            f32b((0..256).map(|i| i as f32 / 256.0).collect()),
        ));
        r#","nested_blocksize":256,"nested_dtype":"float32","nested_offset":0.05"#
    } else {
        v.push(tensor(
            &format!("{name}.absmax"),
            Dtype::F32,
            &[blocks],
            f32b(vec![0.5; blocks as usize]),
        ));
        ""
    };
    v.push(tensor(
        &format!("{name}.quant_map"),
        Dtype::F32,
        &[16],
        f32b((0..16).map(|i| i as f32 / 8.0 - 1.0).collect()),
    ));
    let state = format!(
        r#"{{"quant_type":"nf4","blocksize":{blocksize},"dtype":"float16","shape":[{rows},{cols}]{nested_json}}}"#
    );
    v.push(tensor(
        &format!("{name}.quant_state.bitsandbytes__nf4"),
        Dtype::U8,
        &[state.len() as u64],
        state.into_bytes(),
    ));
    v
}
