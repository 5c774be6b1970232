//! `quantdoc requantize`: choose each tensor's output type.
//!
//! Norms and 1-D tensors are never quantized (llama.cpp's rule: a few thousand values save
//! nothing, and their rounding scales every activation); integer tensors are copied.
//! A tensor whose rows are not whole blocks of the requested type falls back to Q8_0
//! (rows of 32) or F16, and the plan says so.

use super::{ggml_type_of, Fix, GgufRewrite, RepairError, TensorSource};
use crate::ggml::types::GgmlType;
use crate::meta::{GgufValueType, MetaValue};
use crate::model::Model;
use crate::quantize;
use crate::write::gguf::{entry, entry_u32, set_entry};

/// What the user asked for one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The command's `--type`.
    Default,
    /// `--keep-float`: float tensors stay as they are, quantized ones become F32.
    KeepFloat,
    /// `--tensor-type`.
    Type(GgmlType),
}

pub fn is_norm(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("norm")
        || n.split('.')
            .any(|seg| seg == "ln_f" || seg.starts_with("ln_"))
}

/// llama.cpp's `general.file_type` (LLAMA_FTYPE) for a uniform target type.
fn file_type(ty: GgmlType) -> Option<u32> {
    Some(match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q4_K => 14,
        GgmlType::Q5_K => 16,
        GgmlType::Q6_K => 18,
        GgmlType::BF16 => 32,
        GgmlType::TQ1_0 => 36,
        GgmlType::TQ2_0 => 37,
        GgmlType::MXFP4 => 38,
        _ => return None,
    })
}

pub fn plan_requantize(
    model: &Model,
    default: GgmlType,
    choose: &dyn Fn(&str) -> Choice,
) -> Result<GgufRewrite, RepairError> {
    for ty in [default] {
        if !quantize::can_quantize(ty) {
            return Err(RepairError::Refused(format!(
                "cannot write {ty}; supported: {}",
                quantize::SUPPORTED
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut rw = GgufRewrite::identity(model)?;
    let mut any_quantized = false;
    for out in &mut rw.tensors {
        let t = &model.tensors[out.input];
        let current = ggml_type_of(t)?;
        let name = t.name.as_str();
        let row = t.shape.last().copied().unwrap_or(1);
        let wanted = if t.shape.len() <= 1 || is_norm(name) || current.is_integer() {
            current
        } else {
            match choose(name) {
                Choice::KeepFloat if current.is_float() => current,
                Choice::KeepFloat => GgmlType::F32,
                Choice::Type(ty) => ty,
                Choice::Default => default,
            }
        };
        if !quantize::can_quantize(wanted) && wanted != current {
            return Err(RepairError::Refused(format!(
                "{name}: cannot write {wanted}"
            )));
        }
        let mut target = wanted;
        if row % target.block_size() != 0 {
            target = if row % 32 == 0 {
                GgmlType::Q8_0
            } else {
                GgmlType::F16
            };
            rw.fixes.push(Fix::new(
                "",
                Some(name),
                format!(
                    "rows of {row} are not whole {wanted} blocks of {}: using {target}",
                    wanted.block_size()
                ),
            ));
        }
        if target.is_quantized() {
            any_quantized = true;
        }
        if target != current {
            out.entry.ggml_type = target;
            out.source = TensorSource::Convert;
        } else if current.is_quantized() {
            any_quantized = true;
        }
    }
    let converted = rw
        .tensors
        .iter()
        .filter(|t| t.source == TensorSource::Convert)
        .count();
    rw.fixes.push(Fix::new(
        "",
        None,
        format!(
            "convert {converted} of {} tensors (norms, 1-D and integer tensors are never quantized)",
            rw.tensors.len()
        ),
    ));
    if let Some(ft) = file_type(default) {
        set_entry(&mut rw.metadata, entry_u32("general.file_type", ft));
    }
    if any_quantized {
        set_entry(
            &mut rw.metadata,
            entry_u32("general.quantization_version", 2),
        );
    }
    // Mark the file as rewritten by quantdoc (llama.cpp ignores unknown keys).
    set_entry(
        &mut rw.metadata,
        entry(
            "quantdoc.requantized_to",
            GgufValueType::String,
            MetaValue::String(default.name().to_string()),
        ),
    );
    Ok(rw)
}
