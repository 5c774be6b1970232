//! Per-group scales of the K-quants, decoded once per super-block.
//!
//! The scalar reference and the SIMD paths both take their scales from here, so the float
//! products `d * sc` and `dmin * m` are rounded in f32 exactly once, as gguf-py does before
//! computing `dl * q - ml`.

use super::blocks::{f16_le, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K};

/// Multiplier and subtrahend for each group of 16 values: value = `dl * q - ml`.
pub struct Scales16 {
    pub dl: [f32; 16],
    pub ml: [f32; 16],
}

/// Multiplier and subtrahend for each group of 32 values.
pub struct Scales32 {
    pub dl: [f32; 8],
    pub ml: [f32; 8],
}

#[inline]
pub fn q2k(b: &BlockQ2K) -> Scales16 {
    let d = f16_le(b.d);
    let dmin = f16_le(b.dmin);
    let mut s = Scales16 {
        dl: [0.0; 16],
        ml: [0.0; 16],
    };
    for (i, &sc) in b.scales.iter().enumerate() {
        s.dl[i] = d * (sc & 0x0f) as f32;
        s.ml[i] = dmin * (sc >> 4) as f32;
    }
    s
}

/// The 16 six-bit scales of Q3_K, minus their offset of 32: scale i has its low nibble in
/// byte i % 8 (low half for i < 8, high half after) and its top two bits in byte 8 + i % 4
/// at bit 2 * (i / 4).
#[inline]
pub fn q3k_raw(scales: &[u8; 12]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = (scales[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *o = ((low | (high << 4)) as i8).wrapping_sub(32);
    }
    out
}

#[inline]
pub fn q3k(b: &BlockQ3K) -> [f32; 16] {
    let d = f16_le(b.d);
    q3k_raw(&b.scales).map(|s| d * s as f32)
}

/// Q4_K/Q5_K packing of 8 six-bit scales and 8 six-bit mins in 12 bytes: bytes 0-3 hold
/// scales 0-3 (and the top bits of scales 4-7), bytes 4-7 mins 0-3 (and the top bits of mins
/// 4-7), bytes 8-11 the low nibbles of scales 4-7 (low half) and mins 4-7 (high half).
#[inline(always)]
pub fn k_scale_min(scales: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = scales[j] & 0x3f;
        mn[j] = scales[j + 4] & 0x3f;
        sc[j + 4] = (scales[j + 8] & 0x0f) | ((scales[j] >> 2) & 0x30);
        mn[j + 4] = (scales[j + 8] >> 4) | ((scales[j + 4] >> 2) & 0x30);
    }
    (sc, mn)
}

#[inline(always)]
fn k_scales(d: [u8; 2], dmin: [u8; 2], packed: &[u8; 12]) -> Scales32 {
    let d = f16_le(d);
    let dmin = f16_le(dmin);
    let (sc, mn) = k_scale_min(packed);
    Scales32 {
        dl: sc.map(|s| d * s as f32),
        ml: mn.map(|m| dmin * m as f32),
    }
}

#[inline]
pub fn q4k(b: &BlockQ4K) -> Scales32 {
    k_scales(b.d, b.dmin, &b.scales)
}

#[inline]
pub fn q5k(b: &BlockQ5K) -> Scales32 {
    k_scales(b.d, b.dmin, &b.scales)
}

#[inline]
pub fn q6k(b: &BlockQ6K) -> [f32; 16] {
    let d = f16_le(b.d);
    b.scales.map(|s| d * (s as i8) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn q3k_scale_unpacking_follows_the_documented_bit_pattern() {
        // Scale i = 32 + i + 1 (so raw = i + 1): build the packed bytes from the layout
        // comment in gguf-py (IIIIAAAA ... / MMIIEEAA ...) and read them back.
        let mut packed = [0u8; 12];
        for i in 0..16 {
            let v = (32 + i + 1) as u8;
            packed[i % 8] |= (v & 0x0f) << (4 * (i / 8));
            packed[8 + i % 4] |= (v >> 4) << (2 * (i / 4));
        }
        let raw = q3k_raw(&packed);
        for (i, &r) in raw.iter().enumerate() {
            assert_eq!(r as i32, i as i32 + 1);
        }
        assert_eq!(q3k_raw(&[0; 12]), [-32; 16]);
    }

    #[test]
    fn k_scale_min_reads_high_bits_from_the_first_eight_bytes() {
        let mut packed = [0u8; 12];
        packed[0] = 0b11_000001; // scale 0 = 1, top bits of scale 4 = 3
        packed[4] = 0b01_000010; // min 0 = 2, top bits of min 4 = 1
        packed[8] = 0x5a; // scale 4 low nibble a, min 4 low nibble 5
        let (sc, mn) = k_scale_min(&packed);
        assert_eq!(sc[0], 1);
        assert_eq!(mn[0], 2);
        assert_eq!(sc[4], 0x3a);
        assert_eq!(mn[4], 0x15);
    }
}
