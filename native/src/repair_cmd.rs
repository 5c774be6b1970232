//! `quantdoc repair FILE.gguf -o OUT.gguf [--dry-run]`, and the output machinery shared by
//! `meta` and `requantize`: write to a temporary file beside the target, reopen and verify
//! it, and only then rename it into place. A failed or killed run never leaves a file under
//! the final name.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use quantdoc_core::finding::Finding;
use quantdoc_core::load::{load, Input};
use quantdoc_core::repair::gguf_plan::plan_repair;
use quantdoc_core::repair::{execute, verify, GgufRewrite, Progress, TensorSource};

use crate::open::{open_model, Opened};
use crate::source::FileSource;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A GGUF file, or a Hugging Face checkpoint (directory, index or .safetensors file);
    /// opened read-only.
    pub path: PathBuf,
    /// Output: a .gguf file for GGUF input, a new directory for a checkpoint (written under
    /// a temporary name beside it, renamed after verification).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the plan (each fix with the finding code it answers) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Checkpoints: dtype of dequantized tensors (f16, bf16, f32). Default: the dtype the
    /// quantization library dequantizes to.
    #[arg(long)]
    pub dtype: Option<String>,
    /// Checkpoints: largest output shard (e.g. 5GB, 500MB, 2GiB).
    #[arg(long, default_value = "5GB")]
    pub max_shard_size: String,
}

pub fn run(args: Args) -> Result<i32> {
    let opened = open_model(&args.path)?;
    if opened.model.format != quantdoc_core::model::Format::Gguf {
        return hf::run(&args, &opened);
    }
    let rw = plan_repair(&opened.model, &opened.sources())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?;
    print_plan(&rw);
    let out = match gate(
        &args,
        rw.blocking.len(),
        " need the original data",
        "OUT.gguf",
    )? {
        Gate::Stop(code) => return Ok(code),
        Gate::Write(out) => out,
    };
    if rw.fixes.is_empty() {
        println!("nothing to fix; writing a verified copy anyway");
    }
    write_rewrite(&opened, &rw, out)?;
    Ok(0)
}

/// What to do once the plan is printed.
enum Gate<'a> {
    /// Write nothing and exit with this status.
    Stop(i32),
    /// Write to this path.
    Write(&'a Path),
}

/// The same decision for GGUF and checkpoint repairs: refuse when a problem blocks the
/// repair, stop after a dry run, otherwise require `-o`.
fn gate<'a>(args: &'a Args, blocking: usize, why: &str, out_kind: &str) -> Result<Gate<'a>> {
    if blocking > 0 {
        eprintln!(
            "quantdoc: cannot repair {}: {blocking} problem(s) above{why}; nothing written",
            args.path.display()
        );
        return Ok(Gate::Stop(1));
    }
    if args.dry_run {
        println!("dry run: nothing written");
        return Ok(Gate::Stop(0));
    }
    match &args.output {
        Some(out) => Ok(Gate::Write(out)),
        None => bail!("repair needs -o {out_kind} (or --dry-run)"),
    }
}

fn print_finding(prefix: &str, f: &Finding) {
    println!(
        "  {prefix} [{}]{} {}",
        f.code,
        f.tensor
            .as_ref()
            .map(|t| format!(" {t}:"))
            .unwrap_or_default(),
        f.message
    );
}

