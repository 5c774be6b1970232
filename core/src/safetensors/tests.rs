use super::testbuild::*;
use crate::dtype::Dtype;
use crate::encoding::Encoding;
use crate::finding::Severity;
use crate::model::Model;

fn codes(m: &Model) -> Vec<&str> {
    m.findings.iter().map(|f| f.code.as_str()).collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn healthy_file_loads_with_metadata_and_dense_tensors() {
    let file = build(
        &[
            tensor("a", Dtype::F32, &[2, 2], f32_bytes(&[1.0, -2.0, 3.5, 0.25])),
            zeros("b", Dtype::BF16, &[3]),
        ],
        &[("format", "pt")],
    );
    let config = br#"{"model_type":"llama","torch_dtype":"bfloat16"}"#.to_vec();
    let files = [
        ("m/model.safetensors", file),
        ("m/config.json", config),
        ("m/tokenizer.json", b"{}".to_vec()),
    ];
    let m = load_files(&files);
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    assert_eq!(m.files.len(), 3);
    assert_eq!(m.files[0].data_start, m.tensors[0].parts[0].offset);
    assert_eq!(
        m.meta("safetensors.__metadata__.format")
            .and_then(|v| v.as_str()),
        Some("pt")
    );
    assert_eq!(
        m.meta("config.torch_dtype").and_then(|v| v.as_str()),
        Some("bfloat16")
    );
    assert_eq!(m.tensors.len(), 2);
    assert_eq!(m.tensors[0].encoding, Encoding::Dense { dtype: Dtype::F32 });
    assert_eq!(decode_all(&files, &m, "a"), vec![1.0, -2.0, 3.5, 0.25]);
}

#[test]
fn unreadable_headers_are_load_errors_naming_the_problem() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 2, 3], "ST_TRUNCATED"),
        ((200_000_000u64).to_le_bytes().to_vec(), "exceeds"),
        (
            [(64u64).to_le_bytes().to_vec(), b"{}".to_vec()].concat(),
            "ST_TRUNCATED",
        ),
        (from_header("{\"a\":\u{1}", b""), "ST_HEADER_INVALID"),
        (
            [(4u64).to_le_bytes().to_vec(), vec![b'{', 0xff, 0xfe, b'}']].concat(),
            "UTF-8",
        ),
        (from_header("[1,2]", b""), "JSON object"),
    ];
    for (bytes, want) in cases {
        let err = try_load_files(&[("x.safetensors", bytes)]).unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{err} should mention {want}"
        );
    }
}

#[test]
fn duplicate_keys_are_detected() {
    let h = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    let m = load_files(&[("x.safetensors", from_header(h, &[1, 2, 3, 4]))]);
    assert_eq!(codes(&m), vec!["ST_DUPLICATE_KEY"]);
    assert!(m.findings[0].message.contains("bytes 0..2 and 2..4"));
    assert_eq!(m.tensors.len(), 1);
    assert_eq!(
        m.tensors[0].parts[0].offset,
        m.files[0].data_start + 2,
        "the last entry wins"
    );
    // Unique keys: no finding.
    let ok = build(
        &[zeros("a", Dtype::U8, &[2]), zeros("b", Dtype::U8, &[2])],
        &[],
    );
    assert!(load_files(&[("x.safetensors", ok)]).findings.is_empty());
}

#[test]
fn the_same_tensor_in_two_shards_is_a_duplicate() {
    let s1 = build(&[zeros("a", Dtype::U8, &[2])], &[]);
    let s2 = build(
        &[zeros("a", Dtype::U8, &[2]), zeros("b", Dtype::U8, &[2])],
        &[],
    );
    let m = load_files(&[("m-00001.safetensors", s1), ("m-00002.safetensors", s2)]);
    assert_eq!(codes(&m), vec!["ST_DUPLICATE_KEY"]);
    assert_eq!(m.tensors.len(), 2);
}

