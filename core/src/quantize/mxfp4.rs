//! MXFP4 (GGUF layout): one E8M0 exponent byte, then 16 bytes of E2M1 codes (elements 0–15
//! in the low nibbles, 16–31 in the high nibbles), as gguf-py 0.19.0 and ggml compute it.

/// E2M1 values doubled, by code (ggml's kvalues_mxfp4).
const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Half of the E8M0 scale, because the code values above are doubled.
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (e as u32 - 1) << 23
    };
    f32::from_bits(bits)
}

pub(super) fn mxfp4(x: &[f32], y: &mut [u8]) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    // numpy computes log2 in float32; rounding the f64 result to f32 gives the same
    // correctly rounded value.
    let e = if amax > 0.0 {
        let exp = ((amax as f64).log2() as f32).floor() - 2.0 + 127.0;
        // numpy's float-to-uint8 cast wraps negative values (tiny blocks) like C does.
        (exp as i32) as u8
    } else {
        0
    };
    let d = e8m0_half(e);
    y[0] = e;
    let code = |v: f32| -> u8 {
        let mut best = 0usize;
        let mut best_err = (d * KVALUES[0] as f32 - v).abs();
        for (i, &k) in KVALUES.iter().enumerate().skip(1) {
            let err = (d * k as f32 - v).abs();
            if err < best_err {
                best = i;
                best_err = err;
            }
        }
        best as u8
    };
    for j in 0..16 {
        y[1 + j] = code(x[j]) | (code(x[j + 16]) << 4);
    }
}
