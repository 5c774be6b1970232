//! Small lookup tables, as specified by ggml's `ggml/src/ggml-common.h`.

/// `ksigns_iq2xs`: a 7-bit sign index expands to 8 sign bits, the eighth chosen so that the
/// number of minus signs is even (bit 7 = parity of the low 7 bits).
pub(crate) static KSIGNS: [u8; 128] = ksigns();

const fn ksigns() -> [u8; 128] {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = i as u8 | (((i as u8).count_ones() as u8 & 1) << 7);
        i += 1;
    }
    t
}

/// For each sign byte, the f32 sign-bit mask of each of its 8 bits: XOR-ing a value with
/// `SIGN_MASKS[signs][k]` negates it where bit k is set (a table, so the flips vectorize).
pub(crate) static SIGN_MASKS: [[u32; 8]; 256] = sign_masks();

const fn sign_masks() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut s = 0;
    while s < 256 {
        let mut k = 0;
        while k < 8 {
            t[s][k] = (((s >> k) & 1) as u32) << 31;
            k += 1;
        }
        s += 1;
    }
    t
}

/// `kvalues_iq4nl`: the 16 non-linear levels of IQ4_NL and IQ4_XS.
pub(crate) static KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// `kvalues_mxfp4`: E2M1 values doubled (so they are integers); the block scale is halved
/// to compensate. Code 8 (E2M1 -0) is integer 0, so it decodes to +0.0 as ggml does.
pub(crate) static KVALUES_FP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ksigns_matches_ggml_common_h() {
        // First and last rows of ksigns_iq2xs in ggml-common.h.
        assert_eq!(
            KSIGNS[..16],
            [0, 129, 130, 3, 132, 5, 6, 135, 136, 9, 10, 139, 12, 141, 142, 15]
        );
        assert_eq!(
            KSIGNS[112..],
            [240, 113, 114, 243, 116, 245, 246, 119, 120, 249, 250, 123, 252, 125, 126, 255]
        );
        assert!(KSIGNS.iter().all(|s| s.count_ones() % 2 == 0));
    }

    fn bytes_in(grid: &[u64], allowed: &[u8]) -> bool {
        grid.iter()
            .all(|r| r.to_le_bytes().iter().all(|b| allowed.contains(b)))
    }

    fn bytes_in_u32(grid: &[u32], allowed: &[u8]) -> bool {
        grid.iter()
            .all(|r| r.to_le_bytes().iter().all(|b| allowed.contains(b)))
    }

    fn distinct(grid: &[u64]) -> bool {
        grid.iter().collect::<std::collections::BTreeSet<_>>().len() == grid.len()
    }

    /// Spot values copied from ggml-common.h, plus the value sets every entry must keep.
    #[test]
    fn grids_match_ggml_common_h() {
        use super::super::grids::*;
        let widen = |g: &[u32]| g.iter().map(|&v| v as u64).collect::<Vec<_>>();
        assert_eq!(
            IQ2XXS_GRID[..3],
            [0x0808080808080808, 0x080808080808082b, 0x0808080808081919]
        );
        assert_eq!(IQ2XXS_GRID[255], 0x2b2b2b1908081908);
        assert_eq!(
            IQ2XS_GRID[508..],
            [
                0x2b2b2b2b082b2b08,
                0x2b2b2b2b082b2b2b,
                0x2b2b2b2b2b190819,
                0x2b2b2b2b2b2b2b2b
            ]
        );
        assert_eq!(
            IQ2S_GRID[12..16],
            [
                0x08080808082b2b08,
                0x0808080819080819,
                0x0808080819081908,
                0x080808081908192b
            ]
        );
        assert_eq!(
            IQ3XXS_GRID[..6],
            [0x04040404, 0x04040414, 0x04040424, 0x04040c0c, 0x04040c1c, 0x04040c3e]
        );
        assert_eq!(IQ3XXS_GRID[254..], [0x3e2c1424, 0x3e341c04]);
        assert_eq!(
            IQ3S_GRID[..5],
            [0x01010101, 0x01010103, 0x01010105, 0x0101010b, 0x0101010f]
        );
        assert_eq!(IQ3S_GRID[509..], [0x0f0d0105, 0x0f0d0703, 0x0f0f0101]);
        assert_eq!(
            IQ1S_GRID[..4],
            [
                0xffffffffffffffff,
                0xffffffffffffff01,
                0xffffffffffff0000,
                0xffffffffffff01ff
            ]
        );

        for g in [&IQ2XXS_GRID[..], &IQ2XS_GRID[..], &IQ2S_GRID[..]] {
            assert!(bytes_in(g, &[0x08, 0x19, 0x2b]) && distinct(g));
        }
        let iq3xxs_levels = [0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3e];
        assert!(bytes_in_u32(&IQ3XXS_GRID, &iq3xxs_levels));
        assert!(bytes_in_u32(&IQ3S_GRID, &[1, 3, 5, 7, 9, 11, 13, 15]));
        assert!(distinct(&widen(&IQ3XXS_GRID)) && distinct(&widen(&IQ3S_GRID)));
        assert!(bytes_in(&IQ1S_GRID, &[0xff, 0, 1]) && distinct(&IQ1S_GRID));
    }
}
