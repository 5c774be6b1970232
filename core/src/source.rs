//! Random-access byte sources: the only way the core reads a file.
//!
//! The core never opens files. Native code backs a source with mmap or pread, the browser
//! with `Blob.slice` + `FileReaderSync` in a worker, tests with a byte slice.

use std::fmt;

/// Why a read failed. Reading past the end is reported as `OutOfRange`, not as I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("read of {len} bytes at offset {offset} goes past the end of the file ({size} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("I/O error at offset {offset}: {message}")]
    Io { offset: u64, message: String },
}

/// A random-access, read-only view of one file.
pub trait ByteSource {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError>;

    /// Borrow bytes without copying, when the backing store allows it (mmap, slices).
    fn borrow_at(&self, _offset: u64, _len: usize) -> Option<&[u8]> {
        None
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Check that `offset..offset+len` lies within a source of `size` bytes.
pub fn check_range(offset: u64, len: u64, size: u64) -> Result<(), SourceError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(SourceError::OutOfRange { offset, len, size }),
    }
}

/// Read `len` bytes into a new buffer. The length is checked against the source size before
/// anything is allocated, so an untrusted length cannot cause a huge allocation.
pub fn read_vec<S: ByteSource + ?Sized>(
    src: &S,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, SourceError> {
    check_range(offset, len, src.len())?;
    let mut buf = vec![0u8; len as usize];
    src.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

/// Bytes at a range, borrowed when the source allows it and copied into `scratch` otherwise.
pub fn bytes_at<'a, S: ByteSource + ?Sized>(
    src: &'a S,
    offset: u64,
    len: usize,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], SourceError> {
    check_range(offset, len as u64, src.len())?;
    if let Some(b) = src.borrow_at(offset, len) {
        return Ok(b);
    }
    scratch.clear();
    scratch.resize(len, 0);
    src.read_exact_at(offset, scratch)?;
    Ok(&scratch[..])
}

/// A source over bytes in memory.
#[derive(Clone)]
pub struct SliceSource<B: AsRef<[u8]>> {
    bytes: B,
}

impl<B: AsRef<[u8]>> SliceSource<B> {
    pub fn new(bytes: B) -> Self {
        Self { bytes }
    }
}

impl<B: AsRef<[u8]>> fmt::Debug for SliceSource<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SliceSource({} bytes)", self.bytes.as_ref().len())
    }
}

impl<B: AsRef<[u8]>> ByteSource for SliceSource<B> {
    fn len(&self) -> u64 {
        self.bytes.as_ref().len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        let b = self
            .borrow_at(offset, buf.len())
            .ok_or(SourceError::OutOfRange {
                offset,
                len: buf.len() as u64,
                size: self.len(),
            })?;
        buf.copy_from_slice(b);
        Ok(())
    }

    fn borrow_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let bytes = self.bytes.as_ref();
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        bytes.get(start..end)
    }
}

impl<T: ByteSource + ?Sized> ByteSource for &T {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        (**self).read_exact_at(offset, buf)
    }
    fn borrow_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        (**self).borrow_at(offset, len)
    }
}

impl<T: ByteSource + ?Sized> ByteSource for Box<T> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        (**self).read_exact_at(offset, buf)
    }
    fn borrow_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        (**self).borrow_at(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_source_reads_and_refuses_out_of_range() {
        let s = SliceSource::new(vec![1u8, 2, 3, 4]);
        let mut b = [0u8; 2];
        s.read_exact_at(2, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        assert!(matches!(
            s.read_exact_at(3, &mut b),
            Err(SourceError::OutOfRange {
                offset: 3,
                len: 2,
                size: 4
            })
        ));
        assert!(read_vec(&s, u64::MAX, 2).is_err());
    }

    #[test]
    fn read_vec_checks_length_before_allocating() {
        let s = SliceSource::new(vec![0u8; 8]);
        assert!(read_vec(&s, 0, u64::MAX / 2).is_err());
        assert_eq!(read_vec(&s, 4, 4).unwrap().len(), 4);
    }
}
