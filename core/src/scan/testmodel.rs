//! Hand-made GGUF-like models over bytes in memory, for scan and rule tests.

use half::f16;

use crate::encoding::Encoding;
use crate::ggml::types::GgmlType;
use crate::meta::{MetaEntry, MetaValue};
use crate::model::{FileInfo, Format, LogicalTensor, Model, StoredPart};

/// Deterministic pseudo-random values in [-scale, scale).
pub fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            scale * (((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0)
        })
        .collect()
}

/// Encode values as ggml `ty` (F32, F16 or Q8_0).
pub fn encode(ty: GgmlType, xs: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => xs.iter().flat_map(|x| x.to_le_bytes()).collect(),
        GgmlType::F16 => xs
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect(),
        GgmlType::Q8_0 => {
            let mut out = Vec::new();
            for b in xs.chunks(32) {
                let amax = b.iter().fold(0f32, |a, x| a.max(x.abs()));
                let d = amax / 127.0;
                out.extend(f16::from_f32(d).to_le_bytes());
                for &x in b {
                    let q = if d == 0.0 { 0.0 } else { (x / d).round() };
                    out.push(q as i8 as u8);
                }
            }
            out
        }
        _ => panic!("test encoder has no {ty}"),
    }
}

/// A model builder: tensors are laid out back to back (32-byte aligned) in one "file".
#[derive(Default)]
pub struct Builder {
    bytes: Vec<u8>,
    tensors: Vec<LogicalTensor>,
    metadata: Vec<MetaEntry>,
}

impl Builder {
    pub fn meta(mut self, key: &str, value: MetaValue) -> Self {
        self.metadata.push(MetaEntry {
            key: key.into(),
            value_type: None,
            array_type: None,
            value,
            offset: None,
        });
        self
    }

    /// Add a tensor from its stored bytes.
    pub fn raw(mut self, name: &str, shape: Vec<u64>, ty: GgmlType, data: &[u8]) -> Self {
        while !self.bytes.len().is_multiple_of(32) {
            self.bytes.push(0);
        }
        let offset = self.bytes.len() as u64;
        self.bytes.extend_from_slice(data);
        self.tensors.push(LogicalTensor {
            name: name.into(),
            shape: shape.clone(),
            encoding: Encoding::Ggml { ggml_type: ty },
            parts: vec![StoredPart {
                role: "data".into(),
                name: name.into(),
                file: 0,
                dtype: ty.name().into(),
                shape,
                offset,
                nbytes: data.len() as u64,
            }],
        });
        self
    }

    /// Add a tensor from values, encoded as `ty`.
    pub fn values(self, name: &str, shape: Vec<u64>, ty: GgmlType, xs: &[f32]) -> Self {
        let data = encode(ty, xs);
        self.raw(name, shape, ty, &data)
    }

    pub fn build(self) -> (Model, Vec<u8>) {
        let model = Model {
            format: Format::Gguf,
            version: 3,
            files: vec![FileInfo {
                path: "test.gguf".into(),
                size: self.bytes.len() as u64,
                data_start: 0,
            }],
            metadata: self.metadata,
            tensors: self.tensors,
            findings: Vec::new(),
            big_endian: false,
            alignment: 32,
        };
        (model, self.bytes)
    }
}

/// A model of pseudo-random tensors: (name, shape, type, scale).
pub fn ggml_model(specs: &[(&str, Vec<u64>, GgmlType, f32)]) -> (Model, Vec<u8>) {
    let mut b = Builder::default();
    for (i, (name, shape, ty, scale)) in specs.iter().enumerate() {
        let n = shape.iter().product::<u64>() as usize;
        b = b.values(name, shape.clone(), *ty, &values(n, i as u64 + 1, *scale));
    }
    b.build()
}
