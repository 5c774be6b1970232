//! The ggml tensor type table: ids, names, block sizes and bytes per block.
//!
//! Source of the values: ggml's `ggml_type` enum and `type_traits` table (ggml/src/ggml.c),
//! mirrored by gguf-py's `GGMLQuantizationType` / `GGML_QUANT_SIZES`. The shared fixture
//! `ggml_types.json` is checked against this table in tests.

use serde::{Deserialize, Serialize};

/// A ggml tensor type that current ggml still defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[allow(non_camel_case_types)]
#[repr(u32)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
}

/// (type, name, elements per block, bytes per block)
const TABLE: &[(GgmlType, &str, u32, u32)] = &[
    (GgmlType::F32, "F32", 1, 4),
    (GgmlType::F16, "F16", 1, 2),
    (GgmlType::Q4_0, "Q4_0", 32, 18),
    (GgmlType::Q4_1, "Q4_1", 32, 20),
    (GgmlType::Q5_0, "Q5_0", 32, 22),
    (GgmlType::Q5_1, "Q5_1", 32, 24),
    (GgmlType::Q8_0, "Q8_0", 32, 34),
    (GgmlType::Q8_1, "Q8_1", 32, 40),
    (GgmlType::Q2_K, "Q2_K", 256, 84),
    (GgmlType::Q3_K, "Q3_K", 256, 110),
    (GgmlType::Q4_K, "Q4_K", 256, 144),
    (GgmlType::Q5_K, "Q5_K", 256, 176),
    (GgmlType::Q6_K, "Q6_K", 256, 210),
    (GgmlType::Q8_K, "Q8_K", 256, 292),
    (GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66),
    (GgmlType::IQ2_XS, "IQ2_XS", 256, 74),
    (GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98),
    (GgmlType::IQ1_S, "IQ1_S", 256, 50),
    (GgmlType::IQ4_NL, "IQ4_NL", 32, 18),
    (GgmlType::IQ3_S, "IQ3_S", 256, 110),
    (GgmlType::IQ2_S, "IQ2_S", 256, 82),
    (GgmlType::IQ4_XS, "IQ4_XS", 256, 136),
    (GgmlType::I8, "I8", 1, 1),
    (GgmlType::I16, "I16", 1, 2),
    (GgmlType::I32, "I32", 1, 4),
    (GgmlType::I64, "I64", 1, 8),
    (GgmlType::F64, "F64", 1, 8),
    (GgmlType::IQ1_M, "IQ1_M", 256, 56),
    (GgmlType::BF16, "BF16", 1, 2),
    (GgmlType::TQ1_0, "TQ1_0", 256, 54),
    (GgmlType::TQ2_0, "TQ2_0", 256, 66),
    (GgmlType::MXFP4, "MXFP4", 32, 17),
    (GgmlType::NVFP4, "NVFP4", 64, 36),
    (GgmlType::Q1_0, "Q1_0", 128, 18),
];

/// Ids that ggml once assigned and has since removed, with their old names. A file that uses
/// one was written by an old or forked tool; current llama.cpp refuses it.
const REMOVED: &[(u32, &str, &str)] = &[
    (4, "Q4_2", "removed from ggml in 2023 (never stable)"),
    (5, "Q4_3", "removed from ggml in 2023 (never stable)"),
    (
        31,
        "Q4_0_4_4",
        "removed in 2024: llama.cpp now repacks Q4_0 at load time",
    ),
    (
        32,
        "Q4_0_4_8",
        "removed in 2024: llama.cpp now repacks Q4_0 at load time",
    ),
    (
        33,
        "Q4_0_8_8",
        "removed in 2024: llama.cpp now repacks Q4_0 at load time",
    ),
    (
        36,
        "IQ4_NL_4_4",
        "removed in 2024: llama.cpp now repacks IQ4_NL at load time",
    ),
    (
        37,
        "IQ4_NL_4_8",
        "removed in 2024: llama.cpp now repacks IQ4_NL at load time",
    ),
    (
        38,
        "IQ4_NL_8_8",
        "removed in 2024: llama.cpp now repacks IQ4_NL at load time",
    ),
];

impl GgmlType {
    pub const ALL: &'static [GgmlType] = &[
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
        GgmlType::NVFP4,
        GgmlType::Q1_0,
    ];

    fn entry(self) -> &'static (GgmlType, &'static str, u32, u32) {
        TABLE
            .iter()
            .find(|e| e.0 == self)
            .expect("every GgmlType has a table entry")
    }

    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|e| e.0 as u32 == id).map(|e| e.0)
    }

    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE
            .iter()
            .find(|e| e.1.eq_ignore_ascii_case(name))
            .map(|e| e.0)
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Elements per block.
    pub fn block_size(self) -> u64 {
        self.entry().2 as u64
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.entry().3 as u64
    }

    /// True for block-quantized types (as opposed to plain floats and integers).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    pub fn is_float(self) -> bool {
        matches!(
            self,
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::F64
        )
    }

    pub fn is_integer(self) -> bool {
        matches!(
            self,
            GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64
        )
    }

    /// Bits of storage per element.
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }

    /// Bytes needed for `n_elements`, or None when the count is not a whole number of blocks
    /// or the size overflows.
    pub fn bytes_for(self, n_elements: u64) -> Option<u64> {
        if !n_elements.is_multiple_of(self.block_size()) {
            return None;
        }
        (n_elements / self.block_size()).checked_mul(self.type_size())
    }

    /// Types whose layout has `bytes_per_block` bytes for `block_size` elements.
    pub fn with_layout(block_size: u64, bytes_per_block: u64) -> Vec<GgmlType> {
        GgmlType::ALL
            .iter()
            .copied()
            .filter(|t| t.block_size() == block_size && t.type_size() == bytes_per_block)
            .collect()
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Name and reason for an id that ggml has removed.
pub fn removed_type(id: u32) -> Option<(&'static str, &'static str)> {
    REMOVED.iter().find(|e| e.0 == id).map(|e| (e.1, e.2))
}

/// Human-readable name for any id: current, removed, or unknown.
pub fn type_name_for_id(id: u32) -> String {
    if let Some(t) = GgmlType::from_id(id) {
        t.name().to_string()
    } else if let Some((name, _)) = removed_type(id) {
        format!("{name} (removed)")
    } else {
        format!("unknown type {id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(removed_type(4).unwrap().0, "Q4_2");
        assert_eq!(GgmlType::from_id(999), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(GgmlType::Q4_0.bytes_for(65_536_000), Some(36_864_000));
        assert_eq!(GgmlType::Q4_0.bytes_for(33), None);
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), 4.5);
        assert_eq!(
            GgmlType::with_layout(32, 18),
            vec![GgmlType::Q4_0, GgmlType::IQ4_NL]
        );
    }
}
