//! quantdoc-core: the sans-IO heart of quantdoc.
//!
//! Reads model files through [`source::ByteSource`], builds one [`model::Model`] for GGUF
//! and safetensors alike, decodes tensors with the [`kernels`], and runs the rules that
//! turn layout and statistics into [`finding::Finding`]s.

pub mod convert;
pub mod dtype;
pub mod encoding;
pub mod error;
pub mod finding;
pub mod ggml;
pub mod gguf;
pub mod hf;
pub mod kernels;
pub mod load;
pub mod meta;
pub mod model;
pub mod quantize;
pub mod repair;
pub mod report;
pub mod rules;
pub mod safetensors;
pub mod scan;
pub mod source;
pub mod stats;
pub mod write;

#[cfg(test)]
pub(crate) mod testutil;
