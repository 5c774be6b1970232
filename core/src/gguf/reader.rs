//! Parse a GGUF header: versions 1–3, little- or big-endian, every metadata value type.
//!
//! Every count and length is checked against the bytes that remain before anything is
//! allocated, so a hostile header can neither panic the reader nor make it allocate more
//! than the file could hold.

use super::cursor::Cursor;
use crate::error::LoadError;
use crate::finding::Finding;
use crate::meta::{GgufValueType, MetaEntry, MetaValue, NumArray};
use crate::source::ByteSource;

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS.
pub const GGML_MAX_DIMS: u32 = 4;
/// Beyond this many dimensions the header is treated as unreadable rather than odd.
const DIMS_HARD_CAP: u32 = 64;
/// Arrays nest at most this deep (llama.cpp itself never nests).
const MAX_NESTING: u32 = 8;

/// One tensor info record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// GGUF dims order: ne[0] is the fastest-varying (innermost) dimension.
    pub ne: Vec<u64>,
    pub type_id: u32,
    /// Offset relative to the start of the data section.
    pub rel_offset: u64,
    /// Where this record starts in the file.
    pub info_offset: u64,
    /// Element count, or None when the product overflows.
    pub n_elements: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Header {
    pub version: u32,
    pub big_endian: bool,
    pub metadata: Vec<MetaEntry>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// End of the tensor infos (before padding).
    pub infos_end: u64,
    /// Start of the data section.
    pub data_start: u64,
    pub findings: Vec<Finding>,
}

struct Parser<'a> {
    cur: Cursor<'a>,
    version: u32,
    findings: Vec<Finding>,
    invalid_utf8: Vec<(String, u64)>,
}

impl<'a> Parser<'a> {
    fn len_field(&mut self, field: &str) -> Result<u64, LoadError> {
        if self.version == 1 {
            Ok(self.cur.u32(field)? as u64)
        } else {
            self.cur.u64(field)
        }
    }

    fn len_field_size(&self) -> u64 {
        if self.version == 1 {
            4
        } else {
            8
        }
    }

    fn string(&mut self, field: &str) -> Result<String, LoadError> {
        let at = self.cur.pos();
        let len = self.len_field(field)?;
        if len > self.cur.remaining() {
            return Err(self.cur.err(
                at,
                field,
                format!(
                    "string length {len} exceeds the {} bytes left in the file",
                    self.cur.remaining()
                ),
            ));
        }
        let bytes = self.cur.bytes(len, field)?;
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.invalid_utf8.push((field.to_string(), at));
                Ok(String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        }
    }

    fn value_type(&mut self, field: &str) -> Result<GgufValueType, LoadError> {
        let at = self.cur.pos();
        let id = self.cur.u32(field)?;
        GgufValueType::from_id(id).ok_or_else(|| {
            self.cur
                .err(at, field, format!("unknown value type {id} (valid: 0–12)"))
        })
    }

    fn scalar(&mut self, ty: GgufValueType, field: &str) -> Result<MetaValue, LoadError> {
        use GgufValueType as T;
        Ok(match ty {
            T::Uint8 => MetaValue::U64(self.cur.u8(field)? as u64),
            T::Int8 => MetaValue::I64(self.cur.u8(field)? as i8 as i64),
            T::Uint16 => MetaValue::U64(self.cur.u16(field)? as u64),
            T::Int16 => MetaValue::I64(self.cur.u16(field)? as i16 as i64),
            T::Uint32 => MetaValue::U64(self.cur.u32(field)? as u64),
            T::Int32 => MetaValue::I64(self.cur.u32(field)? as i32 as i64),
            T::Uint64 => MetaValue::U64(self.cur.u64(field)?),
            T::Int64 => MetaValue::I64(self.cur.u64(field)? as i64),
            T::Float32 => MetaValue::F64(self.cur.f32(field)? as f64),
            T::Float64 => MetaValue::F64(self.cur.f64(field)?),
            T::Bool => MetaValue::Bool(self.cur.u8(field)? != 0),
            T::String => MetaValue::String(self.string(field)?),
            T::Array => self.array(field, 0)?.1,
        })
    }

