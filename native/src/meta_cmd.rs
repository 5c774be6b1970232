//! `quantdoc meta IN.gguf -o OUT.gguf --set KEY=TYPE:VALUE --delete KEY
//! --chat-template-file F`: edit metadata; tensor bytes are copied unchanged (re-laid
//! densely) and verified by hash.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use quantdoc_core::repair::meta_edit::{parse_typed, plan_meta_edit, MetaEdits};

use crate::open::open_model;
use crate::repair_cmd::{print_plan, write_rewrite};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file to edit (opened read-only).
    pub path: PathBuf,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Set a key: KEY=TYPE:VALUE with TYPE one of u8 i8 u16 i16 u32 i32 u64 i64 f32 f64
    /// bool str, or arr[TYPE]:V1,V2 (e.g. llama.block_count=u32:32, general.name=str:x).
    #[arg(long = "set", value_name = "KEY=TYPE:VALUE")]
    pub set: Vec<String>,
    /// Delete a key.
    #[arg(long = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
    /// Set tokenizer.chat_template from a file (UTF-8).
    #[arg(long, value_name = "FILE")]
    pub chat_template_file: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<i32> {
    let mut set = Vec::new();
    for s in &args.set {
        let Some((key, spec)) = s.split_once('=') else {
            bail!("--set {s:?}: expected KEY=TYPE:VALUE");
        };
        set.push(parse_typed(key, spec).map_err(|e| anyhow::anyhow!("--set: {e}"))?);
    }
    let chat_template = match &args.chat_template_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read as UTF-8 text", p.display()))?,
        ),
        None => None,
    };
    if set.is_empty() && args.delete.is_empty() && chat_template.is_none() {
        bail!("nothing to do: give --set, --delete or --chat-template-file");
    }
    let opened = open_model(&args.path)?;
    if opened.model.format != quantdoc_core::model::Format::Gguf {
        bail!("{}: `meta` edits GGUF files only", args.path.display());
    }
    let edits = MetaEdits {
        set,
        delete: args.delete.clone(),
        chat_template,
    };
    let rw = plan_meta_edit(&opened.model, &edits)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?;
    print_plan(&rw);
    write_rewrite(&opened, &rw, &args.output)?;
    Ok(0)
}
