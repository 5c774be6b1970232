//! Hugging Face checkpoints: config.json, grouping of stored tensors into logical tensors,
//! and the decoders of the quantization formats found in safetensors files (bitsandbytes,
//! MLX, gpt-oss MXFP4, FP8, GPTQ, AWQ).

pub mod arch;
pub mod bnb;
pub mod config;
pub mod fp8;
pub mod gptoss;
pub mod gptq;
pub mod group;
pub mod mlx;
pub mod parts;
mod util;

pub use group::{group, Grouping};

#[cfg(test)]
mod fixture_tests;

#[cfg(test)]
mod format_tests;
