//! config.json and the quantization side files, as the loader stored them in the model's
//! metadata (`config.<key>`, `quantization_config.<key>`, `quant_config.<key>`,
//! `quantize_config.<key>`).

use serde_json::{Map, Value};

use crate::dtype::Dtype;
use crate::model::Model;

/// JSON side files whose top-level keys go into the model metadata, with their key prefix.
pub const SIDE_FILES: &[(&str, &str)] = &[
    ("config.json", "config"),
    ("generation_config.json", "generation_config"),
    ("quantization_config.json", "quantization_config"),
    ("quant_config.json", "quant_config"),
    ("quantize_config.json", "quantize_config"),
];

/// The metadata key prefix for a side file name, if it is one we read.
pub fn side_file_prefix(file_name: &str) -> Option<&'static str> {
    SIDE_FILES
        .iter()
        .find(|(n, _)| *n == file_name)
        .map(|(_, p)| *p)
}

/// A model's config.json plus its quantization parameters, wherever they were declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HfConfig {
    /// config.json (an empty object when there is none).
    pub config: Map<String, Value>,
    /// The quantization block: config.json `quantization_config`, else MLX's
    /// `quantization`, else a quantization side file.
    pub quant: Option<Map<String, Value>>,
    /// Where `quant` came from ("config.json quantization_config", ...).
    pub quant_source: &'static str,
    /// MLX's own `quantization` block (global parameters plus per-module overrides).
    pub mlx_quant: Option<Map<String, Value>>,
}

/// Quantization parameters of one MLX module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlxParams {
    pub mode: String,
    pub bits: u32,
    pub group_size: u64,
}

fn object_of(model: &Model, prefix: &str) -> Option<Map<String, Value>> {
    let dotted = format!("{prefix}.");
    let mut map = Map::new();
    for e in &model.metadata {
        if let Some(k) = e.key.strip_prefix(&dotted) {
            map.insert(k.to_string(), e.value.to_json());
        }
    }
    (!map.is_empty()).then_some(map)
}

impl HfConfig {
    pub fn from_model(model: &Model) -> HfConfig {
        let config = object_of(model, "config").unwrap_or_default();
        let mlx_quant = config
            .get("quantization")
            .and_then(|v| v.as_object())
            .cloned();
        let mut quant_source = "";
        let mut quant = None;
        if let Some(q) = config
            .get("quantization_config")
            .and_then(|v| v.as_object())
        {
            quant = Some(q.clone());
            quant_source = "config.json quantization_config";
        } else if let Some(q) = &mlx_quant {
            quant = Some(q.clone());
            quant_source = "config.json quantization";
        } else {
            for (file, prefix) in &SIDE_FILES[2..] {
                if let Some(q) = object_of(model, prefix) {
                    quant = Some(q);
                    quant_source = file;
                    break;
                }
            }
        }
        HfConfig {
            config,
            quant,
            quant_source,
            mlx_quant,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && self.quant.is_none()
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.config.get(key).and_then(|v| v.as_u64())
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(|v| v.as_str())
    }

    pub fn model_type(&self) -> Option<&str> {
        self.str("model_type")
    }

    /// `torch_dtype`, or `dtype` as transformers 5 writes it.
    pub fn torch_dtype(&self) -> Option<&str> {
        self.str("torch_dtype").or_else(|| self.str("dtype"))
    }

    pub fn quant_str(&self, key: &str) -> Option<&str> {
        self.quant.as_ref()?.get(key)?.as_str()
    }

    pub fn quant_u64(&self, key: &str) -> Option<u64> {
        self.quant.as_ref()?.get(key)?.as_u64()
    }

    pub fn quant_bool(&self, key: &str) -> Option<bool> {
        self.quant.as_ref()?.get(key)?.as_bool()
    }

    /// `quant_method` in lower case ("bitsandbytes", "gptq", "awq", "fp8", "mxfp4", ...).
    /// MLX's block has no method: "mlx" when it carries `bits` and `group_size`.
    pub fn quant_method(&self) -> Option<String> {
        let q = self.quant.as_ref()?;
        if let Some(m) = q.get("quant_method").and_then(|v| v.as_str()) {
            return Some(m.to_ascii_lowercase());
        }
        if q.contains_key("bits") && q.contains_key("group_size") {
            return Some("mlx".into());
        }
        if q.contains_key("w_bit") {
            return Some("awq".into());
        }
        None
    }

    /// MLX parameters declared for `module` (per-module override, else global).
    /// `Some(None)` when the config says the module is not quantized (`false`).
    pub fn mlx_params(&self, module: &str) -> Option<Option<MlxParams>> {
        let q = self.mlx_quant.as_ref().or(self.quant.as_ref())?;
        if let Some(v) = q.get(module) {
            if v.as_bool() == Some(false) {
                return Some(None);
            }
            if let Some(o) = v.as_object() {
                if let Some(p) = mlx_params_of(o) {
                    return Some(Some(p));
                }
            }
        }
        mlx_params_of(q).map(Some)
    }
}

fn mlx_params_of(o: &Map<String, Value>) -> Option<MlxParams> {
    let bits = u32::try_from(o.get("bits")?.as_u64()?).ok()?;
    let group_size = o.get("group_size")?.as_u64()?;
    let mode = o
        .get("mode")
        .and_then(|m| m.as_str())
        .unwrap_or("affine")
        .to_string();
    Some(MlxParams {
        mode,
        bits,
        group_size,
    })
}

/// A torch dtype name ("float16", "torch.bfloat16", "bf16") as a safetensors dtype.
pub fn dtype_from_torch(name: &str) -> Option<Dtype> {
    let n = name
        .trim()
        .trim_start_matches("torch.")
        .to_ascii_lowercase();
    Some(match n.as_str() {
        "float16" | "half" | "fp16" | "f16" => Dtype::F16,
        "bfloat16" | "bf16" => Dtype::BF16,
        "float32" | "float" | "fp32" | "f32" => Dtype::F32,
        "float64" | "double" => Dtype::F64,
        "uint8" => Dtype::U8,
        "int8" => Dtype::I8,
        _ => return None,
    })
}
