//! Q4_K, Q5_K and Q6_K following ggml's reference quantizers (`quantize_row_q4_K_ref`,
//! `quantize_row_q5_K_ref`, `quantize_row_q6_K_ref` in ggml-quants.c, no importance
//! matrix): the same search over scales and mins, the same f32 arithmetic order, and
//! ggml's `nearest_int` (round half to even).

use super::{f16_bytes, f16_round};

const QK_K: usize = 256;
/// ggml's GROUP_MAX_EPS: blocks whose largest magnitude is below it quantize to zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's nearest_int: adding 1.5 * 2^23 leaves round-half-even(v) in the low mantissa
/// bits (exact for |v| < 2^22; other inputs give some in-range integer, as in ggml).
#[inline]
fn nearest_int(v: f32) -> i32 {
    let val = v + 12_582_912.0;
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// ggml's make_qkx2_quants: codes 0..=nmax with a scale and a (non-positive) offset,
/// chosen by a weighted least-squares search over `nstep + 1` candidate scales.
/// Returns (scale, -min).
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.iter_mut().for_each(|c| *c = 0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let lf = q as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Pack 6-bit scales and mins of eight sub-blocks into 12 bytes (ggml's scale_min_k4).
fn pack_scales_k4(ls: &[u8; 8], lm: &[u8; 8], out: &mut [u8]) {
    out[..12].iter_mut().for_each(|b| *b = 0);
    for j in 0..8 {
        if j < 4 {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
            out[j - 4] |= (ls[j] >> 4) << 6;
            out[j] |= (lm[j] >> 4) << 6;
        }
    }
}

fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Shared part of Q4_K and Q5_K: per-32 scales/mins, their 6-bit codes, the f16 super
/// scales, and the final codes `l` (0..=nmax) against the rounded scales.
/// Writes d, dmin and the 12 scale bytes into `head` (16 bytes).
fn k_scales_and_codes(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    head: &mut [u8],
    l: &mut [u8; QK_K],
) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut weights = [0f32; 32];
    let mut max_scale = 0f32;
    let mut max_min = 0f32;
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            rmin,
            rdelta,
            nstep,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        // ggml stores nearest_int into a uint8_t before MIN(63, ...): the value wraps first.
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    let d = max_scale / 63.0;
    let dmin = max_min / 63.0;
    head[0..2].copy_from_slice(&f16_bytes(d));
    head[2..4].copy_from_slice(&f16_bytes(dmin));
    pack_scales_k4(&ls, &lm, &mut head[4..16]);
    let d16 = f16_round(d);
    let dmin16 = f16_round(dmin);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &head[4..16]);
        let dj = d16 * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin16 * m as f32;
        for ii in 0..32 {
            let q = nearest_int((x[32 * j + ii] + dm) / dj).clamp(0, nmax);
            l[32 * j + ii] = q as u8;
        }
    }
}

/// block_q4_K: f16 d, f16 dmin, scales[12], qs[128].
pub(super) fn q4_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_scales_and_codes(x, 15, -1.0, 0.1, 20, &mut y[..16], &mut l);
    let qs = &mut y[16..144];
    for (c, chunk) in l.chunks_exact(64).enumerate() {
        for i in 0..32 {
            qs[c * 32 + i] = chunk[i] | (chunk[i + 32] << 4);
        }
    }
}

/// block_q5_K: f16 d, f16 dmin, scales[12], qh[32], qs[128].
pub(super) fn q5_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_scales_and_codes(x, 31, -0.5, 0.1, 15, &mut y[..16], &mut l);
    let (qh, qs) = y[16..176].split_at_mut(32);
    qh.iter_mut().for_each(|b| *b = 0);
    let (mut m1, mut m2) = (1u8, 2u8);
    for (c, chunk) in l.chunks_exact(64).enumerate() {
        for j in 0..32 {
            let mut l1 = chunk[j];
            if l1 > 15 {
                l1 -= 16;
                qh[j] |= m1;
            }
            let mut l2 = chunk[j + 32];
            if l2 > 15 {
                l2 -= 16;
                qh[j] |= m2;
            }
            qs[c * 32 + j] = l1 | (l2 << 4);
        }
        m1 <<= 2;
        m2 <<= 2;
    }
}

/// ggml's make_qx_quants with rmse_type 1 (weights x²), no importance matrix: symmetric
/// codes -nmax..nmax-1 stored offset by nmax. Returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.iter_mut().for_each(|c| *c = 0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let mut iscale = -(nmax as f32) / max;
    let mut sumlx = 0f32;
    let mut suml2 = 0f32;
    for (i, &v) in x.iter().enumerate() {
        let q = code(iscale, v);
        l[i] = (q + nmax) as i8;
        let w = v * v;
        sumlx += w * v * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let q = code(iscale, v);
            let w = v * v;
            sumlx += w * v * q as f32;
            suml2 += w * q as f32 * q as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (i, &v) in x.iter().enumerate() {
                l[i] = (code(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// block_q6_K: ql[128], qh[64], i8 scales[16], f16 d.
pub(super) fn q6_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; 16];
    let mut max_scale = 0f32;
    let mut max_abs_scale = 0f32;
    for ib in 0..16 {
        let s = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        scales[ib] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    y[..210].iter_mut().for_each(|b| *b = 0);
    if max_abs_scale < GROUP_MAX_EPS {
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = 1.0 / iscale;
    y[208..210].copy_from_slice(&f16_bytes(d));
    let mut sc = [0i8; 16];
    for ib in 0..16 {
        // MIN(127, nearest_int(...)) stored into an int8_t.
        sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8;
        y[192 + ib] = sc[ib] as u8;
    }
    let d16 = f16_round(d);
    for j in 0..16 {
        let dj = d16 * sc[j] as f32;
        if dj == 0.0 {
            continue;
        }
        for ii in 0..16 {
            let q = nearest_int(x[16 * j + ii] / dj).clamp(-32, 31);
            l[16 * j + ii] = (q + 32) as i8;
        }
    }
    let (ql, rest) = y.split_at_mut(128);
    let qh = &mut rest[..64];
    for half in 0..2 {
        let lj = &l[half * 128..half * 128 + 128];
        let qlh = &mut ql[half * 64..half * 64 + 64];
        let qhh = &mut qh[half * 32..half * 32 + 32];
        for i in 0..32 {
            let q1 = lj[i] as u8;
            let q2 = lj[i + 32] as u8;
            let q3 = lj[i + 64] as u8;
            let q4 = lj[i + 96] as u8;
            qlh[i] = (q1 & 0xf) | ((q3 & 0xf) << 4);
            qlh[i + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
            qhh[i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}
