//! Block scales of ggml types: where each block keeps its scale fields, and counts of the
//! bad ones (NaN, Inf, zero, subnormal).
//!
//! Offsets follow the block structs of ggml-common.h. Only the float scale fields are read
//! (the super-block `d`, and `dmin`/`m` where a type has one); the small integer sub-block
//! scales of the K-quants cannot be non-finite. Classification works on the raw bits, so no
//! value is converted.

use serde::{Deserialize, Serialize};

use crate::ggml::types::GgmlType;

/// How a scale field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// IEEE half at a byte offset.
    F16(usize),
    /// IEEE single at a byte offset.
    F32(usize),
    /// E8M0 byte (2^(x-127); 0xFF is NaN).
    E8m0(usize),
    /// Unsigned E4M3 byte (0x7F is NaN).
    Ue4m3(usize),
    /// IQ1_M: an f16 split over the top nibbles of the four u16 sub-scales at this offset.
    Iq1mSplit(usize),
}

/// Scale fields of one block of `ty`; empty for unscaled types.
fn fields(ty: GgmlType) -> &'static [Field] {
    use Field::*;
    use GgmlType as T;
    match ty {
        T::Q4_0 | T::Q5_0 | T::Q8_0 | T::IQ4_NL | T::Q1_0 => &[F16(0)],
        // Q8_1 keeps d and s = d * sum(q); s is a sum, not a scale.
        T::Q8_1 => &[F16(0)],
        T::Q4_1 | T::Q5_1 | T::Q4_K | T::Q5_K => &[F16(0), F16(2)],
        T::Q2_K => &[F16(80), F16(82)],
        T::Q3_K => &[F16(108)],
        T::Q6_K => &[F16(208)],
        T::Q8_K => &[F32(0)],
        T::IQ2_XXS | T::IQ2_XS | T::IQ2_S | T::IQ3_XXS | T::IQ3_S | T::IQ1_S | T::IQ4_XS => {
            &[F16(0)]
        }
        T::IQ1_M => &[Iq1mSplit(48)],
        T::TQ1_0 => &[F16(52)],
        T::TQ2_0 => &[F16(64)],
        T::MXFP4 => &[E8m0(0)],
        T::NVFP4 => &[Ue4m3(0), Ue4m3(1), Ue4m3(2), Ue4m3(3)],
        T::F32 | T::F16 | T::BF16 | T::F64 | T::I8 | T::I16 | T::I32 | T::I64 => &[],
    }
}

/// True when `ty` has float block scales this module can read.
pub fn has_scales(ty: GgmlType) -> bool {
    !fields(ty).is_empty()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Normal,
    Zero,
    Subnormal,
    Nan,
    Inf,
}

#[inline(always)]
fn class_f16(h: u16) -> Class {
    let exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    match (exp, mant) {
        (0, 0) => Class::Zero,
        (0, _) => Class::Subnormal,
        (0x1f, 0) => Class::Inf,
        (0x1f, _) => Class::Nan,
        _ => Class::Normal,
    }
}

fn class_f32(bits: u32) -> Class {
    let exp = (bits >> 23) & 0xff;
    let mant = bits & 0x7f_ffff;
    match (exp, mant) {
        (0, 0) => Class::Zero,
        (0, _) => Class::Subnormal,
        (0xff, 0) => Class::Inf,
        (0xff, _) => Class::Nan,
        _ => Class::Normal,
    }
}

fn class_ue4m3(b: u8) -> Class {
    let b = b & 0x7f;
    match (b >> 3, b & 7) {
        (0, 0) => Class::Zero,
        (0, _) => Class::Subnormal,
        (0xf, 7) => Class::Nan,
        _ => Class::Normal,
    }
}

