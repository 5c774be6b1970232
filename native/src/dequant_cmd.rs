//! `quantdoc dequant`: one tensor as raw little-endian f32, streamed chunk by chunk.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use quantdoc_core::encoding::{granule, read_and_decode};

use crate::open::open_model;

/// Values decoded per chunk: bounded memory whatever the tensor size.
const CHUNK_VALUES: u64 = 1 << 22;

pub fn run(path: &Path, tensor: &str, out: &Path) -> Result<ExitCode> {
    let opened = open_model(path)?;
    let model = &opened.model;
    let Some(t) = model.tensor(tensor) else {
        let close: Vec<&str> = model
            .tensors
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| n.contains(tensor) || tensor.contains(*n))
            .take(5)
            .collect();
        bail!(
            "{}: no tensor named {tensor:?}{}",
            path.display(),
            if close.is_empty() {
                String::new()
            } else {
                format!(" (did you mean {}?)", close.join(", "))
            }
        );
    };
    let g = granule(t).map_err(|e| anyhow::anyhow!("{tensor}: {e}"))?;
    let n = t.n_elements();
    let chunk = CHUNK_VALUES.div_ceil(g) * g;
    let sources = opened.sources();
    let tmp = crate::demo::temp_path(out);
    let result = (|| -> Result<()> {
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("{}: cannot create", tmp.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut buf = vec![0f32; chunk.min(n) as usize];
        let mut start = 0u64;
        while start < n {
            let len = chunk.min(n - start) as usize;
            read_and_decode(model, t, &sources, start, &mut buf[..len])
                .map_err(|e| anyhow::anyhow!("{tensor}: {e}"))?;
            let mut bytes = Vec::with_capacity(len * 4);
            for v in &buf[..len] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            w.write_all(&bytes)?;
            start += len as u64;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, out).with_context(|| format!("{}: cannot write", out.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    eprintln!(
        "wrote {} ({} values of {} as f32, shape {:?})",
        out.display(),
        n,
        t.encoding.label(),
        t.shape
    );
    Ok(ExitCode::SUCCESS)
}
