//! Layout rules for a GGUF file: every tensor's bytes must exist, be aligned, not overlap,
//! and sit exactly where llama.cpp's loader expects them.

use super::reader::{Header, TensorInfo};
use crate::finding::{grouped, Finding};
use crate::ggml::types::{removed_type, GgmlType};

/// What one tensor needs, as far as the header can tell.
#[derive(Debug, Clone)]
pub struct TensorLayout<'a> {
    pub info: &'a TensorInfo,
    pub ty: Option<GgmlType>,
    /// Bytes the tensor's type and shape require (None: unknown type, or not whole blocks).
    pub expected: Option<u64>,
}

pub fn tensor_layouts(h: &Header) -> Vec<TensorLayout<'_>> {
    h.tensors
        .iter()
        .map(|info| {
            let ty = GgmlType::from_id(info.type_id);
            let expected = match (ty, info.n_elements) {
                (Some(t), Some(n)) if row_ok(t, info) => t.bytes_for(n),
                _ => None,
            };
            TensorLayout { info, ty, expected }
        })
        .collect()
}

fn row_ok(t: GgmlType, info: &TensorInfo) -> bool {
    info.ne.first().copied().unwrap_or(1) % t.block_size() == 0
}

fn pad(x: u64, align: u64) -> u64 {
    x.checked_next_multiple_of(align).unwrap_or(u64::MAX)
}

/// All layout findings of one GGUF file of `file_size` bytes.
pub fn check(h: &Header, file_size: u64, file_label: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let layouts = tensor_layouts(h);
    per_tensor_checks(h, &layouts, &mut out);
    duplicate_names(h, &mut out);
    duplicate_keys(h, &mut out);
    running_sum_check(h, &layouts, &mut out);
    extent_checks(h, &layouts, file_size, file_label, &mut out);
    out
}

fn per_tensor_checks(h: &Header, layouts: &[TensorLayout<'_>], out: &mut Vec<Finding>) {
    for l in layouts {
        let name = l.info.name.as_str();
        match l.ty {
            None => {
                let (what, why) = match removed_type(l.info.type_id) {
                    Some((n, why)) => (
                        format!("removed type {} ({n})", l.info.type_id),
                        why.to_string(),
                    ),
                    None => (
                        format!("unknown type id {}", l.info.type_id),
                        "no ggml version defines it".to_string(),
                    ),
                };
                out.push(Finding::error(
                    "GGUF_UNKNOWN_TYPE",
                    Some(name),
                    format!(
                        "tensor {name} (tensor info at offset {}) uses {what}: {why}",
                        l.info.info_offset
                    ),
                    "llama.cpp refuses the file (\"tensor has invalid ggml type\"). Re-convert the model with a current llama.cpp, or requantize this tensor to a current type",
                ));
            }
            Some(t) => {
                let row = l.info.ne.first().copied().unwrap_or(1);
                if !row_ok(t, l.info) {
                    out.push(Finding::error(
                        "GGUF_ROW_NOT_BLOCK_MULTIPLE",
                        Some(name),
                        format!(
                            "tensor {name} is {t} with {row} elements per row (ne[0]), not a multiple of the {t} block size {}",
                            t.block_size()
                        ),
                        format!(
                            "ggml cannot store such rows in {t}; llama.cpp refuses the file. Store this tensor in a type whose block size divides {row} (e.g. F16, or Q8_0 when {row} is a multiple of 32)"
                        ),
                    ));
                }
            }
        }
        if l.info.rel_offset % h.alignment != 0 {
            out.push(Finding::error(
                "GGUF_TENSOR_MISALIGNED",
                Some(name),
                format!(
                    "tensor {name} starts at data offset {} (file offset {}), which is not a multiple of the alignment {} ({} bytes past the previous boundary)",
                    grouped(l.info.rel_offset),
                    grouped(h.data_start.saturating_add(l.info.rel_offset)),
                    h.alignment,
                    l.info.rel_offset % h.alignment
                ),
                "llama.cpp requires every tensor offset to be a multiple of general.alignment. `quantdoc repair FILE -o OUT` re-lays the tensors with correct alignment",
            ));
        }
    }
}

fn duplicate_names(h: &Header, out: &mut Vec<Finding>) {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, t) in h.tensors.iter().enumerate() {
        if let Some(&first) = seen.get(t.name.as_str()) {
            out.push(Finding::error(
                "GGUF_DUPLICATE_TENSOR",
                Some(&t.name),
                format!(
                    "tensor name {} appears twice: tensor infos {first} and {i} (offsets {} and {})",
                    t.name, h.tensors[first].info_offset, t.info_offset
                ),
                "llama.cpp refuses the file (\"duplicate tensor name\"). Rename or drop one of them; if their data is identical, `quantdoc repair` drops the copy",
            ));
        } else {
            seen.insert(&t.name, i);
        }
    }
}

