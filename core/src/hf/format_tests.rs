//! Formats without real-library fixtures (FP8, GPTQ, AWQ) and edge cases of the others.
//! The vectors are packed here from the formats' public definitions (AutoGPTQ's and
//! AutoAWQ's pack functions, DeepSeek-V3's block FP8, bitsandbytes' quant state), and the
//! expected values come from the plain formula, not from the decoder under test.

use half::{bf16, f16};

use crate::dtype::Dtype;
use crate::encoding::{read_and_decode, Encoding, Fp8Scale};
use crate::kernels::fp::e4m3fn_to_f32;
use crate::model::Model;
use crate::safetensors::testbuild::*;
use crate::source::SliceSource;
use crate::testutil::assert_bits_eq;

/// A small deterministic generator (xorshift) for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// LSB-first bit stream of `bits`-wide codes, padded to whole u32 words.
fn pack_stream(codes: &[u32], bits: u32) -> Vec<u32> {
    let total = codes.len() as u64 * bits as u64;
    let mut words = vec![0u32; total.div_ceil(32) as usize];
    for (i, &c) in codes.iter().enumerate() {
        let bit = i as u64 * bits as u64;
        let (w, o) = ((bit / 32) as usize, bit % 32);
        words[w] |= c << o;
        if o + bits as u64 > 32 {
            words[w + 1] |= c >> (32 - o);
        }
    }
    words
}

fn words_bytes(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect()
}

/// Decode whole, and row by row, and check both against `want`.
fn check_decode(files: &[(&str, Vec<u8>)], m: &Model, name: &str, want: &[f32]) {
    let got = decode_all(files, m, name);
    assert_bits_eq(name, &got, want);
    let sources: Vec<SliceSource<&[u8]>> = files
        .iter()
        .map(|(_, b)| SliceSource::new(b.as_slice()))
        .collect();
    let refs: Vec<&SliceSource<&[u8]>> = sources.iter().collect();
    let t = m.tensor(name).unwrap();
    let g = crate::encoding::granule(t).unwrap() as usize;
    let mut rows = vec![0f32; want.len()];
    for (i, chunk) in rows.chunks_mut(g).enumerate() {
        read_and_decode(m, t, &refs, (i * g) as u64, chunk).unwrap();
    }
    assert_bits_eq(&format!("{name} by granule"), &rows, want);
}

fn gptq_case(bits: u32, act_order: bool, with_config: bool) {
    let (n, k, gs) = (32u64, 64u64, 16u64);
    let groups = k / gs;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ bits as u64);
    let max = 1u64 << bits;
    let q: Vec<Vec<u32>> = (0..k)
        .map(|_| (0..n).map(|_| rng.below(max) as u32).collect())
        .collect();
    // Stored zeros are zero point − 1 (AutoGPTQ v1); keep zero points in 1..max.
    let zp: Vec<Vec<u32>> = (0..groups)
        .map(|_| (0..n).map(|_| 1 + rng.below(max - 1) as u32).collect())
        .collect();
    let scales: Vec<Vec<f32>> = (0..groups)
        .map(|_| {
            (0..n)
                .map(|_| f16::from_f32((rng.below(2000) as f32 - 1000.0) / 37_000.0).to_f32())
                .collect()
        })
        .collect();
    let g_idx: Vec<u32> = (0..k)
        .map(|i| {
            if act_order {
                ((i * 37 + 11) % k / gs) as u32
            } else {
                (i / gs) as u32
            }
        })
        .collect();
    // qweight [K·bits/32, N]: column n is the bit stream of q[0..K][n].
    let rows = (k * bits as u64 / 32) as usize;
    let mut qweight = vec![0u32; rows * n as usize];
    for col in 0..n as usize {
        let stream = pack_stream(
            &(0..k as usize).map(|i| q[i][col]).collect::<Vec<_>>(),
            bits,
        );
        for (r, w) in stream.iter().enumerate() {
            qweight[r * n as usize + col] = *w;
        }
    }
    let qzeros: Vec<u32> = (0..groups as usize)
        .flat_map(|g| pack_stream(&zp[g].iter().map(|z| z - 1).collect::<Vec<_>>(), bits))
        .collect();
    let zw = (n * bits as u64 / 32) as usize;
    assert_eq!(qzeros.len(), groups as usize * zw);
    let mut tensors = vec![
        tensor(
            "l.qweight",
            Dtype::I32,
            &[rows as u64, n],
            words_bytes(&qweight),
        ),
        tensor(
            "l.qzeros",
            Dtype::I32,
            &[groups, zw as u64],
            words_bytes(&qzeros),
        ),
        tensor(
            "l.scales",
            Dtype::F16,
            &[groups, n],
            f16_bytes(&scales.concat()),
        ),
    ];
    tensors.push(tensor(
        "l.g_idx",
        Dtype::I32,
        &[k],
        g_idx.iter().flat_map(|g| g.to_le_bytes()).collect(),
    ));
    let mut files = vec![("d/model.safetensors", build(&tensors, &[]))];
    if with_config {
        let cfg = format!(
            r#"{{"bits":{bits},"group_size":{gs},"desc_act":{act_order},"quant_method":"gptq"}}"#
        );
        files.push(("d/quantize_config.json", cfg.into_bytes()));
    }
    let m = load_files(&files);
    let t = m
        .tensor("l.weight")
        .unwrap_or_else(|| panic!("{bits}-bit not grouped: {:?}", m.tensors));
    assert_eq!(t.shape, vec![n, k]);
    assert!(
        matches!(t.encoding, Encoding::Gptq { bits: b, act_order: a, .. } if b == bits && a == (act_order && with_config))
    );
    let mut want = Vec::new();
    for col in 0..n as usize {
        for i in 0..k as usize {
            let g = g_idx[i] as usize;
            let v = scales[g][col] * (q[i][col] as f32 - zp[g][col] as f32);
            want.push(f16::from_f32(v).to_f32());
        }
    }
    check_decode(&files, &m, "l.weight", &want);
}

