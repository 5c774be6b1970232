//! Metadata values (GGUF key/value pairs, safetensors `__metadata__`, config.json entries).

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A typed metadata value. The GGUF value type is kept so a file can be re-written exactly.
///
/// Equality treats the two forms of a string array alike: `Strings(a) == Array(v)` when `v`
/// holds the same strings as `String` values (see the `PartialEq` impl).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetaValue {
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    /// Arrays of bools or arrays, and string arrays built element by element (the GGUF
    /// reader gives `Strings` instead).
    Array(Vec<MetaValue>),
    /// Arrays of numbers, stored compactly (a long array costs what it costs on disk).
    Numbers(NumArray),
    /// Arbitrary JSON (config.json values).
    Json(serde_json::Value),
    /// Arrays of strings, stored compactly: one buffer plus offsets, instead of one
    /// allocation per string (a 262,144-token vocabulary is two allocations). Serializes as
    /// a sequence of strings, exactly like an `Array` of `String`s; deserializing such a
    /// sequence gives an `Array` (the untagged `Array` variant comes first).
    Strings(StrArray),
}

impl PartialEq for MetaValue {
    fn eq(&self, other: &Self) -> bool {
        use MetaValue::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F64(a), F64(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Numbers(a), Numbers(b)) => a == b,
            (Json(a), Json(b)) => a == b,
            (Strings(a), Strings(b)) => a == b,
            (Strings(a), Array(v)) | (Array(v), Strings(a)) => {
                a.len() == v.len()
                    && a.iter()
                        .zip(v)
                        .all(|(s, v)| matches!(v, String(t) if t == s))
            }
            _ => false,
        }
    }
}

/// An array of strings in one buffer: `bytes` holds every string back to back, `ends[i]` is
/// where string `i` ends (string `i` starts where `i - 1` ends, the first at 0).
///
/// Invariants (kept by every constructor): `ends` never decreases, its last value is
/// `bytes.len()`, and every end is a char boundary of `bytes`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StrArray {
    bytes: String,
    ends: Vec<usize>,
}

impl StrArray {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `strings` strings of `bytes` bytes in all.
    pub fn with_capacity(strings: usize, bytes: usize) -> Self {
        StrArray {
            bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(strings),
        }
    }

    /// Build from a buffer and the end offset of each string, for a caller that has checked
    /// the invariants itself (checked again in debug builds).
    pub(crate) fn from_checked_parts(bytes: String, ends: Vec<usize>) -> Self {
        debug_assert!(parts_are_valid(&bytes, &ends));
        StrArray { bytes, ends }
    }

    pub fn push(&mut self, s: &str) {
        self.bytes.push_str(s);
        self.ends.push(self.bytes.len());
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all strings together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.bytes[start..end])
    }

    pub fn iter(&self) -> StrArrayIter<'_> {
        StrArrayIter {
            array: self,
            front: 0,
            back: self.len(),
        }
    }
}

/// The [`StrArray`] invariants: `ends` non-decreasing, on char boundaries of `bytes`, the
/// last one at `bytes.len()`.
fn parts_are_valid(bytes: &str, ends: &[usize]) -> bool {
    let mut prev = 0;
    for &e in ends {
        if e < prev || !bytes.is_char_boundary(e) {
            return false;
        }
        prev = e;
    }
    prev == bytes.len()
}

impl std::fmt::Debug for StrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for StrArray {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut a = StrArray::with_capacity(iter.size_hint().0, 0);
        for s in iter {
            a.push(s.as_ref());
        }
        a
    }
}

impl<'a> IntoIterator for &'a StrArray {
    type Item = &'a str;
    type IntoIter = StrArrayIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over the strings of a [`StrArray`].
#[derive(Clone)]
pub struct StrArrayIter<'a> {
    array: &'a StrArray,
    front: usize,
    back: usize,
}

impl<'a> Iterator for StrArrayIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.front >= self.back {
            return None;
        }
        let s = self.array.get(self.front);
        self.front += 1;
        s
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for StrArrayIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.array.get(self.back)
    }
}

impl ExactSizeIterator for StrArrayIter<'_> {}

