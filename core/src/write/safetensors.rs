//! safetensors writer: an 8-byte header length, the JSON header (space-padded to a multiple
//! of 8, as the reference library does), then the tensors back to back in header order.

use std::collections::BTreeMap;
use std::io::Write;

use super::WriteError;
use crate::dtype::Dtype;

#[derive(Debug, Clone, PartialEq)]
pub struct StTensor {
    pub name: String,
    pub dtype: Dtype,
    /// Row-major shape, outermost first.
    pub shape: Vec<u64>,
}

impl StTensor {
    pub fn nbytes(&self) -> Result<u64, WriteError> {
        self.shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| self.dtype.bytes_for(n))
            .ok_or_else(|| {
                WriteError::invalid(format!(
                    "tensor {}: {:?} elements of {} do not fill whole bytes",
                    self.name, self.shape, self.dtype
                ))
            })
    }
}

/// Header and offsets of a safetensors file.
#[derive(Debug, Clone)]
pub struct SafetensorsPlan {
    header: Vec<u8>,
    tensors: Vec<StTensor>,
    sizes: Vec<u64>,
    total: u64,
}

impl SafetensorsPlan {
    pub fn new(
        tensors: &[StTensor],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, WriteError> {
        let mut map = serde_json::Map::new();
        if !metadata.is_empty() {
            map.insert(
                "__metadata__".into(),
                serde_json::to_value(metadata).expect("string map serializes"),
            );
        }
        let mut off = 0u64;
        let mut sizes = Vec::with_capacity(tensors.len());
        for t in tensors {
            if t.name == "__metadata__" || map.contains_key(&t.name) {
                return Err(WriteError::invalid(format!(
                    "tensor name {} is reserved or appears twice",
                    t.name
                )));
            }
            let n = t.nbytes()?;
            map.insert(
                t.name.clone(),
                serde_json::json!({
                    "dtype": t.dtype.name(),
                    "shape": t.shape,
                    "data_offsets": [off, off + n],
                }),
            );
            sizes.push(n);
            off += n;
        }
        // serde_json's Map keeps keys sorted, which is also what the reference writer does
        // with the header (offsets still follow `tensors` order).
        let mut json = serde_json::to_vec(&serde_json::Value::Object(map))
            .map_err(|e| WriteError::invalid(e.to_string()))?;
        let padded = json.len().next_multiple_of(8);
        json.resize(padded, b' ');
        let mut header = Vec::with_capacity(8 + json.len());
        header.extend_from_slice(&(json.len() as u64).to_le_bytes());
        header.extend_from_slice(&json);
        Ok(SafetensorsPlan {
            total: header.len() as u64 + off,
            header,
            tensors: tensors.to_vec(),
            sizes,
        })
    }

    pub fn header(&self) -> &[u8] {
        &self.header
    }

    pub fn tensors(&self) -> &[StTensor] {
        &self.tensors
    }

    pub fn nbytes(&self, i: usize) -> u64 {
        self.sizes[i]
    }

    pub fn total_len(&self) -> u64 {
        self.total
    }
}

/// Write a planned file; `fill` must write exactly each tensor's bytes into the sink.
pub fn write_safetensors<W: Write>(
    plan: &SafetensorsPlan,
    mut w: W,
    mut fill: impl FnMut(
        usize,
        &StTensor,
        &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError>,
) -> Result<W, WriteError> {
    w.write_all(&plan.header)?;
    for (i, t) in plan.tensors.iter().enumerate() {
        let want = plan.sizes[i];
        let mut got = 0u64;
        {
            let mut sink = |b: &[u8]| -> Result<(), WriteError> {
                got += b.len() as u64;
                if got > want {
                    return Err(WriteError::invalid(format!(
                        "tensor {} gets more than its {want} bytes",
                        t.name
                    )));
                }
                w.write_all(b)?;
                Ok(())
            };
            fill(i, t, &mut sink)?;
        }
        if got != want {
            return Err(WriteError::invalid(format!(
                "tensor {} got {got} of its {want} bytes",
                t.name
            )));
        }
    }
    w.flush()?;
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_and_offsets_contiguous() {
        let ts = vec![
            StTensor {
                name: "b".into(),
                dtype: Dtype::F16,
                shape: vec![3],
            },
            StTensor {
                name: "a".into(),
                dtype: Dtype::F32,
                shape: vec![2, 2],
            },
        ];
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let plan = SafetensorsPlan::new(&ts, &meta).unwrap();
        let out = write_safetensors(&plan, Vec::new(), |i, _, sink| {
            sink(&vec![i as u8 + 1; plan.nbytes(i) as usize])
        })
        .unwrap();
        let n = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let h: serde_json::Value = serde_json::from_slice(&out[8..8 + n]).unwrap();
        assert_eq!(h["b"]["data_offsets"], serde_json::json!([0, 6]));
        assert_eq!(h["a"]["data_offsets"], serde_json::json!([6, 22]));
        assert_eq!(h["__metadata__"]["format"], "pt");
        assert_eq!(out.len(), 8 + n + 22);
        assert_eq!(&out[8 + n..8 + n + 6], &[1; 6]);

        let short = write_safetensors(&plan, Vec::new(), |_, _, sink| sink(&[0; 2]));
        assert!(short.is_err());
    }
}
