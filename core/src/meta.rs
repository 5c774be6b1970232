//! Metadata values (GGUF key/value pairs, safetensors `__metadata__`, config.json entries).

use serde::{Deserialize, Serialize};

/// A typed metadata value. The GGUF value type is kept so a file can be re-written exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    /// Arrays of strings, bools or arrays.
    Array(Vec<MetaValue>),
    /// Arrays of numbers, stored compactly (a long array costs what it costs on disk).
    Numbers(NumArray),
    /// Arbitrary JSON (config.json values).
    Json(serde_json::Value),
}

/// A numeric array in its element type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl NumArray {
    pub fn len(&self) -> usize {
        match self {
            NumArray::U8(v) => v.len(),
            NumArray::I8(v) => v.len(),
            NumArray::U16(v) => v.len(),
            NumArray::I16(v) => v.len(),
            NumArray::U32(v) => v.len(),
            NumArray::I32(v) => v.len(),
            NumArray::U64(v) => v.len(),
            NumArray::I64(v) => v.len(),
            NumArray::F32(v) => v.len(),
            NumArray::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as a scalar value.
    pub fn get(&self, i: usize) -> Option<MetaValue> {
        Some(match self {
            NumArray::U8(v) => MetaValue::U64(*v.get(i)? as u64),
            NumArray::I8(v) => MetaValue::I64(*v.get(i)? as i64),
            NumArray::U16(v) => MetaValue::U64(*v.get(i)? as u64),
            NumArray::I16(v) => MetaValue::I64(*v.get(i)? as i64),
            NumArray::U32(v) => MetaValue::U64(*v.get(i)? as u64),
            NumArray::I32(v) => MetaValue::I64(*v.get(i)? as i64),
            NumArray::U64(v) => MetaValue::U64(*v.get(i)?),
            NumArray::I64(v) => MetaValue::I64(*v.get(i)?),
            NumArray::F32(v) => MetaValue::F64(*v.get(i)? as f64),
            NumArray::F64(v) => MetaValue::F64(*v.get(i)?),
        })
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            (0..self.len())
                .filter_map(|i| self.get(i))
                .map(|v| v.to_json())
                .collect(),
        )
    }
}

/// GGUF value type ids (gguf_type in ggml's gguf.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GgufValueType {
    Uint8,
    Int8,
    Uint16,
    Int16,
    Uint32,
    Int32,
    Float32,
    Bool,
    String,
    Array,
    Uint64,
    Int64,
    Float64,
}

impl GgufValueType {
    pub fn from_id(id: u32) -> Option<Self> {
        use GgufValueType::*;
        Some(match id {
            0 => Uint8,
            1 => Int8,
            2 => Uint16,
            3 => Int16,
            4 => Uint32,
            5 => Int32,
            6 => Float32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => Uint64,
            11 => Int64,
            12 => Float64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        use GgufValueType::*;
        match self {
            Uint8 => 0,
            Int8 => 1,
            Uint16 => 2,
            Int16 => 3,
            Uint32 => 4,
            Int32 => 5,
            Float32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            Uint64 => 10,
            Int64 => 11,
            Float64 => 12,
        }
    }

    pub fn name(self) -> &'static str {
        use GgufValueType::*;
        match self {
            Uint8 => "UINT8",
            Int8 => "INT8",
            Uint16 => "UINT16",
            Int16 => "INT16",
            Uint32 => "UINT32",
            Int32 => "INT32",
            Float32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            Uint64 => "UINT64",
            Int64 => "INT64",
            Float64 => "FLOAT64",
        }
    }

    /// Size in bytes of one scalar of this type (None for strings and arrays).
    pub fn scalar_size(self) -> Option<u64> {
        use GgufValueType::*;
        match self {
            Uint8 | Int8 | Bool => Some(1),
            Uint16 | Int16 => Some(2),
            Uint32 | Int32 | Float32 => Some(4),
            Uint64 | Int64 | Float64 => Some(8),
            String | Array => None,
        }
    }

    pub fn is_integer(self) -> bool {
        use GgufValueType::*;
        matches!(
            self,
            Uint8 | Int8 | Uint16 | Int16 | Uint32 | Int32 | Uint64 | Int64
        )
    }
}

/// One metadata entry. For arrays, `array_type` is the element type (the outermost, for
/// arrays of arrays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaEntry {
    pub key: String,
    pub value_type: Option<GgufValueType>,
    pub array_type: Option<GgufValueType>,
    pub value: MetaValue,
    /// Byte offset of the key in its file (GGUF only).
    pub offset: Option<u64>,
}

impl MetaValue {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            MetaValue::U64(v) => Some(*v),
            MetaValue::I64(v) if *v >= 0 => Some(*v as u64),
            MetaValue::Json(v) => v.as_u64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetaValue::U64(v) => Some(*v as f64),
            MetaValue::I64(v) => Some(*v as f64),
            MetaValue::F64(v) => Some(*v),
            MetaValue::Json(v) => v.as_f64(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            MetaValue::Json(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Number of elements of an array value.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            MetaValue::Array(a) => Some(a.len()),
            MetaValue::Numbers(n) => Some(n.len()),
            MetaValue::Json(serde_json::Value::Array(a)) => Some(a.len()),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as JSON (what `--json` prints; arrays complete).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            MetaValue::Bool(b) => serde_json::Value::Bool(*b),
            MetaValue::U64(v) => (*v).into(),
            MetaValue::I64(v) => (*v).into(),
            MetaValue::F64(v) => serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(v.to_string())),
            MetaValue::String(s) => serde_json::Value::String(s.clone()),
            MetaValue::Array(a) => {
                serde_json::Value::Array(a.iter().map(|v| v.to_json()).collect())
            }
            MetaValue::Numbers(n) => n.to_json(),
            MetaValue::Json(v) => v.clone(),
        }
    }

    /// A short one-line rendering for human output: long arrays collapse to their length.
    pub fn summary(&self, max_chars: usize) -> String {
        let full = match self {
            MetaValue::Array(a) if a.len() > 8 => {
                let head: Vec<String> = a.iter().take(3).map(|v| v.summary(24)).collect();
                return format!("[{}, …] ({} items)", head.join(", "), a.len());
            }
            MetaValue::Numbers(n) if n.len() > 8 => {
                let head: Vec<String> = (0..3)
                    .filter_map(|i| n.get(i))
                    .map(|v| v.summary(24))
                    .collect();
                return format!("[{}, …] ({} items)", head.join(", "), n.len());
            }
            MetaValue::String(s) => format!("{s:?}"),
            other => other.to_json().to_string(),
        };
        truncate_chars(&full, max_chars)
    }
}

/// Cut a string at a char boundary, adding an ellipsis when it was cut.
pub fn truncate_chars(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}
