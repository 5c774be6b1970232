//! `quantdoc convert HF_DIR -o OUT.gguf [--outtype T] [--keep-float REGEX]...`: a llama,
//! mistral, qwen2 or gemma3 checkpoint to GGUF with llama.cpp's names, metadata and
//! transforms. Writes OUT.gguf (verified, renamed into place), OUT.gguf.sha256 and
//! OUT.gguf.meta.json.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use quantdoc_core::convert::{plan_convert, Side, TokenizerFiles, OUTTYPES};
use quantdoc_core::ggml::types::GgmlType;
use quantdoc_core::repair::{sha256_source, TensorSource};
use regex::Regex;

use crate::open::open_model;
use crate::repair_cmd::{print_plan, write_rewrite};
use crate::source::FileSource;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer.model or
    /// tokenizer.json).
    pub path: PathBuf,
    /// Output .gguf file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q6_k (norms and 1-D tensors stay F32).
    #[arg(long, default_value = "f16")]
    pub outtype: String,
    /// HF tensor names matching this stay float (F16; F32/BF16 with those outtypes).
    #[arg(long = "keep-float", value_name = "REGEX")]
    pub keep_float: Vec<String>,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn read_json(p: &Path) -> Result<Option<serde_json::Value>> {
    if !p.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| {
        format!("{}: not valid JSON", p.display())
    })?))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn run(args: Args) -> Result<i32> {
    let outtype = GgmlType::from_name(&args.outtype)
        .filter(|t| OUTTYPES.contains(t))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--outtype {:?}: choose one of {}",
                args.outtype,
                OUTTYPES
                    .iter()
                    .map(|t| t.name().to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })?;
    let keep: Vec<Regex> = args
        .keep_float
        .iter()
        .map(|s| Regex::new(s).map_err(|e| anyhow::anyhow!("--keep-float {s:?}: {e}")))
        .collect::<Result<_>>()?;
    if !args.path.is_dir() {
        bail!(
            "{}: convert takes a checkpoint directory",
            args.path.display()
        );
    }
    let dir = &args.path;
    let config = read_json(&dir.join("config.json"))?
        .ok_or_else(|| anyhow::anyhow!("{}: no config.json", dir.display()))?;
    let tokenizer = read_json(&dir.join("tokenizer.json"))?;
    let tokenizer_config = read_json(&dir.join("tokenizer_config.json"))?;
    let added_tokens = read_json(&dir.join("added_tokens.json"))?;
    let sp_file = dir.join("tokenizer.model");
    let sentencepiece = if sp_file.is_file() {
        Some(
            std::fs::read(&sp_file)
                .with_context(|| format!("{}: cannot read", sp_file.display()))?,
        )
    } else {
        None
    };
    let template_file = dir.join("chat_template.jinja");
    let chat_template = if template_file.is_file() {
        Some(std::fs::read_to_string(&template_file)?)
    } else {
        None
    };
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "model".into());
    let opened = open_model(dir)?;
    let side = Side {
        config: &config,
        tokenizer: TokenizerFiles {
            tokenizer_json: tokenizer.as_ref(),
            tokenizer_config: tokenizer_config.as_ref(),
            sentencepiece: sentencepiece.as_deref(),
            added_tokens: added_tokens.as_ref(),
            chat_template: chat_template.as_deref(),
        },
        name: &name,
    };
    let rw = plan_convert(&opened.model, &side, outtype, &|n: &str| {
        keep.iter().any(|r| r.is_match(n))
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    print_plan(&rw);
    for t in &rw.tensors {
        let from = &opened.model.tensors[t.input];
        println!(
            "  {} -> {} {} {:?}{}",
            from.name,
            t.entry.name,
            t.entry.ggml_type,
            t.entry.shape,
            match t.transform {
                quantdoc_core::repair::Transform::None => "",
                quantdoc_core::repair::Transform::PermuteQk { .. } => " (Q/K rows permuted)",
                quantdoc_core::repair::Transform::AddOne => " (1 + w)",
            }
        );
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(0);
    }
    let bytes = write_rewrite(&opened, &rw, &args.output)?;
    let out_src = FileSource::open(&args.output)?;
    let digest = hex(&sha256_source(&out_src).map_err(|e| anyhow::anyhow!("{e}"))?);
    let file_name = args
        .output
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let side_path = |ext: &str| {
        let mut p = args.output.clone().into_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    std::fs::write(side_path(".sha256"), format!("{digest}  {file_name}\n"))?;
    let meta = serde_json::json!({
        "file": file_name,
        "bytes": bytes,
        "sha256": digest,
        "source": dir.display().to_string(),
        "architecture": rw.metadata.iter().find(|e| e.key == "general.architecture").and_then(|e| e.value.as_str()),
        "outtype": outtype.name(),
        "tensors": rw.tensors.iter().map(|t| serde_json::json!({
            "name": t.entry.name,
            "from": opened.model.tensors[t.input].name,
            "type": t.entry.ggml_type.name(),
            "shape": t.entry.shape,
            "converted": t.source == TensorSource::Convert,
        })).collect::<Vec<_>>(),
        "made_by": format!("quantdoc {}", env!("CARGO_PKG_VERSION")),
    });
    std::fs::write(
        side_path(".meta.json"),
        serde_json::to_string_pretty(&meta)?,
    )?;
    println!("sha256 {digest}");
    Ok(0)
}
