//! Reading ranges of browser `Blob`s (the dropped `File`s) as streams: each range is the
//! `ReadableStream` of a `Blob.slice`, read with a BYOB reader into reusable JS buffers.
//!
//! Why streams and not `FileReaderSync` (which `blob_source.rs` still uses for headers):
//! measured in Chromium (docs/BENCHMARKS.md, `## Browser`), a stream reads a file at least
//! as fast as large `FileReaderSync` slices, without their cost: every `readAsArrayBuffer`
//! returns a fresh `ArrayBuffer` that lives until the worker's next garbage collection, and
//! with 32 MiB slices the renderer process grew by 478–655 MiB while reading a 1 GiB file.
//! A BYOB reader hands the same buffer back on every read.
//!
//! The stream only moves while the worker's event loop runs, so a scan worker reads and
//! computes in turn. A separate read-ahead worker that streamed into transferred buffers
//! was tried and gained nothing measurable (docs/BENCHMARKS.md, `## Browser`) while
//! adding a worker per scan worker, so there is none.

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use quantdoc_core::source::check_range;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, ReadableStreamByobReader};

use crate::scan_local::RunReader;

/// Size of the JS buffers streams read into.
pub const CHUNK: u32 = 2 << 20;

pub fn js_error(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// One range of one blob, being read in order.
pub struct StreamRange {
    reader: ReadableStreamByobReader,
    /// Bytes not yet read, and where the next one is (for messages).
    left: u64,
    at: u64,
}

impl StreamRange {
    /// Start reading `len` bytes of `blob` from `offset`. Fails when the range is not
    /// inside the blob.
    pub fn open(blob: &Blob, offset: u64, len: u64) -> Result<Self, String> {
        check_range(offset, len, blob.size() as u64).map_err(|e| e.to_string())?;
        // f64 holds byte offsets exactly up to 2^53, far beyond any file.
        let slice = blob
            .slice_with_f64_and_f64(offset as f64, (offset + len) as f64)
            .map_err(|e| format!("Blob.slice failed: {}", js_error(e)))?;
        let reader = ReadableStreamByobReader::new(&slice.stream())
            .map_err(|e| format!("this browser cannot stream a file: {}", js_error(e)))?;
        Ok(StreamRange {
            reader,
            left: len,
            at: offset,
        })
    }

    /// Fill the first `len` bytes of `buf` with the next bytes of the range. The stream
    /// takes the buffer while it reads (it is transferred); the one returned holds the
    /// bytes.
    pub async fn fill(&mut self, mut buf: ArrayBuffer, len: u32) -> Result<ArrayBuffer, String> {
        if len as u64 > self.left {
            return Err(format!("read past the end of the range at {}", self.at));
        }
        let mut filled = 0u32;
        while filled < len {
            let view = Uint8Array::new_with_byte_offset_and_length(&buf, filled, len - filled);
            let result = JsFuture::from(self.reader.read_with_array_buffer_view(&view))
                .await
                .map_err(|e| {
                    format!(
                        "the browser could not read the file at {}: {} (was it changed or removed?)",
                        self.at,
                        js_error(e)
                    )
                })?;
            let done = Reflect::get(&result, &"done".into())
                .map(|v| v.is_truthy())
                .unwrap_or(true);
            let value: Option<Uint8Array> = Reflect::get(&result, &"value".into())
                .ok()
                .and_then(|v| v.dyn_into().ok());
            let Some(value) = value else {
                return Err(format!("short read at {}", self.at));
            };
            buf = value.buffer();
            let n = value.length();
            if done || n == 0 {
                return Err(format!(
                    "short read at {}: the file ended early (was it changed or removed?)",
                    self.at
                ));
            }
            filled += n;
            self.at += n as u64;
            self.left -= n as u64;
        }
        Ok(buf)
    }

    /// Stop reading (nothing to wait for).
    pub fn cancel(self) {
        if self.left > 0 {
            let _ = self.reader.cancel();
        }
    }
}

/// [`RunReader`] over the model's files, read on the calling worker's thread.
pub struct BlobRuns {
    /// One per entry of `Model::files`.
    files: Vec<Blob>,
    open: Option<StreamRange>,
    chunk: Option<ArrayBuffer>,
}

impl BlobRuns {
    pub fn new(files: Vec<Blob>) -> Self {
        BlobRuns {
            files,
            open: None,
            chunk: None,
        }
    }
}

impl Drop for BlobRuns {
    fn drop(&mut self) {
        if let Some(r) = self.open.take() {
            r.cancel();
        }
    }
}

impl RunReader for BlobRuns {
    fn open(&mut self, file: usize, offset: u64, len: u64) -> Result<(), String> {
        if let Some(r) = self.open.take() {
            r.cancel();
        }
        let blob = self
            .files
            .get(file)
            .ok_or_else(|| format!("no file {file} was given"))?;
        self.open = Some(StreamRange::open(blob, offset, len)?);
        Ok(())
    }

    async fn next(&mut self, out: &mut [u8]) -> Result<(), String> {
        let Some(range) = self.open.as_mut() else {
            return Err("no run is open".into());
        };
        let mut done = 0usize;
        while done < out.len() {
            let n = (out.len() - done).min(CHUNK as usize);
            let buf = self.chunk.take().unwrap_or_else(|| ArrayBuffer::new(CHUNK));
            let buf = range.fill(buf, n as u32).await?;
            Uint8Array::new_with_byte_offset_and_length(&buf, 0, n as u32)
                .copy_to(&mut out[done..done + n]);
            self.chunk = Some(buf);
            done += n;
        }
        Ok(())
    }
}
