//! Scalar reference dequantizers. Clear rather than fast: SIMD paths are tested against these.

use half::{bf16, f16};

use super::KernelError;
use crate::ggml::types::GgmlType;

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantize whole blocks (`dst.len()` is a multiple of the block size and matches `src`).
pub fn dequantize(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    let bs = ty.block_size() as usize;
    let ts = ty.type_size() as usize;
    let blocks = src.chunks_exact(ts).zip(dst.chunks_exact_mut(bs));
    match ty {
        GgmlType::F32 => {
            for (b, d) in blocks {
                d[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (b, d) in blocks {
                d[0] = f16_at(b, 0);
            }
        }
        GgmlType::BF16 => {
            for (b, d) in blocks {
                d[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            // block_q8_0 { f16 d; int8 qs[32]; }
            for (b, d) in blocks {
                let scale = f16_at(b, 0);
                for (o, &q) in d.iter_mut().zip(&b[2..34]) {
                    *o = (q as i8) as f32 * scale;
                }
            }
        }
        GgmlType::Q4_0 => {
            // block_q4_0 { f16 d; uint8 qs[16]; }: element j in the low nibble of qs[j],
            // element j+16 in the high nibble; value = (q - 8) * d.
            for (b, d) in blocks {
                let scale = f16_at(b, 0);
                for j in 0..16 {
                    let q = b[2 + j];
                    d[j] = ((q & 0x0f) as i32 - 8) as f32 * scale;
                    d[j + 16] = ((q >> 4) as i32 - 8) as f32 * scale;
                }
            }
        }
        GgmlType::IQ1_S
        | GgmlType::IQ1_M
        | GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ2_S
        | GgmlType::IQ3_XXS
        | GgmlType::IQ3_S
        | GgmlType::IQ4_NL
        | GgmlType::IQ4_XS
        | GgmlType::TQ1_0
        | GgmlType::TQ2_0
        | GgmlType::MXFP4
        | GgmlType::NVFP4 => return super::iquants::dequantize(ty, src, dst),
        _ => return Err(KernelError::Unsupported(ty.name())),
    }
    Ok(())
}
