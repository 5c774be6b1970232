//! Scalar reference dequantizers of the ternary types TQ1_0 and TQ2_0 (values d * {-1, 0, 1}).

use super::layout::{f16_to_f32, view, BlockTq1_0, BlockTq2_0};

/// Base-3 digit `n` of a TQ1_0 byte: the byte is a fixed-point fraction of 3^5 (or 3^4), so
/// multiplying by 3^n (mod 256, as gguf-py's uint8 arithmetic wraps) brings digit n to the
/// top, and `(x * 3) >> 8` reads it.
#[inline]
fn trit(byte: u8, pow3: u8) -> f32 {
    let x = byte.wrapping_mul(pow3);
    (((x as u16 * 3) >> 8) as i32 - 1) as f32
}

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

pub(crate) fn tq1_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockTq1_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        // Elements 0..160: 32 bytes × 5 digits; 160..240: 16 bytes × 5; 240..256: 4 bytes × 4.
        // Within each part, digit n of byte j is element n * width + j.
        let parts: [(&[u8], usize, usize); 3] = [
            (&b.qs[..32], 0, 5),
            (&b.qs[32..], 160, 5),
            (&b.qh[..], 240, 4),
        ];
        for (bytes, base, digits) in parts {
            let w = bytes.len();
            for (n, &p) in POW3[..digits].iter().enumerate() {
                for (j, &q) in bytes.iter().enumerate() {
                    out[base + n * w + j] = d * trit(q, p);
                }
            }
        }
    }
}

pub(crate) fn tq2_0(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockTq2_0>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        // Element 128c + 32s + j is bits 2s..2s+2 of byte 32c + j.
        for (c, out) in out.chunks_exact_mut(128).enumerate() {
            for (s, out) in out.chunks_exact_mut(32).enumerate() {
                for (o, &q) in out.iter_mut().zip(&b.qs[32 * c..32 * c + 32]) {
                    *o = d * (((q >> (2 * s)) & 3) as i32 - 1) as f32;
                }
            }
        }
    }
}
