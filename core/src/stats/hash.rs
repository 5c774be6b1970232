//! A content hash of a tensor's stored bytes that any chunking can compute in parallel.
//!
//! The part is cut into aligned 16-byte blocks; block `j` contributes `mix(block, j)` to two
//! wrapping u64 sums. Sums commute, so chunks can be hashed on any thread and merged in any
//! grouping; the position enters every term, so moving bytes around changes the hash. A
//! block cut by a chunk boundary is kept as a fragment until its neighbours arrive. This is
//! not a cryptographic hash: it finds accidental copies (duplicate tensors), 128 bits wide.
//!
//! `mix` needs only 32 × 32 → 64-bit multiplies, which every SIMD instruction set has
//! (`pmuludq` on x86, `i64x2.extmul_*_i32x4_u` in wasm), so it runs at memory speed in a
//! browser as well as natively. For the four little-endian u32 words `d0..d3` of block `j`
//! and a position key `s = key(j)` (four u32 lanes, see [`key`]):
//!
//! ```text
//! x_l = d_l ^ s_l          y_l = d_l ^ s_(l+1 mod 4)
//! A  += x0·x1 + y2·y3 + (d1:d0)
//! B  += x2·x3 + y0·y1 + (d3:d2)      (u64 products and sums, wrapping)
//! ```
//!
//! Every word enters both sums through a product with a position-dependent factor, and once
//! more unmultiplied, so changing one block always changes the sums (the unmultiplied word
//! differs even when its product partner is zero). Native code (SSE2, AVX2, AVX-512) and wasm
//! (simd128) compute exactly what the scalar reference below computes; the tests check it.

/// Position key of a block: four u32 lanes, `K + lo32(j)·C + hi32(j)·D` (wrapping), so
/// consecutive blocks step by `C` and the key repeats only after 2^32 · 2^32 blocks.
const K: [u32; 4] = [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344];
const C: [u32; 4] = [0x9e37_79b9, 0x7f4a_7c15, 0xf39c_c060, 0x5ced_c835];
const D: [u32; 4] = [0xb7e1_5163, 0x8aed_2a6b, 0xbf71_5880, 0x9cf4_f3c7];

/// Finishing constants (odd).
const M1: u64 = 0x9e37_79b9_7f4a_7c15;
const M2: u64 = 0xbf58_476d_1ce4_e5b9;
const M3: u64 = 0x94d0_49bb_1331_11eb;

const BLOCK: u64 = 16;

#[inline(always)]
fn key(j: u64) -> [u32; 4] {
    let (lo, hi) = (j as u32, (j >> 32) as u32);
    std::array::from_fn(|l| {
        K[l].wrapping_add(lo.wrapping_mul(C[l]))
            .wrapping_add(hi.wrapping_mul(D[l]))
    })
}

/// The two sums' terms of one block (the scalar reference).
#[inline(always)]
fn mix(block: &[u8; 16], j: u64) -> [u64; 2] {
    let d: [u32; 4] =
        std::array::from_fn(|l| u32::from_le_bytes(block[4 * l..4 * l + 4].try_into().unwrap()));
    let s = key(j);
    let x: [u64; 4] = std::array::from_fn(|l| (d[l] ^ s[l]) as u64);
    let y: [u64; 4] = std::array::from_fn(|l| (d[l] ^ s[(l + 1) & 3]) as u64);
    let lo = u64::from_le_bytes(block[..8].try_into().unwrap());
    let hi = u64::from_le_bytes(block[8..].try_into().unwrap());
    [
        (x[0] * x[1]).wrapping_add(y[2] * y[3]).wrapping_add(lo),
        (x[2] * x[3]).wrapping_add(y[0] * y[1]).wrapping_add(hi),
    ]
}

/// Sums of whole blocks `first_block..` of `bytes` (a multiple of 16 long), scalar: the
/// reference the SIMD paths are tested against, and the path of other targets.
#[cfg_attr(
    any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ),
    allow(dead_code)
)]
fn sums_scalar(bytes: &[u8], first_block: u64) -> [u64; 2] {
    let mut h = [0u64; 2];
    for (i, b) in bytes.chunks_exact(16).enumerate() {
        let m = mix(b.try_into().expect("16 bytes"), first_block + i as u64);
        h[0] = h[0].wrapping_add(m[0]);
        h[1] = h[1].wrapping_add(m[1]);
    }
    h
}