#[test]
fn gptq_all_widths_with_and_without_act_order() {
    for bits in [2, 3, 4, 8] {
        gptq_case(bits, false, true);
        gptq_case(bits, true, true);
        gptq_case(bits, true, false);
    }
}

#[test]
fn awq_gemm_packing_order() {
    let (n, k, gs) = (16u64, 64u64, 32u64);
    let groups = k / gs;
    let order = [0usize, 2, 4, 6, 1, 3, 5, 7];
    let mut rng = Rng(12345);
    let q: Vec<Vec<u32>> = (0..k)
        .map(|_| (0..n).map(|_| rng.below(16) as u32).collect())
        .collect();
    let z: Vec<Vec<u32>> = (0..groups)
        .map(|_| (0..n).map(|_| rng.below(16) as u32).collect())
        .collect();
    let s: Vec<f32> = (0..groups * n)
        .map(|_| f16::from_f32(rng.below(1000) as f32 / 9000.0).to_f32())
        .collect();
    // AutoAWQ: qweight[:, col] |= intweight[:, col*8 + order[i]] << (4*i).
    let pack = |row: &[u32]| -> Vec<u32> {
        (0..row.len() / 8)
            .map(|c| (0..8).fold(0u32, |w, i| w | row[c * 8 + order[i]] << (4 * i)))
            .collect()
    };
    let qweight: Vec<u32> = q.iter().flat_map(|r| pack(r)).collect();
    let qzeros: Vec<u32> = z.iter().flat_map(|r| pack(r)).collect();
    let files = vec![
        (
            "d/model.safetensors",
            build(
                &[
                    tensor("l.qweight", Dtype::I32, &[k, n / 8], words_bytes(&qweight)),
                    tensor("l.qzeros", Dtype::I32, &[groups, n / 8], words_bytes(&qzeros)),
                    tensor("l.scales", Dtype::F16, &[groups, n], f16_bytes(&s)),
                ],
                &[],
            ),
        ),
        ("d/config.json", br#"{"quantization_config":{"quant_method":"awq","bits":4,"group_size":32,"version":"gemm"}}"#.to_vec()),
    ];
    let m = load_files(&files);
    assert_eq!(
        m.tensor("l.weight").unwrap().encoding,
        Encoding::Awq {
            bits: 4,
            group_size: 32,
            out_dtype: Dtype::F16
        }
    );
    let mut want = Vec::new();
    for col in 0..n as usize {
        for (i, qrow) in q.iter().enumerate() {
            let g = i / gs as usize;
            want.push(
                f16::from_f32((qrow[col] as f32 - z[g][col] as f32) * s[g * n as usize + col])
                    .to_f32(),
            );
        }
    }
    check_decode(&files, &m, "l.weight", &want);
}

#[test]
fn fp8_block_per_tensor_and_per_channel_scales() {
    let (r, c) = (5u64, 7u64);
    let mut rng = Rng(777);
    let w: Vec<u8> = (0..r * c)
        .map(|_| loop {
            let b = rng.below(256) as u8;
            if b & 0x7f != 0x7f {
                break b;
            }
        })
        .collect();
    // Blocks of 2×3 over a 5×7 matrix: 3×3 scales, the last ones partial.
    let s: Vec<f32> = (0..9).map(|i| 0.5 + i as f32 * 0.25).collect();
    let files = vec![
        (
            "d/model.safetensors",
            build(
                &[
                    tensor("a.weight", Dtype::F8_E4M3, &[r, c], w.clone()),
                    tensor("a.weight_scale_inv", Dtype::F32, &[3, 3], s.iter().flat_map(|x| x.to_le_bytes()).collect()),
                    tensor("b.weight", Dtype::F8_E4M3, &[r, c], w.clone()),
                    tensor("b.weight_scale", Dtype::F32, &[], 0.75f32.to_le_bytes().to_vec()),
                    tensor("c.weight", Dtype::F8_E4M3, &[r, c], w.clone()),
                    tensor("c.weight_scale", Dtype::BF16, &[r, 1], (0..r).flat_map(|i| bf16::from_f32(i as f32 + 1.0).to_le_bytes()).collect()),
                ],
                &[],
            ),
        ),
        ("d/config.json", br#"{"torch_dtype":"bfloat16","quantization_config":{"quant_method":"fp8","weight_block_size":[2,3]}}"#.to_vec()),
    ];
    let m = load_files(&files);
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    assert!(matches!(
        &m.tensor("a.weight").unwrap().encoding,
        Encoding::Fp8 {
            scale: Fp8Scale::Block { block: [2, 3] },
            ..
        }
    ));
    assert!(matches!(
        &m.tensor("b.weight").unwrap().encoding,
        Encoding::Fp8 {
            scale: Fp8Scale::PerTensor,
            ..
        }
    ));
    assert!(matches!(
        &m.tensor("c.weight").unwrap().encoding,
        Encoding::Fp8 {
            scale: Fp8Scale::PerChannel,
            ..
        }
    ));
    let at = |i: u64| e4m3fn_to_f32(w[i as usize]);
    let round = |x: f32| bf16::from_f32(x).to_f32();
    let want_a: Vec<f32> = (0..r * c)
        .map(|i| round(at(i) * s[((i / c) / 2 * 3 + (i % c) / 3) as usize]))
        .collect();
    let want_b: Vec<f32> = (0..r * c).map(|i| round(at(i) * 0.75)).collect();
    let want_c: Vec<f32> = (0..r * c)
        .map(|i| round(at(i) * ((i / c) as f32 + 1.0)))
        .collect();
    check_decode(&files, &m, "a.weight", &want_a);
    check_decode(&files, &m, "b.weight", &want_b);
    check_decode(&files, &m, "c.weight", &want_c);
}

#[test]
fn fp8_scales_that_do_not_tile_the_weight_are_reported() {
    let files = [(
        "m.safetensors",
        build(
            &[
                zeros("a.weight", Dtype::F8_E4M3, &[256, 256]),
                zeros("a.weight_scale_inv", Dtype::F32, &[3, 2]),
            ],
            &[],
        ),
    )];
    let m = load_files(&files);
    assert_eq!(
        m.findings
            .iter()
            .map(|f| f.code.as_str())
            .collect::<Vec<_>>(),
        vec!["FP8_SCALE_MISMATCH"]
    );
    assert!(matches!(
        m.tensor("a.weight").unwrap().encoding,
        Encoding::Dense { .. }
    ));
}

/// bitsandbytes 4-bit with a block size the fixtures do not cover, an odd element count
/// and a partial last block, double-quantized with a partial nested block.
#[test]
fn bnb4_odd_sizes_and_nested_blocks() {
    let (rows, cols, bs, nbs) = (3u64, 43u64, 32u64, 2u64);
    let n = rows * cols; // 129: odd, 5 blocks, the last holding 1 element.
    let blocks = n.div_ceil(bs);
    let mut rng = Rng(4242);
    let codes: Vec<u8> = (0..n).map(|_| rng.below(16) as u8).collect();
    let mut packed = vec![0u8; n.div_ceil(2) as usize];
    for (i, c) in codes.iter().enumerate() {
        packed[i / 2] |= if i % 2 == 0 { c << 4 } else { *c };
    }
    let qmap: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) / 7.5).collect();
    let nested_map: Vec<f32> = (0..256).map(|i| i as f32 / 255.0).collect();
    let nested_absmax = [0.5f32, 0.25, 2.0];
    let absmax_codes: Vec<u8> = (0..blocks).map(|_| rng.below(256) as u8).collect();
    let offset = 0.0625f32;
    let state = format!(
        r#"{{"quant_type":"nf4","blocksize":{bs},"dtype":"bfloat16","shape":[{rows},{cols}],"nested_blocksize":{nbs},"nested_dtype":"float32","nested_offset":{offset}}}"#
    );
    let f32b = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let files = [(
        "m.safetensors",
        build(
            &[
                tensor("w", Dtype::U8, &[n.div_ceil(2), 1], packed),
                tensor("w.absmax", Dtype::U8, &[blocks], absmax_codes.clone()),
                tensor("w.quant_map", Dtype::F32, &[16], f32b(&qmap)),
                tensor("w.nested_absmax", Dtype::F32, &[3], f32b(&nested_absmax)),
                tensor("w.nested_quant_map", Dtype::F32, &[256], f32b(&nested_map)),
                tensor(
                    "w.quant_state.bitsandbytes__nf4",
                    Dtype::U8,
                    &[state.len() as u64],
                    state.into_bytes(),
                ),
            ],
            &[],
        ),
    )];
    let m = load_files(&files);
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    assert_eq!(m.tensor("w").unwrap().shape, vec![rows, cols]);
    let want: Vec<f32> = (0..n as usize)
        .map(|i| {
            let b = i / bs as usize;
            let absmax =
                nested_map[absmax_codes[b] as usize] * nested_absmax[b / nbs as usize] + offset;
            bf16::from_f32(qmap[codes[i] as usize] * absmax).to_f32()
        })
        .collect();
    check_decode(&files, &m, "w", &want);
}

