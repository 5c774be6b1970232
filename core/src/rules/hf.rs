//! Diagnoses for Hugging Face checkpoints (quantization parts, configs, architecture).

use crate::finding::Finding;
use crate::model::Model;

pub fn check(_model: &Model) -> Vec<Finding> {
    Vec::new()
}
