//! No input may make the GGUF reader panic, hang, or accept a cut-off header or file.

use quantdoc_tests::{fixtures_or_skip, MemFiles};

/// Cut every fixture at every byte of its header: before the end of the tensor infos the
/// reader must refuse with an error naming a field and an offset; after it, the file loads
/// and the layout rules must report the missing data as an error.
#[test]
fn truncation_at_every_header_byte() {
    let Some(dir) = fixtures_or_skip("truncation_at_every_header_byte") else {
        return;
    };
    for name in ["legacy", "kquants", "iquants", "ternary_fp4", "plain"] {
        let bytes = std::fs::read(dir.join(format!("gguf/{name}.gguf"))).unwrap();
        let whole = MemFiles::from_bytes("f.gguf", bytes.clone())
            .load()
            .unwrap();
        let data_start = whole.files[0].data_start as usize;
        // gguf-py pads after the last tensor too; cutting only padding loses nothing.
        let data_end = whole
            .tensors
            .iter()
            .map(|t| (t.primary().offset + t.primary().nbytes) as usize)
            .max()
            .unwrap();
        for cut in 0..data_end {
            let files = MemFiles::from_bytes("cut.gguf", bytes[..cut].to_vec());
            match files.load() {
                Err(e) => {
                    assert!(e.offset.is_some(), "{name} cut at {cut}: {e}");
                    assert!(!e.field.is_empty());
                    assert!(
                        cut < data_start,
                        "{name} cut at {cut} (data at {data_start}): {e}"
                    );
                }
                Ok(m) => {
                    assert!(
                        cut + 32 > data_start,
                        "{name} cut at {cut} parsed a partial header"
                    );
                    assert!(
                        m.findings.iter().any(|f| f.code == "GGUF_TRUNCATED"
                            && f.severity == quantdoc_core::finding::Severity::Error),
                        "{name} cut at {cut}: {:?}",
                        m.findings
                    );
                }
            }
        }
    }
}

/// Flip every byte of a header to several values: any outcome but a panic is fine.
#[test]
fn corrupted_header_bytes_never_panic() {
    let Some(dir) = fixtures_or_skip("corrupted_header_bytes_never_panic") else {
        return;
    };
    let bytes = std::fs::read(dir.join("gguf/legacy.gguf")).unwrap();
    let data_start = MemFiles::from_bytes("f.gguf", bytes.clone())
        .load()
        .unwrap()
        .files[0]
        .data_start as usize;
    for i in 0..data_start {
        for v in [0x00u8, 0xff, 0x7f, 0x80, bytes[i] ^ 0x01] {
            let mut b = bytes.clone();
            b[i] = v;
            let files = MemFiles::from_bytes("x.gguf", b);
            if let Ok(m) = files.load() {
                // A loadable result must still be decodable or refuse cleanly.
                for t in &m.tensors {
                    let _ = quantdoc_core::encoding::dequantize_tensor(&m, t, &files.sources());
                }
            }
        }
    }
}
