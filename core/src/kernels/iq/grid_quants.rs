//! Scalar reference dequantizers of the grid i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
//! IQ2_S, IQ3_XXS, IQ3_S).
//!
//! Every float operation follows gguf-py 0.19.0's `dequantize_blocks` in order and in f32
//! (numpy float32 semantics), e.g. `db = d * (0.5 + scale) * 0.25` then `db * grid * sign`,
//! so results are bit-identical to it, not merely close.

use super::grids::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID};
use super::layout::{
    f16_to_f32, u16_at, u32_at, view, BlockIq1M, BlockIq1S, BlockIq2S, BlockIq2Xs, BlockIq2Xxs,
    BlockIq3S, BlockIq3Xxs,
};
use super::tables::{KSIGNS, SIGN_MASKS};

/// Nibble `i` (low nibble first) of a packed 4-bit scale array.
#[inline]
fn nibble(bytes: &[u8], i: usize) -> u8 {
    (bytes[i / 2] >> (4 * (i % 2))) & 0x0f
}

/// One 8-wide grid row (one unsigned magnitude per byte) times `db`, negated where `signs`
/// has a bit set. gguf-py multiplies by -1.0, which leaves NaN unchanged; `db * magnitude` is
/// NaN exactly when `db` is (magnitudes are finite and non-zero), so NaN rows skip the flip.
#[inline]
fn put_row8(out: &mut [f32], db: f32, row: u64, signs: u8) {
    let out: &mut [f32; 8] = (&mut out[..8]).try_into().expect("8 values");
    let flips = &SIGN_MASKS[if db.is_nan() { 0 } else { signs as usize }];
    for ((o, m), flip) in out.iter_mut().zip(row.to_le_bytes()).zip(flips) {
        *o = f32::from_bits((db * m as f32).to_bits() ^ flip);
    }
}

pub(crate) fn iq2_xxs(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq2Xxs>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        for (g, out) in out.chunks_exact_mut(32).enumerate() {
            let idx = &b.qs[8 * g..8 * g + 4];
            let aux = u32_at(&b.qs, 8 * g + 4);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.25;
            for (l, out) in out.chunks_exact_mut(8).enumerate() {
                let signs = KSIGNS[((aux >> (7 * l)) & 0x7f) as usize];
                put_row8(out, db, IQ2XXS_GRID[idx[l] as usize], signs);
            }
        }
    }
}

pub(crate) fn iq2_xs(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq2Xs>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        for (e, out) in out.chunks_exact_mut(8).enumerate() {
            let q = u16_at(&b.qs, 2 * e);
            let db = d * (0.5 + nibble(&b.scales, e / 2) as f32) * 0.25;
            let signs = KSIGNS[(q >> 9) as usize];
            put_row8(out, db, IQ2XS_GRID[(q & 511) as usize], signs);
        }
    }
}

pub(crate) fn iq2_s(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq2S>(src).iter().zip(dst.chunks_exact_mut(256)) {
        let d = f16_to_f32(b.d);
        for (e, out) in out.chunks_exact_mut(8).enumerate() {
            let high = ((b.qh[e / 4] >> (2 * (e % 4))) & 3) as usize;
            let idx = b.qs[e] as usize | (high << 8);
            let db = d * (0.5 + nibble(&b.scales, e / 2) as f32) * 0.25;
            put_row8(out, db, IQ2S_GRID[idx], b.signs[e]);
        }
    }
}

pub(crate) fn iq3_xxs(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq3Xxs>(src)
        .iter()
        .zip(dst.chunks_exact_mut(256))
    {
        let d = f16_to_f32(b.d);
        for (g, out) in out.chunks_exact_mut(32).enumerate() {
            let aux = u32_at(&b.scales_signs, 4 * g);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            for (l, out) in out.chunks_exact_mut(8).enumerate() {
                let signs = KSIGNS[((aux >> (7 * l)) & 0x7f) as usize];
                // Two 4-wide grid rows make one 8-wide sign group.
                let lo = IQ3XXS_GRID[b.qs[8 * g + 2 * l] as usize] as u64;
                let hi = IQ3XXS_GRID[b.qs[8 * g + 2 * l + 1] as usize] as u64;
                put_row8(out, db, lo | (hi << 32), signs);
            }
        }
    }
}

