//! GGUF: reader, layout analysis, split sets, writer.

use crate::error::LoadError;
use crate::load::Input;
use crate::model::Model;

pub fn load(inputs: &[Input<'_>]) -> Result<Model, LoadError> {
    Err(LoadError::new(&inputs[0].path, None, "format", "GGUF reader under construction"))
}