/// Sums of whole blocks `first_block..` of `bytes` (a multiple of 16 long), the fastest way
/// this machine has. Splits where `hi32(block)` changes, so the SIMD loops only step by C.
fn sums(bytes: &[u8], first_block: u64) -> [u64; 2] {
    let mut h = [0u64; 2];
    let mut rest = bytes;
    let mut j = first_block;
    while !rest.is_empty() {
        let to_wrap = (1u64 << 32) - (j & 0xffff_ffff);
        let n = ((rest.len() as u64 / BLOCK).min(to_wrap) * BLOCK) as usize;
        let (now, later) = rest.split_at(n);
        let part = sums_run(now, j);
        h[0] = h[0].wrapping_add(part[0]);
        h[1] = h[1].wrapping_add(part[1]);
        j += n as u64 / BLOCK;
        rest = later;
    }
    h
}

#[cfg(target_arch = "x86_64")]
fn sums_run(bytes: &[u8], j: u64) -> [u64; 2] {
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (and so AVX2), checked just above.
        unsafe { x86::sums_avx512(bytes, j) }
    } else if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { x86::sums_avx2(bytes, j) }
    } else {
        // SAFETY: SSE2 is part of x86_64.
        unsafe { x86::sums_sse2(bytes, j) }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn sums_run(bytes: &[u8], j: u64) -> [u64; 2] {
    wasm::sums_simd128(bytes, j)
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
fn sums_run(bytes: &[u8], j: u64) -> [u64; 2] {
    sums_scalar(bytes, j)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{key, C};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn step128(d: __m128i, s: __m128i) -> __m128i {
        let x = _mm_xor_si128(d, s);
        let y = _mm_xor_si128(d, _mm_shuffle_epi32::<0b00_11_10_01>(s)); // (s1, s2, s3, s0)
        let p = _mm_mul_epu32(x, _mm_srli_epi64::<32>(x)); // (x0·x1, x2·x3)
        let q = _mm_mul_epu32(y, _mm_srli_epi64::<32>(y)); // (y0·y1, y2·y3)
        let q = _mm_shuffle_epi32::<0b01_00_11_10>(q); // (y2·y3, y0·y1)
        _mm_add_epi64(_mm_add_epi64(p, q), d)
    }

    /// `bytes.len()` is a multiple of 16 and `hi32(j)` is the same for every block.
    #[target_feature(enable = "sse2")]
    pub(super) unsafe fn sums_sse2(bytes: &[u8], j: u64) -> [u64; 2] {
        let k = key(j);
        let mut s = _mm_loadu_si128(k.as_ptr() as *const __m128i);
        let c = _mm_loadu_si128(C.as_ptr() as *const __m128i);
        let mut acc = _mm_setzero_si128();
        let p = bytes.as_ptr();
        for i in 0..bytes.len() / 16 {
            let d = _mm_loadu_si128(p.add(16 * i) as *const __m128i);
            acc = _mm_add_epi64(acc, step128(d, s));
            s = _mm_add_epi32(s, c);
        }
        let mut out = [0u64; 2];
        _mm_storeu_si128(out.as_mut_ptr() as *mut __m128i, acc);
        out
    }

    /// As `sums_sse2`, two blocks per 256-bit register (lanes never cross the halves).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums_avx2(bytes: &[u8], j: u64) -> [u64; 2] {
        let blocks = bytes.len() / 16;
        let pairs = blocks / 4 * 2; // whole groups of four blocks, two registers each
        let k = key(j);
        let c = _mm_loadu_si128(C.as_ptr() as *const __m128i);
        let s0 = _mm_loadu_si128(k.as_ptr() as *const __m128i);
        // Keys of blocks (j, j+1) and (j+2, j+3); each steps by 4·C per group.
        let mut sa = _mm256_set_m128i(_mm_add_epi32(s0, c), s0);
        let c2 = _mm_add_epi32(c, c);
        let mut sb = _mm256_add_epi32(sa, _mm256_set_m128i(c2, c2));
        let c4 = _mm256_set_m128i(_mm_add_epi32(c2, c2), _mm_add_epi32(c2, c2));
        let mut acc_a = _mm256_setzero_si256();
        let mut acc_b = _mm256_setzero_si256();
        let p = bytes.as_ptr();
        let mut i = 0;
        while i < pairs {
            let da = _mm256_loadu_si256(p.add(32 * i) as *const __m256i);
            let db = _mm256_loadu_si256(p.add(32 * i + 32) as *const __m256i);
            acc_a = _mm256_add_epi64(acc_a, step256(da, sa));
            acc_b = _mm256_add_epi64(acc_b, step256(db, sb));
            sa = _mm256_add_epi32(sa, c4);
            sb = _mm256_add_epi32(sb, c4);
            i += 2;
        }
        let acc = _mm256_add_epi64(acc_a, acc_b);
        let mut lanes = [0u64; 4];
        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, acc);
        let done = pairs * 2;
        let tail = sums_sse2(&bytes[done * 16..], j + done as u64);
        [
            lanes[0].wrapping_add(lanes[2]).wrapping_add(tail[0]),
            lanes[1].wrapping_add(lanes[3]).wrapping_add(tail[1]),
        ]
    }

    /// As `sums_avx2`, four blocks per 512-bit register.
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn sums_avx512(bytes: &[u8], j: u64) -> [u64; 2] {
        let blocks = bytes.len() / 16;
        let regs = blocks / 8 * 2; // whole groups of eight blocks, two registers each
        let k = key(j);
        let c = _mm_loadu_si128(C.as_ptr() as *const __m128i);
        let s0 = _mm_loadu_si128(k.as_ptr() as *const __m128i);
        let c2 = _mm_add_epi32(c, c);
        let (s1, s2) = (_mm_add_epi32(s0, c), _mm_add_epi32(s0, c2));
        let s3 = _mm_add_epi32(s1, c2);
        // Keys of blocks j..j+3 and j+4..j+7; each steps by 8·C per group.
        let mut sa = _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(_mm256_set_m128i(s1, s0)),
            _mm256_set_m128i(s3, s2),
        );
        let c4 = _mm512_broadcast_i32x4(_mm_add_epi32(c2, c2));
        let mut sb = _mm512_add_epi32(sa, c4);
        let c8 = _mm512_add_epi32(c4, c4);
        // The rotated keys (s1, s2, s3, s0) step by the rotated C; the products of the
        // rotated pairing are summed apart and swapped into place once at the end (in
        // `step256` it is two shuffles per register).
        let rotate = |v: __m512i| _mm512_shuffle_epi32::<0b00_11_10_01>(v);
        let (mut ra, mut rb, r8) = (rotate(sa), rotate(sb), rotate(c8));
        let zero = _mm512_setzero_si512();
        let (mut acc, mut acc_rotated) = ([zero; 2], [zero; 2]);
        let p = bytes.as_ptr();
        let mut i = 0;
        while i < regs {
            let d = [
                _mm512_loadu_si512(p.add(64 * i).cast()),
                _mm512_loadu_si512(p.add(64 * i + 64).cast()),
            ];
            for (h, (s, r)) in [(sa, ra), (sb, rb)].into_iter().enumerate() {
                let x = _mm512_xor_si512(d[h], s);
                let y = _mm512_xor_si512(d[h], r);
                let px = _mm512_mul_epu32(x, _mm512_srli_epi64::<32>(x)); // (x0·x1, x2·x3)
                let py = _mm512_mul_epu32(y, _mm512_srli_epi64::<32>(y)); // (y0·y1, y2·y3)
                acc[h] = _mm512_add_epi64(acc[h], _mm512_add_epi64(px, d[h]));
                acc_rotated[h] = _mm512_add_epi64(acc_rotated[h], py);
            }
            sa = _mm512_add_epi32(sa, c8);
            sb = _mm512_add_epi32(sb, c8);
            ra = _mm512_add_epi32(ra, r8);
            rb = _mm512_add_epi32(rb, r8);
            i += 2;
        }
        // Summed (y0·y1, y2·y3) -> (y2·y3, y0·y1), the places `mix` adds them to.
        let rotated = _mm512_add_epi64(acc_rotated[0], acc_rotated[1]);
        let total = _mm512_add_epi64(
            _mm512_add_epi64(acc[0], acc[1]),
            _mm512_shuffle_epi32::<0b01_00_11_10>(rotated),
        );
        let mut lanes = [0u64; 8];
        _mm512_storeu_si512(lanes.as_mut_ptr().cast(), total);
        let done = regs * 4;
        let tail = sums_avx2(&bytes[done * 16..], j + done as u64);
        let (mut h0, mut h1) = (tail[0], tail[1]);
        for pair in lanes.chunks_exact(2) {
            h0 = h0.wrapping_add(pair[0]);
            h1 = h1.wrapping_add(pair[1]);
        }
        [h0, h1]
    }

    #[inline(always)]
    unsafe fn step256(d: __m256i, s: __m256i) -> __m256i {
        let x = _mm256_xor_si256(d, s);
        let y = _mm256_xor_si256(d, _mm256_shuffle_epi32::<0b00_11_10_01>(s));
        let p = _mm256_mul_epu32(x, _mm256_srli_epi64::<32>(x));
        let q = _mm256_mul_epu32(y, _mm256_srli_epi64::<32>(y));
        let q = _mm256_shuffle_epi32::<0b01_00_11_10>(q);
        _mm256_add_epi64(_mm256_add_epi64(p, q), d)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::{key, C};
    use std::arch::wasm32::*;

    #[inline(always)]
    fn step(d: v128, s: v128) -> v128 {
        let x = v128_xor(d, s);
        let y = v128_xor(d, i32x4_shuffle::<1, 2, 3, 0>(s, s));
        // a = (x0, x2, y2, y0), b = (x1, x3, y3, y1): the low products are (x0·x1, x2·x3),
        // the high ones (y2·y3, y0·y1).
        let a = i32x4_shuffle::<0, 2, 6, 4>(x, y);
        let b = i32x4_shuffle::<1, 3, 7, 5>(x, y);
        let p = u64x2_extmul_low_u32x4(a, b);
        let q = u64x2_extmul_high_u32x4(a, b);
        i64x2_add(i64x2_add(p, q), d)
    }

    /// `bytes.len()` is a multiple of 16 and `hi32(j)` is the same for every block.
    pub(super) fn sums_simd128(bytes: &[u8], j: u64) -> [u64; 2] {
        let k = key(j);
        let mut s0 = u32x4(k[0], k[1], k[2], k[3]);
        let c = u32x4(C[0], C[1], C[2], C[3]);
        let c2 = i32x4_add(c, c);
        let mut s1 = i32x4_add(s0, c);
        let mut acc0 = i64x2_splat(0);
        let mut acc1 = i64x2_splat(0);
        let mut blocks = bytes.chunks_exact(32);
        for pair in &mut blocks {
            // SAFETY: `pair` is 32 bytes; v128_load allows unaligned addresses.
            let (d0, d1) = unsafe {
                (
                    v128_load(pair.as_ptr() as *const v128),
                    v128_load(pair.as_ptr().add(16) as *const v128),
                )
            };
            acc0 = i64x2_add(acc0, step(d0, s0));
            acc1 = i64x2_add(acc1, step(d1, s1));
            s0 = i32x4_add(s0, c2);
            s1 = i32x4_add(s1, c2);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            // SAFETY: one whole block is left.
            let d = unsafe { v128_load(rest.as_ptr() as *const v128) };
            acc0 = i64x2_add(acc0, step(d, s0));
        }
        let acc = i64x2_add(acc0, acc1);
        [
            i64x2_extract_lane::<0>(acc) as u64,
            i64x2_extract_lane::<1>(acc) as u64,
        ]
    }
}