impl Serialize for StrArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for StrArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StrArray;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of strings")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StrArray, A::Error> {
                // The size hint is untrusted: cap what is reserved up front.
                let mut a = StrArray::with_capacity(seq.size_hint().unwrap_or(0).min(4096), 0);
                while let Some(s) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                    a.push(&s);
                }
                Ok(a)
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// A borrowed view of a string array, whichever way it is stored.
#[derive(Debug, Clone, Copy)]
pub enum Strs<'a> {
    Packed(&'a StrArray),
    /// An `Array` whose elements are all `String`s.
    Values(&'a [MetaValue]),
    /// A JSON array whose elements are all strings.
    Json(&'a [serde_json::Value]),
}

impl<'a> Strs<'a> {
    pub fn len(&self) -> usize {
        match self {
            Strs::Packed(a) => a.len(),
            Strs::Values(v) => v.len(),
            Strs::Json(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        match *self {
            Strs::Packed(a) => a.get(i),
            Strs::Values(v) => v.get(i)?.as_str(),
            Strs::Json(v) => v.get(i)?.as_str(),
        }
    }

    pub fn iter(self) -> impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator + 'a {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }

    pub fn to_vec(self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
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
            MetaValue::Strings(a) => Some(a.len()),
            MetaValue::Numbers(n) => Some(n.len()),
            MetaValue::Json(serde_json::Value::Array(a)) => Some(a.len()),
            _ => None,
        }
    }

    /// The elements of an `Array` (not of a packed `Strings` array: use [`Self::strings`]).
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as an array of strings, however it is stored: `Strings`, an `Array` of
    /// `String`s (also an empty one), or a JSON array of strings.
    pub fn strings(&self) -> Option<Strs<'_>> {
        match self {
            MetaValue::Strings(a) => Some(Strs::Packed(a)),
            MetaValue::Array(v) if v.iter().all(|x| matches!(x, MetaValue::String(_))) => {
                Some(Strs::Values(v))
            }
            MetaValue::Json(serde_json::Value::Array(v)) if v.iter().all(|x| x.is_string()) => {
                Some(Strs::Json(v))
            }
            _ => None,
        }
    }

    /// A string array in its compact form (from a `Vec` of owned strings).
    pub fn strings_from<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> MetaValue {
        MetaValue::Strings(items.into_iter().collect())
    }

    /// The value's JSON (what `--json` prints; arrays complete), serialized straight from
    /// the value without building JSON values first (what `--json` writes for a
    /// 262,144-token vocabulary). Integers stay integers, floats are widened to f64, and a
    /// non-finite float (which has no JSON number) becomes its text, e.g. `"NaN"`.
    pub fn json_view(&self) -> JsonView<'_> {
        JsonView(self)
    }

    /// The value as a JSON value: [`Self::json_view`] collected.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_view())
            .expect("a metadata value serializes to JSON (every map key is a string)")
    }

    /// A short one-line rendering for human output: long arrays collapse to their length.
    pub fn summary(&self, max_chars: usize) -> String {
        let full = match self {
            MetaValue::Array(a) if a.len() > 8 => {
                let head: Vec<String> = a.iter().take(3).map(|v| v.summary(24)).collect();
                return format!("[{}, …] ({} items)", head.join(", "), a.len());
            }
            MetaValue::Strings(a) if a.len() > 8 => {
                let head: Vec<String> = a
                    .iter()
                    .take(3)
                    .map(|s| truncate_chars(&format!("{s:?}"), 24))
                    .collect();
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

/// See [`MetaValue::json_view`].
#[derive(Clone, Copy)]
pub struct JsonView<'a>(&'a MetaValue);

fn ser_f64<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    // A non-finite float has no JSON number, so it becomes its text.
    if v.is_finite() {
        s.serialize_f64(v)
    } else {
        s.collect_str(&v)
    }
}

impl Serialize for JsonView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            MetaValue::Bool(b) => s.serialize_bool(*b),
            MetaValue::U64(v) => s.serialize_u64(*v),
            MetaValue::I64(v) => s.serialize_i64(*v),
            MetaValue::F64(v) => ser_f64(*v, s),
            MetaValue::String(v) => s.serialize_str(v),
            MetaValue::Array(a) => s.collect_seq(a.iter().map(JsonView)),
            MetaValue::Strings(a) => s.collect_seq(a.iter()),
            MetaValue::Json(v) => v.serialize(s),
            MetaValue::Numbers(n) => {
                // Integers as integers, every float widened to f64 (as `NumArray::get`).
                let mut seq = s.serialize_seq(Some(n.len()))?;
                macro_rules! each {
                    ($v:expr, $conv:expr) => {
                        for &x in $v {
                            seq.serialize_element(&$conv(x))?;
                        }
                    };
                }
                struct F(f64);
                impl Serialize for F {
                    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        ser_f64(self.0, s)
                    }
                }
                match n {
                    NumArray::U8(v) => each!(v, |x: u8| x as u64),
                    NumArray::I8(v) => each!(v, |x: i8| x as i64),
                    NumArray::U16(v) => each!(v, |x: u16| x as u64),
                    NumArray::I16(v) => each!(v, |x: i16| x as i64),
                    NumArray::U32(v) => each!(v, |x: u32| x as u64),
                    NumArray::I32(v) => each!(v, |x: i32| x as i64),
                    NumArray::U64(v) => each!(v, |x: u64| x),
                    NumArray::I64(v) => each!(v, |x: i64| x),
                    NumArray::F32(v) => each!(v, |x: f32| F(x as f64)),
                    NumArray::F64(v) => each!(v, F),
                }
                seq.end()
            }
        }
    }
}

