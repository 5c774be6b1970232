//! Scalar reference dequantizers of the FP4 types MXFP4 and NVFP4. Like ggml and gguf-py,
//! they multiply doubled E2M1 values (integers) by half the block scale.

use super::layout::{view, BlockMxfp4, BlockNvfp4};
use super::tables::KVALUES_FP4;

/// Half of the E8M0 scale 2^(x-127), as ggml's `ggml_e8m0_to_fp32_half` and gguf-py compute
/// it: 0 and 1 give the subnormals 2^-128 and 2^-127, and 0xFF (NaN in the OCP spec) gives
/// 2^126 like any other exponent.
#[inline]
pub(crate) fn e8m0_half(x: u8) -> f32 {
    if x < 2 {
        f32::from_bits(0x0020_0000 << x)
    } else {
        f32::from_bits(((x - 1) as u32) << 23)
    }
}

/// Half of an NVFP4 UE4M3 block scale, as gguf-py 0.19.0's `NVFP4.ue4m3_to_fp32` computes it:
/// bit 7 is ignored (a sign has no place in an unsigned scale), 0x00 and 0x7F (NaN) give 0,
/// and 0xFF gives 240 (it is not special-cased). Every result is exact.
#[inline]
pub(crate) fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7f {
        return 0.0;
    }
    let e = ((x >> 3) & 0x0f) as i32;
    let m = (x & 7) as f32;
    let raw = if e == 0 {
        m * (1.0 / 512.0)
    } else {
        (1.0 + m / 8.0) * pow2(e - 7)
    };
    raw * 0.5
}

/// 2^e for -7 <= e <= 8, exactly.
#[inline]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

pub(crate) fn mxfp4(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockMxfp4>(src).iter().zip(dst.chunks_exact_mut(32)) {
        let d = e8m0_half(b.e[0]);
        let (lo, hi) = out.split_at_mut(16);
        for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(&b.qs) {
            *l = d * KVALUES_FP4[(q & 0x0f) as usize] as f32;
            *h = d * KVALUES_FP4[(q >> 4) as usize] as f32;
        }
    }
}

pub(crate) fn nvfp4(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockNvfp4>(src).iter().zip(dst.chunks_exact_mut(64)) {
        for (s, out) in out.chunks_exact_mut(16).enumerate() {
            let d = ue4m3_half(b.d[s]);
            let (lo, hi) = out.split_at_mut(8);
            for ((l, h), &q) in lo
                .iter_mut()
                .zip(hi.iter_mut())
                .zip(&b.qs[8 * s..8 * s + 8])
            {
                *l = d * KVALUES_FP4[(q & 0x0f) as usize] as f32;
                *h = d * KVALUES_FP4[(q >> 4) as usize] as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn e8m0_half_matches_ggml() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(128), 1.0);
        assert_eq!(e8m0_half(2), 2f32.powi(-126));
        assert_eq!(e8m0_half(1).to_bits(), 0x0040_0000);
        assert_eq!(e8m0_half(0).to_bits(), 0x0020_0000);
        assert_eq!(e8m0_half(255), 2f32.powi(127));
    }

    #[test]
    fn ue4m3_half_matches_gguf_py() {
        assert_eq!(ue4m3_half(0x38), 0.5); // 1.0
        assert_eq!(ue4m3_half(0x7e), 224.0); // 448
        assert_eq!(ue4m3_half(0x01), 2f32.powi(-10)); // smallest subnormal 2^-9
        assert_eq!(ue4m3_half(0x7f), 0.0);
        assert_eq!(ue4m3_half(0xff), 240.0);
        assert_eq!(ue4m3_half(0xb8), 0.5);
    }
}