/// Bytes of one block that a chunk saw only partly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fragment {
    index: u64,
    bytes: [u8; 16],
    /// Bit i set: byte i is known.
    mask: u16,
}

/// Hash state of a contiguous byte range `start..end` of one stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashAcc {
    start: u64,
    end: u64,
    h: [u64; 2],
    fragments: Vec<Fragment>,
}

impl HashAcc {
    /// Hash `bytes`, which sit at `offset` within their part.
    pub fn of(offset: u64, bytes: &[u8]) -> HashAcc {
        let mut acc = HashAcc {
            start: offset,
            end: offset + bytes.len() as u64,
            h: [0; 2],
            fragments: Vec::new(),
        };
        let lead = ((BLOCK - offset % BLOCK) % BLOCK).min(bytes.len() as u64) as usize;
        if lead > 0 {
            acc.add_fragment(offset, &bytes[..lead]);
        }
        let body = &bytes[lead..];
        let whole = body.len() / 16 * 16;
        let first = (offset + lead as u64) / BLOCK;
        acc.add(sums(&body[..whole], first));
        if whole < body.len() {
            acc.add_fragment((first + whole as u64 / BLOCK) * BLOCK, &body[whole..]);
        }
        acc
    }

    fn add(&mut self, m: [u64; 2]) {
        self.h[0] = self.h[0].wrapping_add(m[0]);
        self.h[1] = self.h[1].wrapping_add(m[1]);
    }