/// The 9-bit grid index of IQ3_S row `e`: 8 bits in `qs[e]`, the ninth is bit `e` of `qh`.
#[inline]
fn iq3_s_index(b: &BlockIq3S, e: usize) -> usize {
    b.qs[e] as usize | ((((b.qh[e / 8] >> (e % 8)) & 1) as usize) << 8)
}

pub(crate) fn iq3_s(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq3S>(src).iter().zip(dst.chunks_exact_mut(256)) {
        let d = f16_to_f32(b.d);
        for (g, out) in out.chunks_exact_mut(32).enumerate() {
            // gguf-py: `d * (1 + 2 * scales)` with the integer factor converted to f32.
            let db = d * (1 + 2 * nibble(&b.scales, g) as u32) as f32;
            for (l, out) in out.chunks_exact_mut(8).enumerate() {
                let e = 8 * g + 2 * l; // the first of two 4-wide rows
                let lo = IQ3S_GRID[iq3_s_index(b, e)] as u64;
                let hi = IQ3S_GRID[iq3_s_index(b, e + 1)] as u64;
                put_row8(out, db, lo | (hi << 32), b.signs[4 * g + l]);
            }
        }
    }
}

/// One 8-wide IQ1 grid row: `dl * (grid + delta)`, grid values in {-1, 0, 1}.
#[inline]
fn put_iq1_row(out: &mut [f32], dl: f32, delta: f32, row: u64) {
    let out: &mut [f32; 8] = (&mut out[..8]).try_into().expect("8 values");
    for (o, g) in out.iter_mut().zip(row.to_le_bytes()) {
        *o = dl * (g as i8 as f32 + delta);
    }
}

const IQ1_DELTA: f32 = 0.125;

pub(crate) fn iq1_s(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq1S>(src).iter().zip(dst.chunks_exact_mut(256)) {
        let d = f16_to_f32(b.d);
        for (g, out) in out.chunks_exact_mut(32).enumerate() {
            let qh = u16_at(&b.qh, 2 * g);
            let dl = d * (2 * ((qh >> 12) & 7) + 1) as f32;
            let delta = if qh & 0x8000 != 0 {
                -IQ1_DELTA
            } else {
                IQ1_DELTA
            };
            for (l, out) in out.chunks_exact_mut(8).enumerate() {
                let idx = b.qs[4 * g + l] as usize | ((((qh >> (3 * l)) & 7) as usize) << 8);
                put_iq1_row(out, dl, delta, IQ1S_GRID[idx]);
            }
        }
    }
}

/// IQ1_M's block scale: the top nibbles of its four u16 sub-scale words, low word first.
pub(crate) fn iq1_m_scale_bits(scales: &[u8; 8]) -> u16 {
    (0..4).fold(0u16, |acc, i| {
        acc | ((u16_at(scales, 2 * i) & 0xf000) >> (12 - 4 * i))
    })
}

pub(crate) fn iq1_m(src: &[u8], dst: &mut [f32]) {
    for (b, out) in view::<BlockIq1M>(src).iter().zip(dst.chunks_exact_mut(256)) {
        let d = half::f16::from_bits(iq1_m_scale_bits(&b.scales)).to_f32();
        for (s, out) in out.chunks_exact_mut(16).enumerate() {
            let sc = (u16_at(&b.scales, 2 * (s / 4)) >> (3 * (s % 4))) & 7;
            let dl = d * (2 * sc + 1) as f32;
            for (r, out) in out.chunks_exact_mut(8).enumerate() {
                let e = 2 * s + r;
                let h = b.qh[e / 2] >> (4 * (e % 2));
                let idx = b.qs[e] as usize | (((h & 7) as usize) << 8);
                let delta = if h & 8 != 0 { -IQ1_DELTA } else { IQ1_DELTA };
                put_iq1_row(out, dl, delta, IQ1S_GRID[idx]);
            }
        }
    }
}
