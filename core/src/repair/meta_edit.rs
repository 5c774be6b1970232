//! `quantdoc meta`: metadata edits with explicit GGUF types; tensor bytes copied unchanged.
//!
//! Values are written `TYPE:VALUE`: `u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool str`, or an
//! array `arr[TYPE]:V1,V2,...` (string elements cannot contain commas; use a JSON list
//! `arr[str]:["a,b","c"]` for those).

use super::{Fix, GgufRewrite, RepairError};
use crate::meta::{GgufValueType as T, MetaEntry, MetaValue, NumArray};
use crate::model::Model;
use crate::write::gguf::{entry, set_entry};

fn scalar_type(name: &str) -> Option<T> {
    Some(match name {
        "u8" => T::Uint8,
        "i8" => T::Int8,
        "u16" => T::Uint16,
        "i16" => T::Int16,
        "u32" => T::Uint32,
        "i32" => T::Int32,
        "u64" => T::Uint64,
        "i64" => T::Int64,
        "f32" => T::Float32,
        "f64" => T::Float64,
        "bool" => T::Bool,
        "str" => T::String,
        _ => return None,
    })
}

const TYPES_HELP: &str = "u8, i8, u16, i16, u32, i32, u64, i64, f32, f64, bool, str, arr[TYPE]";

fn parse_scalar(ty: T, v: &str) -> Result<MetaValue, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{v:?} is not a valid {}: {e}", ty.name());
    Ok(match ty {
        T::Uint8 | T::Uint16 | T::Uint32 | T::Uint64 => {
            let x: u64 = v.trim().parse().map_err(|e| bad(&e))?;
            let max = match ty {
                T::Uint8 => u8::MAX as u64,
                T::Uint16 => u16::MAX as u64,
                T::Uint32 => u32::MAX as u64,
                _ => u64::MAX,
            };
            if x > max {
                return Err(bad(&format!("larger than {max}")));
            }
            MetaValue::U64(x)
        }
        T::Int8 | T::Int16 | T::Int32 | T::Int64 => {
            let x: i64 = v.trim().parse().map_err(|e| bad(&e))?;
            let (lo, hi) = match ty {
                T::Int8 => (i8::MIN as i64, i8::MAX as i64),
                T::Int16 => (i16::MIN as i64, i16::MAX as i64),
                T::Int32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if x < lo || x > hi {
                return Err(bad(&format!("outside {lo}..={hi}")));
            }
            MetaValue::I64(x)
        }
        T::Float32 | T::Float64 => MetaValue::F64(v.trim().parse().map_err(|e| bad(&e))?),
        T::Bool => MetaValue::Bool(match v.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(bad(&"expected true or false")),
        }),
        T::String => MetaValue::String(v.to_string()),
        T::Array => return Err("nested arrays cannot be given on the command line".into()),
    })
}