#[test]
fn gaps_overlaps_sizes_truncation_and_trailing_bytes() {
    let gap = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let m = load_files(&[("x.safetensors", from_header(gap, &[0; 6]))]);
    assert_eq!(codes(&m), vec!["ST_OFFSET_GAP"]);
    assert!(
        m.findings[0].message.contains("2 unused bytes before b"),
        "{}",
        m.findings[0].message
    );

    let overlap = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    let m = load_files(&[("x.safetensors", from_header(overlap, &[0; 4]))]);
    assert_eq!(codes(&m), vec!["ST_OFFSET_GAP"]);
    assert_eq!(m.findings[0].severity, Severity::Error);

    let size = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,6]}}"#;
    let m = load_files(&[("x.safetensors", from_header(size, &[0; 6]))]);
    assert_eq!(codes(&m), vec!["ST_SIZE_MISMATCH"]);
    assert!(
        m.findings[0]
            .message
            .contains("= 8 bytes, but its data_offsets span 6 bytes"),
        "{}",
        m.findings[0].message
    );

    let full = build(
        &[
            zeros("a", Dtype::F16, &[4, 4]),
            zeros("b", Dtype::F16, &[4]),
        ],
        &[],
    );
    let m = load_files(&[("x.safetensors", full[..full.len() - 5].to_vec())]);
    assert_eq!(codes(&m), vec!["ST_TRUNCATED"]);
    assert!(
        m.findings[0].message.contains("5 missing") && m.findings[0].message.contains(": b"),
        "{}",
        m.findings[0].message
    );

    let mut long = full.clone();
    long.extend_from_slice(&[0; 3]);
    let m = load_files(&[("x.safetensors", long)]);
    assert_eq!(codes(&m), vec!["ST_TRAILING_BYTES"]);
    assert!(m.findings[0]
        .message
        .starts_with("x.safetensors: 3 bytes after the last tensor (b"));

    assert!(load_files(&[("x.safetensors", full)]).findings.is_empty());
}

#[test]
fn invalid_entries_are_skipped_with_a_finding() {
    let h = r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    let m = load_files(&[("x.safetensors", from_header(h, &[0; 4]))]);
    assert!(codes(&m).contains(&"ST_HEADER_INVALID"));
    assert!(m.findings[0].message.contains("unknown dtype \"Q4\""));
    assert_eq!(m.tensors.len(), 1);
}

#[test]
fn index_checks_shards_and_weight_map() {
    let s1 = build(&[zeros("a", Dtype::U8, &[2])], &[]);
    let index = br#"{"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors"}}"#.to_vec();
    let m = load_files(&[
        ("d/m.safetensors.index.json", index.clone()),
        ("d/m-1.safetensors", s1.clone()),
    ]);
    assert_eq!(codes(&m), vec!["ST_SHARD_MISSING"]);
    assert!(m.findings[0]
        .message
        .contains("m-2.safetensors for 1 tensor"));
    let s2 = build(&[zeros("c", Dtype::U8, &[2])], &[]);
    let m = load_files(&[
        ("d/m.safetensors.index.json", index),
        ("d/m-1.safetensors", s1),
        ("d/m-2.safetensors", s2),
    ]);
    assert_eq!(codes(&m), vec!["ST_INDEX_MISMATCH", "ST_INDEX_MISMATCH"]);
    // An index alone has nothing to load.
    assert!(try_load_files(&[("m.safetensors.index.json", b"{}".to_vec())]).is_err());
}