    /// Read an array (element type, count, elements). Returns the element type too.
    fn array(&mut self, field: &str, depth: u32) -> Result<(GgufValueType, MetaValue), LoadError> {
        let at = self.cur.pos();
        if depth >= MAX_NESTING {
            return Err(self.cur.err(
                at,
                field,
                format!("arrays nested more than {MAX_NESTING} deep"),
            ));
        }
        let elem = self.value_type(field)?;
        let count_at = self.cur.pos();
        let count = self.len_field(field)?;
        let min_elem = match elem {
            GgufValueType::String => self.len_field_size(),
            GgufValueType::Array => 4 + self.len_field_size(),
            s => s.scalar_size().unwrap_or(1),
        };
        let need = count.checked_mul(min_elem);
        if need.is_none_or(|n| n > self.cur.remaining()) {
            return Err(self.cur.err(
                count_at,
                field,
                format!(
                    "array of {count} {} elements needs at least {} bytes but only {} remain",
                    elem.name(),
                    need.map(|n| n.to_string()).unwrap_or_else(|| "2^64".into()),
                    self.cur.remaining()
                ),
            ));
        }
        let n = count as usize;
        macro_rules! nums {
            ($variant:ident, $read:ident, $conv:expr) => {{
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let x = self.cur.$read(field)?;
                    v.push($conv(x));
                }
                MetaValue::Numbers(NumArray::$variant(v))
            }};
        }
        use GgufValueType as T;
        let value = match elem {
            T::Uint8 => nums!(U8, u8, |x| x),
            T::Int8 => nums!(I8, u8, |x: u8| x as i8),
            T::Uint16 => nums!(U16, u16, |x| x),
            T::Int16 => nums!(I16, u16, |x: u16| x as i16),
            T::Uint32 => nums!(U32, u32, |x| x),
            T::Int32 => nums!(I32, u32, |x: u32| x as i32),
            T::Uint64 => nums!(U64, u64, |x| x),
            T::Int64 => nums!(I64, u64, |x: u64| x as i64),
            T::Float32 => nums!(F32, f32, |x| x),
            T::Float64 => nums!(F64, f64, |x| x),
            T::Bool => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(MetaValue::Bool(self.cur.u8(field)? != 0));
                }
                MetaValue::Array(v)
            }
            T::String => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(MetaValue::String(self.string(field)?));
                }
                MetaValue::Array(v)
            }
            T::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.array(field, depth + 1)?.1);
                }
                MetaValue::Array(v)
            }
        };
        Ok((elem, value))
    }
}

