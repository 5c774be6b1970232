//! GGUF writer (versions 2 and 3, little-endian).
//!
//! The layout follows what llama.cpp's loader requires: tensor data starts at the header
//! length rounded up to `general.alignment` (32 when absent), and every tensor's offset is
//! the running sum of the previous tensors' sizes, each padded to the alignment. Metadata is
//! written with the value types recorded in each `MetaEntry`, so a file read by
//! `gguf::load` is re-written with the same types (UINT8 stays UINT8, FLOAT32 stays FLOAT32).
//!
//! Writing is split in two steps so that callers can stream: `GgufPlan::new` builds the
//! header bytes and every offset from tensor descriptions alone, then `GgufStreamWriter`
//! writes the header and accepts tensor bytes in order, in chunks of any size.

use std::io::Write;

use super::WriteError;
use crate::ggml::types::GgmlType;
use crate::meta::{GgufValueType, MetaEntry, MetaValue, NumArray};

pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_NAME: llama.cpp refuses tensor names of this many bytes or more.
pub const MAX_TENSOR_NAME: usize = 64;
/// ggml's GGML_MAX_DIMS.
pub const MAX_DIMS: usize = 4;

/// A tensor to write: logical (row-major) shape, outermost dimension first.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub shape: Vec<u64>,
    pub ggml_type: GgmlType,
}

impl TensorEntry {
    pub fn new(name: impl Into<String>, shape: &[u64], ggml_type: GgmlType) -> Self {
        TensorEntry {
            name: name.into(),
            shape: shape.to_vec(),
            ggml_type,
        }
    }

    pub fn n_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }

    /// Bytes of data, checking that rows are whole blocks (ggml stores blocks per row).
    pub fn nbytes(&self) -> Result<u64, WriteError> {
        let row = self.shape.last().copied().unwrap_or(1);
        let bs = self.ggml_type.block_size();
        if row % bs != 0 {
            return Err(WriteError::invalid(format!(
                "tensor {}: row length {row} is not a multiple of the {}-element {} block",
                self.name,
                bs,
                self.ggml_type.name()
            )));
        }
        self.n_elements()
            .and_then(|n| self.ggml_type.bytes_for(n))
            .ok_or_else(|| {
                WriteError::invalid(format!(
                    "tensor {}: shape {:?} is too large",
                    self.name, self.shape
                ))
            })
    }
}

/// Build a metadata entry with an explicit GGUF type (arrays: `value_type` Array and the
/// element type in `array_type`).
pub fn entry(key: &str, value_type: GgufValueType, value: MetaValue) -> MetaEntry {
    let array_type = match (&value, value_type) {
        (MetaValue::Numbers(n), GgufValueType::Array) => Some(num_array_type(n)),
        (MetaValue::Strings(_), GgufValueType::Array) => Some(GgufValueType::String),
        (MetaValue::Array(items), GgufValueType::Array) => Some(
            items
                .first()
                .map(infer_type)
                .unwrap_or(GgufValueType::String),
        ),
        _ => None,
    };
    MetaEntry {
        key: key.to_string(),
        value_type: Some(value_type),
        array_type,
        value,
        offset: None,
    }
}

pub fn entry_str(key: &str, s: &str) -> MetaEntry {
    entry(key, GgufValueType::String, MetaValue::String(s.to_string()))
}

pub fn entry_u32(key: &str, v: u32) -> MetaEntry {
    entry(key, GgufValueType::Uint32, MetaValue::U64(v as u64))
}

pub fn entry_f32(key: &str, v: f32) -> MetaEntry {
    entry(key, GgufValueType::Float32, MetaValue::F64(v as f64))
}

pub fn entry_bool(key: &str, v: bool) -> MetaEntry {
    entry(key, GgufValueType::Bool, MetaValue::Bool(v))
}

/// Replace the entry with the same key (keeping its position) or append it.
pub fn set_entry(metadata: &mut Vec<MetaEntry>, e: MetaEntry) {
    match metadata.iter_mut().find(|m| m.key == e.key) {
        Some(slot) => *slot = e,
        None => metadata.push(e),
    }
}

