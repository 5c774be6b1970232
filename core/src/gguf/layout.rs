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

    // Tensors whose data reaches past the end of the file.
    let mut past_end: Vec<(&str, u64)> = Vec::new();
    let mut max_end = 0u64;
    for l in &order {
        let end = l.info.rel_offset.saturating_add(l.expected.unwrap_or(0));
        max_end = max_end.max(end);
        if end > data_size {
            past_end.push((&l.info.name, end - data_size));
        }
    }

    for (i, l) in order.iter().enumerate() {
        let name = l.info.name.as_str();
        let expected = l.expected.unwrap_or(0);
        let start = l.info.rel_offset;
        let next_start = order.get(i + 1).map(|n| n.info.rel_offset);
        let limit = next_start.unwrap_or(data_size).min(data_size.max(start));
        let available = limit.saturating_sub(start);
        if start > data_size {
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
            continue;
        }
        // Extra room before the next tensor is the running-sum check's business (a gap).
        if available < expected {
            size_mismatch(l, available, next_start.is_none(), out);
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
    blocks > 0 && available > 0 && available % blocks == 0
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
    let implied_exact = blocks > 0 && available % blocks == 0 && available > 0;
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
