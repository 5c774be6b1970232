//! quantdoc-core: the sans-IO heart of quantdoc.
//!
//! Reads model files through [`source::ByteSource`], builds one [`model::Model`] for GGUF
//! and safetensors alike, decodes tensors with the [`kernels`], and runs the rules that
//! turn layout and statistics into [`finding::Finding`]s.

pub mod dtype;
pub mod encoding;
pub mod error;
pub mod finding;
pub mod ggml;
pub mod gguf;
pub mod kernels;
pub mod load;
pub mod meta;
pub mod model;
pub mod report;
pub mod rules;
pub mod safetensors;
pub mod source;

#[cfg(test)]
pub(crate) mod testutil;
