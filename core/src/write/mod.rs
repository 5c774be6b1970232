//! Writers: GGUF and safetensors files, streamed tensor by tensor.
//!
//! The writers never hold a model in memory: the header is built from tensor descriptions
//! (name, shape, type), then tensor bytes are pushed in order, in chunks of any size, into
//! any `std::io::Write`. Each writer checks that exactly the declared bytes arrive.

pub mod gguf;
pub mod safetensors;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Invalid(String),
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

impl WriteError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        WriteError::Invalid(msg.into())
    }
}
