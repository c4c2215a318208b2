//! A scratch file for the array data of a pickle read as a stream, so that
//! a file larger than memory can be converted: the pickle's structure stays
//! in memory, each large buffer goes to disk and is read back when needed.
//!
//! The file is anonymous (created unlinked where the platform allows), so
//! nothing is left behind when the process ends, however it ends.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Buffers smaller than this stay in memory by default: a spill read per
/// tiny array would cost more than it saves.
pub const DEFAULT_MIN_BYTES: usize = 4096;

pub struct Spill {
    file: Mutex<SpillFile>,
    min_bytes: usize,
}

struct SpillFile {
    file: File,
    /// Bytes written so far; the next buffer goes here.
    end: u64,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill").field("min_bytes", &self.min_bytes).finish_non_exhaustive()
    }
}

impl Spill {
    /// A spill file in `dir` that disappears when the last handle is dropped.
    pub fn in_dir(dir: &Path) -> std::io::Result<Arc<Self>> {
        Ok(Self::new(tempfile::tempfile_in(dir)?, DEFAULT_MIN_BYTES))
    }

    /// A spill over an open, empty, readable and writable file.
    pub fn new(file: File, min_bytes: usize) -> Arc<Self> {
        Arc::new(Spill { file: Mutex::new(SpillFile { file, end: 0 }), min_bytes })
    }

    /// The smallest buffer that goes to the file.
    pub fn min_bytes(&self) -> usize {
        self.min_bytes
    }

    /// Bytes held in the file.
    pub fn len(&self) -> u64 {
        self.lock().end
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpillFile> {
        // A panic while holding the lock leaves `end` at the last complete
        // buffer, so the file stays usable.
        self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies exactly `n` bytes from `src` to the file; fewer is `UnexpectedEof`.
    pub fn store(self: &Arc<Self>, src: &mut impl Read, n: usize) -> std::io::Result<SpilledBytes> {
        let mut guard = self.lock();
        let offset = guard.end;
        let file = &mut guard.file;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| std::io::Error::new(e.kind(), format!("writing the spill file: {e}")))?;
        let mut buf = vec![0u8; n.min(1 << 20)];
        let mut left = n;
        while left > 0 {
            let want = left.min(buf.len());
            let got = match src.read(&mut buf[..want]) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            // Said here, so a full disk is not taken for a damaged input.
            file.write_all(&buf[..got])
                .map_err(|e| std::io::Error::new(e.kind(), format!("writing the spill file: {e}")))?;
            left -= got;
        }
        guard.end = offset + n as u64;
        Ok(SpilledBytes { spill: self.clone(), offset, len: n })
    }
}

/// A buffer in a [`Spill`] file.
#[derive(Debug, Clone)]
pub struct SpilledBytes {
    spill: Arc<Spill>,
    offset: u64,
    len: usize,
}

impl PartialEq for SpilledBytes {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.spill, &other.spill) && self.offset == other.offset && self.len == other.len
    }
}

impl SpilledBytes {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the buffer back; its length was written, so the allocation is
    /// backed by data on disk.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; self.len];
        let mut guard = self.spill.lock();
        guard.file.seek(SeekFrom::Start(self.offset))?;
        guard.file.read_exact(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_round_trip_and_short_sources_fail() {
        let spill = Spill::new(tempfile::tempfile().unwrap(), 1);
        let a = spill.store(&mut &b"hello world"[..], 5).unwrap();
        let b = spill.store(&mut &[7u8; 3000][..], 3000).unwrap();
        assert_eq!(a.read().unwrap(), b"hello");
        assert_eq!(b.read().unwrap(), vec![7u8; 3000]);
        assert_eq!(spill.len(), 3005);
        let err = spill.store(&mut &b"abc"[..], 4).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        // A failed store leaves earlier buffers intact and the next one appends.
        let c = spill.store(&mut &b"xyz"[..], 3).unwrap();
        assert_eq!((a.read().unwrap(), c.read().unwrap()), (b"hello".to_vec(), b"xyz".to_vec()));
        assert_eq!(spill.len(), 3008);
    }
}
