//! quantdoc in the browser. The page (`app`) only renders; the core runs in a coordinator
//! worker and a pool of scan workers (`worker`), which read the dropped files through
//! `BlobSource`. Everything not tied to the browser is plain Rust and tested natively.

pub mod dropped;
pub mod format;
pub mod protocol;
pub mod scan_local;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod blob_source;
#[cfg(target_arch = "wasm32")]
pub mod blob_stream;
#[cfg(target_arch = "wasm32")]
pub mod worker;
