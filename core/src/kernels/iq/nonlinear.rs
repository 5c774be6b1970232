//! Scalar reference dequantizers of IQ4_NL and IQ4_XS (4-bit codes into `kvalues_iq4nl`).
//! Operation order follows gguf-py 0.19.0: `d * kvalue` (IQ4_NL) and
//! `(d * f32(scale - 32)) * kvalue` (IQ4_XS), all in f32.

use super::layout::{f16_to_f32, u16_at, view, BlockIq4Nl, BlockIq4Xs};
use super::tables::KVALUES_IQ4NL;

/// 16 packed bytes to 32 values: low nibbles first, then high nibbles, each `d * kvalue`.
#[inline]
pub(crate) fn put_nibbles32(out: &mut [f32], d: f32, qs: &[u8; 16]) {
    let (lo, hi) = out[..32].split_at_mut(16);
    for ((l, h), &q) in lo.iter_mut().zip(hi.iter_mut()).zip(qs) {
        *l = d * KVALUES_IQ4NL[(q & 0x0f) as usize] as f32;
        *h = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
    }
}

pub(crate) fn iq4_nl(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq4Nl>(src).iter().zip(dst.chunks_exact_mut(32)) {
        put_nibbles32(out, f16_to_f32(b.d), &b.qs);
    }
}

/// The 6-bit scale of IQ4_XS sub-block `ib`, minus its bias of 32.
#[inline]
pub(crate) fn iq4_xs_scale(b: &BlockIq4Xs, ib: usize) -> i32 {
    let lo = (b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f;
    let hi = (u16_at(&b.scales_h, 0) >> (2 * ib)) & 3;
    (lo as i32 | ((hi as i32) << 4)) - 32
}

pub(crate) fn iq4_xs(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq4Xs>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        for (ib, out) in out.chunks_exact_mut(32).enumerate() {
            let dl = d * iq4_xs_scale(b, ib) as f32;
            let qs: &[u8; 16] = b.qs[16 * ib..16 * ib + 16].try_into().expect("16 bytes");
            put_nibbles32(out, dl, qs);
        }
    }
}
