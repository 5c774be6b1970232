//! Large outputs: decode a few thousand values at a time into an L1-resident buffer, then
//! copy them to the destination with non-temporal stores.
//!
//! An output far larger than the caches is bound by writing memory. Ordinary stores first
//! read every destination line into the cache (a read for ownership), so each output byte
//! crosses the memory bus twice; streaming stores write whole lines without reading them.
//! On the development VM a plain store loop over 256 MiB managed ~1 G f32/s while glibc's
//! `memcpy` (which streams at that size) managed ~2.7. Small outputs keep ordinary stores:
//! their consumer (the scan, a caller's next step) reads them back while they are cached.
//!
//! The copy moves bits (no float arithmetic), so the result is bit for bit what decoding
//! straight into the destination gives.

#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::{_mm_loadu_ps, _mm_sfence, _mm_stream_ps};

/// Outputs at least this large (in values: 16 MiB of f32, beyond any L2) are streamed.
pub const STREAM_MIN_VALUES: usize = 4 << 20;

/// Values decoded per round: 16 KiB of f32, a multiple of every ggml block size.
pub const STAGE_VALUES: usize = 4096;

#[repr(C, align(64))]
struct Stage([f32; STAGE_VALUES]);

/// Whether `dequantize` should go through [`streamed`] for an output of `values` values of
/// blocks of `block_size`.
pub fn worth_streaming(values: usize, block_size: usize) -> bool {
    cfg!(target_arch = "x86_64")
        && values >= STREAM_MIN_VALUES
        && STAGE_VALUES.is_multiple_of(block_size)
}

/// Decode `src` (whole blocks of `type_size` bytes, `block_size` values each) into `dst` with
/// `decode` run on one stage at a time; the stages are copied out with streaming stores.
pub fn streamed<E>(
    src: &[u8],
    dst: &mut [f32],
    block_size: usize,
    type_size: usize,
    mut decode: impl FnMut(&[u8], &mut [f32]) -> Result<(), E>,
) -> Result<(), E> {
    debug_assert!(STAGE_VALUES.is_multiple_of(block_size));
    let stage_bytes = STAGE_VALUES / block_size * type_size;
    let mut stage = Stage([0.0; STAGE_VALUES]);
    for (out, input) in dst.chunks_mut(STAGE_VALUES).zip(src.chunks(stage_bytes)) {
        let buf = &mut stage.0[..out.len()];
        decode(input, buf)?;
        copy_streaming(buf, out);
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86_64; the fence orders the streaming stores before any later
    // store, so the values are visible to whoever reads `dst` next, on any thread.
    unsafe {
        _mm_sfence()
    };
    Ok(())
}

/// Copy `src` to `dst` (same length), streaming the 16-byte-aligned middle of `dst`.
fn copy_streaming(src: &[f32], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    {
        // f32 is 4-byte aligned, so at most 3 values precede a 16-byte boundary.
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        dst[..head].copy_from_slice(&src[..head]);
        let body = (dst.len() - head) / 4 * 4;
        let (s, d) = (&src[head..head + body], &mut dst[head..head + body]);
        for (s4, d4) in s.chunks_exact(4).zip(d.chunks_exact_mut(4)) {
            // SAFETY: SSE is part of x86_64; `d4` is 4 values starting at a 16-byte-aligned
            // address (head was chosen so, and each step is 16 bytes); `s4` is 4 values.
            unsafe { _mm_stream_ps(d4.as_mut_ptr(), _mm_loadu_ps(s4.as_ptr())) };
        }
        let done = head + body;
        dst[done..].copy_from_slice(&src[done..]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn streamed_copy_keeps_every_bit_at_any_alignment() {
        // NaN payloads, -0, subnormals and infinities pass through unchanged.
        let src: Vec<f32> = (0..1003u32)
            .map(|i| f32::from_bits(i.wrapping_mul(0x9e37_79b9) ^ 0x7f80_0001))
            .collect();
        for skip in 0..4 {
            let mut backing = vec![0f32; src.len() + 4];
            let dst = &mut backing[skip..skip + src.len()];
            copy_streaming(&src, dst);
            assert!(src
                .iter()
                .zip(dst.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn stages_cover_the_whole_output_and_pass_errors_on() {
        // A "type" of 32 values per 2-byte block: each stage gets exactly its blocks.
        let blocks = 300usize;
        let src: Vec<u8> = (0..blocks * 2).map(|i| i as u8).collect();
        let mut dst = vec![f32::NAN; blocks * 32];
        let decode = |s: &[u8], d: &mut [f32]| -> Result<(), ()> {
            assert_eq!(s.len() / 2 * 32, d.len());
            for (i, v) in d.iter_mut().enumerate() {
                *v = s[i / 32 * 2] as f32;
            }
            Ok(())
        };
        streamed(&src, &mut dst, 32, 2, decode).unwrap();
        assert!(dst
            .iter()
            .enumerate()
            .all(|(i, &v)| v == src[i / 32 * 2] as f32));
        let failing = |_: &[u8], _: &mut [f32]| -> Result<(), &str> { Err("bad") };
        assert_eq!(streamed(&src, &mut dst, 32, 2, failing), Err("bad"));
    }
}