fn num_array_type(n: &NumArray) -> GgufValueType {
    use GgufValueType as T;
    match n {
        NumArray::U8(_) => T::Uint8,
        NumArray::I8(_) => T::Int8,
        NumArray::U16(_) => T::Uint16,
        NumArray::I16(_) => T::Int16,
        NumArray::U32(_) => T::Uint32,
        NumArray::I32(_) => T::Int32,
        NumArray::U64(_) => T::Uint64,
        NumArray::I64(_) => T::Int64,
        NumArray::F32(_) => T::Float32,
        NumArray::F64(_) => T::Float64,
    }
}

/// The GGUF type a value has when nothing recorded it (inner arrays of nested arrays,
/// entries that did not come from a GGUF file).
fn infer_type(v: &MetaValue) -> GgufValueType {
    use GgufValueType as T;
    match v {
        MetaValue::Bool(_) => T::Bool,
        MetaValue::U64(_) => T::Uint64,
        MetaValue::I64(_) => T::Int64,
        MetaValue::F64(_) => T::Float64,
        MetaValue::String(_) => T::String,
        MetaValue::Array(_) | MetaValue::Numbers(_) | MetaValue::Strings(_) => T::Array,
        MetaValue::Json(j) => match j {
            serde_json::Value::Bool(_) => T::Bool,
            serde_json::Value::Number(n) if n.is_u64() => T::Uint64,
            serde_json::Value::Number(n) if n.is_i64() => T::Int64,
            serde_json::Value::Number(_) => T::Float64,
            serde_json::Value::Array(_) => T::Array,
            _ => T::String,
        },
    }
}

/// Element type of an array value: recorded for numbers, inferred from the first element
/// otherwise. An empty array of unknown element type is written as an array of INT32, as
/// gguf-py does for empty lists.
fn element_type(v: &MetaValue) -> GgufValueType {
    match v {
        MetaValue::Numbers(n) => num_array_type(n),
        MetaValue::Strings(_) => GgufValueType::String,
        MetaValue::Array(items) => items
            .first()
            .map(infer_type)
            .unwrap_or(GgufValueType::Int32),
        _ => GgufValueType::Int32,
    }
}

struct Enc {
    out: Vec<u8>,
}

impl Enc {
    fn len(&mut self, n: u64) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn scalar(&mut self, key: &str, ty: GgufValueType, v: &MetaValue) -> Result<(), WriteError> {
        use GgufValueType as T;
        let bad = || {
            WriteError::invalid(format!(
                "metadata {key}: value {} does not fit type {}",
                v.summary(40),
                ty.name()
            ))
        };
        let int = || -> Result<i128, WriteError> {
            match v {
                MetaValue::U64(x) => Ok(*x as i128),
                MetaValue::I64(x) => Ok(*x as i128),
                MetaValue::Bool(b) => Ok(*b as i128),
                MetaValue::Json(j) => j
                    .as_i64()
                    .map(|x| x as i128)
                    .or(j.as_u64().map(|x| x as i128))
                    .ok_or_else(bad),
                _ => Err(bad()),
            }
        };
        macro_rules! put_int {
            ($t:ty) => {{
                let x = <$t>::try_from(int()?).map_err(|_| bad())?;
                self.out.extend_from_slice(&x.to_le_bytes());
            }};
        }
        match ty {
            T::Uint8 => put_int!(u8),
            T::Int8 => put_int!(i8),
            T::Uint16 => put_int!(u16),
            T::Int16 => put_int!(i16),
            T::Uint32 => put_int!(u32),
            T::Int32 => put_int!(i32),
            T::Uint64 => put_int!(u64),
            T::Int64 => put_int!(i64),
            T::Float32 => {
                let x = v.as_f64().ok_or_else(bad)?;
                self.out.extend_from_slice(&(x as f32).to_le_bytes());
            }
            T::Float64 => {
                let x = v.as_f64().ok_or_else(bad)?;
                self.out.extend_from_slice(&x.to_le_bytes());
            }
            T::Bool => {
                let b = match v {
                    MetaValue::Bool(b) => *b,
                    MetaValue::Json(serde_json::Value::Bool(b)) => *b,
                    _ => return Err(bad()),
                };
                self.out.push(b as u8);
            }
            T::String => self.str(v.as_str().ok_or_else(bad)?),
            T::Array => self.array(key, element_type(v), v, 0)?,
        }
        Ok(())
    }

