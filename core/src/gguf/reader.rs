//! Parse a GGUF header: versions 1–3, little- or big-endian, every metadata value type.
//!
//! Every count and length is checked against the bytes that remain before anything is
//! allocated, so a hostile header can neither panic the reader nor make it allocate more
//! than the file could hold.

use super::cursor::Cursor;
use crate::error::LoadError;
use crate::finding::Finding;
use crate::meta::{GgufValueType, MetaEntry, MetaValue, NumArray, StrArray};
use crate::source::ByteSource;

pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's GGML_MAX_DIMS.
pub const GGML_MAX_DIMS: u32 = 4;
/// Beyond this many dimensions the header is treated as unreadable rather than odd.
const DIMS_HARD_CAP: u32 = 64;
/// Arrays nest at most this deep (llama.cpp itself never nests).
const MAX_NESTING: u32 = 8;
/// Numeric arrays are read this many bytes at a time.
const NUM_CHUNK: usize = 16 * 1024;

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

/// A length or count field as stored: 4 bytes in version 1, else 8, little- or big-endian.
fn decode_len(f: &[u8], v1: bool, big_endian: bool) -> u64 {
    match (v1, big_endian) {
        (true, false) => u32::from_le_bytes(f.try_into().expect("4 bytes")) as u64,
        (true, true) => u32::from_be_bytes(f.try_into().expect("4 bytes")) as u64,
        (false, false) => u64::from_le_bytes(f.try_into().expect("8 bytes")),
        (false, true) => u64::from_be_bytes(f.try_into().expect("8 bytes")),
    }
}

struct Parser<'a> {
    cur: Cursor<'a>,
    version: u32,
    findings: Vec<Finding>,
    invalid_utf8: Vec<(String, u64)>,
}

impl<'a> Parser<'a> {
    fn len_field(&mut self, field: &str) -> Result<u64, LoadError> {
        let (v1, be) = (self.version == 1, self.cur.big_endian);
        let f = self.cur.take(self.len_field_size() as usize, field)?;
        Ok(decode_len(f, v1, be))
    }

    fn len_field_size(&self) -> u64 {
        if self.version == 1 {
            4
        } else {
            8
        }
    }

    /// Read a string's length field and check it against the bytes left.
    fn string_len(&mut self, field: &str) -> Result<u64, LoadError> {
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
        Ok(len)
    }