#[test]
fn dense_dtypes_decode_to_f32() {
    use half::{bf16, f16};
    let f16b: Vec<u8> = [1.5f32, -0.125]
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let bf16b: Vec<u8> = [3.0f32, -1e10]
        .iter()
        .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
        .collect();
    type Case = (Dtype, Vec<u64>, Vec<u8>, Vec<f32>);
    let cases: Vec<Case> = vec![
        (Dtype::F16, vec![2], f16b, vec![1.5, -0.125]),
        (
            Dtype::BF16,
            vec![2],
            bf16b,
            vec![3.0, bf16::from_f32(-1e10).to_f32()],
        ),
        (
            Dtype::F64,
            vec![1],
            2.5f64.to_le_bytes().to_vec(),
            vec![2.5],
        ),
        (Dtype::I8, vec![2], vec![0xff, 7], vec![-1.0, 7.0]),
        (Dtype::U8, vec![1], vec![200], vec![200.0]),
        (Dtype::BOOL, vec![2], vec![0, 1], vec![0.0, 1.0]),
        (
            Dtype::I16,
            vec![1],
            (-300i16).to_le_bytes().to_vec(),
            vec![-300.0],
        ),
        (
            Dtype::U16,
            vec![1],
            60000u16.to_le_bytes().to_vec(),
            vec![60000.0],
        ),
        (
            Dtype::I32,
            vec![1],
            (-5i32).to_le_bytes().to_vec(),
            vec![-5.0],
        ),
        (Dtype::U32, vec![1], 7u32.to_le_bytes().to_vec(), vec![7.0]),
        (
            Dtype::I64,
            vec![1],
            (-9i64).to_le_bytes().to_vec(),
            vec![-9.0],
        ),
        (Dtype::U64, vec![1], 9u64.to_le_bytes().to_vec(), vec![9.0]),
        // E4M3: 0x38 = 1.0, 0xC0 = -2.0; E5M2: 0x3C = 1.0; E8M0: 127 = 1, 130 = 8.
        (Dtype::F8_E4M3, vec![2], vec![0x38, 0xc0], vec![1.0, -2.0]),
        (Dtype::F8_E5M2, vec![1], vec![0x3c], vec![1.0]),
        (Dtype::F8_E8M0, vec![2], vec![127, 130], vec![1.0, 8.0]),
        // F4: low nibble first; 0x2 = 1.0, 0xF = -6.0.
        (Dtype::F4, vec![2], vec![0xf2], vec![1.0, -6.0]),
        // F6_E2M3 codes 0b001000 (1.0) and 0b111111 (-7.5), F6_E3M2 codes 0b001100 (1.0)
        // and 0b011111 (28): LSB-first bit stream.
        (
            Dtype::F6_E2M3,
            vec![4],
            pack6(&[0b001000, 0b111111, 0, 0b000001]),
            vec![1.0, -7.5, 0.0, 0.125],
        ),
        (
            Dtype::F6_E3M2,
            vec![4],
            pack6(&[0b001100, 0b011111, 0b100000, 0]),
            vec![1.0, 28.0, -0.0, 0.0],
        ),
    ];
    for (dtype, shape, data, want) in cases {
        let files = [(
            "x.safetensors",
            build(&[tensor("t", dtype, &shape, data)], &[]),
        )];
        let m = load_files(&files);
        assert!(m.findings.is_empty(), "{dtype}: {:?}", m.findings);
        let got = decode_all(&files, &m, "t");
        crate::testutil::assert_bits_eq(dtype.name(), &got, &want);
    }
    let files = [("x.safetensors", build(&[zeros("c", Dtype::C64, &[1])], &[]))];
    let m = load_files(&files);
    assert!(crate::encoding::plan(&m.tensors[0], 0, 1).is_err());
}

fn pack6(codes: &[u8]) -> Vec<u8> {
    let mut bits: u32 = 0;
    for (i, c) in codes.iter().enumerate() {
        bits |= (*c as u32) << (6 * i);
    }
    bits.to_le_bytes()[..3].to_vec()
}

#[test]
fn a_large_shard_loads_from_its_header_only() {
    // A source that answers reads only inside the header: loading must not touch data.
    struct HeaderOnly {
        header: Vec<u8>,
        size: u64,
    }
    impl crate::source::ByteSource for HeaderOnly {
        fn len(&self) -> u64 {
            self.size
        }
        fn read_exact_at(
            &self,
            offset: u64,
            buf: &mut [u8],
        ) -> Result<(), crate::source::SourceError> {
            let end = offset as usize + buf.len();
            if end > self.header.len() {
                return Err(crate::source::SourceError::Io {
                    offset,
                    message: "data read".into(),
                });
            }
            buf.copy_from_slice(&self.header[offset as usize..end]);
            Ok(())
        }
    }
    let n: u64 = 40 << 30;
    let h = format!(
        r#"{{"w":{{"dtype":"BF16","shape":[{}],"data_offsets":[0,{n}]}}}}"#,
        n / 2
    );
    let header = from_header(&h, &[]);
    let size = header.len() as u64 + n;
    let src = HeaderOnly { header, size };
    let inputs = [crate::load::Input {
        path: "big.safetensors".into(),
        source: &src,
    }];
    let m = crate::load::load(&inputs).unwrap();
    assert!(m.findings.is_empty(), "{:?}", m.findings);
    assert_eq!(m.tensors[0].n_elements(), n / 2);
}
