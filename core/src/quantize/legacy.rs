//! Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 exactly as gguf-py 0.19.0 computes them (float32 throughout;
//! `np.trunc(v + 8.5)` and friends, not a round-half-even).

use super::f16_bytes;

/// Index of the first element with the largest magnitude (numpy's `abs(x).argmax()`).
fn first_absmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if v.abs() > x[best].abs() {
            best = i;
        }
    }
    best
}

fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// `np.trunc(v).astype(np.uint8).clip(0, top)` for the non-negative values these formulas
/// produce (Rust's saturating cast keeps stray values in range too).
#[inline]
fn trunc_code(v: f32, top: u8) -> u8 {
    (v.trunc() as u8).min(top)
}

/// block_q8_0: f16 d, i8 qs[32]. d = amax/127, q = round-half-away(x/d).
pub(super) fn q8_0(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    y[..2].copy_from_slice(&f16_bytes(d));
    for (o, &v) in y[2..34].iter_mut().zip(x) {
        *o = ((v * id).round() as i8) as u8;
    }
}

/// block_q4_0: f16 d, u8 qs[16] (element j low nibble, j+16 high). d = signed max / -8.
pub(super) fn q4_0(x: &[f32], y: &mut [u8]) {
    let max = x[first_absmax(x)];
    let d = max / -8.0;
    let id = inverse(d);
    y[..2].copy_from_slice(&f16_bytes(d));
    for j in 0..16 {
        let lo = trunc_code(x[j] * id + 8.5, 15);
        let hi = trunc_code(x[j + 16] * id + 8.5, 15);
        y[2 + j] = lo | (hi << 4);
    }
}

/// block_q4_1: f16 d, f16 m, u8 qs[16]. d = (max - min)/15, m = min.
pub(super) fn q4_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    y[..2].copy_from_slice(&f16_bytes(d));
    y[2..4].copy_from_slice(&f16_bytes(min));
    for j in 0..16 {
        let lo = trunc_code((x[j] - min) * id + 0.5, 15);
        let hi = trunc_code((x[j + 16] - min) * id + 0.5, 15);
        y[4 + j] = lo | (hi << 4);
    }
}

/// Low nibbles into `qs`, fifth bits into the little-endian u32 `qh`.
fn pack5(q: &[u8; 32], qh: &mut [u8], qs: &mut [u8]) {
    let mut bits = 0u32;
    for (j, &v) in q.iter().enumerate() {
        bits |= ((v >> 4) as u32 & 1) << j;
    }
    qh.copy_from_slice(&bits.to_le_bytes());
    for j in 0..16 {
        qs[j] = (q[j] & 0x0f) | (q[j + 16] << 4);
    }
}

/// block_q5_0: f16 d, u32 qh, u8 qs[16]. d = signed max / -16.
pub(super) fn q5_0(x: &[f32], y: &mut [u8]) {
    let max = x[first_absmax(x)];
    let d = max / -16.0;
    let id = inverse(d);
    y[..2].copy_from_slice(&f16_bytes(d));
    let mut q = [0u8; 32];
    for (c, &v) in q.iter_mut().zip(x) {
        *c = trunc_code(v * id + 16.5, 31);
    }
    let (qh, qs) = y[2..].split_at_mut(4);
    pack5(&q, qh, qs);
}

/// block_q5_1: f16 d, f16 m, u32 qh, u8 qs[16].
pub(super) fn q5_1(x: &[f32], y: &mut [u8]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    y[..2].copy_from_slice(&f16_bytes(d));
    y[2..4].copy_from_slice(&f16_bytes(min));
    let mut q = [0u8; 32];
    for (c, &v) in q.iter_mut().zip(x) {
        *c = trunc_code((v - min) * id + 0.5, 31);
    }
    let (qh, qs) = y[4..].split_at_mut(4);
    pack5(&q, qh, qs);
}
