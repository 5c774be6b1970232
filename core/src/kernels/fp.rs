//! Small float formats shared by GGUF and Hugging Face encodings (OCP microscaling spec,
//! "OCP Microscaling Formats (MX) v1.0"; FP8 per the OCP 8-bit float spec).

/// E8M0 scale: 2^(x - 127); 0xFF is NaN.
#[inline]
pub fn e8m0_to_f32(x: u8) -> f32 {
    if x == 0xff {
        return f32::NAN;
    }
    if x == 0 {
        // 2^-127 is an f32 subnormal.
        return f32::from_bits(0x0040_0000);
    }
    f32::from_bits((x as u32) << 23)
}

/// FP4 E2M1 values by code (bit 3 is the sign).
pub const E2M1_VALUES: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

#[inline]
pub fn e2m1_to_f32(code: u8) -> f32 {
    E2M1_VALUES[(code & 0x0f) as usize]
}

/// FP8 E4M3 ("fn": no infinities, 0x7F/0xFF are NaN), bias 7.
#[inline]
pub fn e4m3fn_to_f32(x: u8) -> f32 {
    let sign = if x & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let e = ((x >> 3) & 0x0f) as i32;
    let m = (x & 0x07) as f32;
    if e == 0x0f && (x & 0x07) == 0x07 {
        return f32::NAN;
    }
    if e == 0 {
        return sign * m / 8.0 * 2f32.powi(-6);
    }
    sign * (1.0 + m / 8.0) * 2f32.powi(e - 7)
}

/// Unsigned FP8 E4M3 (UE4M3, the NVFP4 block-scale format): E4M3 without a sign bit, bias 7,
/// 0x7F is NaN. A byte with bit 7 set is not a UE4M3 value and also reads as NaN.
#[inline]
pub fn ue4m3_to_f32(x: u8) -> f32 {
    if x & 0x80 != 0 {
        return f32::NAN;
    }
    e4m3fn_to_f32(x)
}

/// FP8 E5M2: the top byte of an IEEE half.
#[inline]
pub fn e5m2_to_f32(x: u8) -> f32 {
    half::f16::from_bits((x as u16) << 8).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn known_values() {
        assert_eq!(e8m0_to_f32(127), 1.0);
        assert_eq!(e8m0_to_f32(128), 2.0);
        assert_eq!(e8m0_to_f32(0), 2f32.powi(-127));
        assert!(e8m0_to_f32(255).is_nan());
        assert_eq!(e4m3fn_to_f32(0x38), 1.0);
        assert_eq!(e4m3fn_to_f32(0x7e), 448.0);
        assert_eq!(e4m3fn_to_f32(0x01), 2f32.powi(-9));
        assert!(e4m3fn_to_f32(0x7f).is_nan());
        assert_eq!(e5m2_to_f32(0x3c), 1.0);
        assert_eq!(ue4m3_to_f32(0x38), 1.0);
        assert_eq!(ue4m3_to_f32(0x7e), 448.0);
        assert!(ue4m3_to_f32(0x7f).is_nan());
        assert!(ue4m3_to_f32(0xb8).is_nan());
        assert_eq!(e2m1_to_f32(7), 6.0);
        assert_eq!(e2m1_to_f32(0xf), -6.0);
    }
}