    fn array(
        &mut self,
        key: &str,
        elem: GgufValueType,
        v: &MetaValue,
        depth: u32,
    ) -> Result<(), WriteError> {
        if depth > 8 {
            return Err(WriteError::invalid(format!(
                "metadata {key}: arrays nested more than 8 deep"
            )));
        }
        self.u32(elem.id());
        match v {
            MetaValue::Numbers(n) => {
                if num_array_type(n) != elem {
                    // A numeric array converted to another element type (e.g. from --set).
                    self.len(n.len() as u64);
                    for i in 0..n.len() {
                        let x = n.get(i).expect("index within length");
                        self.scalar(key, elem, &x)?;
                    }
                    return Ok(());
                }
                self.len(n.len() as u64);
                macro_rules! put_all {
                    ($v:expr) => {
                        for x in $v {
                            self.out.extend_from_slice(&x.to_le_bytes());
                        }
                    };
                }
                match n {
                    NumArray::U8(a) => self.out.extend_from_slice(a),
                    NumArray::I8(a) => put_all!(a),
                    NumArray::U16(a) => put_all!(a),
                    NumArray::I16(a) => put_all!(a),
                    NumArray::U32(a) => put_all!(a),
                    NumArray::I32(a) => put_all!(a),
                    NumArray::U64(a) => put_all!(a),
                    NumArray::I64(a) => put_all!(a),
                    NumArray::F32(a) => put_all!(a),
                    NumArray::F64(a) => put_all!(a),
                }
            }
            MetaValue::Array(items) => {
                self.len(items.len() as u64);
                for it in items {
                    if elem == GgufValueType::Array {
                        self.array(key, element_type(it), it, depth + 1)?;
                    } else {
                        self.scalar(key, elem, it)?;
                    }
                }
            }
            MetaValue::Strings(items) => {
                self.len(items.len() as u64);
                if elem == GgufValueType::String {
                    self.out.reserve(items.byte_len() + 8 * items.len());
                    for s in items {
                        self.str(s);
                    }
                } else {
                    // Strings written as another type: the same errors as an `Array` of
                    // `String`s gets.
                    for s in items {
                        let it = MetaValue::String(s.to_string());
                        if elem == GgufValueType::Array {
                            self.array(key, element_type(&it), &it, depth + 1)?;
                        } else {
                            self.scalar(key, elem, &it)?;
                        }
                    }
                }
            }
            MetaValue::Json(serde_json::Value::Array(items)) => {
                self.len(items.len() as u64);
                for it in items {
                    let it = MetaValue::Json(it.clone());
                    if elem == GgufValueType::Array {
                        self.array(key, element_type(&it), &it, depth + 1)?;
                    } else {
                        self.scalar(key, elem, &it)?;
                    }
                }
            }
            other => {
                return Err(WriteError::invalid(format!(
                    "metadata {key}: {} is not an array",
                    other.summary(40)
                )))
            }
        }
        Ok(())
    }
}

/// The alignment a metadata list asks for: `general.alignment` (a UINT32 power of two) or
/// the default 32.
pub fn alignment_of(metadata: &[MetaEntry]) -> Result<u64, WriteError> {
    let Some(e) = metadata.iter().find(|e| e.key == "general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match (e.value_type, e.value.as_u64()) {
        (Some(GgufValueType::Uint32), Some(a)) if a > 0 && a.is_power_of_two() => Ok(a),
        _ => Err(WriteError::invalid(format!(
            "general.alignment must be a UINT32 power of two, got {} ({})",
            e.value.summary(40),
            e.value_type.map(|t| t.name()).unwrap_or("untyped")
        ))),
    }
}

/// Everything about a GGUF file except its tensor bytes: the header (padded to the data
/// section) and where each tensor goes.
#[derive(Debug, Clone)]
pub struct GgufPlan {
    header: Vec<u8>,
    alignment: u64,
    tensors: Vec<TensorEntry>,
    /// Offsets relative to the data section.
    offsets: Vec<u64>,
    sizes: Vec<u64>,
    total: u64,
}

