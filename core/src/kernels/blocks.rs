//! On-disk block layouts of ggml's plain-scale quant types (ggml-common.h), as byte-only
//! `#[repr(C)]` structs so a slice of input bytes can be viewed as a slice of blocks.
//!
//! Every multi-byte field is kept as little-endian bytes: GGUF data is little-endian whatever
//! the host, and byte arrays keep the alignment at 1 so any `&[u8]` can be reinterpreted.

use std::mem::{align_of, size_of};

/// A block layout that may be viewed in place over input bytes.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, built only from `u8` arrays (alignment 1, no padding,
/// every bit pattern valid).
pub unsafe trait Block: Sized {}

/// View `src` as whole blocks; trailing bytes that do not fill a block are not included.
#[inline]
pub fn as_blocks<B: Block>(src: &[u8]) -> &[B] {
    const { assert!(align_of::<B>() == 1) };
    let n = src.len() / size_of::<B>();
    // SAFETY: `B: Block` has alignment 1 and no invalid bit patterns, and `n` blocks fit in
    // `src`, which stays borrowed for the returned lifetime.
    unsafe { std::slice::from_raw_parts(src.as_ptr().cast::<B>(), n) }
}

macro_rules! blocks {
    ($($(#[$doc:meta])* $name:ident ($bytes:expr) { $($field:ident: [u8; $n:expr]),* $(,)? })*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy)]
        pub struct $name { $(pub $field: [u8; $n]),* }
        // SAFETY: repr(C) over u8 arrays only.
        unsafe impl Block for $name {}
        const _: () = assert!(size_of::<$name>() == $bytes);
    )*};
}

blocks! {
    /// 32 values: `(q - 8) * d`, q = low nibbles (values 0..16) then high nibbles.
    BlockQ4_0(18) { d: [u8; 2], qs: [u8; 16] }
    /// 32 values: `d * q + m`.
    BlockQ4_1(20) { d: [u8; 2], m: [u8; 2], qs: [u8; 16] }
    /// 32 values: 4-bit nibbles plus a fifth bit per value in `qh` (bit j for value j).
    BlockQ5_0(22) { d: [u8; 2], qh: [u8; 4], qs: [u8; 16] }
    BlockQ5_1(24) { d: [u8; 2], m: [u8; 2], qh: [u8; 4], qs: [u8; 16] }
    BlockQ8_0(34) { d: [u8; 2], qs: [u8; 32] }
    /// The 40-byte layout of ggml's original block_q8_1 (f32 `d` and `s = d * sum(q)`), the
    /// size that gguf-py's GGML_QUANT_SIZES and the type table give. Current ggml stores
    /// f16 d/s in 36 bytes; a 40-byte block can only be the f32 form.
    BlockQ8_1(40) { d: [u8; 4], s: [u8; 4], qs: [u8; 32] }
    /// 256 values in 16 groups of 16; scale byte = 4-bit scale | 4-bit min << 4.
    BlockQ2K(84) { scales: [u8; 16], qs: [u8; 64], d: [u8; 2], dmin: [u8; 2] }
    /// 256 values; 2 low bits in `qs`, the third bit in `hmask`, 16 six-bit scales in 12 bytes.
    BlockQ3K(110) { hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: [u8; 2] }
    /// 256 values in 8 groups of 32; 8 six-bit scales and mins packed in 12 bytes.
    BlockQ4K(144) { d: [u8; 2], dmin: [u8; 2], scales: [u8; 12], qs: [u8; 128] }
    BlockQ5K(176) { d: [u8; 2], dmin: [u8; 2], scales: [u8; 12], qh: [u8; 32], qs: [u8; 128] }
    /// 256 values in 16 groups of 16 with signed 8-bit scales; 4 low bits in `ql`, 2 in `qh`.
    BlockQ6K(210) { ql: [u8; 128], qh: [u8; 64], scales: [u8; 16], d: [u8; 2] }
    /// ggml's activation format: f32 `d`, 256 signed bytes, 16 i16 group sums.
    BlockQ8K(292) { d: [u8; 4], qs: [u8; 256], bsums: [u8; 32] }
}

/// IEEE half to f32 exactly as numpy's `astype(float32)` does (gguf-py's reference): every
/// value is exact and NaN payloads are kept, including signalling NaNs (hardware F16C and the
/// `half` crate set the quiet bit instead).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x03ff) as u32;
    match exp {
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        0 => {
            // Zero or subnormal: man * 2^-24 is exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            f32::from_bits(sign | v.to_bits())
        }
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

#[inline]
pub fn f16_le(b: [u8; 2]) -> f32 {
    f16_to_f32(u16::from_le_bytes(b))
}

#[inline]
pub fn f32_le(b: [u8; 4]) -> f32 {
    f32::from_le_bytes(b)
}

/// bf16 is the top half of an f32: a shift, payloads and all (gguf-py does the same).
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml::types::GgmlType;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn block_sizes_match_the_type_table() {
        let sizes = [
            (GgmlType::Q4_0, size_of::<BlockQ4_0>()),
            (GgmlType::Q4_1, size_of::<BlockQ4_1>()),
            (GgmlType::Q5_0, size_of::<BlockQ5_0>()),
            (GgmlType::Q5_1, size_of::<BlockQ5_1>()),
            (GgmlType::Q8_0, size_of::<BlockQ8_0>()),
            (GgmlType::Q8_1, size_of::<BlockQ8_1>()),
            (GgmlType::Q2_K, size_of::<BlockQ2K>()),
            (GgmlType::Q3_K, size_of::<BlockQ3K>()),
            (GgmlType::Q4_K, size_of::<BlockQ4K>()),
            (GgmlType::Q5_K, size_of::<BlockQ5K>()),
            (GgmlType::Q6_K, size_of::<BlockQ6K>()),
            (GgmlType::Q8_K, size_of::<BlockQ8K>()),
        ];
        for (ty, size) in sizes {
            assert_eq!(ty.type_size() as usize, size, "{ty}");
        }
    }

    #[test]
    fn f16_matches_half_except_signalling_nan() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h).to_f32();
            let got = f16_to_f32(h);
            let is_snan = h & 0x7c00 == 0x7c00 && h & 0x03ff != 0 && h & 0x0200 == 0;
            if is_snan {
                // numpy keeps the signalling bit pattern: exponent all ones, quiet bit clear.
                let bits = ((h as u32 & 0x8000) << 16) | 0x7f80_0000 | ((h as u32 & 0x3ff) << 13);
                assert_eq!(got.to_bits(), bits, "{h:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}");
            }
        }
    }

    #[test]
    fn as_blocks_drops_a_partial_tail() {
        let bytes = [0u8; 18 * 2 + 5];
        assert_eq!(as_blocks::<BlockQ4_0>(&bytes).len(), 2);
    }
}
