//! Names of quantization parts: which stored tensor a part belongs to.
//!
//! Used by the rules (orphaned, missing and leftover parts) and by repair code that drops
//! leftover parts after dequantizing.

/// The quantization family a part name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartFamily {
    Bnb4,
    BnbInt8,
    /// MLX `.scales` / `.biases` (GPTQ/AWQ `.scales` when a `.qweight` sits beside it).
    Mlx,
    Gptq,
    GptOss,
    Fp8,
}

impl PartFamily {
    pub fn label(self) -> &'static str {
        match self {
            PartFamily::Bnb4 => "bitsandbytes 4-bit",
            PartFamily::BnbInt8 => "bitsandbytes int8",
            PartFamily::Mlx => "MLX",
            PartFamily::Gptq => "GPTQ/AWQ",
            PartFamily::GptOss => "gpt-oss MXFP4",
            PartFamily::Fp8 => "FP8",
        }
    }
}

/// A quantization part name split into the main tensor it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantPart {
    /// Name of the tensor holding the codes (`...weight`, `...qweight`, `..._blocks`).
    pub base: String,
    pub role: &'static str,
    pub family: PartFamily,
}

const BNB4_SUFFIXES: &[(&str, &str)] = &[
    (".nested_absmax", "nested_absmax"),
    (".nested_quant_map", "nested_quant_map"),
    (".absmax", "absmax"),
    (".quant_map", "quant_map"),
];

/// Classify a tensor name as a quantization part. `exists` tells whether a tensor name is
/// stored (to tell GPTQ `.scales` from MLX `.scales`).
pub fn quant_part(name: &str, exists: &dyn Fn(&str) -> bool) -> Option<QuantPart> {
    let part = |base: String, role, family| Some(QuantPart { base, role, family });
    if let Some((w, _)) = name.rsplit_once(".quant_state.bitsandbytes__") {
        return part(w.to_string(), "quant_state", PartFamily::Bnb4);
    }
    for (suffix, role) in BNB4_SUFFIXES {
        if let Some(w) = name.strip_suffix(suffix) {
            return part(w.to_string(), role, PartFamily::Bnb4);
        }
    }
    if let Some(m) = name.strip_suffix(".SCB") {
        return part(format!("{m}.weight"), "SCB", PartFamily::BnbInt8);
    }
    if let Some(m) = name.strip_suffix(".weight_format") {
        return part(format!("{m}.weight"), "weight_format", PartFamily::BnbInt8);
    }
    for (suffix, role) in [(".qzeros", "qzeros"), (".g_idx", "g_idx")] {
        if let Some(m) = name.strip_suffix(suffix) {
            return part(format!("{m}.qweight"), role, PartFamily::Gptq);
        }
    }
    if let Some(m) = name.strip_suffix(".scales") {
        if exists(&format!("{m}.qweight")) {
            return part(format!("{m}.qweight"), "scales", PartFamily::Gptq);
        }
        return part(format!("{m}.weight"), "scales", PartFamily::Mlx);
    }
    if let Some(m) = name.strip_suffix(".biases") {
        return part(format!("{m}.weight"), "biases", PartFamily::Mlx);
    }
    for (suffix, role) in [
        (".weight_scale_inv", "weight_scale_inv"),
        (".weight_scale", "weight_scale"),
        (".input_scale", "input_scale"),
    ] {
        if let Some(m) = name.strip_suffix(suffix) {
            return part(format!("{m}.weight"), role, PartFamily::Fp8);
        }
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.len() > "_scales".len() && last.ends_with("_proj_scales") {
        let p = name.strip_suffix("_scales").unwrap_or(name);
        return part(format!("{p}_blocks"), "scales", PartFamily::GptOss);
    }
    None
}
