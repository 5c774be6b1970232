//! A content hash of a tensor's stored bytes that any chunking can compute in parallel.
//!
//! Each aligned 8-byte word `k` of the part contributes `mix(word, k)` to a wrapping u128 sum.
//! Sums commute, so chunks can be hashed on any thread and merged in any grouping; the
//! position enters every term, so moving bytes around changes the hash. A word cut by a
//! chunk boundary is kept as a fragment until its neighbour arrives. This is not a
//! cryptographic hash: it finds accidental copies (duplicate tensors), 128 bits wide.

/// Mixing constants (fractional digits of pi, e and the golden ratio).
const K1: u64 = 0x243f_6a88_85a3_08d3;
const K2: u64 = 0xb7e1_5162_8aed_2a6b;
const K4: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// One 64x64->128 multiply per word; the products are summed as u128 (add + adc).
#[inline(always)]
fn mix(word: u64, k: u64) -> u128 {
    ((word ^ K1) as u128) * ((k.wrapping_mul(K4) ^ K2) as u128 | 1)
}

/// Bytes of one word that a chunk saw only partly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fragment {
    index: u64,
    bytes: [u8; 8],
    /// Bit i set: byte i is known.
    mask: u8,
}

/// Hash state of a contiguous byte range `start..end` of one stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashAcc {
    start: u64,
    end: u64,
    h: u128,
    fragments: Vec<Fragment>,
}

impl HashAcc {
    /// Hash `bytes`, which sit at `offset` within their part.
    pub fn of(offset: u64, bytes: &[u8]) -> HashAcc {
        let mut acc = HashAcc {
            start: offset,
            end: offset + bytes.len() as u64,
            h: 0,
            fragments: Vec::new(),
        };
        let lead = ((8 - offset % 8) % 8).min(bytes.len() as u64) as usize;
        if lead > 0 {
            acc.add_fragment(offset, &bytes[..lead]);
        }
        let body = &bytes[lead..];
        let mut k = (offset + lead as u64) / 8;
        let words = body.chunks_exact(8);
        let rest = words.remainder();
        let mut h = 0u128;
        for w in words {
            h = h.wrapping_add(mix(u64::from_le_bytes(w.try_into().expect("8 bytes")), k));
            k += 1;
        }
        acc.h = h;
        if !rest.is_empty() {
            acc.add_fragment(k * 8, rest);
        }
        acc
    }

    fn add_fragment(&mut self, offset: u64, bytes: &[u8]) {
        let index = offset / 8;
        let first = (offset % 8) as usize;
        let mut f = Fragment {
            index,
            bytes: [0; 8],
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
                for i in 0..8 {
                    if f.mask & (1 << i) != 0 {
                        last.bytes[i] = f.bytes[i];
                    }
                }
                last.mask |= f.mask;
                if last.mask == 0xff {
                    self.h = self
                        .h
                        .wrapping_add(mix(u64::from_le_bytes(last.bytes), last.index));
                    self.fragments.pop();
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
        self.h = self.h.wrapping_add(next.h);
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
        let mut h = self.h;
        // The last word may be partial: zero-padded, and the length below tells it apart
        // from real zero bytes.
        for f in &self.fragments {
            h = h.wrapping_add(mix(u64::from_le_bytes(f.bytes), f.index));
        }
        let (a, b) = (h as u64, (h >> 64) as u64);
        let a = fold_mul(a ^ self.end, K4) ^ a;
        let b = fold_mul(b ^ self.end.rotate_left(32), K1) ^ b;
        Some(format!("{a:016x}{b:016x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A trailing zero byte is not the same content.
        let mut longer = b.clone();
        longer.push(0);
        assert_ne!(chunked(&longer, &[]).unwrap(), h);
    }

    #[test]
    fn gaps_and_partial_ranges_give_no_hash() {
        let b = bytes(64, 2);
        let a = HashAcc::of(0, &b[..16]);
        assert!(a.clone().merge(HashAcc::of(24, &b[24..])).is_none());
        assert!(HashAcc::of(8, &b[8..]).finish().is_none());
    }
}