    fn add_fragment(&mut self, offset: u64, bytes: &[u8]) {
        let index = offset / BLOCK;
        let first = (offset % BLOCK) as usize;
        let mut f = Fragment {
            index,
            bytes: [0; 16],
            mask: 0,
        };
        for (i, &b) in bytes.iter().enumerate() {
            f.bytes[first + i] = b;
            f.mask |= 1 << (first + i);
        }
        self.push_fragment(f);
    }

    fn push_fragment(&mut self, f: Fragment) {
        if let Some(last) = self.fragments.last_mut() {
            if last.index == f.index {
                for i in 0..16 {
                    if f.mask & (1 << i) != 0 {
                        last.bytes[i] = f.bytes[i];
                    }
                }
                last.mask |= f.mask;
                if last.mask == 0xffff {
                    let m = mix(&last.bytes, last.index);
                    self.fragments.pop();
                    self.add(m);
                }
                return;
            }
        }
        self.fragments.push(f);
    }

    /// Append the hash of the range that follows this one. None when they do not touch:
    /// the caller then has no hash of the whole part.
    pub fn merge(mut self, next: HashAcc) -> Option<HashAcc> {
        if next.start != self.end {
            return None;
        }
        self.end = next.end;
        self.add(next.h);
        for f in next.fragments {
            self.push_fragment(f);
        }
        Some(self)
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// The digest as 32 hex digits, for a range that started at byte 0 of its part.
    pub fn finish(&self) -> Option<String> {
        if self.start != 0 {
            return None;
        }
        let mut acc = self.clone();
        // The last block may be partial: zero-padded, and the length below tells it apart
        // from real zero bytes.
        for f in &self.fragments {
            acc.add(mix(&f.bytes, f.index));
        }
        // A bijection of (A, B) for each length: equal digests mean equal sums and length.
        let [mut a, mut b] = acc.h;
        a ^= self.end.wrapping_mul(M1);
        b ^= self.end.rotate_left(32);
        a = a.wrapping_mul(M2);
        b ^= a >> 31;
        b = b.wrapping_mul(M3);
        a ^= b >> 29;
        a = a.wrapping_mul(M1);
        b ^= a >> 32;
        Some(format!("{a:016x}{b:016x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::testrng::Rng;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
            .collect()
    }

    fn chunked(b: &[u8], cuts: &[usize]) -> Option<String> {
        let mut acc: Option<HashAcc> = None;
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&b.len())) {
            let piece = HashAcc::of(prev as u64, &b[prev..c]);
            acc = Some(match acc {
                None => piece,
                Some(a) => a.merge(piece)?,
            });
            prev = c;
        }
        acc?.finish()
    }

    #[test]
    fn any_chunking_gives_the_same_hash() {
        let b = bytes(1001, 5);
        let whole = chunked(&b, &[]).unwrap();
        assert_eq!(chunked(&b, &[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap(), whole);
        assert_eq!(chunked(&b, &[34, 68, 102, 500, 501, 999]).unwrap(), whole);
        assert_eq!(chunked(&b, &[3]).unwrap(), whole);
        assert_eq!(chunked(&b, &[15, 16, 17, 31, 33, 64, 640]).unwrap(), whole);
    }

    #[test]
    fn chunks_merge_in_any_grouping() {
        // ((a b) c) against (a (b c)): the accumulators are sums, so grouping cannot matter.
        let b = bytes(3000, 9);
        let (x, y) = (1234usize, 2011usize);
        let a = HashAcc::of(0, &b[..x]);
        let bb = HashAcc::of(x as u64, &b[x..y]);
        let c = HashAcc::of(y as u64, &b[y..]);
        let left = a
            .clone()
            .merge(bb.clone())
            .unwrap()
            .merge(c.clone())
            .unwrap();
        let right = a.merge(bb.merge(c).unwrap()).unwrap();
        assert_eq!(left.finish(), right.finish());
        assert_eq!(left.finish(), chunked(&b, &[]));
    }

    #[test]
    fn different_or_moved_bytes_change_the_hash() {
        let b = bytes(512, 1);
        let h = chunked(&b, &[]).unwrap();
        let mut c = b.clone();
        c[100] ^= 1;
        assert_ne!(chunked(&c, &[]).unwrap(), h);
        let mut swapped = b.clone();
        swapped.swap(0, 8);
        assert_ne!(chunked(&swapped, &[]).unwrap(), h);
        // Whole blocks and words moved to another place.
        let mut blocks = b.clone();
        blocks[..16].copy_from_slice(&b[32..48]);
        blocks[32..48].copy_from_slice(&b[..16]);
        assert_ne!(chunked(&blocks, &[]).unwrap(), h);
        let mut words = b.clone();
        words[..8].copy_from_slice(&b[16..24]);
        words[16..24].copy_from_slice(&b[..8]);
        assert_ne!(chunked(&words, &[]).unwrap(), h);
        // A trailing zero byte is not the same content.
        let mut longer = b.clone();
        longer.push(0);
        assert_ne!(chunked(&longer, &[]).unwrap(), h);
        // Nor are zeros of another length.
        assert_ne!(chunked(&[0; 64], &[]), chunked(&[0; 80], &[]));
    }

    #[test]
    fn one_changed_word_always_changes_the_hash() {
        // Even where a word's product partners are zero: the data equal to the key.
        let mut b = vec![0u8; 64];
        for j in 0..4u64 {
            let k = key(j);
            for l in 0..4 {
                b[16 * j as usize + 4 * l..][..4].copy_from_slice(&k[l].to_le_bytes());
            }
        }
        let h = chunked(&b, &[]).unwrap();
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut c = b.clone();
                c[i] ^= bit;
                assert_ne!(chunked(&c, &[]).unwrap(), h, "byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn simd_sums_equal_the_scalar_reference() {
        let b: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for first in [
            0u64,
            1,
            7,
            1000,
            (1 << 32) - 3,
            (1 << 32) + 5,
            u64::MAX / 16 - 300,
        ] {
            for blocks in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 255] {
                let bytes = &b[..blocks * 16];
                // Through the dispatch and the hi32 split, and through each SIMD path.
                let mut want = [0u64; 2];
                for (i, blk) in bytes.chunks_exact(16).enumerate() {
                    let m = mix(blk.try_into().unwrap(), first + i as u64);
                    want = [want[0].wrapping_add(m[0]), want[1].wrapping_add(m[1])];
                }
                assert_eq!(sums(bytes, first), want, "first={first} blocks={blocks}");
                assert_eq!(sums_scalar(bytes, first), want);
                #[cfg(target_arch = "x86_64")]
                if (first & 0xffff_ffff) + blocks as u64 <= 1 << 32 {
                    // SAFETY: SSE2 is part of x86_64; AVX2 and AVX-512 only when the CPU
                    // has them.
                    unsafe {
                        assert_eq!(x86::sums_sse2(bytes, first), want);
                        if std::is_x86_feature_detected!("avx2") {
                            assert_eq!(x86::sums_avx2(bytes, first), want);
                        }
                        if std::is_x86_feature_detected!("avx512f") {
                            assert_eq!(x86::sums_avx512(bytes, first), want);
                        }
                    }
                }
            }
        }
    }

    /// Pinned digests: native and wasm builds must give these exact values (the web app
    /// compares its hashes with those in links the CLI made).
    #[test]
    fn digests_are_pinned() {
        assert_eq!(chunked(&[], &[]).unwrap(), "0".repeat(32));
        let b = bytes(1001, 5);
        assert_eq!(chunked(&b, &[]).unwrap(), PINNED_1001);
        let z = vec![0u8; 4096];
        assert_eq!(chunked(&z, &[]).unwrap(), PINNED_ZEROS_4096);
    }

    const PINNED_1001: &str = "d7f8b1d4c547aec45ad06b6ddb01370c";
    const PINNED_ZEROS_4096: &str = "90cd54c248372589dc1475e434934a5e";

    #[test]
    fn gaps_and_partial_ranges_give_no_hash() {
        let b = bytes(64, 2);
        let a = HashAcc::of(0, &b[..16]);
        assert!(a.clone().merge(HashAcc::of(24, &b[24..])).is_none());
        assert!(HashAcc::of(8, &b[8..]).finish().is_none());
    }

    /// `HashAcc` of pieces cut in the middle of every 16-byte block: each block is completed
    /// from two fragments and mixed by the scalar reference, never by the SIMD sums.
    fn scalar_hash(offset: u64, bytes: &[u8]) -> HashAcc {
        let end = offset + bytes.len() as u64;
        let mut cuts = vec![offset];
        let mut c = offset - offset % 16 + 8;
        while c < end {
            if c > offset {
                cuts.push(c);
            }
            c += 16;
        }
        cuts.push(end);
        let piece = |w: &[u64]| {
            let (a, b) = ((w[0] - offset) as usize, (w[1] - offset) as usize);
            HashAcc::of(w[0], &bytes[a..b])
        };
        let mut windows = cuts.windows(2);
        let mut acc = piece(windows.next().unwrap());
        for w in windows {
            acc = acc.merge(piece(w)).expect("adjacent pieces");
        }
        acc
    }

    /// The SIMD sums (AVX2/SSE2, simd128) of the content hash equal the scalar reference, at block indices
    /// where the key's high word changes, and with unaligned starts and ends.
    #[test]
    fn unaligned_pieces_match_the_scalar_reference() {
        let mut rng = Rng::new(0x4a54);
        let data = rng.bytes(4096 + 16);
        let firsts = [
            0u64,
            1,
            7,
            1000,
            (1 << 32) - 3,
            (1 << 32) + 5,
            u64::MAX / 16 - 300,
        ];
        for first in firsts {
            for blocks in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 255] {
                for (lead, trail) in [(0usize, 0usize), (3, 0), (0, 11), (9, 5)] {
                    let offset = first * 16 + lead as u64;
                    let bytes = &data[..(blocks * 16 + trail).saturating_sub(lead)];
                    let what = format!("first block {first}, {blocks} blocks, +{lead}/+{trail}");
                    assert_eq!(
                        HashAcc::of(offset, bytes),
                        scalar_hash(offset, bytes),
                        "{what}"
                    );
                    if offset == 0 {
                        let simd = HashAcc::of(0, bytes).finish();
                        assert_eq!(simd, scalar_hash(0, bytes).finish(), "{what}");
                    }
                }
            }
        }
        for case in 0..200 {
            let len = rng.below(data.len());
            let offset = 16 * (rng.next() % (1 << 36)) + rng.below(16) as u64;
            let bytes = &data[..len];
            assert_eq!(
                HashAcc::of(offset, bytes),
                scalar_hash(offset, bytes),
                "random case {case}: offset {offset}, {len} bytes"
            );
        }
    }
}