fn classify(field: Field, block: &[u8]) -> Class {
    let u16_at = |o: usize| u16::from_le_bytes([block[o], block[o + 1]]);
    match field {
        Field::F16(o) => class_f16(u16_at(o)),
        Field::F32(o) => class_f32(u32::from_le_bytes([
            block[o],
            block[o + 1],
            block[o + 2],
            block[o + 3],
        ])),
        Field::E8m0(o) => {
            if block[o] == 0xff {
                Class::Nan
            } else {
                Class::Normal
            }
        }
        Field::Ue4m3(o) => class_ue4m3(block[o]),
        Field::Iq1mSplit(o) => {
            let s = [u16_at(o), u16_at(o + 2), u16_at(o + 4), u16_at(o + 6)];
            class_f16(
                (s[0] >> 12) | ((s[1] >> 8) & 0x00f0) | ((s[2] >> 4) & 0x0f00) | (s[3] & 0xf000),
            )
        }
    }
}

/// Counts over the scale fields of a run of blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScaleAcc {
    pub fields: u64,
    pub nan: u64,
    pub inf: u64,
    pub zero: u64,
    pub subnormal: u64,
    /// Index (within the tensor) of the first block with a NaN or Inf scale.
    pub first_bad_block: Option<u64>,
}

impl ScaleAcc {
    /// Count the scales of whole blocks of `ty` in `bytes`; `first_block` is the tensor-wide
    /// index of the first one.
    pub fn add_blocks(&mut self, ty: GgmlType, bytes: &[u8], first_block: u64) {
        let fs = fields(ty);
        if fs.is_empty() {
            return;
        }
        let ts = ty.type_size() as usize;
        // One or two f16 fields (nearly every type): a loop that only looks closer at
        // scales whose exponent is all zeros or all ones.
        match *fs {
            [Field::F16(a)] => return self.add_f16(bytes, ts, [a], first_block),
            [Field::F16(a), Field::F16(b)] => return self.add_f16(bytes, ts, [a, b], first_block),
            _ => {}
        }
        for (i, block) in bytes.chunks_exact(ts).enumerate() {
            for &f in fs {
                self.fields += 1;
                self.count(classify(f, block), first_block + i as u64);
            }
        }
    }

    #[inline(always)]
    fn add_f16<const N: usize>(
        &mut self,
        bytes: &[u8],
        ts: usize,
        at: [usize; N],
        first_block: u64,
    ) {
        let blocks = bytes.chunks_exact(ts);
        self.fields += (blocks.len() * N) as u64;
        for (i, block) in blocks.enumerate() {
            for &o in &at {
                let h = u16::from_le_bytes([block[o], block[o + 1]]);
                // Exponent 1..=30: a normal number.
                if ((h >> 10) & 0x1f).wrapping_sub(1) >= 30 {
                    self.count(class_f16(h), first_block + i as u64);
                }
            }
        }
    }

    #[inline(always)]
    fn count(&mut self, class: Class, block: u64) {
        let bad = match class {
            Class::Normal => false,
            Class::Zero => {
                self.zero += 1;
                false
            }
            Class::Subnormal => {
                self.subnormal += 1;
                false
            }
            Class::Nan => {
                self.nan += 1;
                true
            }
            Class::Inf => {
                self.inf += 1;
                true
            }
        };
        if bad {
            self.first_bad_block = Some(self.first_bad_block.map_or(block, |x| x.min(block)));
        }
    }

    pub fn merge(&mut self, o: &ScaleAcc) {
        self.fields += o.fields;
        self.nan += o.nan;
        self.inf += o.inf;
        self.zero += o.zero;
        self.subnormal += o.subnormal;
        self.first_bad_block = match (self.first_bad_block, o.first_bad_block) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn finish(&self, ty: GgmlType) -> ScaleStats {
        ScaleStats {
            fields_per_block: fields(ty).len() as u32,
            fields: self.fields,
            nan: self.nan,
            inf: self.inf,
            zero: self.zero,
            subnormal: self.subnormal,
            first_bad_block: self.first_bad_block,
        }
    }
}

/// Block-scale health of one tensor (see docs/json.md, `stats.scales`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleStats {
    /// Float scale fields per block (Q4_K: d and dmin = 2).
    pub fields_per_block: u32,
    /// Scale fields read.
    pub fields: u64,
    pub nan: u64,
    pub inf: u64,
    pub zero: u64,
    pub subnormal: u64,
    /// Index of the first block with a NaN or Inf scale.
    pub first_bad_block: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn q8_0_block(d: f16) -> Vec<u8> {
        let mut b = d.to_le_bytes().to_vec();
        b.extend([1u8; 32]);
        b
    }

