//! `ByteSource` over a browser `Blob` (a dropped `File`), read with `Blob.slice` and
//! `FileReaderSync`. Only a worker may read synchronously, which is exactly where the core
//! runs; each read copies just the requested range, so the file is never held whole.

use js_sys::Uint8Array;
use quantdoc_core::source::{check_range, ByteSource, SourceError};
use web_sys::{Blob, FileReaderSync};

pub struct BlobSource {
    blob: Blob,
    reader: FileReaderSync,
    size: u64,
}

impl BlobSource {
    pub fn new(blob: Blob) -> Result<Self, String> {
        let reader = FileReaderSync::new()
            .map_err(|e| format!("FileReaderSync is not available here: {e:?}"))?;
        let size = blob.size() as u64;
        Ok(BlobSource { blob, reader, size })
    }
}

impl ByteSource for BlobSource {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_range(offset, buf.len() as u64, self.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        let io = |message: String| SourceError::Io { offset, message };
        // f64 holds byte offsets exactly up to 2^53, far beyond any file.
        let slice = self
            .blob
            .slice_with_f64_and_f64(offset as f64, (offset + buf.len() as u64) as f64)
            .map_err(|e| io(format!("Blob.slice failed: {e:?}")))?;
        let ab = self
            .reader
            .read_as_array_buffer(&slice)
            .map_err(|e| io(format!("the browser could not read the file: {e:?}")))?;
        let bytes = Uint8Array::new(&ab);
        if bytes.length() as usize != buf.len() {
            return Err(io(format!(
                "short read: {} of {} bytes (was the file changed or removed?)",
                bytes.length(),
                buf.len()
            )));
        }
        bytes.copy_to(buf);
        Ok(())
    }
}