/// The plan in the order it will be carried out.
pub fn print_plan(rw: &GgufRewrite) {
    if !rw.fixes.is_empty() {
        println!("plan:");
        for f in &rw.fixes {
            let tensor = f
                .tensor
                .as_ref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            if f.code.is_empty() {
                println!("  - {tensor}{}", f.action);
            } else {
                println!("  fix [{}] {tensor}{}", f.code, f.action);
            }
        }
    }
    if !rw.remaining.is_empty() {
        println!("left as is:");
        for f in &rw.remaining {
            print_finding("-", f);
        }
    }
    if !rw.blocking.is_empty() {
        println!("blocking:");
        for f in &rw.blocking {
            print_finding("!", f);
        }
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn update(&mut self, tensor: &str, _read: u64, written: u64) {
        self.0.set_position(written);
        self.0.set_message(tensor.to_string());
    }
}

/// Refuse to write over an input: the rename would replace a file still being read.
fn check_not_input(opened: &Opened, out: &Path) -> Result<()> {
    let Ok(target) = out.canonicalize() else {
        return Ok(());
    };
    for p in &opened.paths {
        if p.canonicalize().ok().as_deref() == Some(target.as_path()) {
            bail!(
                "{}: the output would replace an input file; choose another name",
                out.display()
            );
        }
    }
    Ok(())
}

/// Write, verify and rename. Prints a summary; returns the output size.
pub fn write_rewrite(opened: &Opened, rw: &GgufRewrite, out: &Path) -> Result<u64> {
    check_not_input(opened, out)?;
    let started = Instant::now();
    let plan = rw.plan().map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    // Deleted on drop: an error anywhere below removes the partial file.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot create a temporary file", dir.display()))?;
    let bar = ProgressBar::new(plan.total_len());
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut progress = Bar(bar);
    let writer = BufWriter::with_capacity(8 << 20, tmp.as_file());
    let sources = opened.sources();
    let (writer, totals) = execute(&opened.model, &sources, rw, &plan, writer, &mut progress)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
    let file = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", out.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("{}: cannot flush to disk", out.display()))?;
    progress.0.finish_and_clear();
    let written_at = Instant::now();

    let reopened = FileSource::open(tmp.path())
        .with_context(|| format!("{}: cannot reopen the output", tmp.path().display()))?;
    let out_model = load(&[Input {
        path: out.display().to_string(),
        source: &reopened,
    }])
    .map_err(|e| anyhow::anyhow!("the output cannot be read back: {e}"))?;
    let report = verify(&opened.model, &sources, rw, &out_model, &reopened)
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing written", out.display()))?;
    drop(reopened);
    // tempfile creates files readable by the owner only; give the output the usual mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(out)
        .map_err(|e| anyhow::anyhow!("{}: cannot rename into place: {}", out.display(), e.error))?;

    let converted = rw
        .tensors
        .iter()
        .filter(|t| t.source == TensorSource::Convert)
        .count();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} tensors: {} copied byte for byte, {converted} converted)",
        out.display(),
        rw.tensors.len(),
        rw.tensors.len() - converted
    );
    println!(
        "read {} bytes, wrote {} bytes in {:.2}s ({:.2}s writing, {:.2}s verifying)",
        totals.bytes_read,
        totals.bytes_written,
        secs,
        (written_at - started).as_secs_f64(),
        written_at.elapsed().as_secs_f64()
    );
    let mut verified = format!(
        "verified: {} tensors hash-identical to the input",
        report.tensors_hashed
    );
    if report.tensors_compared > 0 {
        verified.push_str(&format!(
            ", {} converted tensors within bounds (worst relative RMS difference {:.2e} in {})",
            report.tensors_compared,
            report.worst_relative_rms,
            report.worst_tensor.as_deref().unwrap_or("?")
        ));
    }
    println!("{verified}");
    std::io::stdout().flush().ok();
    Ok(totals.bytes_written)
}

/// Hugging Face checkpoints: dequantize into a new directory of dense safetensors shards.
mod hf {
    use std::io::BufWriter;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use anyhow::{bail, Context, Result};
    use quantdoc_core::dtype::Dtype;
    use quantdoc_core::load::{load, Input};
    use quantdoc_core::repair::hf_plan::{
        clean_config, execute_shard, plan_hf_repair, verify_shard, HfRewrite,
    };
    use quantdoc_core::repair::TensorSource;

    use super::{print_finding, Args};
    use crate::open::Opened;
    use crate::source::FileSource;