    #[test]
    fn counts_bad_q8_0_scales_and_finds_the_first() {
        let mut bytes = Vec::new();
        for d in [
            f16::from_f32(0.5),
            f16::ZERO,
            f16::from_bits(0x0001),
            f16::NAN,
            f16::INFINITY,
            f16::from_f32(-2.0),
        ] {
            bytes.extend(q8_0_block(d));
        }
        let mut acc = ScaleAcc::default();
        acc.add_blocks(GgmlType::Q8_0, &bytes, 100);
        assert_eq!(acc.fields, 6);
        assert_eq!((acc.zero, acc.subnormal, acc.nan, acc.inf), (1, 1, 1, 1));
        assert_eq!(acc.first_bad_block, Some(103));
    }

    #[test]
    fn q4_k_has_two_fields_and_q6_k_keeps_d_at_the_end() {
        let mut q4k = vec![0u8; 144];
        q4k[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        q4k[2..4].copy_from_slice(&f16::NAN.to_le_bytes());
        let mut acc = ScaleAcc::default();
        acc.add_blocks(GgmlType::Q4_K, &q4k, 0);
        assert_eq!((acc.fields, acc.nan, acc.first_bad_block), (2, 1, Some(0)));

        let mut q6k = vec![0xffu8; 210];
        q6k[208..210].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
        let mut acc = ScaleAcc::default();
        acc.add_blocks(GgmlType::Q6_K, &q6k, 0);
        assert_eq!((acc.fields, acc.nan, acc.inf), (1, 0, 0));
    }

    /// The f16 fast path against the generic classification, on every f16 bit pattern.
    #[test]
    fn f16_fast_path_counts_every_class() {
        let mut bytes = Vec::new();
        for h in 0..=u16::MAX {
            bytes.extend(q4_k_like(h, h.rotate_left(7)));
        }
        let mut fast = ScaleAcc::default();
        fast.add_blocks(GgmlType::Q4_K, &bytes, 5);
        let mut slow = ScaleAcc::default();
        for (i, block) in bytes.chunks_exact(144).enumerate() {
            for f in fields(GgmlType::Q4_K) {
                slow.fields += 1;
                slow.count(classify(*f, block), 5 + i as u64);
            }
        }
        assert_eq!(fast, slow);
        assert_eq!(fast.fields, 2 * 65536);
        assert_eq!(fast.nan, 2 * 2046);
        assert_eq!(fast.first_bad_block, Some(5 + 0x7c00 / 0x80));
    }

    fn q4_k_like(d: u16, dmin: u16) -> Vec<u8> {
        let mut b = vec![0x11u8; 144];
        b[0..2].copy_from_slice(&d.to_le_bytes());
        b[2..4].copy_from_slice(&dmin.to_le_bytes());
        b
    }

    #[test]
    fn iq1_m_scale_is_reassembled_from_nibbles() {
        let mut b = vec![0u8; 56];
        // f16 NaN 0x7e00 split: nibbles 0x0, 0x0, 0xe, 0x7 into the top of each u16.
        let bits: u16 = 0x7e00;
        for i in 0..4 {
            let nib = (bits >> (4 * i)) & 0xf;
            let s = nib << 12;
            b[48 + 2 * i..50 + 2 * i].copy_from_slice(&s.to_le_bytes());
        }
        let mut acc = ScaleAcc::default();
        acc.add_blocks(GgmlType::IQ1_M, &b, 0);
        assert_eq!(acc.nan, 1);
    }

    #[test]
    fn merge_keeps_the_earliest_bad_block() {
        let mut a = ScaleAcc {
            first_bad_block: Some(9),
            nan: 1,
            fields: 10,
            ..Default::default()
        };
        let b = ScaleAcc {
            first_bad_block: Some(4),
            inf: 1,
            fields: 5,
            ..Default::default()
        };
        a.merge(&b);
        assert_eq!(
            (a.first_bad_block, a.nan, a.inf, a.fields),
            (Some(4), 1, 1, 15)
        );
        assert!(!has_scales(GgmlType::F16));
        assert!(has_scales(GgmlType::MXFP4));
    }
}
