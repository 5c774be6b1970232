//! Errors that stop a file from being read at all. Problems that still let the file be
//! read are findings, not errors.

/// A file that cannot be read as a model: names the file, the byte offset and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {}{field}: {message}", offset.map(|o| format!("offset {o}: ")).unwrap_or_default())]
pub struct LoadError {
    pub path: String,
    pub offset: Option<u64>,
    pub field: String,
    pub message: String,
}

impl LoadError {
    pub fn new(path: &str, offset: Option<u64>, field: &str, message: impl Into<String>) -> Self {
        LoadError {
            path: path.to_string(),
            offset,
            field: field.to_string(),
            message: message.into(),
        }
    }
}
