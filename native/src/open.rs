//! Turning what the user named (a file, a shard, an index, a directory) into the files of
//! one model.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use quantdoc_core::load::{load, Input};
use quantdoc_core::model::Model;
use quantdoc_core::report::{header_findings, header_fingerprint, Report, ReportJson};

use crate::source::FileSource;

/// A model opened from disk: its files (mapped) and the parsed model.
pub struct Opened {
    /// The path as the user gave it.
    pub named: PathBuf,
    pub paths: Vec<PathBuf>,
    pub sources: Vec<FileSource>,
    pub model: Model,
}

impl Opened {
    /// sha256 of the header bytes of every file.
    pub fn fingerprint(&self) -> Result<String> {
        header_fingerprint(&self.model, &self.sources())
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.paths[0].display()))
    }

    /// The report with the header findings, named as the user named the model (a
    /// directory, an index, a shard) rather than by its first file. Its `metadata` map is
    /// left empty: text output prints metadata from the model, and [`Opened::print_json`]
    /// writes it straight from the model.
    pub fn header_report(&self) -> Result<Report> {
        let mut report = Report::without_metadata(
            &self.model,
            header_findings(&self.model),
            self.fingerprint()?,
        );
        self.name_report(&mut report);
        Ok(report)
    }

    /// Print `report` as pretty JSON (docs/json.md) with the model's metadata, written
    /// straight to stdout.
    pub fn print_json(&self, report: &Report) -> Result<()> {
        crate::json_out::print_pretty(&ReportJson {
            report,
            metadata: &self.model.metadata,
        })
    }

    pub fn name_report(&self, report: &mut Report) {
        report.path = self.named.display().to_string();
    }

    pub fn sources(&self) -> Vec<&FileSource> {
        self.sources.iter().collect()
    }
}

/// Which files make up the model the user named.
pub fn model_files(path: &Path) -> Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("{}: cannot open", path.display()))?;
    if meta.is_dir() {
        return directory_files(path);
    }
    let s = path.to_string_lossy();
    if s.ends_with(".safetensors.index.json") {
        return index_files(path);
    }
    if let Some(shards) = quantdoc_core::gguf::split::shard_paths(&s) {
        // Every sibling shard that exists; the core reports the missing ones.
        let present: Vec<PathBuf> = shards
            .into_iter()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .collect();
        if !present.is_empty() {
            return Ok(present);
        }
    }
    if s.ends_with(".safetensors") {
        // A lone shard or file: bring its config.json along when it sits next to it.
        let mut files = vec![path.to_path_buf()];
        if let Some(dir) = path.parent() {
            for side in [
                "config.json",
                "quantization_config.json",
                "quant_config.json",
            ] {
                let p = dir.join(side);
                if p.is_file() {
                    files.push(p);
                }
            }
        }
        return Ok(files);
    }
    Ok(vec![path.to_path_buf()])
}

fn directory_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list directory", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            n.ends_with(".safetensors") || n.ends_with(".json") || n.ends_with(".gguf")
        })
        .collect();
    files.sort();
    let ggufs: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .cloned()
        .collect();
    let has_st = files
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "safetensors"));
    if has_st {
        files.retain(|p| p.extension().is_some_and(|e| e != "gguf"));
        return Ok(files);
    }
    match ggufs.len() {
        0 => bail!(
            "{}: no .safetensors or .gguf files in this directory",
            dir.display()
        ),
        1 => Ok(ggufs),
        _ => {
            // One split set is one model; several unrelated GGUF files are not.
            let first = ggufs[0].to_string_lossy().to_string();
            match quantdoc_core::gguf::split::shard_paths(&first) {
                Some(_) => model_files(&ggufs[0]),
                None => bail!(
                    "{}: holds {} GGUF files; name the one to check",
                    dir.display(),
                    ggufs.len()
                ),
            }
        }
    }
}

fn index_files(index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index)
        .with_context(|| format!("{}: cannot read", index.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", index.display()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut shards: Vec<String> = json
        .get("weight_map")
        .and_then(|w| w.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    let mut files = vec![index.to_path_buf()];
    for s in shards {
        // Shard names come from the file: refuse paths that leave the directory.
        if s.contains('/') || s.contains('\\') || s.starts_with('.') {
            bail!(
                "{}: weight_map names a shard outside its directory: {s:?}",
                index.display()
            );
        }
        let p = dir.join(&s);
        if p.is_file() {
            files.push(p);
        }
    }
    for side in [
        "config.json",
        "quantization_config.json",
        "quant_config.json",
    ] {
        let p = dir.join(side);
        if p.is_file() {
            files.push(p);
        }
    }
    Ok(files)
}

/// Open and parse the model at `path`.
pub fn open_model(path: &Path) -> Result<Opened> {
    let paths = model_files(path)?;
    let mut sources = Vec::with_capacity(paths.len());
    for p in &paths {
        sources.push(FileSource::open(p).with_context(|| format!("{}: cannot open", p.display()))?);
    }
    let inputs: Vec<Input<'_>> = paths
        .iter()
        .zip(&sources)
        .map(|(p, s)| Input {
            path: p.display().to_string(),
            source: s,
        })
        .collect();
    let model = load(&inputs).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Opened {
        named: path.to_path_buf(),
        paths,
        sources,
        model,
    })
}
