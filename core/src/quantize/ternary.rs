//! TQ1_0 and TQ2_0 (ternary: -1, 0, +1 times a per-256 f16 scale) as gguf-py 0.19.0 packs them.

use super::f16_bytes;

/// Codes 0, 1, 2 for -1, 0, +1: round-half-away(x / amax) + 1.
fn ternary_codes(x: &[f32]) -> (f32, [u8; 256]) {
    let d = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut q = [0u8; 256];
    for (c, &v) in q.iter_mut().zip(x) {
        *c = ((v * id).round() as i8 + 1) as u8;
    }
    (d, q)
}

/// Five (or four) base-3 digits in one byte, scaled so that the top digit can be read
/// back with a multiply by 3 and a shift: ceil(v * 256 / 243).
fn base3_byte(digits: impl Iterator<Item = u8>, weights: &[u16]) -> u8 {
    let v: u16 = digits.zip(weights).map(|(d, &w)| d as u16 * w).sum();
    (v * 256).div_ceil(243) as u8
}

/// block_tq1_0: qs[48] (5 digits per byte), qh[4] (4 digits per byte), f16 d.
pub(super) fn tq1_0(x: &[f32], y: &mut [u8]) {
    const W5: [u16; 5] = [81, 27, 9, 3, 1];
    const W4: [u16; 4] = [81, 27, 9, 3];
    let (d, q) = ternary_codes(x);
    for j in 0..32 {
        y[j] = base3_byte((0..5).map(|k| q[k * 32 + j]), &W5);
    }
    for j in 0..16 {
        y[32 + j] = base3_byte((0..5).map(|k| q[160 + k * 16 + j]), &W5);
    }
    for j in 0..4 {
        y[48 + j] = base3_byte((0..4).map(|k| q[240 + k * 4 + j]), &W4);
    }
    y[52..54].copy_from_slice(&f16_bytes(d));
}

/// block_tq2_0: qs[64] (four 2-bit codes per byte, strided by 32), f16 d.
pub(super) fn tq2_0(x: &[f32], y: &mut [u8]) {
    let (d, q) = ternary_codes(x);
    for c in 0..2 {
        for j in 0..32 {
            let mut b = 0u8;
            for l in 0..4 {
                b |= q[c * 128 + l * 32 + j] << (2 * l);
            }
            y[c * 32 + j] = b;
        }
    }
    y[64..66].copy_from_slice(&f16_bytes(d));
}
