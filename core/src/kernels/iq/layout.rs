//! Block layouts of this module's types, as ggml stores them (`ggml/src/ggml-common.h`,
//! mirrored by gguf-py's `gguf/quants.py`). Every field is a byte array, so a block has
//! alignment 1 and every bit pattern is valid, which lets input bytes be viewed in place.
//! Multi-byte fields are little-endian.

use std::mem::{align_of, size_of};

pub(crate) use crate::kernels::blocks::as_blocks as view;
use crate::kernels::blocks::Block;

macro_rules! blocks {
    ($($(#[$doc:meta])* $name:ident ($bytes:expr) { $($field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub(crate) struct $name { $(pub $field: $ty),* }
        // SAFETY: repr(C), byte-array fields only (checked: alignment 1, no padding).
        unsafe impl Block for $name {}
        const _: () = assert!(size_of::<$name>() == $bytes && align_of::<$name>() == 1);
        const _: () = assert!(size_of::<$name>() == 0 $(+ size_of::<$ty>())*);
    )*};
}

blocks! {
    /// IQ2_XXS: 8 groups of 32; each group is 4 grid indices (bytes) then a u32 holding four
    /// 7-bit sign indices (bits 0..28) and a 4-bit scale (bits 28..32).
    BlockIq2Xxs(66) { d: [u8; 2], qs: [u8; 64] }
    /// IQ2_XS: 32 u16 = 9-bit grid index | 7-bit sign index; 16 4-bit scales.
    BlockIq2Xs(74) { d: [u8; 2], qs: [u8; 64], scales: [u8; 8] }
    /// IQ2_S: 10-bit grid indices (8 low bits in `qs`, 2 high bits in `qh`), explicit sign
    /// bytes, 16 4-bit scales.
    BlockIq2S(82) { d: [u8; 2], qs: [u8; 32], signs: [u8; 32], qh: [u8; 8], scales: [u8; 8] }
    /// IQ3_XXS: 64 grid indices, then 8 u32 of four 7-bit sign indices and a 4-bit scale.
    BlockIq3Xxs(98) { d: [u8; 2], qs: [u8; 64], scales_signs: [u8; 32] }
    /// IQ3_S: 9-bit grid indices (8 low bits in `qs`, bit 8 in `qh`), one sign bit per value,
    /// 8 4-bit scales.
    BlockIq3S(110) { d: [u8; 2], qs: [u8; 64], qh: [u8; 8], signs: [u8; 32], scales: [u8; 4] }
    /// IQ1_S: 11-bit grid indices (8 low bits in `qs`, 3 high bits per index in `qh`), each
    /// u16 of `qh` also holding a 3-bit scale (bits 12..15) and the delta sign (bit 15).
    BlockIq1S(50) { d: [u8; 2], qs: [u8; 32], qh: [u8; 16] }
    /// IQ1_M: no `d` field: the f16 block scale is split over the top nibbles of the four
    /// u16 in `scales`, whose other 12 bits are 3-bit sub-block scales.
    BlockIq1M(56) { qs: [u8; 32], qh: [u8; 16], scales: [u8; 8] }
    /// IQ4_NL: like Q4_0 but the nibble indexes `kvalues_iq4nl`.
    BlockIq4Nl(18) { d: [u8; 2], qs: [u8; 16] }
    /// IQ4_XS: 8 sub-blocks of 32 with 6-bit scales (low 4 bits in `scales_l`, high 2 bits in
    /// the u16 `scales_h`).
    BlockIq4Xs(136) { d: [u8; 2], scales_h: [u8; 2], scales_l: [u8; 4], qs: [u8; 128] }
    /// TQ1_0: base-3 digits packed five (`qs`) or four (`qh`) to a byte; `d` comes last.
    BlockTq1_0(54) { qs: [u8; 48], qh: [u8; 4], d: [u8; 2] }
    /// TQ2_0: 2-bit codes, four to a byte; `d` comes last.
    BlockTq2_0(66) { qs: [u8; 64], d: [u8; 2] }
    /// MXFP4: one E8M0 scale byte, then 16 bytes: low nibbles are elements 0..16, high
    /// nibbles 16..32.
    BlockMxfp4(17) { e: [u8; 1], qs: [u8; 16] }
    /// NVFP4: four UE4M3 scales (one per 16 elements), then 4 × 8 bytes: within each group
    /// of 8 bytes, low nibbles are elements 0..8 and high nibbles 8..16.
    BlockNvfp4(36) { d: [u8; 4], qs: [u8; 32] }
}

#[inline]
pub(crate) fn f16_to_f32(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

#[inline]
pub(crate) fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

#[inline]
pub(crate) fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml::types::GgmlType;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sizes_match_the_ggml_type_table() {
        let table = [
            (GgmlType::IQ2_XXS, size_of::<BlockIq2Xxs>()),
            (GgmlType::IQ2_XS, size_of::<BlockIq2Xs>()),
            (GgmlType::IQ2_S, size_of::<BlockIq2S>()),
            (GgmlType::IQ3_XXS, size_of::<BlockIq3Xxs>()),
            (GgmlType::IQ3_S, size_of::<BlockIq3S>()),
            (GgmlType::IQ1_S, size_of::<BlockIq1S>()),
            (GgmlType::IQ1_M, size_of::<BlockIq1M>()),
            (GgmlType::IQ4_NL, size_of::<BlockIq4Nl>()),
            (GgmlType::IQ4_XS, size_of::<BlockIq4Xs>()),
            (GgmlType::TQ1_0, size_of::<BlockTq1_0>()),
            (GgmlType::TQ2_0, size_of::<BlockTq2_0>()),
            (GgmlType::MXFP4, size_of::<BlockMxfp4>()),
            (GgmlType::NVFP4, size_of::<BlockNvfp4>()),
        ];
        for (ty, size) in table {
            assert_eq!(ty.type_size() as usize, size, "{ty:?}");
        }
    }

    #[test]
    fn field_offsets_match_ggml_common_h() {
        use std::mem::offset_of;
        assert_eq!(offset_of!(BlockIq2S, qh), 66);
        assert_eq!(offset_of!(BlockIq2S, scales), 74);
        assert_eq!(offset_of!(BlockIq3S, signs), 74);
        assert_eq!(offset_of!(BlockIq3S, scales), 106);
        assert_eq!(offset_of!(BlockIq1M, scales), 48);
        assert_eq!(offset_of!(BlockIq4Xs, qs), 8);
        assert_eq!(offset_of!(BlockTq1_0, d), 52);
        assert_eq!(offset_of!(BlockTq2_0, d), 64);
        assert_eq!(offset_of!(BlockNvfp4, qs), 4);
    }
}