/// Parse the header of one GGUF file.
pub fn parse_header(src: &dyn ByteSource, path: &str) -> Result<Header, LoadError> {
    let mut p = Parser {
        cur: Cursor::new(src, path),
        version: 0,
        findings: Vec::new(),
        invalid_utf8: Vec::new(),
    };
    let magic = p.cur.take(4, "magic").map_err(|_| {
        LoadError::new(
            path,
            Some(0),
            "magic",
            format!(
                "file is {} bytes long, too short to be GGUF (needs at least 24 bytes)",
                src.len()
            ),
        )
    })?;
    if magic != GGUF_MAGIC {
        let shown: String = magic
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        return Err(LoadError::new(
            path,
            Some(0),
            "magic",
            format!("expected \"GGUF\", found {magic:02x?} (\"{shown}\"): not a GGUF file"),
        ));
    }
    let raw = p.cur.take(4, "version")?;
    let raw: [u8; 4] = [raw[0], raw[1], raw[2], raw[3]];
    let (version, big_endian) = match (u32::from_le_bytes(raw), u32::from_be_bytes(raw)) {
        (v @ 1..=3, _) => (v, false),
        (_, v @ 1..=3) => (v, true),
        (v, _) => {
            return Err(LoadError::new(
                path,
                Some(4),
                "version",
                format!("unsupported GGUF version {v} (quantdoc reads versions 1, 2 and 3)"),
            ))
        }
    };
    p.version = version;
    p.cur.big_endian = big_endian;

    let count_at = p.cur.pos();
    let n_tensors = p.len_field("tensor_count")?;
    let kv_at = p.cur.pos();
    let n_kv = p.len_field("metadata_kv_count")?;
    // Smallest possible records: a kv is key length + type + one byte; a tensor info is
    // name length + n_dims + type + offset.
    let min_kv = p.len_field_size() + 4 + 1;
    let min_info = p.len_field_size() + 4 + 4 + 8;
    let kv_need = n_kv.checked_mul(min_kv);
    let info_need = n_tensors.checked_mul(min_info);
    let fits = matches!((kv_need, info_need), (Some(a), Some(b)) if a.checked_add(b).is_some_and(|t| t <= p.cur.remaining()));
    if !fits {
        let which = if kv_need.is_none_or(|a| a > p.cur.remaining()) {
            (kv_at, "metadata_kv_count", n_kv, min_kv)
        } else {
            (count_at, "tensor_count", n_tensors, min_info)
        };
        return Err(LoadError::new(
            path,
            Some(which.0),
            which.1,
            format!(
                "{} records of at least {} bytes each cannot fit in the {} bytes left in the file",
                which.2,
                which.3,
                p.cur.remaining()
            ),
        ));
    }

    let mut metadata: Vec<MetaEntry> = Vec::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let at = p.cur.pos();
        let key = p.string(&format!("metadata[{i}].key"))?;
        let field = format!("metadata[{i}] ({key})");
        let ty = p.value_type(&field)?;
        let (array_type, value) = if ty == GgufValueType::Array {
            let (elem, v) = p.array(&field, 0)?;
            (Some(elem), v)
        } else {
            (None, p.scalar(ty, &field)?)
        };
        metadata.push(MetaEntry {
            key,
            value_type: Some(ty),
            array_type,
            value,
            offset: Some(at),
        });
    }

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let at = p.cur.pos();
        let name = p.string(&format!("tensor_info[{i}].name"))?;
        let field = format!("tensor_info[{i}] ({name})");
        let dims_at = p.cur.pos();
        let n_dims = p.cur.u32(&format!("{field}.n_dims"))?;
        if n_dims > DIMS_HARD_CAP {
            return Err(p.cur.err(
                dims_at,
                &format!("{field}.n_dims"),
                format!("{n_dims} dimensions (ggml allows at most {GGML_MAX_DIMS})"),
            ));
        }
        if n_dims > GGML_MAX_DIMS {
            p.findings.push(Finding::error(
                "GGUF_TOO_MANY_DIMS",
                Some(&name),
                format!(
                    "tensor {name} declares {n_dims} dimensions at offset {dims_at}; ggml supports at most {GGML_MAX_DIMS}"
                ),
                "llama.cpp refuses this file; re-export the tensor with at most 4 dimensions",
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            ne.push(p.len_field(&format!("{field}.ne[{d}]"))?);
        }
        let type_id = p.cur.u32(&format!("{field}.type"))?;
        let rel_offset = p.cur.u64(&format!("{field}.offset"))?;
        let n_elements = ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if n_elements.is_none() {
            p.findings.push(Finding::error(
                "GGUF_TENSOR_SIZE_OVERFLOW",
                Some(&name),
                format!("tensor {name} has dimensions {ne:?} whose product overflows 64 bits"),
                "the tensor info is corrupt; the file cannot be loaded",
            ));
        }
        tensors.push(TensorInfo {
            name,
            ne,
            type_id,
            rel_offset,
            info_offset: at,
            n_elements,
        });
    }
    let infos_end = p.cur.pos();

    let mut alignment = DEFAULT_ALIGNMENT;
    if let Some(e) = metadata.iter().find(|e| e.key == "general.alignment") {
        let v = e.value.as_u64();
        let ok_type = e.value_type == Some(GgufValueType::Uint32);
        match v {
            Some(a) if ok_type && a > 0 && a.is_power_of_two() => alignment = a,
            _ => p.findings.push(Finding::error(
                "GGUF_BAD_ALIGNMENT",
                None,
                format!(
                    "general.alignment at offset {} is {} of type {}; it must be a UINT32 power of two",
                    e.offset.unwrap_or(0),
                    e.value.summary(40),
                    e.value_type.map(|t| t.name()).unwrap_or("?")
                ),
                "llama.cpp refuses the file; quantdoc assumed the default alignment of 32. Fix with `quantdoc meta IN -o OUT --set general.alignment=u32:32`",
            )),
        }
    }
    let data_start = infos_end
        .checked_next_multiple_of(alignment)
        .unwrap_or(u64::MAX);

    if !p.invalid_utf8.is_empty() {
        let (first_field, first_at) = &p.invalid_utf8[0];
        p.findings.push(Finding::warning(
            "GGUF_INVALID_UTF8",
            None,
            format!(
                "{} string(s) are not valid UTF-8, first {first_field} at offset {first_at}",
                p.invalid_utf8.len()
            ),
            "GGUF strings must be UTF-8; invalid bytes were shown as U+FFFD",
        ));
    }

    Ok(Header {
        version,
        big_endian,
        metadata,
        tensors,
        alignment,
        infos_end,
        data_start,
        findings: p.findings,
    })
}