/// Parse `TYPE:VALUE` into a metadata entry for `key`.
pub fn parse_typed(key: &str, spec: &str) -> Result<MetaEntry, String> {
    let (ty, value) = spec.split_once(':').ok_or_else(|| {
        format!("{key}: value {spec:?} has no type; write TYPE:VALUE with TYPE one of {TYPES_HELP} (e.g. u32:32, str:llama)")
    })?;
    if let Some(elem) = ty.strip_prefix("arr[").and_then(|r| r.strip_suffix(']')) {
        let et = scalar_type(elem).ok_or_else(|| {
            format!("{key}: unknown array element type {elem:?} (use one of {TYPES_HELP})")
        })?;
        let items: Vec<String> = if value.trim_start().starts_with('[') {
            let list: Vec<serde_json::Value> = serde_json::from_str(value)
                .map_err(|e| format!("{key}: {value:?} is not a JSON list: {e}"))?;
            list.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        } else if value.is_empty() {
            Vec::new()
        } else {
            value.split(',').map(str::to_string).collect()
        };
        let value = match et {
            // Strings in the compact form the GGUF reader produces (every string parses).
            T::String => MetaValue::strings_from(&items),
            _ => {
                let parsed = items
                    .iter()
                    .map(|s| parse_scalar(et, s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{key}: {e}"))?;
                numbers(et, &parsed).unwrap_or(MetaValue::Array(parsed))
            }
        };
        let mut e = entry(key, T::Array, value);
        e.array_type = Some(et);
        return Ok(e);
    }
    let t = scalar_type(ty)
        .ok_or_else(|| format!("{key}: unknown type {ty:?} (use one of {TYPES_HELP})"))?;
    Ok(entry(
        key,
        t,
        parse_scalar(t, value).map_err(|e| format!("{key}: {e}"))?,
    ))
}

/// Numeric arrays in their compact form (what the GGUF reader produces).
fn numbers(et: T, items: &[MetaValue]) -> Option<MetaValue> {
    let u = |v: &MetaValue| v.as_u64().unwrap_or(0);
    let i = |v: &MetaValue| match v {
        MetaValue::I64(x) => *x,
        other => other.as_u64().unwrap_or(0) as i64,
    };
    let f = |v: &MetaValue| v.as_f64().unwrap_or(0.0);
    Some(MetaValue::Numbers(match et {
        T::Uint8 => NumArray::U8(items.iter().map(|v| u(v) as u8).collect()),
        T::Int8 => NumArray::I8(items.iter().map(|v| i(v) as i8).collect()),
        T::Uint16 => NumArray::U16(items.iter().map(|v| u(v) as u16).collect()),
        T::Int16 => NumArray::I16(items.iter().map(|v| i(v) as i16).collect()),
        T::Uint32 => NumArray::U32(items.iter().map(|v| u(v) as u32).collect()),
        T::Int32 => NumArray::I32(items.iter().map(|v| i(v) as i32).collect()),
        T::Uint64 => NumArray::U64(items.iter().map(u).collect()),
        T::Int64 => NumArray::I64(items.iter().map(i).collect()),
        T::Float32 => NumArray::F32(items.iter().map(|v| f(v) as f32).collect()),
        T::Float64 => NumArray::F64(items.iter().map(f).collect()),
        _ => return None,
    }))
}

/// Metadata edits applied in order: deletions, then sets (a set of an existing key keeps
/// its position), then the chat template.
pub struct MetaEdits {
    pub set: Vec<MetaEntry>,
    pub delete: Vec<String>,
    pub chat_template: Option<String>,
}

pub fn plan_meta_edit(model: &Model, edits: &MetaEdits) -> Result<GgufRewrite, RepairError> {
    let mut rw = GgufRewrite::identity(model)?;
    for key in &edits.delete {
        let before = rw.metadata.len();
        rw.metadata.retain(|e| &e.key != key);
        if rw.metadata.len() == before {
            return Err(RepairError::Refused(format!(
                "--delete {key}: the file has no such key"
            )));
        }
        rw.fixes.push(Fix::new("", None, format!("delete {key}")));
    }
    let mut sets = edits.set.clone();
    if let Some(t) = &edits.chat_template {
        sets.push(entry(
            "tokenizer.chat_template",
            T::String,
            MetaValue::String(t.clone()),
        ));
    }
    for e in sets {
        let old = rw
            .metadata
            .iter()
            .find(|m| m.key == e.key)
            .map(|m| m.value.summary(40));
        rw.fixes.push(Fix::new(
            "",
            None,
            format!(
                "set {} to {} {}{}",
                e.key,
                e.value_type.map(T::name).unwrap_or("?"),
                e.value.summary(60),
                old.map(|o| format!(" (was {o})")).unwrap_or_default()
            ),
        ));
        set_entry(&mut rw.metadata, e);
    }
    Ok(rw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typed_values() {
        let e = parse_typed("a", "u32:5").unwrap();
        assert_eq!(
            (e.value_type, e.value),
            (Some(T::Uint32), MetaValue::U64(5))
        );
        let e = parse_typed("a", "str:x:y").unwrap();
        assert_eq!(e.value, MetaValue::String("x:y".into()));
        let e = parse_typed("a", "f32:1e-5").unwrap();
        assert_eq!(e.value_type, Some(T::Float32));
        let e = parse_typed("a", "arr[i32]:1,-2").unwrap();
        assert_eq!(e.value, MetaValue::Numbers(NumArray::I32(vec![1, -2])));
        assert_eq!(e.array_type, Some(T::Int32));
        let e = parse_typed("a", r#"arr[str]:["a,b","c"]"#).unwrap();
        assert_eq!(e.value.array_len(), Some(2));
        assert!(matches!(e.value, MetaValue::Strings(_)));
        assert_eq!(e.value.strings().unwrap().to_vec(), ["a,b", "c"]);
        assert_eq!(e.array_type, Some(T::String));
        assert!(parse_typed("a", "5").is_err());
        assert!(parse_typed("a", "u8:256").is_err());
        assert!(parse_typed("a", "i8:-129").is_err());
        assert!(parse_typed("a", "bool:yes").is_err());
        assert!(parse_typed("a", "q4:1").is_err());
    }
}
