//! Native byte sources: mmap where possible, pread otherwise (pipes, special files, or a
//! mapping the OS refuses).

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use quantdoc_core::source::{check_range, ByteSource, SourceError};

pub enum FileSource {
    Mapped(Mmap),
    Pread { file: File, len: u64 },
}

impl FileSource {
    /// Open read-only. The file is never written through this handle.
    pub fn open(path: &Path) -> std::io::Result<FileSource> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(FileSource::Pread { file, len });
        }
        // SAFETY: the map is read-only; quantdoc never writes to its inputs. Another process
        // truncating the file while it is mapped could fault, as with every mmap reader.
        match unsafe { Mmap::map(&file) } {
            Ok(map) => {
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                Ok(FileSource::Mapped(map))
            }
            Err(_) => Ok(FileSource::Pread { file, len }),
        }
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        match self {
            FileSource::Mapped(m) => m.len() as u64,
            FileSource::Pread { len, .. } => *len,
        }
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
        check_range(offset, buf.len() as u64, self.len())?;
        match self {
            FileSource::Mapped(m) => {
                let start = offset as usize;
                buf.copy_from_slice(&m[start..start + buf.len()]);
                Ok(())
            }
            FileSource::Pread { file, .. } => read_at(file, offset, buf),
        }
    }

    fn borrow_at(&self, offset: u64, len: usize) -> Option<&[u8]> {
        match self {
            FileSource::Mapped(m) => {
                let start = usize::try_from(offset).ok()?;
                m.get(start..start.checked_add(len)?)
            }
            FileSource::Pread { .. } => None,
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
        .map_err(|e| SourceError::Io {
            offset,
            message: e.to_string(),
        })
}

#[cfg(not(unix))]
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> Result<(), SourceError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(buf))
        .map_err(|e| SourceError::Io {
            offset,
            message: e.to_string(),
        })
}
