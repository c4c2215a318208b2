//! Writing shard directories: Parquet files rolled by row count, each written
//! under a temporary name and renamed when complete, then the manifest.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Type as PhysicalType, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::atomic::{remove_if_present, sweep_tmp_files, sweep_tmp_files_of, AtomicFile};
use crate::error::{Error, Result};
use crate::manifest::{FileEntry, Manifest};
use crate::schema::{Table, META_TABLE, META_VERSION};
use crate::sharding::{
    group_file_name, group_of, merge_manifests, remove_shard_manifests, shard_writes, with_record, Finalize,
    ShardRecord, ShardSpec,
};
use crate::CAMERAS_FILE;

/// zstd level 3: within a few percent of level 9's size at several times the speed.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Frames per row group: ~20 MB uncompressed, small enough to stream, large
/// enough for good compression and few footer entries.
pub const DEFAULT_FRAME_ROW_GROUP: usize = 32_768;
/// Frames per file: ~1 M rows keeps files at a few hundred MB.
pub const DEFAULT_FRAMES_PER_FILE: usize = 1 << 20;
/// Clips are T×17×5 values each; fewer rows per group keep groups ~20 MB at T=81.
pub const DEFAULT_CLIP_ROW_GROUP: usize = 1_024;
pub const DEFAULT_CLIPS_PER_FILE: usize = 65_536;

/// How a table is written; serialisable so runs can record it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WriterOptions {
    pub zstd_level: i32,
    pub row_group_rows: usize,
    pub rows_per_file: usize,
}

impl WriterOptions {
    pub fn for_table(table: Table) -> Self {
        let (row_group_rows, rows_per_file) = match table {
            Table::SourceFrames => (DEFAULT_FRAME_ROW_GROUP, DEFAULT_FRAMES_PER_FILE),
            Table::SyntheticClips => (DEFAULT_CLIP_ROW_GROUP, DEFAULT_CLIPS_PER_FILE),
            Table::Cameras => (DEFAULT_FRAME_ROW_GROUP, usize::MAX),
        };
        WriterOptions { zstd_level: DEFAULT_ZSTD_LEVEL, row_group_rows, rows_per_file }
    }

    fn properties(&self, table: Table) -> WriterProperties {
        // Dictionaries pay off for the repetitive string columns only; on
        // coordinates they cost time and bytes (zstd does better alone).
        let strings = table
            .arrow_schema()
            .fields()
            .iter()
            .filter(|f| matches!(f.data_type(), arrow::datatypes::DataType::Utf8))
            .map(|f| ColumnPath::from(f.name().as_str()))
            .collect::<Vec<_>>();
        let builder = strings.into_iter().fold(WriterProperties::builder().set_dictionary_enabled(false), |b, c| {
            b.set_column_dictionary_enabled(c, true)
        });
        // Min/max of the values inside coordinate lists prune nothing (every
        // group spans the same range) and cost ~3 % of a conversion; the
        // scalar columns (subject, frame, ...) keep theirs for filtering.
        coordinate_leaves(table)
            .into_iter()
            .fold(builder, |b, c| b.set_column_statistics_enabled(c, EnabledStatistics::None))
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level).unwrap_or_default()))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_created_by(format!("dak-pose {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(vec![
                KeyValue::new(META_TABLE.to_string(), table.name().to_string()),
                KeyValue::new(META_VERSION.to_string(), table.version().to_string()),
            ]))
            .build()
    }
}

/// Parquet leaf columns that are the floats of a list column.
fn coordinate_leaves(table: Table) -> Vec<ColumnPath> {
    let schema = ArrowSchemaConverter::new()
        .convert(&table.arrow_schema())
        .expect("schemas/*.json map to Parquet (checked by dak-io's tests)");
    schema
        .columns()
        .iter()
        .filter(|c| c.max_rep_level() > 0 && matches!(c.physical_type(), PhysicalType::FLOAT | PhysicalType::DOUBLE))
        .map(|c| c.path().clone())
        .collect()
}

struct OpenFile {
    writer: ArrowWriter<AtomicFile>,
    name: String,
    rows: usize,
}

/// Writes one table as `PREFIX-00000.parquet`, `PREFIX-00001.parquet`, …
pub struct ShardWriter {
    table: Table,
    dir: PathBuf,
    prefix: String,
    options: WriterOptions,
    open: Option<OpenFile>,
    files: Vec<FileEntry>,
}

impl ShardWriter {
    pub fn new(dir: &Path, table: Table, prefix: &str, options: WriterOptions) -> Self {
        ShardWriter {
            table,
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            options,
            open: None,
            files: Vec::new(),
        }
    }

    fn open_next(&self) -> Result<OpenFile> {
        let name = if self.options.rows_per_file == usize::MAX {
            format!("{}.parquet", self.prefix)
        } else {
            format!("{}-{:05}.parquet", self.prefix, self.files.len())
        };
        let path = self.dir.join(&name);
        let file = AtomicFile::create(&path)?;
        let writer = ArrowWriter::try_new(file, self.table.arrow_schema(), Some(self.options.properties(self.table)))
            .map_err(|source| Error::ParquetWrite { path: path.clone(), source })?;
        Ok(OpenFile { writer, name, rows: 0 })
    }

