//! ggml's tensor types.

pub mod types;