    fn string(&mut self, field: &str) -> Result<String, LoadError> {
        let at = self.cur.pos();
        let len = self.string_len(field)?;
        let bytes = self.cur.bytes(len, field)?;
        match String::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => {
                self.invalid_utf8.push((field.to_string(), at));
                Ok(String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        }
    }

    /// Read `n` strings (the count already checked against the file) into one buffer.
    /// UTF-8 is checked once over the whole buffer; only when that fails (or a character
    /// straddles two strings) is each string checked, and an invalid one replaced as
    /// `string` does.
    fn string_array(&mut self, n: usize, field: &str) -> Result<StrArray, LoadError> {
        let first_at = self.cur.pos();
        let mut ends = Vec::with_capacity(n);
        // Grows with what is actually read, each length checked against the file first.
        let mut bytes = Vec::new();
        let len_size = self.len_field_size() as usize;
        let (v1, be) = (self.version == 1, self.cur.big_endian);
        let mut done = 0;
        while done < n {
            // Fast path: every whole string (length field and bytes) already in memory is
            // copied straight from the cursor's window.
            let window = self.cur.window();
            let mut used = 0;
            while done < n && window.len() - used >= len_size {
                let len = decode_len(&window[used..used + len_size], v1, be);
                let rest = (window.len() - used - len_size) as u64;
                if len > rest {
                    break;
                }
                let start = used + len_size;
                used = start + len as usize;
                bytes.extend_from_slice(&window[start..used]);
                ends.push(bytes.len());
                done += 1;
            }
            self.cur.advance(used);
            if done < n {
                // A string that crosses the window (or does not fit in the file): the
                // general path reads it, or names the offset and field it fails at.
                let len = self.string_len(field)?;
                self.cur.append_to(len, &mut bytes, field)?;
                ends.push(bytes.len());
                done += 1;
            }
        }
        match String::from_utf8(bytes) {
            Ok(s) if ends.iter().all(|&e| s.is_char_boundary(e)) => {
                Ok(StrArray::from_checked_parts(s, ends))
            }
            Ok(s) => Ok(self.string_array_lossy(s.as_bytes(), &ends, first_at, field)),
            Err(e) => Ok(self.string_array_lossy(e.as_bytes(), &ends, first_at, field)),
        }
    }

    /// The strings of `bytes` (ending at `ends`) one by one, invalid UTF-8 replaced and
    /// recorded with the offset of its string's length field, as `string` does.
    fn string_array_lossy(
        &mut self,
        bytes: &[u8],
        ends: &[usize],
        first_at: u64,
        field: &str,
    ) -> StrArray {
        let mut out = StrArray::with_capacity(ends.len(), bytes.len());
        let mut at = first_at;
        let mut start = 0;
        for &end in ends {
            let piece = &bytes[start..end];
            match std::str::from_utf8(piece) {
                Ok(s) => out.push(s),
                Err(_) => {
                    self.invalid_utf8.push((field.to_string(), at));
                    out.push(&String::from_utf8_lossy(piece));
                }
            }
            at += self.len_field_size() + piece.len() as u64;
            start = end;
        }
        out
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
        // Numbers are read a chunk at a time (the count was checked above, so `n` elements
        // of this size are in the file).
        macro_rules! nums {
            ($variant:ident, $t:ty) => {{
                const SIZE: usize = std::mem::size_of::<$t>();
                let be = self.cur.big_endian;
                let mut v: Vec<$t> = Vec::with_capacity(n);
                let mut left = n;
                while left > 0 {
                    let k = left.min(NUM_CHUNK / SIZE);
                    let bytes = self.cur.take(k * SIZE, field)?;
                    v.extend(bytes.chunks_exact(SIZE).map(|c| {
                        let a: [u8; SIZE] = c.try_into().expect("chunks of SIZE bytes");
                        if be {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        }
                    }));
                    left -= k;
                }
                MetaValue::Numbers(NumArray::$variant(v))
            }};
        }
        use GgufValueType as T;
        let value = match elem {
            T::Uint8 => nums!(U8, u8),
            T::Int8 => nums!(I8, i8),
            T::Uint16 => nums!(U16, u16),
            T::Int16 => nums!(I16, i16),
            T::Uint32 => nums!(U32, u32),
            T::Int32 => nums!(I32, i32),
            T::Uint64 => nums!(U64, u64),
            T::Int64 => nums!(I64, i64),
            T::Float32 => nums!(F32, f32),
            T::Float64 => nums!(F64, f64),
            T::Bool => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(MetaValue::Bool(self.cur.u8(field)? != 0));
                }
                MetaValue::Array(v)
            }
            T::String => MetaValue::Strings(self.string_array(n, field)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::rawbuilder::{RawGgufBuilder, RawValue};
    use crate::source::{SliceSource, SourceError};

    /// A source that cannot lend its bytes (as the browser's Blob and pread sources): the
    /// cursor reads through its 64 KiB buffer.
    struct NoBorrow(Vec<u8>);

    impl ByteSource for NoBorrow {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
            crate::source::check_range(offset, buf.len() as u64, self.len())?;
            let at = offset as usize;
            buf.copy_from_slice(&self.0[at..at + buf.len()]);
            Ok(())
        }
    }

    /// Parse through a lending and a non-lending source; both must agree.
    fn parse_both(bytes: &[u8]) -> Result<Header, LoadError> {
        let lent = parse_header(&SliceSource::new(bytes.to_vec()), "t.gguf");
        let read = parse_header(&NoBorrow(bytes.to_vec()), "t.gguf");
        match (&lent, &read) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.metadata, b.metadata);
                assert_eq!(a.findings, b.findings);
                assert_eq!(a.data_start, b.data_start);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("lent {lent:?} but read {read:?}"),
        }
        lent
    }

    fn tokens(n: usize) -> Vec<String> {
        // Every length from 0 to 40 (some strings straddle the 64 KiB buffer), multibyte
        // characters, and a few strings longer than the buffer.
        (0..n)
            .map(|i| match i % 997 {
                5 => "▁long".repeat(15_000),
                _ => format!("{}{i}", "é▁x".repeat(i % 11)),
            })
            .collect()
    }

    fn str_array(items: &[String]) -> RawValue {
        RawValue::Array(
            GgufValueType::String,
            items.iter().map(|s| RawValue::Str(s.clone())).collect(),
        )
    }

    #[test]
    fn string_arrays_read_into_one_buffer() {
        let toks = tokens(20_000);
        for version in [1, 2, 3] {
            let mut b = RawGgufBuilder::new()
                .kv("general.architecture", RawValue::Str("llama".into()))
                .kv("tokenizer.ggml.tokens", str_array(&toks))
                .kv("empty", RawValue::Array(GgufValueType::String, vec![]))
                .kv(
                    "nested",
                    RawValue::Array(
                        GgufValueType::Array,
                        vec![str_array(&toks[..3]), str_array(&[])],
                    ),
                )
                .kv("after", RawValue::U32(7));
            b.version = version;
            let h = parse_both(&b.build()).unwrap();
            assert!(h.findings.is_empty(), "{:?}", h.findings);
            let tokens = &h.metadata[1];
            assert_eq!(tokens.array_type, Some(GgufValueType::String));
            let MetaValue::Strings(a) = &tokens.value else {
                panic!("v{version}: not packed: {:?}", tokens.value);
            };
            assert_eq!(a.len(), toks.len());
            assert!(a.iter().eq(toks.iter().map(String::as_str)));
            assert_eq!(h.metadata[2].value, MetaValue::Strings(StrArray::new()));
            assert_eq!(
                h.metadata[3].value,
                MetaValue::Array(vec![
                    MetaValue::strings_from(&toks[..3]),
                    MetaValue::Array(vec![]),
                ])
            );
            assert_eq!(h.metadata[4].value, MetaValue::U64(7));
        }
    }

    /// A big-endian v3 header, written by hand: the lengths are swapped.
    #[test]
    fn big_endian_string_arrays() {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes());
        out.extend_from_slice(&1u64.to_be_bytes());
        let put = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        put(&mut out, "k");
        out.extend_from_slice(&9u32.to_be_bytes());
        out.extend_from_slice(&8u32.to_be_bytes());
        out.extend_from_slice(&3u64.to_be_bytes());
        for s in ["a", "", "ü"] {
            put(&mut out, s);
        }
        let h = parse_both(&out).unwrap();
        assert!(h.big_endian);
        assert_eq!(h.metadata[0].value, MetaValue::strings_from(["a", "", "ü"]));
    }

    /// A big-endian file (built by the raw builder) reads as the same little-endian file:
    /// string arrays (fast and slow paths), every numeric array type the version has (each
    /// value with distinct bytes, so a wrong byte order shows), scalars and tensor infos.
    #[test]
    fn big_endian_arrays_read_as_little_endian() {
        let mut toks = tokens(2_000);
        // 256 = 0x100: its v1 length field, read in the wrong order, is 65,536, which still
        // fits in the file, so a fast path reading the wrong order gives other strings.
        toks.insert(0, "x".repeat(256));
        let n = 10_000usize;
        let arr = |t: GgufValueType, f: &dyn Fn(usize) -> RawValue| {
            RawValue::Array(t, (0..n).map(f).collect())
        };
        for version in [1, 2, 3] {
            let mut b = RawGgufBuilder::new()
                .kv("tokens", str_array(&toks))
                .kv("u8", arr(GgufValueType::Uint8, &|i| RawValue::U8(i as u8)))
                .kv(
                    "i8",
                    arr(GgufValueType::Int8, &|i| {
                        RawValue::I8((i as u8 ^ 0x5a) as i8)
                    }),
                )
                .kv(
                    "u16",
                    arr(GgufValueType::Uint16, &|i| RawValue::U16(0x0102 ^ i as u16)),
                )
                .kv(
                    "i16",
                    arr(GgufValueType::Int16, &|i| RawValue::I16(-0x0102 - i as i16)),
                )
                .kv(
                    "u32",
                    arr(GgufValueType::Uint32, &|i| {
                        RawValue::U32(0x0102_0304 + i as u32)
                    }),
                )
                .kv(
                    "i32",
                    arr(GgufValueType::Int32, &|i| {
                        RawValue::I32(-0x0102_0304 - i as i32)
                    }),
                )
                .kv(
                    "f32",
                    arr(GgufValueType::Float32, &|i| RawValue::F32(i as f32 * -0.75)),
                )
                .kv("scalar", RawValue::U32(0x0102_0304))
                .tensor("t", &[3, 5], 0, vec![0; 60]);
            if version >= 2 {
                b = b
                    .kv(
                        "u64",
                        arr(GgufValueType::Uint64, &|i| {
                            RawValue::U64(0x0102_0304_0506_0708 + i as u64)
                        }),
                    )
                    .kv(
                        "i64",
                        arr(GgufValueType::Int64, &|i| RawValue::I64(-(i as i64) << 40)),
                    )
                    .kv(
                        "f64",
                        arr(GgufValueType::Float64, &|i| RawValue::F64(i as f64 / 3.0)),
                    );
            }
            b.version = version;
            let le = parse_both(&b.build()).unwrap();
            b.big_endian = true;
            let bytes = b.build();
            assert_eq!(bytes[4..8], version.to_be_bytes());
            let be = parse_both(&bytes).unwrap();
            assert!(!le.big_endian);
            assert!(be.big_endian, "v{version}");
            assert_eq!(be.version, version);
            assert!(be.findings.is_empty(), "v{version}: {:?}", be.findings);
            assert_eq!(be.metadata, le.metadata, "v{version}");
            assert_eq!(be.tensors, le.tensors, "v{version}");
            assert_eq!(be.data_start, le.data_start, "v{version}");
            // And the values are the ones written, not merely equal in both files.
            let m = |k: &str| &be.metadata.iter().find(|e| e.key == k).unwrap().value;
            assert_eq!(m("tokens"), &MetaValue::strings_from(&toks));
            let want = |v: NumArray| MetaValue::Numbers(v);
            assert_eq!(
                m("u16"),
                &want(NumArray::U16((0..n).map(|i| 0x0102 ^ i as u16).collect()))
            );
            assert_eq!(
                m("i16"),
                &want(NumArray::I16((0..n).map(|i| -0x0102 - i as i16).collect()))
            );
            assert_eq!(
                m("u32"),
                &want(NumArray::U32(
                    (0..n).map(|i| 0x0102_0304 + i as u32).collect()
                ))
            );
            assert_eq!(
                m("i32"),
                &want(NumArray::I32(
                    (0..n).map(|i| -0x0102_0304 - i as i32).collect()
                ))
            );
            assert_eq!(
                m("f32"),
                &want(NumArray::F32((0..n).map(|i| i as f32 * -0.75).collect()))
            );
            assert_eq!(m("scalar"), &MetaValue::U64(0x0102_0304));
            assert_eq!(be.tensors[0].ne, [5, 3]);
            if version >= 2 {
                assert_eq!(
                    m("u64"),
                    &want(NumArray::U64(
                        (0..n).map(|i| 0x0102_0304_0506_0708 + i as u64).collect()
                    ))
                );
                assert_eq!(
                    m("i64"),
                    &want(NumArray::I64((0..n).map(|i| -(i as i64) << 40).collect()))
                );
                assert_eq!(
                    m("f64"),
                    &want(NumArray::F64((0..n).map(|i| i as f64 / 3.0).collect()))
                );
            }
        }
    }

    #[test]
    fn invalid_utf8_in_a_string_array_is_replaced_and_located() {
        // One invalid string, and a character split across two strings (the buffer as a
        // whole is valid UTF-8, but neither string is).
        let strings: [&[u8]; 5] = [b"ok", b"bad\xff", b"\xc3", b"\xa9", "é".as_bytes()];
        let mut body = Vec::new();
        let mut starts = Vec::new();
        for s in strings {
            starts.push(body.len());
            body.extend_from_slice(&(s.len() as u64).to_le_bytes());
            body.extend_from_slice(s);
        }
        let out = header_with_array(8, strings.len() as u64, &body);
        let offsets: Vec<usize> = starts.iter().map(|s| out.len() - body.len() + s).collect();
        let h = parse_both(&out).unwrap();
        assert_eq!(
            h.metadata[0].value,
            MetaValue::strings_from(["ok", "bad\u{fffd}", "\u{fffd}", "\u{fffd}", "é"])
        );
        let f = h
            .findings
            .iter()
            .find(|f| f.code == "GGUF_INVALID_UTF8")
            .unwrap();
        assert!(f.message.starts_with("3 string(s)"), "{}", f.message);
        assert!(
            f.message
                .contains(&format!("metadata[0] (tok) at offset {}", offsets[1])),
            "{}",
            f.message
        );
    }

    fn header_with_array(elem: u32, count: u64, body: &[u8]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&3u64.to_le_bytes());
        out.extend_from_slice(b"tok");
        out.extend_from_slice(&9u32.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Counts and lengths a file cannot hold are refused before anything is allocated for
    /// them (a 2^40-element Vec or a 2^60-byte buffer would abort the test), with the offset
    /// and field of the bad number.
    #[test]
    fn hostile_string_arrays_are_refused_without_allocating() {
        // 2^40 strings cannot fit in a few bytes.
        let bytes = header_with_array(8, 1 << 40, &[0; 64]);
        let e = parse_both(&bytes).unwrap_err();
        assert_eq!(e.offset, Some(43));
        assert_eq!(e.field, "metadata[0] (tok)");
        assert!(
            e.message.contains("array of 1099511627776 STRING elements"),
            "{e}"
        );
        // count * 8 overflows.
        let e = parse_both(&header_with_array(8, u64::MAX / 2, &[0; 64])).unwrap_err();
        assert!(e.message.contains("2^64"), "{e}");

        // The third string claims 2^60 bytes.
        let mut body = Vec::new();
        for s in ["a", "b"] {
            body.extend_from_slice(&1u64.to_le_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        let bad_at = 51 + body.len() as u64;
        body.extend_from_slice(&(1u64 << 60).to_le_bytes());
        body.extend_from_slice(&[b'x'; 100]);
        let e = parse_both(&header_with_array(8, 3, &body)).unwrap_err();
        assert_eq!(e.offset, Some(bad_at));
        assert_eq!(e.field, "metadata[0] (tok)");
        assert!(
            e.message
                .contains("string length 1152921504606846976 exceeds the 100 bytes left"),
            "{e}"
        );

        // Cut inside a string, inside a length field, and after the last string.
        let mut body = Vec::new();
        for s in ["hello", "world", "!"] {
            body.extend_from_slice(&(s.len() as u64).to_le_bytes());
            body.extend_from_slice(s.as_bytes());
        }
        let whole = header_with_array(8, 3, &body);
        parse_both(&whole).unwrap();
        for cut in 39..whole.len() {
            let e = parse_both(&whole[..cut]).unwrap_err();
            assert_eq!(e.field, "metadata[0] (tok)", "cut at {cut}: {e}");
            assert!(
                e.offset.is_some_and(|o| o >= 35 && o <= cut as u64),
                "cut at {cut}: {e}"
            );
        }
    }

    /// Numeric arrays, read a chunk at a time, keep every value (also across chunks and
    /// the cursor's buffer).
    #[test]
    fn numeric_arrays_read_in_chunks() {
        let n = 50_000usize;
        let mut b = RawGgufBuilder::new()
            .kv("pad", RawValue::Str("x".repeat(1000)))
            .kv(
                "f32",
                RawValue::Array(
                    GgufValueType::Float32,
                    (0..n).map(|i| RawValue::F32(i as f32 * -0.5)).collect(),
                ),
            )
            .kv(
                "i16",
                RawValue::Array(
                    GgufValueType::Int16,
                    (0..n).map(|i| RawValue::I16(i as i16 ^ 0x5555)).collect(),
                ),
            )
            .kv(
                "u8",
                RawValue::Array(
                    GgufValueType::Uint8,
                    (0..n).map(|i| RawValue::U8(i as u8)).collect(),
                ),
            )
            .kv(
                "i64",
                RawValue::Array(
                    GgufValueType::Int64,
                    (0..n).map(|i| RawValue::I64(-(i as i64) << 20)).collect(),
                ),
            );
        for version in [1, 3] {
            b.version = version;
            let h = parse_both(&b.build()).unwrap();
            let m = |k: &str| &h.metadata.iter().find(|e| e.key == k).unwrap().value;
            assert_eq!(
                m("f32"),
                &MetaValue::Numbers(NumArray::F32((0..n).map(|i| i as f32 * -0.5).collect()))
            );
            assert_eq!(
                m("i16"),
                &MetaValue::Numbers(NumArray::I16((0..n).map(|i| i as i16 ^ 0x5555).collect()))
            );
            assert_eq!(
                m("u8"),
                &MetaValue::Numbers(NumArray::U8((0..n).map(|i| i as u8).collect()))
            );
            assert_eq!(
                m("i64"),
                &MetaValue::Numbers(NumArray::I64((0..n).map(|i| -(i as i64) << 20).collect()))
            );
        }
    }
}
