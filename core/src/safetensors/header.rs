//! The safetensors header: an 8-byte little-endian length, then that many bytes of JSON
//! mapping tensor names to `{dtype, shape, data_offsets}` (offsets relative to the data
//! section that follows the header).
//!
//! Only the header is read. Every structural problem that still lets the other tensors be
//! used is a finding; problems that make the header unreadable are `LoadError`s.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::dtype::Dtype;
use crate::error::LoadError;
use crate::finding::{grouped, Finding};
use crate::source::{read_vec, ByteSource};

/// Larger headers are refused before anything is allocated (the reference implementation
/// uses the same 100 MB bound).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// One tensor entry of a header, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<u64>,
    /// Offsets relative to the data section.
    pub begin: u64,
    pub end: u64,
}

impl HeaderTensor {
    pub fn n_elements(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Bytes of JSON after the 8-byte length.
    pub json_len: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
    /// Tensors in header order (each name once: for duplicated keys the last entry wins,
    /// as in serde_json and Python's json module).
    pub tensors: Vec<HeaderTensor>,
    /// `__metadata__` string entries.
    pub metadata: Vec<(String, String)>,
    pub findings: Vec<Finding>,
}

/// JSON object entries in file order, duplicates kept (serde_json's maps drop them).
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, serde_json::Value>()? {
                    v.push((k, val));
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

fn header_err(path: &str, offset: u64, code: &str, msg: impl Into<String>) -> LoadError {
    LoadError::new(
        path,
        Some(offset),
        "header",
        format!("{code}: {}", msg.into()),
    )
}

/// Read and check the header of one safetensors file.
pub fn read_header(src: &dyn ByteSource, path: &str) -> Result<Header, LoadError> {
    let size = src.len();
    if size < 8 {
        return Err(header_err(
            path,
            0,
            "ST_TRUNCATED",
            format!(
                "file has {size} bytes; a safetensors file starts with an 8-byte header length"
            ),
        ));
    }
    let mut len_bytes = [0u8; 8];
    src.read_exact_at(0, &mut len_bytes)
        .map_err(|e| header_err(path, 0, "ST_HEADER_INVALID", e.to_string()))?;
    let json_len = u64::from_le_bytes(len_bytes);
    if json_len > MAX_HEADER_BYTES {
        return Err(header_err(
            path,
            0,
            "ST_HEADER_INVALID",
            format!(
                "header length {} exceeds the {} byte limit (is this a safetensors file?)",
                grouped(json_len),
                grouped(MAX_HEADER_BYTES)
            ),
        ));
    }
    if json_len > size - 8 {
        return Err(header_err(
            path,
            0,
            "ST_TRUNCATED",
            format!(
                "header claims {} bytes of JSON but the file has only {} bytes after the length",
                grouped(json_len),
                grouped(size - 8)
            ),
        ));
    }
    let raw = read_vec(src, 8, json_len)
        .map_err(|e| header_err(path, 8, "ST_HEADER_INVALID", e.to_string()))?;
    let text = std::str::from_utf8(&raw).map_err(|e| {
        header_err(
            path,
            8 + e.valid_up_to() as u64,
            "ST_HEADER_INVALID",
            format!("header is not valid UTF-8 at byte {}", e.valid_up_to()),
        )
    })?;
    let entries: Entries = serde_json::from_str(text).map_err(|e| {
        header_err(
            path,
            8,
            "ST_HEADER_INVALID",
            format!(
                "header is not a JSON object: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    let data_start = 8 + json_len;
    let data_len = size - data_start;
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let mut findings = Vec::new();
    let mut metadata = Vec::new();
    let mut tensors: Vec<HeaderTensor> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    // Every entry, duplicates included: a shadowed copy still owns its bytes.
    let mut all: Vec<HeaderTensor> = Vec::new();
    for (name, value) in entries.0 {
        if name == "__metadata__" {
            metadata = parse_metadata(&value, file, &mut findings);
            continue;
        }
        let t = match parse_entry(&name, &value) {
            Ok(t) => t,
            Err(msg) => {
                findings.push(Finding::error(
                    "ST_HEADER_INVALID",
                    Some(&name),
                    format!(
                        "{file}: header entry for {name} is invalid: {msg}; the tensor is skipped"
                    ),
                    "re-export the checkpoint; the header no longer describes this tensor",
                ));
                continue;
            }
        };
        all.push(t.clone());
        if let Some(&prev) = index.get(&name) {
            findings.push(Finding::error(
                "ST_DUPLICATE_KEY",
                Some(&name),
                format!(
                    "{file}: the header names {name} twice (bytes {}..{} and {}..{}); JSON readers keep only the last one",
                    tensors[prev].begin, tensors[prev].end, t.begin, t.end
                ),
                "re-save the checkpoint with unique tensor names; the first copy is unreachable",
            ));
            tensors[prev] = t;
        } else {
            index.insert(name, tensors.len());
            tensors.push(t);
        }
    }
    check_sizes(&tensors, file, &mut findings);
    check_layout(&all, data_len, file, &mut findings);
    Ok(Header {
        json_len,
        data_start,
        tensors,
        metadata,
        findings,
    })
}

fn parse_metadata(
    value: &serde_json::Value,
    file: &str,
    findings: &mut Vec<Finding>,
) -> Vec<(String, String)> {
    let Some(obj) = value.as_object() else {
        findings.push(Finding::warning(
            "ST_HEADER_INVALID",
            None,
            format!("{file}: __metadata__ is {value} instead of an object of strings"),
            "the safetensors reference reader refuses such files; re-save the checkpoint",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in obj {
        match v.as_str() {
            Some(s) => out.push((k.clone(), s.to_string())),
            None => findings.push(Finding::warning(
                "ST_HEADER_INVALID",
                None,
                format!("{file}: __metadata__.{k} is {v}, not a string"),
                "the safetensors reference reader refuses non-string metadata; re-save the checkpoint",
            )),
        }
    }
    out
}

fn parse_entry(name: &str, value: &serde_json::Value) -> Result<HeaderTensor, String> {
    let obj = value.as_object().ok_or("not an object")?;
    let dtype_name = obj
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or("missing \"dtype\"")?;
    let dtype =
        Dtype::from_name(dtype_name).ok_or_else(|| format!("unknown dtype {dtype_name:?}"))?;
    let shape = obj
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or("missing \"shape\" array")?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| format!("shape entry {d} is not a non-negative integer"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    let offs = obj
        .get("data_offsets")
        .and_then(|s| s.as_array())
        .ok_or("missing \"data_offsets\" array")?;
    let (begin, end) = match offs.as_slice() {
        [b, e] => (
            b.as_u64()
                .ok_or("data_offsets[0] is not a non-negative integer")?,
            e.as_u64()
                .ok_or("data_offsets[1] is not a non-negative integer")?,
        ),
        _ => {
            return Err(format!(
                "data_offsets has {} entries instead of 2",
                offs.len()
            ))
        }
    };
    if end < begin {
        return Err(format!(
            "data_offsets [{begin}, {end}] end before they begin"
        ));
    }
    Ok(HeaderTensor {
        name: name.to_string(),
        dtype,
        shape,
        begin,
        end,
    })
}

fn check_sizes(tensors: &[HeaderTensor], file: &str, findings: &mut Vec<Finding>) {
    for t in tensors {
        let have = t.end - t.begin;
        let want = t.n_elements().and_then(|n| t.dtype.bytes_for(n));
        if want != Some(have) {
            let want_s = want
                .map(grouped)
                .unwrap_or_else(|| "an impossible number of".into());
            findings.push(Finding::error(
                "ST_SIZE_MISMATCH",
                Some(&t.name),
                format!(
                    "{file}: {} is {} {:?} = {want_s} bytes, but its data_offsets span {} bytes",
                    t.name,
                    t.dtype,
                    t.shape,
                    grouped(have)
                ),
                "the header and the data disagree; re-export the tensor",
            ));
        }
    }
}

/// Tensors must tile the data section exactly: from 0, without gaps or overlaps, up to the
/// end of the file.
fn check_layout(tensors: &[HeaderTensor], data_len: u64, file: &str, findings: &mut Vec<Finding>) {
    let mut order: Vec<&HeaderTensor> = tensors.iter().collect();
    order.sort_by_key(|t| (t.begin, t.end));
    let mut pos = 0u64;
    let mut prev: Option<&HeaderTensor> = None;
    for t in &order {
        if t.begin > pos {
            findings.push(Finding::warning(
                "ST_OFFSET_GAP",
                Some(&t.name),
                format!(
                    "{file}: {} unused bytes before {} (data bytes {pos}..{}{})",
                    grouped(t.begin - pos),
                    t.name,
                    t.begin,
                    prev.map(|p| format!(", after {}", p.name)).unwrap_or_default()
                ),
                "the reference reader refuses files whose tensors are not contiguous; re-save the checkpoint",
            ));
        } else if t.begin < pos {
            findings.push(Finding::error(
                "ST_OFFSET_GAP",
                Some(&t.name),
                format!(
                    "{file}: {} (bytes {}..{}) overlaps {} (which ends at {pos})",
                    t.name,
                    t.begin,
                    t.end,
                    prev.map(|p| p.name.as_str()).unwrap_or("?")
                ),
                "two tensors share bytes: at least one of them is wrong; re-export the checkpoint",
            ));
        }
        if t.end >= pos {
            pos = t.end;
            prev = Some(t);
        }
    }
    if pos > data_len {
        let cut: Vec<&str> = order
            .iter()
            .filter(|t| t.end > data_len)
            .map(|t| t.name.as_str())
            .collect();
        findings.push(Finding::error(
            "ST_TRUNCATED",
            cut.first().copied(),
            format!(
                "{file}: the header needs {} data bytes but the file holds {} ({} missing); {} tensor(s) run past the end: {}",
                grouped(pos),
                grouped(data_len),
                grouped(pos - data_len),
                cut.len(),
                cut.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            ),
            "the download or copy was cut short; fetch the file again and compare its size",
        ));
    } else if pos < data_len {
        findings.push(Finding::warning(
            "ST_TRAILING_BYTES",
            None,
            format!(
                "{file}: {} bytes after the last tensor ({}, ending at data byte {})",
                grouped(data_len - pos),
                prev.map(|p| p.name.as_str()).unwrap_or("none"),
                grouped(pos)
            ),
            "the reference reader refuses files with trailing bytes; re-save the checkpoint",
        ));
    }
}