    /// Append a batch of this table's schema, rolling to a new file as needed.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.open.is_none() {
                self.open = Some(self.open_next()?);
            }
            let file = self.open.as_mut().expect("just opened");
            let n = (self.options.rows_per_file - file.rows).min(batch.num_rows() - offset);
            file.writer
                .write(&batch.slice(offset, n))
                .map_err(|source| Error::ParquetWrite { path: self.dir.join(&file.name), source })?;
            file.rows += n;
            offset += n;
            if file.rows >= self.options.rows_per_file {
                self.close_current()?;
            }
        }
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        let Some(file) = self.open.take() else { return Ok(()) };
        let path = self.dir.join(&file.name);
        let atomic = file.writer.into_inner().map_err(|source| Error::ParquetWrite { path, source })?;
        let committed = atomic.commit()?;
        self.files.push(FileEntry {
            path: file.name,
            schema: self.table.name().to_string(),
            rows: file.rows as u64,
            bytes: committed.bytes,
            sha256: committed.sha256,
        });
        Ok(())
    }

    /// Close the last file; returns the manifest entries of every file written.
    pub fn finish(mut self) -> Result<Vec<FileEntry>> {
        self.close_current()?;
        Ok(std::mem::take(&mut self.files))
    }
}

/// What [`OutputDir::prepare`] found.
#[derive(Debug)]
pub enum Prepared {
    /// Ready to write.
    Fresh(OutputDir),
    /// A finished output exists and `force` was not given.
    Existing(Manifest),
}

/// A shard directory being (re)written, whole or as one shard of several
/// (see [`crate::sharding`]). The manifest of an earlier run is removed
/// before anything else, so a crash mid-way never leaves a stale manifest
/// describing a mix of old and new files.
#[derive(Debug)]
pub struct OutputDir {
    dir: PathBuf,
    shard: ShardSpec,
}

impl OutputDir {
    pub fn prepare(dir: &Path, table: Table, force: bool) -> Result<Prepared> {
        Self::prepare_shard(dir, ShardSpec::WHOLE, table, force)
    }

    /// A finished `manifest.json` (or, for a shard, its own finished shard
    /// manifest) comes back as [`Prepared::Existing`] unless `force`. A
    /// shard clears only its own files: the others may be writing beside it.
    /// Another kind of output (source shards where synthetic clips are
    /// asked for, a training run) is refused even with `force`: a mistyped
    /// `--out` must not replace a dataset.
    pub fn prepare_shard(dir: &Path, shard: ShardSpec, table: Table, force: bool) -> Result<Prepared> {
        let foreign = |holds: String| Error::ForeignOutput { dir: dir.to_path_buf(), holds, writing: table.name() };
        // A run killed before its first checkpoint has config.json and metrics.jsonl.
        let run = |name: &str| dir.join(name).is_file();
        if run("checkpoint.json") || (run("config.json") && run("metrics.jsonl")) {
            return Err(foreign("a training run".into()));
        }
        let own = dir.join(shard.manifest_name());
        let finals = if shard.is_whole() { vec![own.clone()] } else { vec![Manifest::path_in(dir), own.clone()] };
        for path in &finals {
            match Manifest::read_file(path) {
                Ok(existing) if existing.schema != table.name() => {
                    return Err(foreign(format!("`{}` shards", existing.schema)));
                }
                Ok(existing) if !force => return Ok(Prepared::Existing(existing)),
                Ok(_) | Err(Error::MissingManifest { .. }) => {}
                Err(e) if force => tracing::warn!("replacing unreadable manifest: {e}"),
                Err(e) => return Err(e),
            }
        }
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        remove_if_present(&Manifest::path_in(dir))?;
        if shard.is_whole() {
            remove_shard_manifests(dir, |_, _| true)?;
            sweep_tmp_files(dir)?;
            remove_our_parquet_files(dir, |_| true)?;
        } else {
            remove_shard_manifests(dir, |i, n| n != shard.count() || i == shard.index())?;
            remove_our_parquet_files(dir, |name| shard_writes(shard, name))?;
            sweep_tmp_files_of(dir, |name| shard_writes(shard, name))?;
        }
        Ok(Prepared::Fresh(OutputDir { dir: dir.to_path_buf(), shard }))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn shard(&self) -> ShardSpec {
        self.shard
    }

    pub fn writer(&self, table: Table, prefix: &str) -> ShardWriter {
        ShardWriter::new(&self.dir, table, prefix, WriterOptions::for_table(table))
    }

    /// The one file of group `group` (`part-NNNNN.parquet`), never rolled:
    /// its bytes depend only on what the group holds.
    pub fn group_writer(&self, table: Table, group: usize) -> ShardWriter {
        let options = WriterOptions { rows_per_file: usize::MAX, ..WriterOptions::for_table(table) };
        let name = group_file_name(group);
        ShardWriter::new(&self.dir, table, name.strip_suffix(".parquet").expect("parquet name"), options)
    }

    /// Write the manifest: the directory is finished from here on.
    pub fn finish(self, manifest: &Manifest) -> Result<()> {
        manifest.write(&self.dir)
    }

    /// Finish a grouped output: a shard writes its shard manifest (returned);
    /// a whole run merges its own record at once and writes `manifest.json`.
    pub fn finish_groups(
        self,
        manifest: Manifest,
        groups: usize,
        owned: Vec<usize>,
        partial: serde_json::Value,
        finalize: Finalize,
    ) -> Result<Manifest> {
        let record = ShardRecord { index: self.shard.index(), count: self.shard.count(), groups, owned, partial };
        let manifest = with_record(manifest, &record);
        if self.shard.is_whole() {
            let merged = merge_manifests(&self.dir, vec![manifest], finalize)?;
            merged.write(&self.dir)?;
            Ok(merged)
        } else {
            manifest.write_file(&self.dir.join(self.shard.manifest_name()))?;
            Ok(manifest)
        }
    }
}

/// Files this crate names (`part-NNNNN.parquet`, `cameras.parquet`) for
/// which `remove` holds: an unfinished or stale run's leftovers. Anything
/// else in the directory is left alone.
pub(crate) fn remove_our_parquet_files(dir: &Path, remove: impl Fn(&str) -> bool) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == CAMERAS_FILE || group_of(&name).is_some();
        if ours && remove(&name) {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}