/// Metadata entries as the JSON object `--json` prints (`Report::metadata`): key to
/// [`MetaValue::json_view`], written straight from the entries. A key that appears more
/// than once keeps its first position and its last value, as collecting into a
/// `serde_json::Map` does.
#[derive(Clone, Copy)]
pub struct MetadataJson<'a>(pub &'a [MetaEntry]);

impl Serialize for MetadataJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.0;
        let mut last: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            last.insert(&e.key, i);
        }
        let mut map = s.serialize_map(Some(last.len()))?;
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        for e in entries {
            if !seen.insert(e.key.as_str()) {
                continue;
            }
            let v = &entries[last[e.key.as_str()]].value;
            map.serialize_entry(&e.key, &v.json_view())?;
        }
        map.end()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StrArray {
        ["<pad>", "", "héllo", "▁wörld ✓", "\u{0}"]
            .into_iter()
            .collect()
    }

    fn as_values(items: &[&str]) -> MetaValue {
        MetaValue::Array(
            items
                .iter()
                .map(|s| MetaValue::String(s.to_string()))
                .collect(),
        )
    }

    #[test]
    fn str_array_holds_its_strings() {
        let a = sample();
        assert_eq!(a.len(), 5);
        assert!(!a.is_empty());
        assert_eq!(a.get(0), Some("<pad>"));
        assert_eq!(a.get(1), Some(""));
        assert_eq!(a.get(3), Some("▁wörld ✓"));
        assert_eq!(a.get(5), None);
        assert_eq!(a.byte_len(), a.iter().map(str::len).sum::<usize>());
        let v: Vec<&str> = a.iter().collect();
        assert_eq!(v, ["<pad>", "", "héllo", "▁wörld ✓", "\u{0}"]);
        let r: Vec<&str> = a.iter().rev().collect();
        assert_eq!(r, ["\u{0}", "▁wörld ✓", "héllo", "", "<pad>"]);
        assert_eq!(a.iter().len(), 5);
        assert_eq!(format!("{a:?}"), format!("{v:?}"));
        assert_eq!(MetaValue::Strings(a.clone()), as_values(&v));
        let empty = StrArray::new();
        assert!(empty.is_empty());
        assert_eq!(empty.get(0), None);
        assert_eq!(empty.iter().next(), None);
    }

    #[test]
    fn parts_are_valid_checks_the_invariants() {
        assert!(parts_are_valid("abcé", &[1, 1, 5]));
        let ok = StrArray::from_checked_parts("abcé".into(), vec![1, 1, 5]);
        assert_eq!(ok.iter().collect::<Vec<_>>(), ["a", "", "bcé"]);
        // Decreasing, not reaching the end, past the end, inside a character.
        assert!(!parts_are_valid("abc", &[2, 1, 3]));
        assert!(!parts_are_valid("abc", &[1, 2]));
        assert!(!parts_are_valid("abc", &[4]));
        assert!(!parts_are_valid("é", &[1, 2]));
        assert!(parts_are_valid("", &[]));
        assert!(!parts_are_valid("a", &[]));
    }

    #[test]
    fn strings_equal_the_same_array_of_string_values() {
        let a = MetaValue::Strings(sample());
        let owned = sample();
        let items: Vec<&str> = owned.iter().collect();
        let v = as_values(&items);
        assert_eq!(a, v);
        assert_eq!(v, a);
        assert_eq!(a, MetaValue::Strings(sample()));
        assert_eq!(
            MetaValue::Strings(StrArray::new()),
            MetaValue::Array(vec![])
        );
        // Different strings, lengths or element types are different values.
        assert_ne!(a, as_values(&items[..4]));
        assert_ne!(a, as_values(&["<pad>", "", "hello", "▁wörld ✓", "\u{0}"]));
        let mut mixed = v.as_array().unwrap().to_vec();
        mixed[1] = MetaValue::Bool(false);
        assert_ne!(a, MetaValue::Array(mixed));
        assert_ne!(a, MetaValue::String("<pad>".into()));
        // Inside nested arrays too.
        assert_eq!(
            MetaValue::Array(vec![a.clone(), MetaValue::U64(1)]),
            MetaValue::Array(vec![v.clone(), MetaValue::U64(1)])
        );
    }

    #[test]
    fn strings_view_reads_every_form() {
        let want = ["a", "bé", ""];
        let forms = [
            MetaValue::strings_from(want),
            as_values(&want),
            MetaValue::Json(serde_json::json!(want)),
        ];
        for f in &forms {
            let s = f.strings().unwrap();
            assert_eq!(s.len(), 3);
            assert_eq!(s.get(1), Some("bé"));
            assert_eq!(s.get(3), None);
            assert_eq!(s.iter().collect::<Vec<_>>(), want);
            assert_eq!(s.to_vec(), want);
            assert_eq!(f.array_len(), Some(3));
        }
        assert!(MetaValue::Array(vec![MetaValue::U64(1)])
            .strings()
            .is_none());
        assert!(MetaValue::Json(serde_json::json!([1, "a"]))
            .strings()
            .is_none());
        assert!(MetaValue::String("a".into()).strings().is_none());
        assert!(MetaValue::Numbers(NumArray::U8(vec![1]))
            .strings()
            .is_none());
    }

    #[test]
    fn strings_serialize_as_a_sequence_of_strings() {
        let a = MetaValue::Strings(sample());
        let owned = sample();
        let items: Vec<&str> = owned.iter().collect();
        let v = as_values(&items);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, serde_json::to_string(&v).unwrap());
        assert_eq!(json, serde_json::to_string(&items).unwrap());
        assert_eq!(a.to_json(), v.to_json());
        assert_eq!(a.to_json().to_string(), json);
        assert_eq!(serde_json::to_string(&a.json_view()).unwrap(), json);
        // Back from JSON: an Array of Strings (equal to the packed form), and a StrArray.
        let back: MetaValue = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let packed: StrArray = serde_json::from_str(&json).unwrap();
        assert_eq!(packed, sample());
        assert!(serde_json::from_str::<StrArray>("[1]").is_err());
        // The one-line summary is the same for both forms, long or short.
        let long: Vec<String> = (0..20).map(|i| format!("tok{i}")).collect();
        let long_a = MetaValue::strings_from(&long);
        let long_v = MetaValue::Array(long.iter().cloned().map(MetaValue::String).collect());
        assert_eq!(long_a.summary(80), long_v.summary(80));
        assert_eq!(a.summary(80), v.summary(80));
        assert_eq!(a.summary(10), v.summary(10));
        let wide = MetaValue::strings_from(vec!["x".repeat(40); 9]);
        let wide_v = MetaValue::Array(vec![MetaValue::String("x".repeat(40)); 9]);
        assert_eq!(wide.summary(200), wide_v.summary(200));
    }

    /// The JSON of every value kind, written out independently of `JsonView`: integers
    /// exact, floats widened to f64, non-finite floats as text, arrays complete.
    #[test]
    fn json_of_every_value_kind() {
        use serde_json::json;
        let cases = vec![
            (MetaValue::Bool(true), json!(true)),
            (MetaValue::U64(u64::MAX), json!(u64::MAX)),
            (MetaValue::I64(i64::MIN), json!(i64::MIN)),
            (MetaValue::F64(0.1), json!(0.1)),
            (MetaValue::F64(f64::NAN), json!("NaN")),
            (MetaValue::F64(f64::NEG_INFINITY), json!("-inf")),
            (MetaValue::String("q\"\n✓".into()), json!("q\"\n✓")),
            (
                MetaValue::Strings(sample()),
                json!(["<pad>", "", "héllo", "▁wörld ✓", "\u{0}"]),
            ),
            (
                MetaValue::Numbers(NumArray::U8(vec![0, 255])),
                json!([0, 255]),
            ),
            (
                MetaValue::Numbers(NumArray::I8(vec![-128, 7])),
                json!([-128, 7]),
            ),
            (
                MetaValue::Numbers(NumArray::U16(vec![65535])),
                json!([65535]),
            ),
            (MetaValue::Numbers(NumArray::I16(vec![-3])), json!([-3])),
            (
                MetaValue::Numbers(NumArray::U32(vec![4_000_000_000])),
                json!([4_000_000_000u32]),
            ),
            (
                MetaValue::Numbers(NumArray::I32(vec![-2_000_000_000])),
                json!([-2_000_000_000i32]),
            ),
            (
                MetaValue::Numbers(NumArray::U64(vec![u64::MAX])),
                json!([u64::MAX]),
            ),
            (
                MetaValue::Numbers(NumArray::I64(vec![i64::MIN])),
                json!([i64::MIN]),
            ),
            (
                MetaValue::Numbers(NumArray::F32(vec![0.1, f32::INFINITY, -1000.0, 1e-40])),
                json!([0.1f32 as f64, "inf", -1000.0, 1e-40f32 as f64]),
            ),
            (
                MetaValue::Numbers(NumArray::F64(vec![f64::NAN, 2.5])),
                json!(["NaN", 2.5]),
            ),
            (
                MetaValue::Array(vec![
                    MetaValue::Strings(sample()),
                    MetaValue::Array(vec![MetaValue::Bool(false), MetaValue::F64(1e300)]),
                    MetaValue::Numbers(NumArray::F32(vec![])),
                ]),
                json!([
                    ["<pad>", "", "héllo", "▁wörld ✓", "\u{0}"],
                    [false, 1e300],
                    []
                ]),
            ),
            (
                MetaValue::Json(json!({"a": [1, 2.5, null, "x"]})),
                json!({"a": [1, 2.5, null, "x"]}),
            ),
        ];
        for (v, want) in &cases {
            assert_eq!(&v.to_json(), want, "{v:?}");
            assert_eq!(
                serde_json::to_string(&v.json_view()).unwrap(),
                want.to_string(),
                "{v:?}"
            );
            assert_eq!(
                serde_json::to_string_pretty(&v.json_view()).unwrap(),
                serde_json::to_string_pretty(want).unwrap(),
                "{v:?}"
            );
        }
        // Floats stay floats, integers stay integers.
        assert_eq!(
            MetaValue::Numbers(NumArray::F32(vec![-1000.0]))
                .to_json()
                .to_string(),
            "[-1000.0]"
        );
        assert_eq!(
            MetaValue::F64(f64::INFINITY).to_json().to_string(),
            "\"inf\""
        );
    }

    #[test]
    fn metadata_json_matches_a_collected_map() {
        let e = |k: &str, v: MetaValue| MetaEntry {
            key: k.into(),
            value_type: None,
            array_type: None,
            value: v,
            offset: None,
        };
        let entries = vec![
            e("b", MetaValue::U64(1)),
            e("a", MetaValue::Strings(sample())),
            e("b", MetaValue::String("second".into())),
            e("c", MetaValue::F64(f64::NAN)),
        ];
        let map: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|e| (e.key.clone(), e.value.to_json()))
            .collect();
        assert_eq!(
            serde_json::to_string_pretty(&MetadataJson(&entries)).unwrap(),
            serde_json::to_string_pretty(&map).unwrap()
        );
        assert_eq!(serde_json::to_string(&MetadataJson(&[])).unwrap(), "{}");
    }
}