fn duplicate_keys(h: &Header, out: &mut Vec<Finding>) {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, e) in h.metadata.iter().enumerate() {
        if let Some(&first) = seen.get(e.key.as_str()) {
            out.push(Finding::error(
                "GGUF_DUPLICATE_KEY",
                None,
                format!(
                    "metadata key {} appears twice: entries {first} and {i} (offsets {} and {})",
                    e.key,
                    h.metadata[first].offset.unwrap_or(0),
                    e.offset.unwrap_or(0)
                ),
                "llama.cpp refuses the file (\"duplicate key\"). Remove one with `quantdoc meta IN -o OUT --delete KEY` and set the right value again",
            ));
        } else {
            seen.insert(&e.key, i);
        }
    }
}

/// llama.cpp's loader walks the tensor infos in order and requires each offset to equal the
/// running sum of the previous tensors' sizes padded to the alignment.
fn running_sum_check(h: &Header, layouts: &[TensorLayout<'_>], out: &mut Vec<Finding>) {
    let mut expected_offset = 0u64;
    for l in layouts {
        let Some(size) = l.expected else { return };
        let off = l.info.rel_offset;
        if off > expected_offset {
            out.push(Finding::error(
                "GGUF_TENSOR_GAP",
                Some(&l.info.name),
                format!(
                    "tensor {} starts at data offset {} but the tensors before it end at {} (padded): a gap of {} bytes",
                    l.info.name,
                    grouped(off),
                    grouped(expected_offset),
                    grouped(off - expected_offset)
                ),
                format!(
                    "llama.cpp refuses the file with \"gguf_init_from_file_impl: tensor '{}' has offset {off}, expected {expected_offset}\" and \"failed to read tensor data\". `quantdoc repair FILE -o OUT` re-lays the tensors densely",
                    l.info.name
                ),
            ));
            return;
        }
        if off < expected_offset {
            // Overlaps and size mismatches are reported by the extent checks, which can say
            // more; note only llama.cpp's reaction here when nothing else will.
            return;
        }
        expected_offset = off.saturating_add(pad(size, h.alignment));
    }
}

fn extent_checks(
    h: &Header,
    layouts: &[TensorLayout<'_>],
    file_size: u64,
    file_label: &str,
    out: &mut Vec<Finding>,
) {
    let data_size = file_size.saturating_sub(h.data_start);
    let mut order: Vec<&TensorLayout<'_>> =
        layouts.iter().filter(|l| l.expected.is_some()).collect();
    order.sort_by_key(|l| (l.info.rel_offset, l.info.info_offset));

    // Where each tensor's data really ends: its type's size, unless the bytes it owns show
    // a consistent other block size (then the header's size is not what the writer used).
    let owned_end = |i: usize| -> u64 {
        let l = order[i];
        let start = l.info.rel_offset;
        let expected = l.expected.unwrap_or(0);
        match order.get(i + 1).map(|n| n.info.rel_offset) {
            Some(ns)
                if ns <= data_size
                    && ns < start.saturating_add(expected)
                    && implied_block_layout(l, ns - start) =>
            {
                ns
            }
            _ => start.saturating_add(expected),
        }
    };

    // Tensors whose data reaches past the end of the file.
    let mut past_end: Vec<(&str, u64)> = Vec::new();
    let mut max_end = 0u64;
    for (i, l) in order.iter().enumerate() {
        let end = owned_end(i);
        max_end = max_end.max(end);
        if end > data_size {
            past_end.push((&l.info.name, end - data_size));
        }
    }

    let mut dense_end = 0u64;
    for (i, l) in order.iter().enumerate() {
        let name = l.info.name.as_str();
        let expected = l.expected.unwrap_or(0);
        let start = l.info.rel_offset;
        let next_start = order.get(i + 1).map(|n| n.info.rel_offset);
        // A tensor that starts where the dense layout puts it but past the end of the file
        // is simply cut off (the truncation finding covers it); one that starts anywhere
        // else past the end has a corrupt offset.
        let where_dense = start == dense_end;
        dense_end = pad(owned_end(i), h.alignment);
        if start > data_size {
            if !where_dense {
                out.push(Finding::error(
                    "GGUF_TENSOR_OUT_OF_BOUNDS",
                    Some(name),
                    format!(
                        "tensor {name} starts at data offset {} (file offset {}) but {file_label} is only {} bytes long: its {} bytes lie entirely outside the file",
                        grouped(start),
                        grouped(h.data_start.saturating_add(start)),
                        grouped(file_size),
                        grouped(expected)
                    ),
                    "the tensor offset is corrupt or the file is cut short; re-download or re-convert the file",
                ));
            }
            continue;
        }
        // The bytes a tensor owns end at the next tensor; when that is past the end of the
        // file (or there is none) the file end limits it, which is truncation's business.
        let cut_by_file_end = next_start.is_none_or(|n| n > data_size);
        let limit = if cut_by_file_end {
            data_size
        } else {
            next_start.unwrap_or(data_size)
        };
        let available = limit.saturating_sub(start);
        // Extra room before the next tensor is the running-sum check's business (a gap).
        if available < expected {
            size_mismatch(l, available, cut_by_file_end, out);
        }
        if let Some(ns) = next_start {
            if ns < start.saturating_add(expected) && !implied_block_layout(l, available) {
                out.push(Finding::error(
                    "GGUF_TENSOR_OVERLAP",
                    Some(name),
                    format!(
                        "tensor {name} occupies data bytes {}..{} but {} starts at {}: {} bytes overlap",
                        grouped(start),
                        grouped(start.saturating_add(expected)),
                        order[i + 1].info.name,
                        grouped(ns),
                        grouped(start.saturating_add(expected) - ns)
                    ),
                    "two tensors cannot share bytes; at least one offset is corrupt. Re-convert the model",
                ));
            }
        }
    }

    if !past_end.is_empty() {
        let missing = max_end.saturating_sub(data_size);
        let names: Vec<&str> = past_end.iter().map(|p| p.0).take(5).collect();
        let more = past_end.len().saturating_sub(names.len());
        out.push(Finding::error(
            "GGUF_TRUNCATED",
            past_end.first().map(|p| p.0),
            format!(
                "{file_label} is {} bytes but its header promises tensor data up to byte {}: {} bytes are missing; {} tensor(s) affected: {}{}",
                grouped(file_size),
                grouped(h.data_start.saturating_add(max_end)),
                grouped(missing),
                past_end.len(),
                names.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
            "the file was cut short (interrupted download or copy). Re-download it and compare its size or sha256 with the source",
        ));
    }
}

/// True when `available` bytes are a whole number of blocks of some size, i.e. the tensor
/// looks written with a different bytes-per-block rather than overlapped by accident.
fn implied_block_layout(l: &TensorLayout<'_>, available: u64) -> bool {
    let (Some(t), Some(n)) = (l.ty, l.info.n_elements) else {
        return false;
    };
    let blocks = n / t.block_size();
    t.is_quantized() && blocks > 0 && available > 0 && available.is_multiple_of(blocks)
}

fn size_mismatch(l: &TensorLayout<'_>, available: u64, is_last: bool, out: &mut Vec<Finding>) {
    let (Some(t), Some(n)) = (l.ty, l.info.n_elements) else {
        return;
    };
    let expected = l.expected.unwrap_or(0);
    let blocks = n / t.block_size();
    let name = l.info.name.as_str();
    // The last tensor of a truncated file is the truncation finding's business, unless the
    // bytes it has look like a consistent (wrong) block size.
    let implied_exact = implied_block_layout(l, available);
    if is_last && !implied_exact {
        return;
    }
    let mut msg = format!(
        "tensor {name} is {t} with {} elements: it needs {} bytes ({} blocks × {}) but owns {} bytes",
        grouped(n),
        grouped(expected),
        grouped(blocks),
        t.type_size(),
        grouped(available)
    );
    let mut hint = String::from("the file is corrupt or was written by a tool with a wrong block layout; re-convert it with llama.cpp's tools");
    if implied_exact {
        let per_block = available / blocks;
        msg.push_str(&format!(", i.e. {per_block} bytes per block"));
        let others: Vec<&str> = GgmlType::with_layout(t.block_size(), per_block)
            .into_iter()
            .filter(|o| *o != t)
            .map(|o| o.name())
            .collect();
        if !others.is_empty() {
            msg.push_str(&format!(
                " — the layout of {} (the header may name the wrong type)",
                others.join(" or ")
            ));
        } else if t == GgmlType::Q4_0 && per_block == 16 {
            msg.push_str(" — the 16 bytes of 4-bit codes without the 2-byte f16 scale: the values are unscaled integers −8…7");
        } else if per_block < t.type_size() {
            msg.push_str(&format!(
                " — {} bytes short of every block, as if a per-block field (e.g. the f16 scale) was left out",
                t.type_size() - per_block
            ));
        }
        hint = format!(
            "do not read this tensor as {t}: every block would be read from the wrong bytes (garbage or NaN scales). Re-export it with a correct {t} writer (or as F16) — the missing scale data cannot be recovered from this file"
        );
    } else {
        let bpw = available as f64 * 8.0 / n as f64;
        msg.push_str(&format!(
            " ({bpw:.3} bits per weight instead of {:.3})",
            t.bits_per_weight()
        ));
    }
    out.push(Finding::error(
        "GGUF_TENSOR_SIZE_MISMATCH",
        Some(name),
        msg,
        hint,
    ));
}

#[cfg(test)]
mod tests {
    use crate::finding::Finding;
    use crate::gguf::rawbuilder::{RawGgufBuilder, RawValue};
    use crate::load::{load, Input};
    use crate::source::SliceSource;

    const Q4_0: u32 = 2;
    const F32: u32 = 0;

    fn findings(bytes: Vec<u8>) -> Vec<Finding> {
        let src = SliceSource::new(bytes);
        let model = load(&[Input {
            path: "t.gguf".into(),
            source: &src,
        }])
        .expect("loads");
        model.findings
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    fn base() -> RawGgufBuilder {
        RawGgufBuilder::new()
            .kv("general.architecture", RawValue::Str("llama".into()))
            .tensor("a.weight", &[2, 64], Q4_0, vec![0x11; 4 * 18])
            .tensor("b.weight", &[8], F32, vec![0; 32])
    }

    #[test]
    fn healthy_file_has_no_layout_findings() {
        assert!(findings(base().build()).is_empty());
    }

    #[test]
    fn truncated_file_says_how_many_bytes_are_missing() {
        let mut bytes = base().build();
        bytes.truncate(bytes.len() - 10);
        let f = findings(bytes);
        let t = f
            .iter()
            .find(|f| f.code == "GGUF_TRUNCATED")
            .expect("truncated");
        assert!(t.message.contains("10 bytes are missing"), "{}", t.message);
        assert!(t.message.contains("b.weight"), "{}", t.message);
    }

    #[test]
    fn truncation_is_reported_once_by_its_root_cause() {
        let mut bytes = base().tensor("c.weight", &[8], F32, vec![0; 32]).build();
        bytes.truncate(bytes.len() - 40);
        let f = findings(bytes);
        assert_eq!(codes(&f), vec!["GGUF_TRUNCATED"], "{f:?}");
    }

    #[test]
    fn scale_less_tensor_written_densely_is_only_a_size_mismatch() {
        // The writer laid out every tensor with the 16-byte blocks it actually wrote.
        let b = RawGgufBuilder::new()
            .tensor("tok.weight", &[64, 32], Q4_0, vec![0x88; 64 * 16])
            .tensor("next.weight", &[8], F32, vec![0; 32]);
        let f = findings(b.build());
        assert_eq!(codes(&f), vec!["GGUF_TENSOR_SIZE_MISMATCH"], "{f:?}");
    }

    #[test]
    fn tensor_past_the_end_is_out_of_bounds() {
        let mut b = base();
        b.tensors[1].offset = Some(1 << 20);
        let mut bytes = b.build();
        bytes.truncate(bytes.len() - 32 - ((1 << 20) - 96));
        let f = findings(bytes);
        assert!(codes(&f).contains(&"GGUF_TENSOR_OUT_OF_BOUNDS"), "{f:?}");
    }

    #[test]
    fn misaligned_offset() {
        let mut b = base();
        b.tensors[1].offset = Some(80);
        let f = findings(b.build());
        let m = f
            .iter()
            .find(|f| f.code == "GGUF_TENSOR_MISALIGNED")
            .expect("misaligned");
        assert_eq!(m.tensor.as_deref(), Some("b.weight"));
        assert!(m.message.contains("alignment 32"), "{}", m.message);
    }

    #[test]
    fn gap_quotes_llama_cpp() {
        let mut b = base();
        b.tensors[1].offset = Some(160);
        let f = findings(b.build());
        let g = f.iter().find(|f| f.code == "GGUF_TENSOR_GAP").expect("gap");
        assert!(g.message.contains("gap of 64 bytes"), "{}", g.message);
        assert!(g.hint.contains("has offset 160, expected 96"), "{}", g.hint);
        assert!(!codes(&f).contains(&"GGUF_TENSOR_OVERLAP"));
    }

    #[test]
    fn overlap() {
        // A 40-byte F32 tensor at 0 runs 8 bytes into the Q4_0 tensor placed at 32.
        let mut b = RawGgufBuilder::new()
            .tensor("b.weight", &[10], F32, vec![0; 40])
            .tensor("a.weight", &[2, 64], Q4_0, vec![0x11; 4 * 18]);
        b.tensors[1].offset = Some(32);
        let f = findings(b.build());
        let o = f
            .iter()
            .find(|f| f.code == "GGUF_TENSOR_OVERLAP")
            .expect("overlap");
        assert!(o.message.contains("8 bytes overlap"), "{}", o.message);
    }

    #[test]
    fn q4_0_without_scales_is_a_size_mismatch_with_16_bytes_per_block() {
        // The seed's TinyLlama file: Q4_0 blocks of 16 bytes (codes without the f16 scale).
        let n_blocks = 64u64;
        let mut b = RawGgufBuilder::new()
            .tensor(
                "tok.weight",
                &[64, 32],
                Q4_0,
                vec![0x88; (n_blocks * 16) as usize],
            )
            .tensor("next.weight", &[8], F32, vec![0; 32]);
        b.tensors[1].offset = Some(n_blocks * 16);
        let f = findings(b.build());
        let s = f
            .iter()
            .find(|f| f.code == "GGUF_TENSOR_SIZE_MISMATCH")
            .expect("size mismatch");
        assert_eq!(s.tensor.as_deref(), Some("tok.weight"));
        assert!(
            s.message.contains("needs 1,152 bytes (64 blocks × 18)"),
            "{}",
            s.message
        );
        assert!(s.message.contains("owns 1,024 bytes"), "{}", s.message);
        assert!(s.message.contains("16 bytes per block"), "{}", s.message);
        assert!(
            s.message.contains("without the 2-byte f16 scale"),
            "{}",
            s.message
        );
        assert!(!codes(&f).contains(&"GGUF_TENSOR_OVERLAP"), "{f:?}");
    }

    #[test]
    fn implied_layout_of_another_type_is_named() {
        // 32-element blocks of 20 bytes are Q4_1's layout.
        let mut b = RawGgufBuilder::new()
            .tensor("x.weight", &[4, 64], 8 /* Q8_0 */, vec![0; 8 * 20])
            .tensor("y.weight", &[8], F32, vec![0; 32]);
        b.tensors[1].offset = Some(160);
        let f = findings(b.build());
        let s = f
            .iter()
            .find(|f| f.code == "GGUF_TENSOR_SIZE_MISMATCH")
            .unwrap();
        assert!(s.message.contains("layout of Q4_1"), "{}", s.message);
    }

    #[test]
    fn row_not_block_multiple() {
        let b = RawGgufBuilder::new().tensor("r.weight", &[2, 48], Q4_0, vec![0; 54]);
        let f = findings(b.build());
        let r = f
            .iter()
            .find(|f| f.code == "GGUF_ROW_NOT_BLOCK_MULTIPLE")
            .unwrap();
        assert!(r.message.contains("48 elements per row"), "{}", r.message);
    }

    #[test]
    fn unknown_and_removed_types() {
        let b = RawGgufBuilder::new()
            .tensor("old.weight", &[32], 4, vec![0; 32])
            .tensor("new.weight", &[32], 999, vec![0; 32]);
        let f = findings(b.build());
        let u: Vec<&Finding> = f.iter().filter(|f| f.code == "GGUF_UNKNOWN_TYPE").collect();
        assert_eq!(u.len(), 2);
        assert!(u[0].message.contains("Q4_2"), "{}", u[0].message);
        assert!(
            u[1].message.contains("unknown type id 999"),
            "{}",
            u[1].message
        );
    }

    #[test]
    fn duplicate_tensor_and_key() {
        let b = base()
            .kv("general.architecture", RawValue::Str("llama".into()))
            .tensor("a.weight", &[8], F32, vec![0; 32]);
        let f = findings(b.build());
        assert!(codes(&f).contains(&"GGUF_DUPLICATE_TENSOR"), "{f:?}");
        assert!(codes(&f).contains(&"GGUF_DUPLICATE_KEY"), "{f:?}");
    }

    #[test]
    fn bad_alignment() {
        let ok = base().kv("general.alignment", RawValue::U32(32));
        assert!(findings(ok.build()).is_empty());
        for bad in [RawValue::U32(24), RawValue::U64(32), RawValue::U32(0)] {
            let f = findings(base().kv("general.alignment", bad.clone()).build());
            assert!(codes(&f).contains(&"GGUF_BAD_ALIGNMENT"), "{bad:?}: {f:?}");
        }
    }

    #[test]
    fn too_many_dims_is_a_finding() {
        let mut b = base();
        b.tensors[1].ne = vec![2, 1, 1, 2, 2];
        let f = findings(b.build());
        assert!(codes(&f).contains(&"GGUF_TOO_MANY_DIMS"), "{f:?}");
    }

    #[test]
    fn version_1_and_2_files_read() {
        for v in [1, 2] {
            let mut b = base();
            b.version = v;
            let src = SliceSource::new(b.build());
            let m = load(&[Input {
                path: "v.gguf".into(),
                source: &src,
            }])
            .unwrap();
            assert_eq!(m.version, v);
            assert_eq!(m.tensors.len(), 2);
            assert!(m.findings.is_empty(), "{:?}", m.findings);
        }
    }

    #[test]
    fn big_endian_header_reads() {
        // Byte-swap every header field of a small file by building it from swapped parts.
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_be_bytes());
        out.extend_from_slice(&1u64.to_be_bytes());
        out.extend_from_slice(&1u64.to_be_bytes());
        let key = b"general.architecture";
        out.extend_from_slice(&(key.len() as u64).to_be_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&8u32.to_be_bytes());
        out.extend_from_slice(&5u64.to_be_bytes());
        out.extend_from_slice(b"llama");
        let name = b"w";
        out.extend_from_slice(&(name.len() as u64).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&4u64.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u64.to_be_bytes());
        out.resize(out.len().next_multiple_of(32) + 16, 0);
        let src = SliceSource::new(out);
        let m = load(&[Input {
            path: "be.gguf".into(),
            source: &src,
        }])
        .unwrap();
        assert!(m.big_endian);
        assert_eq!(m.architecture(), Some("llama"));
        assert_eq!(m.tensors[0].shape, vec![4]);
    }

    #[test]
    fn hostile_counts_are_refused_before_allocating() {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let src = SliceSource::new(bytes);
        let e = load(&[Input {
            path: "h.gguf".into(),
            source: &src,
        }])
        .unwrap_err();
        assert_eq!(e.field, "tensor_count");
        assert_eq!(e.offset, Some(8));

        // A string claiming 2^60 bytes.
        let b = base().build();
        let mut bytes = b[..24].to_vec();
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        bytes.extend_from_slice(&b[32..]);
        let src = SliceSource::new(bytes);
        let e = load(&[Input {
            path: "h.gguf".into(),
            source: &src,
        }])
        .unwrap_err();
        assert!(e.message.contains("string length"), "{e}");
        assert_eq!(e.offset, Some(24));

        // An array of 2^40 u64 values.
        let b = base().kv(
            "x",
            RawValue::Array(crate::meta::GgufValueType::Uint64, vec![]),
        );
        let mut bytes = b.build();
        // The array header: element type UINT64 (10) then a count of 0.
        let needle = [10u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at + 4..at + 12].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let src = SliceSource::new(bytes);
        let e = load(&[Input {
            path: "h.gguf".into(),
            source: &src,
        }])
        .unwrap_err();
        assert!(e.message.contains("array of 1099511627776 UINT64"), "{e}");
    }
}