/// MLX without a quantization block in config.json: parameters come from the shapes,
/// preferring MLX's default group size 64 where several fit, and say so.
#[test]
fn mlx_parameters_inferred_from_shapes() {
    let files = [(
        "m.safetensors",
        build(
            &[
                zeros("l.weight", Dtype::U32, &[4, 8]),
                zeros("l.scales", Dtype::F16, &[4, 1]),
                zeros("l.biases", Dtype::F16, &[4, 1]),
            ],
            &[],
        ),
    )];
    let m = load_files(&files);
    assert_eq!(
        m.tensor("l.weight").unwrap().encoding,
        Encoding::MlxAffine {
            bits: 4,
            group_size: 64,
            out_dtype: Dtype::F16
        }
    );
    assert_eq!(m.findings.len(), 1);
    assert_eq!(m.findings[0].code, "MLX_PARAMS_INFERRED");
    assert!(
        m.findings[0].message.contains("affine 8-bit g32"),
        "{}",
        m.findings[0].message
    );
    // Declared in config: no inference finding.
    let cfg = br#"{"quantization":{"bits":4,"group_size":64}}"#.to_vec();
    let m = load_files(&[files[0].clone(), ("config.json", cfg)]);
    assert!(m.findings.is_empty());
}

#[test]
fn decode_rejects_wrong_inputs_instead_of_panicking() {
    let files = [(
        "m.safetensors",
        build(
            &[
                zeros("l.weight", Dtype::U32, &[4, 8]),
                zeros("l.scales", Dtype::F16, &[4, 1]),
                zeros("l.biases", Dtype::F16, &[4, 1]),
            ],
            &[],
        ),
    )];
    let m = load_files(&files);
    let t = m.tensor("l.weight").unwrap();
    let mut out = vec![0f32; 64];
    assert!(crate::encoding::decode(t, 0, &[&[0u8; 3]], &mut out).is_err());
    assert!(crate::encoding::decode(t, 0, &[&[0u8; 31], &[0u8; 2], &[0u8; 2]], &mut out).is_err());
    assert!(crate::encoding::plan(t, 1, 63).is_err(), "unaligned chunk");
}

#[test]
fn gptq_v2_and_awq_gemv_are_left_undecoded() {
    let t = [
        zeros("l.qweight", Dtype::I32, &[8, 32]),
        zeros("l.qzeros", Dtype::I32, &[4, 4]),
        zeros("l.scales", Dtype::F16, &[4, 32]),
        zeros("l.g_idx", Dtype::I32, &[64]),
    ];
    let v1 = br#"{"bits":4,"group_size":16,"checkpoint_format":"gptq"}"#.to_vec();
    let m = load_files(&[
        ("m.safetensors", build(&t, &[])),
        ("quantize_config.json", v1),
    ]);
    assert!(matches!(
        m.tensor("l.weight").unwrap().encoding,
        Encoding::Gptq { bits: 4, .. }
    ));
    let v2 = br#"{"bits":4,"group_size":16,"checkpoint_format":"gptq_v2"}"#.to_vec();
    let m = load_files(&[
        ("m.safetensors", build(&t, &[])),
        ("quantize_config.json", v2),
    ]);
    assert!(m.tensor("l.weight").is_none());
    assert_eq!(m.findings[0].code, "QUANT_FORMAT_UNSUPPORTED");
}
