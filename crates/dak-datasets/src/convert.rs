//! What every dataset converter shares: options, the up-to-date check,
//! input fingerprints, ordered parallel conversion and the manifest.

use std::path::{Path, PathBuf};

use dak_io::{write_camera_table, CameraRecord, Manifest, OutputDir, Prepared, RecordBatch, Reporter, Table};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

/// Options common to `dak-prep h36m|3dhp|3dpw`.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// Where the dataset's files are.
    pub data_dir: PathBuf,
    /// The shard directory to write.
    pub out: PathBuf,
    /// Replace a finished output even if it is up to date.
    pub force: bool,
    /// Only these subjects (or sequences); empty for all.
    pub subjects: Vec<String>,
    /// Only these splits (train, validation, test); empty for all.
    pub splits: Vec<String>,
    /// The producing command line, for the manifest.
    pub command: Vec<String>,
}

impl ConvertOptions {
    pub(crate) fn wants_subject(&self, subject: &str) -> bool {
        self.subjects.is_empty() || self.subjects.iter().any(|s| s == subject)
    }

    pub(crate) fn wants_split(&self, split: &str) -> bool {
        self.splits.is_empty() || self.splits.iter().any(|s| s == split)
    }
}

#[derive(Debug, Clone)]
pub struct ConvertOutcome {
    pub manifest: Manifest,
    /// False when an up-to-date output was found and left as it was.
    pub written: bool,
}

/// An input file as the manifest records it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InputFile {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Size and checksum of each input, named relative to the data directory.
pub(crate) fn fingerprint(data_dir: &Path, paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    paths
        .par_iter()
        .map(|p| {
            let (bytes, sha256) = dak_io::atomic::sha256_file(p)?;
            let file = p.strip_prefix(data_dir).unwrap_or(p).to_string_lossy().into_owned();
            Ok(InputFile { file, bytes, sha256 })
        })
        .collect()
}

/// Fails with a one-line hint when a required input is absent.
pub(crate) fn require(path: &Path, what: &str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::MissingInput { path: path.to_path_buf(), what: what.to_string() })
    }
}

/// A conversion whose inputs are known; [`Conversion::run`] checks whether
/// the output is up to date, then reads, converts in parallel and writes.
pub(crate) struct Conversion<'a> {
    pub opts: &'a ConvertOptions,
    pub dataset: &'static str,
    /// Everything the output depends on besides the inputs (settings, filters).
    pub settings: serde_json::Value,
    pub inputs: Vec<PathBuf>,
}

/// What a converter's planning step found.
pub(crate) struct Plan<J> {
    pub jobs: Vec<J>,
    pub cameras: Vec<CameraRecord>,
    /// Dataset-specific notes for the manifest (trimmed sequences, skipped ones, ...).
    pub notes: serde_json::Value,
}

/// Sequences converted in parallel at once; bounds memory to a few sequences
/// per thread while keeping the output order fixed.
const CHUNK_PER_THREAD: usize = 2;

impl Conversion<'_> {
    pub fn run<J: Sync>(
        self,
        reporter: &dyn Reporter,
        plan: impl FnOnce() -> Result<Plan<J>>,
        label: impl Fn(&J) -> String + Sync,
        convert: impl Fn(&J) -> Result<RecordBatch> + Sync,
    ) -> Result<ConvertOutcome> {
        let inputs = fingerprint(&self.opts.data_dir, &self.inputs)?;
        let config = serde_json::json!({ "settings": self.settings, "inputs": inputs });
        let dir = match OutputDir::prepare(&self.opts.out, self.opts.force)? {
            Prepared::Existing(manifest) if manifest.extra.get("config") == Some(&config) => {
                tracing::info!(
                    "{}: up to date (same inputs and settings); --force rewrites it",
                    self.opts.out.display()
                );
                return Ok(ConvertOutcome { manifest, written: false });
            }
            Prepared::Existing(_) => return Err(Error::OutputConflict { dir: self.opts.out.clone() }),
            Prepared::Fresh(dir) => dir,
        };
        let plan = plan()?;
        if plan.jobs.is_empty() {
            return Err(Error::NothingToConvert { dir: self.opts.data_dir.clone() });
        }
        reporter.start(&format!("converting {}", self.dataset), plan.jobs.len() as u64);
        let mut writer = dir.writer(Table::SourceFrames, "part");
        let chunk = rayon::current_num_threads() * CHUNK_PER_THREAD;
        let mut rows = 0u64;
        for jobs in plan.jobs.chunks(chunk) {
            let batches: Vec<RecordBatch> = jobs
                .par_iter()
                .map(|job| {
                    let batch = convert(job);
                    reporter.advance(1);
                    batch.map_err(|e| Error::Sequence { sequence: label(job), source: Box::new(e) })
                })
                .collect::<Result<_>>()?;
            for batch in &batches {
                rows += batch.num_rows() as u64;
                writer.write(batch)?;
            }
        }
        reporter.finish();
        let mut files = writer.finish()?;
        files.extend(write_camera_table(dir.path(), &plan.cameras)?);
        let mut manifest = Manifest::new(Table::SourceFrames, files, self.opts.command.clone(), None);
        manifest.extra = serde_json::json!({
            "config": config,
            "dataset": self.dataset,
            "sequences": plan.jobs.len(),
            "rows": rows,
            "notes": plan.notes,
        });
        dir.finish(&manifest)?;
        Ok(ConvertOutcome { manifest, written: true })
    }
}
