//! A buffered, bounds-checked reader over a `ByteSource`, for parsing headers piece by piece.

use crate::error::LoadError;
use crate::source::ByteSource;

const BUF: usize = 64 * 1024;

pub(crate) struct Cursor<'a> {
    src: &'a dyn ByteSource,
    path: &'a str,
    size: u64,
    pos: u64,
    /// The whole file, when the source can lend it (a memory map): read in place, no
    /// copies into `buf`.
    whole: Option<&'a [u8]>,
    buf: Vec<u8>,
    buf_start: u64,
    pub big_endian: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(src: &'a dyn ByteSource, path: &'a str) -> Self {
        let size = src.len();
        Cursor {
            src,
            path,
            size,
            pos: 0,
            whole: usize::try_from(size)
                .ok()
                .and_then(|n| src.borrow_at(0, n))
                .filter(|w| w.len() as u64 == size),
            buf: Vec::new(),
            buf_start: 0,
            big_endian: false,
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn remaining(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    pub fn err(&self, offset: u64, field: &str, message: impl Into<String>) -> LoadError {
        LoadError::new(self.path, Some(offset), field, message)
    }

    /// Fail unless `n` more bytes exist.
    pub fn need(&self, n: u64, field: &str) -> Result<(), LoadError> {
        if n > self.remaining() {
            return Err(self.err(
                self.pos,
                field,
                format!(
                    "needs {n} bytes but the file ends after {} (file size {})",
                    self.remaining(),
                    self.size
                ),
            ));
        }
        Ok(())
    }

    /// Borrow the next `n` bytes (n small enough to fit the buffer, or read directly).
    pub fn take(&mut self, n: usize, field: &str) -> Result<&[u8], LoadError> {
        self.need(n as u64, field)?;
        if let Some(whole) = self.whole {
            let start = self.pos as usize;
            self.pos += n as u64;
            return Ok(&whole[start..start + n]);
        }
        let in_buf = self.pos >= self.buf_start
            && self.pos + n as u64 <= self.buf_start + self.buf.len() as u64;
        if !in_buf {
            let want = (n.max(BUF) as u64).min(self.remaining()) as usize;
            self.buf.resize(want, 0);
            self.src
                .read_exact_at(self.pos, &mut self.buf)
                .map_err(|e| self.err(self.pos, field, e.to_string()))?;
            self.buf_start = self.pos;
        }
        let start = (self.pos - self.buf_start) as usize;
        self.pos += n as u64;
        Ok(&self.buf[start..start + n])
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], LoadError> {
        let be = self.big_endian;
        let b = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        if be {
            a.reverse();
        }
        Ok(a)
    }

    pub fn u8(&mut self, field: &str) -> Result<u8, LoadError> {
        Ok(self.take(1, field)?[0])
    }
    pub fn u16(&mut self, field: &str) -> Result<u16, LoadError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &str) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &str) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub fn f32(&mut self, field: &str) -> Result<f32, LoadError> {
        Ok(f32::from_le_bytes(self.array(field)?))
    }
    pub fn f64(&mut self, field: &str) -> Result<f64, LoadError> {
        Ok(f64::from_le_bytes(self.array(field)?))
    }

    /// The bytes from the current position that can be read without I/O (the rest of the
    /// file when it is lent whole, else the rest of the buffer; may be empty). Consume them
    /// with `advance`.
    pub fn window(&self) -> &[u8] {
        if let Some(whole) = self.whole {
            return &whole[self.pos as usize..];
        }
        let end = self.buf_start + self.buf.len() as u64;
        if self.pos >= self.buf_start && self.pos <= end {
            &self.buf[(self.pos - self.buf_start) as usize..]
        } else {
            &[]
        }
    }

    /// Move past `n` bytes of `window()`.
    pub fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.window().len());
        self.pos += n as u64;
    }

    /// Append the next `n` raw bytes to `out` (n checked against the file first, so `out`
    /// never grows by more than the file holds).
    pub fn append_to(&mut self, n: u64, out: &mut Vec<u8>, field: &str) -> Result<(), LoadError> {
        self.need(n, field)?;
        let n = usize::try_from(n).map_err(|_| self.err(self.pos, field, "length too large"))?;
        if n <= BUF || self.whole.is_some() {
            out.extend_from_slice(self.take(n, field)?);
            return Ok(());
        }
        let old = out.len();
        out.resize(old + n, 0);
        self.src
            .read_exact_at(self.pos, &mut out[old..])
            .map_err(|e| self.err(self.pos, field, e.to_string()))?;
        self.pos += n as u64;
        Ok(())
    }

    /// Read `n` raw bytes into a new Vec (n checked against the file first, as `append_to`).
    pub fn bytes(&mut self, n: u64, field: &str) -> Result<Vec<u8>, LoadError> {
        let mut v = Vec::new();
        self.append_to(n, &mut v, field)?;
        Ok(v)
    }
}