impl GgufPlan {
    /// Lay out a file. `version` is 3 or 2 (they differ only in that v3 may be big-endian;
    /// this writer always writes little-endian).
    pub fn new(
        version: u32,
        metadata: &[MetaEntry],
        tensors: &[TensorEntry],
    ) -> Result<Self, WriteError> {
        if !(version == 2 || version == 3) {
            return Err(WriteError::invalid(format!(
                "cannot write GGUF version {version} (versions 2 and 3 are supported)"
            )));
        }
        let alignment = alignment_of(metadata)?;
        for (i, e) in metadata.iter().enumerate() {
            if metadata[..i].iter().any(|p| p.key == e.key) {
                return Err(WriteError::invalid(format!(
                    "metadata key {} appears twice",
                    e.key
                )));
            }
        }
        let mut enc = Enc { out: Vec::new() };
        enc.out.extend_from_slice(b"GGUF");
        enc.u32(version);
        enc.len(tensors.len() as u64);
        enc.len(metadata.len() as u64);
        for e in metadata {
            let ty = e.value_type.unwrap_or_else(|| infer_type(&e.value));
            enc.str(&e.key);
            enc.u32(ty.id());
            if ty == GgufValueType::Array {
                let elem = e.array_type.unwrap_or_else(|| element_type(&e.value));
                enc.array(&e.key, elem, &e.value, 0)?;
            } else {
                enc.scalar(&e.key, ty, &e.value)?;
            }
        }
        let mut offsets = Vec::with_capacity(tensors.len());
        let mut sizes = Vec::with_capacity(tensors.len());
        let mut off = 0u64;
        for (i, t) in tensors.iter().enumerate() {
            if t.name.len() >= MAX_TENSOR_NAME {
                return Err(WriteError::invalid(format!(
                    "tensor name {} is {} bytes; ggml allows at most {}",
                    t.name,
                    t.name.len(),
                    MAX_TENSOR_NAME - 1
                )));
            }
            if t.shape.is_empty() || t.shape.len() > MAX_DIMS {
                return Err(WriteError::invalid(format!(
                    "tensor {} has {} dimensions; GGUF tensors have 1 to {MAX_DIMS}",
                    t.name,
                    t.shape.len()
                )));
            }
            if tensors[..i].iter().any(|p| p.name == t.name) {
                return Err(WriteError::invalid(format!(
                    "tensor {} appears twice",
                    t.name
                )));
            }
            let n = t.nbytes()?;
            enc.str(&t.name);
            enc.u32(t.shape.len() as u32);
            for &d in t.shape.iter().rev() {
                enc.len(d);
            }
            enc.u32(t.ggml_type.id());
            enc.len(off);
            offsets.push(off);
            sizes.push(n);
            off = n
                .checked_next_multiple_of(alignment)
                .and_then(|p| off.checked_add(p))
                .ok_or_else(|| WriteError::invalid("total tensor size overflows"))?;
        }
        let data_start = (enc.out.len() as u64).next_multiple_of(alignment);
        enc.out.resize(data_start as usize, 0);
        Ok(GgufPlan {
            total: data_start + off,
            header: enc.out,
            alignment,
            tensors: tensors.to_vec(),
            offsets,
            sizes,
        })
    }

    /// Header bytes, padded up to the start of the data section.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    pub fn data_start(&self) -> u64 {
        self.header.len() as u64
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    /// Offset of tensor `i` relative to the data section.
    pub fn offset(&self, i: usize) -> u64 {
        self.offsets[i]
    }

    /// Bytes of data of tensor `i` (without padding).
    pub fn nbytes(&self, i: usize) -> u64 {
        self.sizes[i]
    }

    /// Size of the whole file.
    pub fn total_len(&self) -> u64 {
        self.total
    }
}

/// Writes a planned file: the header at creation, then tensor bytes in plan order.
pub struct GgufStreamWriter<'p, W: Write> {
    plan: &'p GgufPlan,
    w: W,
    current: usize,
    in_current: u64,
    written: u64,
}

const ZEROS: [u8; 256] = [0; 256];

impl<'p, W: Write> GgufStreamWriter<'p, W> {
    pub fn start(plan: &'p GgufPlan, mut w: W) -> Result<Self, WriteError> {
        w.write_all(&plan.header)?;
        Ok(GgufStreamWriter {
            plan,
            w,
            current: 0,
            in_current: 0,
            written: plan.header.len() as u64,
        })
    }

