//! Write-to-temporary-then-rename, so a crash never leaves a file under its
//! final name that is not complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Suffix of in-progress files; anything with it is never a finished output.
pub const TMP_SUFFIX: &str = ".tmp";

/// A fresh temporary name for writing `path`: `.NAME.pPID-N.tmp` beside it,
/// unique to this process and call, so that two writers of one path (two
/// runs started on the same output) never share one temporary and
/// interleave their bytes in it: the last rename wins with a whole file.
pub fn tmp_path_for(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.p{}-{n}{TMP_SUFFIX}", std::process::id()))
}

/// The final name an in-progress file named `name` is written for:
/// `.NAME.pPID-N.tmp` (or `.NAME.tmp`, as earlier versions named them) →
/// `NAME`; `None` for anything else.
pub fn final_name_of_tmp(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(TMP_SUFFIX)?;
    let is_tag = |tag: &str| {
        tag.strip_prefix('p').and_then(|t| t.split_once('-')).is_some_and(|(pid, n)| {
            [pid, n].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    Some(match inner.rsplit_once('.') {
        Some((base, tag)) if is_tag(tag) => base,
        _ => inner,
    })
}

/// A file being written under its temporary name, hashed as it goes.
pub struct AtomicFile {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
    committed: bool,
}

/// What a committed file turned out to be.
#[derive(Debug, Clone)]
pub struct Committed {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl AtomicFile {
    pub fn create(final_path: impl Into<PathBuf>) -> Result<Self> {
        let final_path = final_path.into();
        let tmp_path = tmp_path_for(&final_path);
        let file = File::create(&tmp_path).map_err(Error::io(&tmp_path))?;
        Ok(AtomicFile {
            final_path,
            tmp_path,
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
            committed: false,
        })
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Flush, fsync, rename into place, fsync the directory.
    pub fn commit(mut self) -> Result<Committed> {
        self.out.flush().map_err(Error::io(&self.tmp_path))?;
        self.out.get_ref().sync_all().map_err(Error::io(&self.tmp_path))?;
        std::fs::rename(&self.tmp_path, &self.final_path).map_err(Error::io(&self.final_path))?;
        sync_parent(&self.final_path)?;
        self.committed = true;
        let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        Ok(Committed { path: self.final_path.clone(), bytes: self.bytes, sha256 })
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            // An error path: leave nothing behind. (A SIGKILL leaves the .tmp,
            // which readers ignore and the next run sweeps.)
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Write a whole small file (a manifest, a report) atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<Committed> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(Error::io(file.tmp_path.clone()))?;
    file.commit()
}

fn sync_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Directory fsync makes the rename durable; not all filesystems allow it.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// SHA-256 of a file on disk, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut file = File::open(path).map_err(Error::io(path))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(Error::io(path))?;
    Ok((bytes, hex(&hasher.finalize())))
}

/// SHA-256 of bytes in memory, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Remove in-progress files a killed run left in `dir`.
pub fn sweep_tmp_files(dir: &Path) -> Result<usize> {
    sweep_tmp_files_of(dir, |_| true)
}

/// Remove the in-progress files in `dir` whose final name satisfies
/// `owned` (a shard sweeps only its own: the others may be writing).
pub fn sweep_tmp_files_of(dir: &Path, owned: impl Fn(&str) -> bool) -> Result<usize> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::Io { path: dir.to_path_buf(), source: e }),
    };
    for entry in entries {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if final_name_of_tmp(&name).is_some_and(&owned) {
            remove_if_present(&entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Remove a file that may already be gone (another process, an earlier run).
pub fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io { path: path.to_path_buf(), source: e }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.parquet");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
            let names = names_in(dir.path());
            assert_eq!(names.len(), 1);
            assert_eq!(final_name_of_tmp(&names[0]), Some("a.parquet"), "{names:?}");
            assert!(!path.exists());
        }
        assert!(names_in(dir.path()).is_empty());
    }

    /// Two writers of one path each write their own temporary; the one
    /// that commits last leaves its whole file, never a mix of both.
    #[test]
    fn concurrent_writers_of_one_path_do_not_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut a = AtomicFile::create(&path).unwrap();
        let mut b = AtomicFile::create(&path).unwrap();
        a.write_all(&[b'a'; 3000]).unwrap();
        b.write_all(&[b'b'; 2000]).unwrap();
        a.write_all(b"end").unwrap();
        assert_eq!(names_in(dir.path()).len(), 2, "one temporary each");
        let committed_b = b.commit().unwrap();
        let committed_a = a.commit().unwrap();
        let mut want = vec![b'a'; 3000];
        want.extend_from_slice(b"end");
        assert_eq!(std::fs::read(&path).unwrap(), want);
        assert_eq!(sha256_file(&path).unwrap().1, committed_a.sha256);
        assert_ne!(committed_a.sha256, committed_b.sha256);
        assert_eq!(names_in(dir.path()), vec!["m.json"]);
    }

    #[test]
    fn temporaries_name_their_final_file() {
        let t = tmp_path_for(Path::new("/d/x.parquet"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(final_name_of_tmp(name), Some("x.parquet"));
        assert_ne!(tmp_path_for(Path::new("/d/x.parquet")), t, "a fresh name per call");
        assert_eq!(final_name_of_tmp(".x.parquet.tmp"), Some("x.parquet"), "earlier versions' name");
        assert_eq!(final_name_of_tmp(".run.2024-05.tmp"), Some("run.2024-05"), "a dated name is no tag");
        assert_eq!(final_name_of_tmp(".a.p12-3.tmp"), Some("a"));
        assert_eq!(final_name_of_tmp("x.parquet"), None);
        assert_eq!(final_name_of_tmp(".x.parquet"), None);
    }

    #[test]
    fn commit_renames_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let c = write_atomic(&path, b"abc").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(c.bytes, 3);
        assert_eq!(c.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sha256_file(&path).unwrap().1, c.sha256);
    }

    #[test]
    fn sweep_removes_only_tmp_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".x.parquet.tmp"), b"").unwrap();
        std::fs::write(tmp_path_for(&dir.path().join("y.parquet")), b"").unwrap();
        std::fs::write(tmp_path_for(&dir.path().join("z.parquet")), b"").unwrap();
        std::fs::write(dir.path().join("x.parquet"), b"").unwrap();
        assert_eq!(sweep_tmp_files_of(dir.path(), |name| name != "z.parquet").unwrap(), 2);
        assert_eq!(names_in(dir.path()).len(), 2, "x.parquet and z's temporary");
        assert_eq!(sweep_tmp_files(dir.path()).unwrap(), 1);
        assert_eq!(names_in(dir.path()), vec!["x.parquet"]);
    }
}