    /// "5GB", "500MB", "2GiB", "1000000" -> bytes.
    pub fn parse_size(s: &str) -> Result<u64> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num
            .parse()
            .with_context(|| format!("--max-shard-size {s:?}: not a size"))?;
        let mult: f64 = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1.0,
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "KIB" => 1024.0,
            "MIB" => 1024.0 * 1024.0,
            "GIB" => 1024.0 * 1024.0 * 1024.0,
            other => bail!(
                "--max-shard-size {s:?}: unknown unit {other:?} (B, KB, MB, GB, KiB, MiB, GiB)"
            ),
        };
        let v = n * mult;
        // Also refuses NaN.
        if v.is_nan() || v < 1.0 {
            bail!("--max-shard-size {s:?} must be at least one byte");
        }
        Ok(v as u64)
    }

    fn parse_dtype(s: &str) -> Result<Dtype> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "f16" | "float16" | "fp16" => Dtype::F16,
            "bf16" | "bfloat16" => Dtype::BF16,
            "f32" | "float32" | "fp32" => Dtype::F32,
            _ => bail!("--dtype {s:?}: choose f16, bf16 or f32"),
        })
    }

    /// Files that describe the weights being replaced, and so are not copied.
    fn is_weight_or_quant_file(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        n.ends_with(".safetensors")
            || n.ends_with(".safetensors.index.json")
            || n.ends_with(".bin")
            || n.ends_with(".pt")
            || n.ends_with(".pth")
            || n.ends_with(".gguf")
            || n.ends_with(".ckpt")
            || n == "config.json"
            || n == "quantization_config.json"
            || n == "quant_config.json"
            || n.starts_with('.')
    }

    pub fn run(args: &Args, opened: &Opened) -> Result<i32> {
        let dtype = args.dtype.as_deref().map(parse_dtype).transpose()?;
        let max = parse_size(&args.max_shard_size)?;
        let rw = plan_hf_repair(&opened.model, dtype, max)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.path.display()))?;
        let src_dir = if args.path.is_dir() {
            args.path.clone()
        } else {
            args.path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        let config = read_config(&src_dir)?;
        let (config, config_fixes) = match config {
            Some(c) => {
                let (c, f) = clean_config(c, rw.dtype);
                (Some(c), f)
            }
            None => (None, Vec::new()),
        };
        print_plan(&rw, &config_fixes);
        let out = match super::gate(args, rw.blocking.len(), "", "OUT_DIR")? {
            super::Gate::Stop(code) => return Ok(code),
            super::Gate::Write(out) => out,
        };
        write_checkpoint(opened, &rw, &src_dir, config, out)?;
        Ok(0)
    }

    fn read_config(dir: &Path) -> Result<Option<serde_json::Value>> {
        let p = dir.join("config.json");
        if !p.is_file() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        let v = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", p.display()))?;
        Ok(Some(v))
    }

    fn print_plan(rw: &HfRewrite, config_fixes: &[quantdoc_core::repair::Fix]) {
        println!("plan:");
        for f in rw.fixes.iter().chain(config_fixes) {
            let tensor = f
                .tensor
                .as_ref()
                .map(|t| format!("{t}: "))
                .unwrap_or_default();
            if f.code.is_empty() {
                println!("  - {tensor}{}", f.action);
            } else {
                println!("  fix [{}] {tensor}{}", f.code, f.action);
            }
        }
        let copied = rw
            .tensors
            .iter()
            .filter(|t| t.source == TensorSource::Copy)
            .count();
        println!(
            "  - copy {copied} dense tensors byte for byte; write {} shard(s)",
            rw.shards.len()
        );
        if !rw.blocking.is_empty() {
            println!("blocking:");
            for f in &rw.blocking {
                print_finding("!", f);
            }
        }
    }

    fn write_checkpoint(
        opened: &Opened,
        rw: &HfRewrite,
        src_dir: &Path,
        config: Option<serde_json::Value>,
        out: &Path,
    ) -> Result<()> {
        let started = Instant::now();
        if out.exists() {
            let empty = out.is_dir()
                && std::fs::read_dir(out)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            if !empty {
                bail!(
                    "{}: exists and is not an empty directory; choose a new output directory",
                    out.display()
                );
            }
        }
        let parent = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "out".into());
        // Removed on drop: any error below leaves nothing behind.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempdir_in(&parent)
            .with_context(|| {
                format!("{}: cannot create a temporary directory", parent.display())
            })?;
        let sources = opened.sources();
        let (mut read, mut written, mut hashed, mut compared) = (0u64, 0u64, 0usize, 0usize);
        for s in 0..rw.shards.len() {
            let plan = rw.shard_plan(s).map_err(|e| anyhow::anyhow!("{e}"))?;
            let path = tmp.path().join(rw.shard_name(s));
            let file = std::fs::File::create(&path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
            let w = BufWriter::with_capacity(8 << 20, file);
            let (w, totals) = execute_shard(&opened.model, &sources, rw, s, &plan, w)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", rw.shard_name(s)))?;
            let file = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("writing {}: {}", rw.shard_name(s), e.error()))?;
            file.sync_all()?;
            read += totals.bytes_read;
            written += totals.bytes_written;
            let src = FileSource::open(&path)?;
            let model = load(&[Input {
                path: path.display().to_string(),
                source: &src,
            }])
            .map_err(|e| anyhow::anyhow!("the output cannot be read back: {e}"))?;
            let (h, c) = verify_shard(&opened.model, &sources, rw, s, &model, &src)
                .map_err(|e| anyhow::anyhow!("{}: {e}; nothing written", rw.shard_name(s)))?;
            hashed += h;
            compared += c;
            println!("  {} verified", rw.shard_name(s));
        }
        if rw.shards.len() > 1 {
            let idx = rw.index_json().map_err(|e| anyhow::anyhow!("{e}"))?;
            std::fs::write(
                tmp.path().join("model.safetensors.index.json"),
                serde_json::to_string_pretty(&idx)?,
            )?;
        }
        if let Some(c) = config {
            std::fs::write(
                tmp.path().join("config.json"),
                serde_json::to_string_pretty(&c)?,
            )?;
        }
        let mut copied_files = Vec::new();
        for e in std::fs::read_dir(src_dir)? {
            let e = e?;
            let fname = e.file_name().to_string_lossy().to_string();
            if !e.file_type()?.is_file() || is_weight_or_quant_file(&fname) {
                continue;
            }
            std::fs::copy(e.path(), tmp.path().join(&fname))
                .with_context(|| format!("{}: cannot copy", e.path().display()))?;
            copied_files.push(fname);
        }
        if out.exists() {
            std::fs::remove_dir(out).with_context(|| {
                format!("{}: cannot replace the empty directory", out.display())
            })?;
        }
        std::fs::rename(tmp.path(), out)
            .with_context(|| format!("{}: cannot rename into place", out.display()))?;
        copied_files.sort();
        println!(
            "wrote {} ({} tensors in {} shard(s); also copied {})",
            out.display(),
            rw.tensors.len(),
            rw.shards.len(),
            if copied_files.is_empty() {
                "no other files".to_string()
            } else {
                copied_files.join(", ")
            }
        );
        println!(
            "read {read} bytes, wrote {written} bytes in {:.2}s",
            started.elapsed().as_secs_f64()
        );
        println!(
            "verified: {hashed} tensors hash-identical to the input, {compared} dequantized tensors equal to the source values rounded to {}",
            rw.dtype
        );
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::parse_size;

        #[test]
        fn sizes() {
            assert_eq!(parse_size("5GB").unwrap(), 5_000_000_000);
            assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
            assert_eq!(parse_size("100").unwrap(), 100);
            assert!(parse_size("5XB").is_err());
            assert!(parse_size("0").is_err());
        }
    }
}
