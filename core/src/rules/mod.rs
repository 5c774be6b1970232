//! Rules: small functions from a model (and its statistics) to findings.

pub mod gguf_meta;
pub mod health;
pub mod hf;

use crate::finding::Finding;
use crate::model::Model;

/// Rules that need only the header (instant, any file size).
pub fn header_rules(model: &Model) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(gguf_meta::check(model));
    out.extend(hf::check(model));
    out.extend(health::check_header(model));
    out
}
