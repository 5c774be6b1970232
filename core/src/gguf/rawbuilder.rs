//! A low-level GGUF builder that writes exactly what it is told — including broken layouts
//! (wrong offsets, missing bytes, bad types) — for tests and demo files. For correct files
//! use the writer in `crate::write`.

use crate::meta::GgufValueType;

/// A metadata value to write.
#[derive(Debug, Clone)]
pub enum RawValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Str(String),
    /// Element type and elements (each element must be of that type).
    Array(GgufValueType, Vec<RawValue>),
}

impl RawValue {
    fn value_type(&self) -> GgufValueType {
        use GgufValueType as T;
        match self {
            RawValue::U8(_) => T::Uint8,
            RawValue::I8(_) => T::Int8,
            RawValue::U16(_) => T::Uint16,
            RawValue::I16(_) => T::Int16,
            RawValue::U32(_) => T::Uint32,
            RawValue::I32(_) => T::Int32,
            RawValue::U64(_) => T::Uint64,
            RawValue::I64(_) => T::Int64,
            RawValue::F32(_) => T::Float32,
            RawValue::F64(_) => T::Float64,
            RawValue::Bool(_) => T::Bool,
            RawValue::Str(_) => T::String,
            RawValue::Array(..) => T::Array,
        }
    }
}

/// One tensor: dims in GGUF order (ne[0] innermost), type id, data bytes, and optionally an
/// explicit offset (relative to the data section) instead of the dense layout.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct RawGgufBuilder {
    pub version: u32,
    /// Write every number big-endian (the magic stays `GGUF`).
    pub big_endian: bool,
    pub alignment: u64,
    pub kv: Vec<(String, RawValue)>,
    pub tensors: Vec<RawTensor>,
}

impl Default for RawGgufBuilder {
    fn default() -> Self {
        RawGgufBuilder {
            version: 3,
            big_endian: false,
            alignment: 32,
            kv: Vec::new(),
            tensors: Vec::new(),
        }
    }
}

impl RawGgufBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn kv(mut self, key: &str, value: RawValue) -> Self {
        self.kv.push((key.to_string(), value));
        self
    }

    /// Add a tensor with dims in logical (row-major) order, laid out densely.
    pub fn tensor(mut self, name: &str, shape: &[u64], type_id: u32, data: Vec<u8>) -> Self {
        self.tensors.push(RawTensor {
            name: name.to_string(),
            ne: shape.iter().rev().copied().collect(),
            type_id,
            data,
            offset: None,
        });
        self
    }

    /// Little-endian bytes of a number in the file's byte order.
    fn ord<const N: usize>(&self, mut le: [u8; N]) -> [u8; N] {
        if self.big_endian {
            le.reverse();
        }
        le
    }

    fn put_len(&self, out: &mut Vec<u8>, n: u64) {
        if self.version == 1 {
            out.extend_from_slice(&self.ord((n as u32).to_le_bytes()));
        } else {
            out.extend_from_slice(&self.ord(n.to_le_bytes()));
        }
    }

    fn put_str(&self, out: &mut Vec<u8>, s: &str) {
        self.put_len(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }

    fn put_value(&self, out: &mut Vec<u8>, v: &RawValue) {
        match v {
            RawValue::U8(x) => out.push(*x),
            RawValue::I8(x) => out.push(*x as u8),
            RawValue::U16(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::I16(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::U32(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::I32(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::U64(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::I64(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::F32(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::F64(x) => out.extend_from_slice(&self.ord(x.to_le_bytes())),
            RawValue::Bool(x) => out.push(*x as u8),
            RawValue::Str(s) => self.put_str(out, s),
            RawValue::Array(elem, items) => {
                out.extend_from_slice(&self.ord(elem.id().to_le_bytes()));
                self.put_len(out, items.len() as u64);
                // Nested arrays carry their own element type and count.
                for it in items {
                    self.put_value(out, it);
                }
            }
        }
    }

    /// The dense offsets llama.cpp expects: running sum of sizes padded to the alignment.
    pub fn dense_offsets(&self) -> Vec<u64> {
        let mut off = 0u64;
        self.tensors
            .iter()
            .map(|t| {
                let o = off;
                off += (t.data.len() as u64).next_multiple_of(self.alignment);
                o
            })
            .collect()
    }

    /// Serialize. Tensor data is placed at each tensor's offset (explicit or dense); the file
    /// ends right after the last tensor's data.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.ord(self.version.to_le_bytes()));
        self.put_len(&mut out, self.tensors.len() as u64);
        self.put_len(&mut out, self.kv.len() as u64);
        for (k, v) in &self.kv {
            self.put_str(&mut out, k);
            out.extend_from_slice(&self.ord(v.value_type().id().to_le_bytes()));
            self.put_value(&mut out, v);
        }
        let dense = self.dense_offsets();
        let offsets: Vec<u64> = self
            .tensors
            .iter()
            .zip(&dense)
            .map(|(t, d)| t.offset.unwrap_or(*d))
            .collect();
        for (t, off) in self.tensors.iter().zip(&offsets) {
            self.put_str(&mut out, &t.name);
            out.extend_from_slice(&self.ord((t.ne.len() as u32).to_le_bytes()));
            for &d in &t.ne {
                self.put_len(&mut out, d);
            }
            out.extend_from_slice(&self.ord(t.type_id.to_le_bytes()));
            out.extend_from_slice(&self.ord(off.to_le_bytes()));
        }
        let data_start = (out.len() as u64).next_multiple_of(self.alignment) as usize;
        out.resize(data_start, 0);
        for (t, off) in self.tensors.iter().zip(&offsets) {
            let at = data_start + *off as usize;
            if out.len() < at + t.data.len() {
                out.resize(at + t.data.len(), 0);
            }
            out[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        out
    }
}
