//! `quantdoc requantize IN.gguf -o OUT.gguf --type T [--keep-float REGEX]...
//! [--tensor-type REGEX=T]...`: re-encode a GGUF's tensors with the reference quantizers.
//! Norms, 1-D and integer tensors are never quantized.

use std::path::PathBuf;

use anyhow::{bail, Result};
use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::quantize;
use quantdoc_core::repair::requant::{plan_requantize, Choice};
use regex::Regex;

use crate::open::open_model;
use crate::repair_cmd::{print_plan, write_rewrite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file to re-encode (opened read-only).
    pub path: PathBuf,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Target type: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K TQ1_0 TQ2_0 MXFP4.
    #[arg(long = "type", value_name = "TYPE")]
    pub ty: String,
    /// Tensors whose name matches stay float (quantized ones become F32). Repeatable.
    #[arg(long = "keep-float", value_name = "REGEX")]
    pub keep_float: Vec<String>,
    /// REGEX=TYPE: another type for matching tensors (first match wins). Repeatable.
    #[arg(long = "tensor-type", value_name = "REGEX=TYPE")]
    pub tensor_type: Vec<String>,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_type(s: &str) -> Result<GgmlType> {
    match GgmlType::from_name(s) {
        Some(t) if quantize::can_quantize(t) => Ok(t),
        _ => bail!(
            "unknown or unsupported type {s:?}; supported: {}",
            quantize::SUPPORTED
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn regex(s: &str) -> Result<Regex> {
    Regex::new(s).map_err(|e| anyhow::anyhow!("invalid regular expression {s:?}: {e}"))
}

pub fn run(args: Args) -> Result<i32> {
    let default = parse_type(&args.ty)?;
    let keep: Vec<Regex> = args
        .keep_float
        .iter()
        .map(|s| regex(s))
        .collect::<Result<_>>()?;
    let mut overrides = Vec::new();
    for s in &args.tensor_type {
        let Some((re, ty)) = s.rsplit_once('=') else {
            bail!("--tensor-type {s:?}: expected REGEX=TYPE");
        };
        overrides.push((regex(re)?, parse_type(ty)?));
    }
    let opened = open_model(&args.path)?;
    if opened.model.format != quantdoc_core::model::Format::Gguf {
        bail!(
            "{}: `requantize` reads GGUF files; use `convert` for safetensors checkpoints",
            args.path.display()
        );
    }
    let choose = |name: &str| {
        if keep.iter().any(|r| r.is_match(name)) {
            return Choice::KeepFloat;
        }
        overrides
            .iter()
            .find(|(r, _)| r.is_match(name))
            .map(|(_, t)| Choice::Type(*t))
            .unwrap_or(Choice::Default)
    };
    let rw = plan_requantize(&opened.model, default, &choose)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?;
    print_plan(&rw);
    for t in &rw.tensors {
        let from = opened.model.tensors[t.input].encoding.label();
        if from != t.entry.ggml_type.name() {
            println!("  {}: {from} -> {}", t.entry.name, t.entry.ggml_type);
        }
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(0);
    }
    write_rewrite(&opened, &rw, &args.output)?;
    Ok(0)
}
