//! Streaming readers that refuse anything that is not a finished shard of the
//! expected table and version.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::{ChunkReader, Length};

use crate::cameras::{read_camera_table, CameraRecord};
use crate::clips::SyntheticClips;
use crate::columns::check_schema;
use crate::error::{Error, Result};
use crate::frames::SourceFrames;
use crate::manifest::Manifest;
use crate::schema::{Table, META_TABLE, META_VERSION};
use crate::CAMERAS_FILE;

pub const DEFAULT_BATCH_ROWS: usize = 8_192;

/// One Parquet shard, read batch by batch.
pub struct ShardReader {
    path: PathBuf,
    rows: u64,
    inner: ParquetRecordBatchReader,
    /// Set after an error: a damaged file can make the Parquet reader fail
    /// on every call without advancing, so iteration ends at the first error.
    failed: bool,
}

/// Which table a Parquet file holds, from its metadata; errors if it is not ours.
pub fn table_of(path: &Path) -> Result<Table> {
    let builder = builder(path)?;
    let (name, _) = identity(path, &builder)?;
    Table::from_name(&name).ok_or_else(|| Error::WrongTable {
        path: path.to_path_buf(),
        expected: "a dak-pose table".into(),
        found: name,
    })
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<ShardFile>> {
    let file = File::open(path).map_err(Error::io(path))?;
    contain_panic(path, || ParquetRecordBatchReaderBuilder::try_new(ShardFile(file)))?
        .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })
}

/// A shard file as the Parquet reader sees it: as `File`'s own reader,
/// except that a read past the end fails instead of returning nothing.
/// The parquet crate skips unknown Thrift fields in page headers with
/// `io::copy`, which takes an early end as success; a damaged header that
/// declares a list of 2³¹ binary fields then made it skip each one at the
/// end of the file, minutes of empty reads (found by fuzzing).
pub(crate) struct ShardFile(File);

impl Length for ShardFile {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl ChunkReader for ShardFile {
    type T = EndIsError<std::io::BufReader<File>>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        self.0.get_read(start).map(EndIsError)
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        self.0.get_bytes(start, length)
    }
}

pub(crate) struct EndIsError<R>(R);

impl<R: std::io::Read> std::io::Read for EndIsError<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 if !buf.is_empty() => {
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "a page runs past the end of the file"))
            }
            n => Ok(n),
        }
    }
}

/// The Parquet decoder asserts on some malformed bytes (found by fuzzing,
/// e.g. an over-long varint in a damaged page); a damaged file must be an
/// error naming it, not a crash of the whole program.
fn contain_panic<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let what = panic_text(panic.as_ref()).unwrap_or("decoder failure");
        Error::Damaged { path: path.to_path_buf(), what: what.to_string() }
    })
}

/// A panic's message, when it has one (`panic!` with text, `expect`,
/// tch's unwraps).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied())
}

fn identity(path: &Path, builder: &ParquetRecordBatchReaderBuilder<ShardFile>) -> Result<(String, String)> {
    let from_kv = |key: &str| {
        builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let meta = builder.schema().metadata();
    let get = |key: &str| meta.get(key).cloned().or_else(|| from_kv(key));
    match (get(META_TABLE), get(META_VERSION)) {
        (Some(name), Some(version)) => Ok((name, version)),
        _ => Err(Error::NotAShard { path: path.to_path_buf() }),
    }
}

impl ShardReader {
    pub fn open(path: &Path, table: Table) -> Result<Self> {
        Self::open_with_batch_rows(path, table, DEFAULT_BATCH_ROWS)
    }

    pub fn open_with_batch_rows(path: &Path, table: Table, batch_rows: usize) -> Result<Self> {
        let builder = builder(path)?;
        let (name, version) = identity(path, &builder)?;
        if name != table.name() {
            return Err(Error::WrongTable { path: path.to_path_buf(), expected: table.name().into(), found: name });
        }
        // Version 1 is the first; a later version adds a migration step here.
        if version != table.version().to_string() {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                table: name,
                found: version,
                supported: table.version(),
            });
        }
        check_schema(path, &table.arrow_schema(), builder.schema())?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let inner = builder
            .with_batch_size(batch_rows)
            .build()
            .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })?;
        Ok(ShardReader { path: path.to_path_buf(), rows, inner, failed: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Row count from the footer.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn source_frames(self) -> impl Iterator<Item = Result<SourceFrames>> {
        let path = self.path.clone();
        self.map(move |b| b.and_then(|b| SourceFrames::from_batch(&path, &b)))
    }

    pub fn synthetic_clips(self) -> impl Iterator<Item = Result<SyntheticClips>> {
        let path = self.path.clone();
        self.map(move |b| b.and_then(|b| SyntheticClips::from_batch(&path, &b)))
    }
}

impl Iterator for ShardReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        // After a contained panic the decoder is never touched again.
        let item = match contain_panic(&self.path, || self.inner.next()) {
            Ok(next) => next?.map_err(|source| Error::Arrow { path: self.path.clone(), source }),
            Err(e) => Err(e),
        };
        self.failed = item.is_err();
        Some(item)
    }
}

/// How much of a shard directory to check when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// File sizes against the manifest (cheap; catches truncation).
    Sizes,
    /// Sizes and SHA-256 of every file (reads everything once).
    Checksums,
}

/// A finished shard directory.
#[derive(Debug, Clone)]
pub struct ShardSet {
    dir: PathBuf,
    manifest: Manifest,
}

impl ShardSet {
    pub fn open(dir: &Path, verify: Verify) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        manifest.verify(dir, verify == Verify::Checksums)?;
        Ok(ShardSet { dir: dir.to_path_buf(), manifest })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Main table of the directory.
    pub fn table(&self) -> Option<Table> {
        Table::from_name(&self.manifest.schema)
    }

    pub fn paths(&self, table: Table) -> Vec<PathBuf> {
        self.manifest.files_of(table).map(|f| self.dir.join(&f.path)).collect()
    }

    /// All source frames, file after file, batch by batch.
    pub fn source_frames(&self) -> impl Iterator<Item = Result<SourceFrames>> {
        self.paths(Table::SourceFrames).into_iter().flat_map(|p| match ShardReader::open(&p, Table::SourceFrames) {
            Ok(r) => Box::new(r.source_frames()) as Box<dyn Iterator<Item = _>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }

    pub fn synthetic_clips(&self) -> impl Iterator<Item = Result<SyntheticClips>> {
        self.paths(Table::SyntheticClips).into_iter().flat_map(|p| match ShardReader::open(&p, Table::SyntheticClips) {
            Ok(r) => Box::new(r.synthetic_clips()) as Box<dyn Iterator<Item = _>>,
            Err(e) => Box::new(std::iter::once(Err(e))),
        })
    }

    /// The camera table, empty if the directory has none (synthetic shards).
    pub fn cameras(&self) -> Result<Vec<CameraRecord>> {
        match self.manifest.files_of(Table::Cameras).next() {
            Some(_) => read_camera_table(&self.dir.join(CAMERAS_FILE)),
            None => Ok(Vec::new()),
        }
    }
}
