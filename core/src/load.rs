//! Entry point: turn a set of input files into one `Model`.

use crate::error::LoadError;
use crate::model::Model;
use crate::source::ByteSource;

/// One input file: its path (for messages and file-name conventions) and its bytes.
pub struct Input<'a> {
    pub path: String,
    pub source: &'a dyn ByteSource,
}

/// What kind of file an input is, from its magic bytes and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Gguf,
    Safetensors,
    /// `model.safetensors.index.json`
    SafetensorsIndex,
    /// config.json, quantization_config.json, tokenizer files, ...
    Json,
    Other,
}

pub fn file_kind(path: &str, source: &dyn ByteSource) -> FileKind {
    let mut magic = [0u8; 4];
    if source.len() >= 4 && source.read_exact_at(0, &mut magic).is_ok() && &magic == b"GGUF" {
        return FileKind::Gguf;
    }
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if name.ends_with(".gguf") {
        // A GGUF file whose magic is wrong: let the GGUF reader say what is wrong.
        return FileKind::Gguf;
    }
    if name.ends_with(".safetensors.index.json") {
        return FileKind::SafetensorsIndex;
    }
    if name.ends_with(".safetensors") {
        return FileKind::Safetensors;
    }
    if name.ends_with(".json") {
        return FileKind::Json;
    }
    FileKind::Other
}

/// Load a model from its files: one GGUF file (or the shards of a split set), or the
/// safetensors files of a checkpoint with their index and JSON side files.
/// `Model::files[i]` corresponds to `inputs[i]`.
pub fn load(inputs: &[Input<'_>]) -> Result<Model, LoadError> {
    let first = inputs
        .first()
        .ok_or_else(|| LoadError::new("(no input)", None, "input", "no file given"))?;
    let kinds: Vec<FileKind> = inputs
        .iter()
        .map(|i| file_kind(&i.path, i.source))
        .collect();
    if kinds.contains(&FileKind::Gguf) {
        if let Some(bad) = kinds.iter().position(|k| *k != FileKind::Gguf) {
            return Err(LoadError::new(
                &inputs[bad].path,
                None,
                "input",
                "cannot mix GGUF files with other files in one model",
            ));
        }
        return crate::gguf::load(inputs);
    }
    if kinds
        .iter()
        .any(|k| matches!(k, FileKind::Safetensors | FileKind::SafetensorsIndex))
    {
        return crate::safetensors::load(inputs);
    }
    Err(LoadError::new(
        &first.path,
        Some(0),
        "magic",
        "not a model file: expected a GGUF file (magic \"GGUF\") or .safetensors files",
    ))
}
