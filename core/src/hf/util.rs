//! Small helpers shared by the Hugging Face decoders.

use half::{bf16, f16};

use crate::dtype::Dtype;
use crate::encoding::{DecodeError, PartRange};
use crate::model::{LogicalTensor, StoredPart};

/// Index of the part with `role`, or an error naming the tensor.
pub(crate) fn part_index(t: &LogicalTensor, role: &str) -> Result<usize, DecodeError> {
    t.parts
        .iter()
        .position(|p| p.role == role)
        .ok_or_else(|| DecodeError::Invalid(format!("{} has no {role} part", t.name)))
}

pub(crate) fn part_dtype(p: &StoredPart) -> Result<Dtype, DecodeError> {
    Dtype::from_name(&p.dtype)
        .ok_or_else(|| DecodeError::Invalid(format!("{} has unknown dtype {}", p.name, p.dtype)))
}

/// A byte range of part `part`, checked against the bytes the part owns.
pub(crate) fn range(
    t: &LogicalTensor,
    part: usize,
    offset: u64,
    len: u64,
) -> Result<PartRange, DecodeError> {
    let p = &t.parts[part];
    if offset.checked_add(len).is_none_or(|e| e > p.nbytes) {
        return Err(DecodeError::Invalid(format!(
            "{} needs bytes {offset}..{} of {} but that part owns only {} bytes",
            t.name,
            offset.saturating_add(len),
            p.name,
            p.nbytes
        )));
    }
    Ok(PartRange { part, offset, len })
}

/// Round an f32 to `dtype` (the dtype a library writes its output in) and widen it back.
#[inline]
pub(crate) fn round_to(dtype: Dtype, x: f32) -> f32 {
    match dtype {
        Dtype::F16 => f16::from_f32(x).to_f32(),
        Dtype::BF16 => bf16::from_f32(x).to_f32(),
        _ => x,
    }
}

/// Bytes per element of a float scale tensor.
pub(crate) fn scale_size(dtype: Dtype) -> Result<u64, DecodeError> {
    match dtype {
        Dtype::F32 => Ok(4),
        Dtype::F16 | Dtype::BF16 => Ok(2),
        Dtype::U8 | Dtype::F8_E8M0 | Dtype::F8_E4M3 => Ok(1),
        other => Err(DecodeError::Unsupported(format!(
            "scale dtype {other} is not supported"
        ))),
    }
}

/// Element `i` of a float tensor of `dtype` stored in `bytes`.
#[inline]
pub(crate) fn float_at(dtype: Dtype, bytes: &[u8], i: usize) -> f32 {
    match dtype {
        Dtype::F32 => f32::from_le_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ]),
        Dtype::F16 => f16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]).to_f32(),
        Dtype::BF16 => bf16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]).to_f32(),
        _ => f32::NAN,
    }
}

/// Check that `inputs` holds the `n` ranges a plan asked for.
pub(crate) fn expect_inputs<'a>(
    t: &LogicalTensor,
    inputs: &[&'a [u8]],
    n: usize,
) -> Result<Vec<&'a [u8]>, DecodeError> {
    if inputs.len() != n {
        return Err(DecodeError::Invalid(format!(
            "{} decodes from {n} byte ranges, got {}",
            t.name,
            inputs.len()
        )));
    }
    Ok(inputs.to_vec())
}

/// Check that a byte range has the expected length before indexing into it.
pub(crate) fn expect_len(
    t: &LogicalTensor,
    what: &str,
    bytes: &[u8],
    len: u64,
) -> Result<(), DecodeError> {
    if bytes.len() as u64 != len {
        return Err(DecodeError::Invalid(format!(
            "{}: {what} range has {} bytes, expected {len}",
            t.name,
            bytes.len()
        )));
    }
    Ok(())
}

/// Reads `bits`-wide codes in order from an LSB-first bit stream.
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    acc: u64,
    have: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        BitReader {
            bytes,
            pos: 0,
            acc: 0,
            have: 0,
        }
    }

    /// The next code (zeros past the end; callers check lengths first).
    #[inline]
    pub(crate) fn next(&mut self, bits: u32) -> u32 {
        while self.have < bits {
            let b = self.bytes.get(self.pos).copied().unwrap_or(0);
            self.acc |= (b as u64) << self.have;
            self.pos += 1;
            self.have += 8;
        }
        let v = (self.acc & ((1u64 << bits) - 1)) as u32;
        self.acc >>= bits;
        self.have -= bits;
        v
    }

    /// Fill `out` with `table[code]` for the next `out.len()` codes. Widths that divide a
    /// byte are read byte by byte (the stream is then byte-aligned at every group start).
    #[inline]
    pub(crate) fn decode_into(&mut self, bits: u32, table: &[f32], out: &mut [f32]) {
        if self.have == 0 && 8u32.is_multiple_of(bits) {
            let per = (8 / bits) as usize;
            let mask = (1u8 << bits).wrapping_sub(1);
            let n_bytes = out.len().div_ceil(per);
            let bytes = &self.bytes[self.pos.min(self.bytes.len())..];
            if bytes.len() >= n_bytes && out.len().is_multiple_of(per) {
                match bits {
                    4 => {
                        for (o, &b) in out.chunks_exact_mut(2).zip(bytes) {
                            o[0] = table[(b & 0x0f) as usize];
                            o[1] = table[(b >> 4) as usize];
                        }
                    }
                    8 => {
                        for (o, &b) in out.iter_mut().zip(bytes) {
                            *o = table[b as usize];
                        }
                    }
                    _ => {
                        for (o, &b) in out.chunks_exact_mut(per).zip(bytes) {
                            for (k, x) in o.iter_mut().enumerate() {
                                *x = table[((b >> (k as u32 * bits)) & mask) as usize];
                            }
                        }
                    }
                }
                self.pos += n_bytes;
                return;
            }
        }
        for o in out.iter_mut() {
            *o = table[self.next(bits) as usize];
        }
    }
}