    /// Index of the tensor that the next bytes belong to.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Append bytes of the current tensor.
    pub fn write_data(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let Some(&size) = self.plan.sizes.get(self.current) else {
            return Err(WriteError::invalid(
                "tensor data written after the last tensor",
            ));
        };
        if self.in_current + bytes.len() as u64 > size {
            return Err(WriteError::invalid(format!(
                "tensor {} gets more than its {size} bytes",
                self.plan.tensors[self.current].name
            )));
        }
        self.w.write_all(bytes)?;
        self.in_current += bytes.len() as u64;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Close the current tensor (all its bytes must have been written) and pad.
    pub fn end_tensor(&mut self) -> Result<(), WriteError> {
        let size = self.plan.sizes[self.current];
        if self.in_current != size {
            return Err(WriteError::invalid(format!(
                "tensor {} got {} of its {size} bytes",
                self.plan.tensors[self.current].name, self.in_current
            )));
        }
        let mut pad = size.next_multiple_of(self.plan.alignment) - size;
        while pad > 0 {
            let n = pad.min(ZEROS.len() as u64) as usize;
            self.w.write_all(&ZEROS[..n])?;
            pad -= n as u64;
            self.written += n as u64;
        }
        self.current += 1;
        self.in_current = 0;
        Ok(())
    }

    /// Write one whole tensor.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.write_data(bytes)?;
        self.end_tensor()
    }

    /// Check every tensor was written and hand back the writer.
    pub fn finish(mut self) -> Result<W, WriteError> {
        if self.current != self.plan.tensors.len() {
            return Err(WriteError::invalid(format!(
                "only {} of {} tensors were written",
                self.current,
                self.plan.tensors.len()
            )));
        }
        debug_assert_eq!(self.written, self.plan.total);
        self.w.flush()?;
        Ok(self.w)
    }
}

/// Write a whole file, asking `fill` for each tensor's bytes in order; `fill` may call
/// `write_data` any number of times for its tensor.
pub fn write_gguf<W: Write>(
    plan: &GgufPlan,
    w: W,
    mut fill: impl FnMut(usize, &TensorEntry, &mut GgufStreamWriter<'_, W>) -> Result<(), WriteError>,
) -> Result<W, WriteError> {
    let mut sw = GgufStreamWriter::start(plan, w)?;
    for (i, t) in plan.tensors.iter().enumerate() {
        fill(i, t, &mut sw)?;
        sw.end_tensor()?;
    }
    sw.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Input};
    use crate::source::SliceSource;

    fn sample_metadata() -> Vec<MetaEntry> {
        use GgufValueType as T;
        vec![
            entry_str("general.architecture", "llama"),
            entry("fixture.u8", T::Uint8, MetaValue::U64(200)),
            entry("fixture.i8", T::Int8, MetaValue::I64(-100)),
            entry("fixture.u16", T::Uint16, MetaValue::U64(60000)),
            entry("fixture.i16", T::Int16, MetaValue::I64(-30000)),
            entry_u32("fixture.u32", 4_000_000_000),
            entry("fixture.i32", T::Int32, MetaValue::I64(-2_000_000_000)),
            entry("fixture.u64", T::Uint64, MetaValue::U64(u64::MAX)),
            entry("fixture.i64", T::Int64, MetaValue::I64(i64::MIN)),
            entry_f32("fixture.f32", 0.15625),
            entry(
                "fixture.f64",
                T::Float64,
                MetaValue::F64(std::f64::consts::E),
            ),
            entry_bool("fixture.bool", true),
            entry_str("fixture.string", "héllo wörld ✓"),
            entry(
                "fixture.arr_i32",
                T::Array,
                MetaValue::Numbers(NumArray::I32(vec![1, -2, 3, i32::MAX])),
            ),
            entry(
                "fixture.arr_f32",
                T::Array,
                MetaValue::Numbers(NumArray::F32(vec![0.5, -1.25])),
            ),
            entry(
                "fixture.arr_str",
                T::Array,
                MetaValue::Array(vec![
                    MetaValue::String("a".into()),
                    MetaValue::String("".into()),
                ]),
            ),
            entry(
                "fixture.arr_bool",
                T::Array,
                MetaValue::Array(vec![MetaValue::Bool(true), MetaValue::Bool(false)]),
            ),
            entry(
                "fixture.arr_nested",
                T::Array,
                MetaValue::Array(vec![
                    MetaValue::Array(vec![
                        MetaValue::String("x".into()),
                        MetaValue::String("y".into()),
                    ]),
                    MetaValue::Array(vec![MetaValue::String("z".into())]),
                ]),
            ),
            entry(
                "fixture.arr_nested_num",
                T::Array,
                MetaValue::Array(vec![
                    MetaValue::Numbers(NumArray::U16(vec![1, 2])),
                    MetaValue::Numbers(NumArray::U16(vec![])),
                ]),
            ),
            entry_u32("general.alignment", 64),
        ]
    }

    fn write_sample(version: u32) -> (Vec<u8>, Vec<Vec<u8>>, GgufPlan) {
        let tensors = vec![
            TensorEntry::new("a", &[3, 5], GgmlType::F32),
            TensorEntry::new("b.q8", &[2, 64], GgmlType::Q8_0),
            TensorEntry::new("c", &[7], GgmlType::F16),
        ];
        let datas: Vec<Vec<u8>> = tensors
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (0..t.nbytes().unwrap())
                    .map(|j| (j as u8).wrapping_mul(7).wrapping_add(i as u8) & 0x3f)
                    .collect()
            })
            .collect();
        let plan = GgufPlan::new(version, &sample_metadata(), &tensors).unwrap();
        let out = write_gguf(&plan, Vec::new(), |i, _, w| {
            // Push in uneven chunks to exercise streaming.
            for c in datas[i].chunks(5) {
                w.write_data(c)?;
            }
            Ok(())
        })
        .unwrap();
        (out, datas, plan)
    }

    #[test]
    fn round_trip_through_reader() {
        for version in [2, 3] {
            let (bytes, datas, plan) = write_sample(version);
            assert_eq!(bytes.len() as u64, plan.total_len());
            let src = SliceSource::new(bytes.clone());
            let model = load(&[Input {
                path: "t.gguf".into(),
                source: &src,
            }])
            .unwrap();
            assert_eq!(model.version, version);
            assert_eq!(model.alignment, 64);
            assert!(model.findings.is_empty(), "{:?}", model.findings);
            let want = sample_metadata();
            assert_eq!(model.metadata.len(), want.len());
            for (got, want) in model.metadata.iter().zip(&want) {
                assert_eq!(got.key, want.key);
                assert_eq!(got.value_type, want.value_type, "{}", got.key);
                assert_eq!(got.array_type, want.array_type, "{}", got.key);
                assert_eq!(got.value, want.value, "{}", got.key);
            }
            for (i, t) in model.tensors.iter().enumerate() {
                assert_eq!(t.shape, plan.tensors()[i].shape);
                let p = t.primary();
                assert_eq!(p.offset % 64, 0);
                assert_eq!(p.offset, plan.data_start() + plan.offset(i));
                let at = p.offset as usize;
                assert_eq!(&bytes[at..at + datas[i].len()], &datas[i][..]);
            }
            // Re-writing what was read gives the same bytes.
            let entries: Vec<TensorEntry> = model
                .tensors
                .iter()
                .map(|t| {
                    let Encoding::Ggml { ggml_type } = t.encoding else {
                        panic!()
                    };
                    TensorEntry::new(&t.name, &t.shape, ggml_type)
                })
                .collect();
            let plan2 = GgufPlan::new(version, &model.metadata, &entries).unwrap();
            let again = write_gguf(&plan2, Vec::new(), |i, _, w| w.write_data(&datas[i])).unwrap();
            assert_eq!(again, bytes);
        }
    }

    use crate::encoding::Encoding;

    /// A packed string array is written exactly as the same strings as `String` values
    /// (type ARRAY of STRING), and read back packed.
    #[test]
    fn packed_strings_round_trip() {
        use crate::meta::StrArray;
        let toks: Vec<String> = (0..5000)
            .map(|i| format!("{}▁{i}", "ü".repeat(i % 7)))
            .collect();
        let tensors = vec![TensorEntry::new("a", &[4], GgmlType::F32)];
        let packed = vec![
            entry(
                "tokenizer.ggml.tokens",
                GgufValueType::Array,
                MetaValue::strings_from(&toks),
            ),
            entry(
                "empty",
                GgufValueType::Array,
                MetaValue::Strings(StrArray::new()),
            ),
            entry(
                "nested",
                GgufValueType::Array,
                MetaValue::Array(vec![MetaValue::strings_from(["x", "y"])]),
            ),
        ];
        assert_eq!(packed[0].array_type, Some(GgufValueType::String));
        assert_eq!(packed[1].array_type, Some(GgufValueType::String));
        let values = vec![
            entry(
                "tokenizer.ggml.tokens",
                GgufValueType::Array,
                MetaValue::Array(toks.iter().cloned().map(MetaValue::String).collect()),
            ),
            MetaEntry {
                array_type: Some(GgufValueType::String),
                ..entry("empty", GgufValueType::Array, MetaValue::Array(vec![]))
            },
            entry(
                "nested",
                GgufValueType::Array,
                MetaValue::Array(vec![MetaValue::Array(vec![
                    MetaValue::String("x".into()),
                    MetaValue::String("y".into()),
                ])]),
            ),
        ];
        let write = |m: &[MetaEntry]| {
            let plan = GgufPlan::new(3, m, &tensors).unwrap();
            write_gguf(&plan, Vec::new(), |_, _, w| w.write_data(&[0; 16])).unwrap()
        };
        let bytes = write(&packed);
        assert_eq!(bytes, write(&values));
        // Untyped entries infer ARRAY of STRING too.
        let untyped: Vec<MetaEntry> = packed
            .iter()
            .map(|e| MetaEntry {
                value_type: None,
                array_type: None,
                ..e.clone()
            })
            .collect();
        assert_eq!(write(&untyped), bytes);
        let src = SliceSource::new(bytes.clone());
        let model = load(&[Input {
            path: "t.gguf".into(),
            source: &src,
        }])
        .unwrap();
        for (got, want) in model.metadata.iter().zip(&packed) {
            assert_eq!(
                (&got.key, got.value_type, got.array_type, &got.value),
                (&want.key, want.value_type, want.array_type, &want.value)
            );
        }
        let tokens = model.meta_entry("tokenizer.ggml.tokens").unwrap();
        assert_eq!(tokens.array_type, Some(GgufValueType::String));
        let MetaValue::Strings(a) = &tokens.value else {
            panic!("{:?}", tokens.value)
        };
        assert!(a.iter().eq(toks.iter().map(String::as_str)));
        // Re-written from what was read: the same bytes.
        assert_eq!(write(&model.metadata), bytes);
        // Strings cannot be written as another element type.
        let mut wrong = packed[0].clone();
        wrong.array_type = Some(GgufValueType::Uint32);
        let err = GgufPlan::new(3, &[wrong], &tensors).unwrap_err();
        assert!(
            err.to_string().contains("does not fit type UINT32"),
            "{err}"
        );
    }

    #[test]
    fn refuses_wrong_sizes_and_bad_entries() {
        let tensors = vec![TensorEntry::new("a", &[4], GgmlType::F32)];
        let plan = GgufPlan::new(3, &[], &tensors).unwrap();
        let mut w = GgufStreamWriter::start(&plan, Vec::new()).unwrap();
        assert!(w.write_data(&[0; 17]).is_err());
        w.write_data(&[0; 15]).unwrap();
        assert!(w.end_tensor().is_err());
        let w = GgufStreamWriter::start(&plan, Vec::new()).unwrap();
        assert!(w.finish().is_err());

        assert!(GgufPlan::new(1, &[], &tensors).is_err());
        let q = vec![TensorEntry::new("q", &[2, 48], GgmlType::Q4_0)];
        assert!(GgufPlan::new(3, &[], &q).is_err());
        let long = vec![TensorEntry::new("x".repeat(64), &[4], GgmlType::F32)];
        assert!(GgufPlan::new(3, &[], &long).is_err());
        let bad_align = vec![entry_u32("general.alignment", 48)];
        assert!(GgufPlan::new(3, &bad_align, &tensors).is_err());
        let overflow = vec![entry("k", GgufValueType::Uint8, MetaValue::U64(256))];
        assert!(GgufPlan::new(3, &overflow, &tensors).is_err());
        let dup = vec![entry_u32("k", 1), entry_u32("k", 2)];
        assert!(GgufPlan::new(3, &dup, &tensors).is_err());
    }

    #[test]
    fn offsets_are_running_sum_of_padded_sizes() {
        let tensors = vec![
            TensorEntry::new("a", &[3], GgmlType::F32),
            TensorEntry::new("b", &[33], GgmlType::F16),
            TensorEntry::new("c", &[1], GgmlType::F32),
        ];
        let plan = GgufPlan::new(3, &[], &tensors).unwrap();
        assert_eq!(
            (plan.offset(0), plan.offset(1), plan.offset(2)),
            (0, 32, 128)
        );
        assert_eq!(plan.total_len(), plan.data_start() + 160);
        assert_eq!(plan.data_start() % 32, 0);
    }
}
