//! What every dataset converter shares: options, the up-to-date check,
//! input fingerprints, ordered parallel conversion and the manifest.

use std::path::{Path, PathBuf};

use dak_io::{
    sharding, write_camera_table, CameraRecord, FileEntry, Manifest, OutputDir, Prepared, RecordBatch, Reporter,
    ShardSpec, Table,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

/// Options common to `dak-prep h36m|3dhp|3dpw`.
#[derive(Debug, Clone)]
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
    pub layout: Layout,
}

/// How an output is split into files, and which of them this process writes.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Which part of the output this process writes (cluster array jobs).
    pub shard: ShardSpec,
    /// Sequences per output file: the unit shards split the work by.
    pub sequences_per_file: usize,
}

/// ~1 M Human3.6M frames per file at 4 cameras.
pub const DEFAULT_SEQUENCES_PER_FILE: usize = 32;

impl Default for Layout {
    fn default() -> Self {
        Layout { shard: ShardSpec::WHOLE, sequences_per_file: DEFAULT_SEQUENCES_PER_FILE }
    }
}

impl Layout {
    /// What the files' content depends on (the shard does not change it).
    pub(crate) fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "sequences_per_file": self.sequences_per_file })
    }
}

impl ConvertOptions {
    pub(crate) fn wants_subject(&self, subject: &str) -> bool {
        self.subjects.is_empty() || self.subjects.iter().any(|s| s == subject)
    }

    pub(crate) fn wants_split(&self, split: &str) -> bool {
        self.splits.is_empty() || self.splits.iter().any(|s| s == split)
    }

    /// `--split` names one of the dataset's splits (a typo would convert nothing).
    pub(crate) fn check_splits(&self, dataset: &str, known: &[&str]) -> Result<()> {
        match self.splits.iter().find(|s| !known.contains(&s.as_str())) {
            Some(s) => Err(Error::Config {
                field: "splits",
                reason: format!("{dataset} has the splits {}, not `{s}`", known.join(", ")),
            }),
            None => Ok(()),
        }
    }

    /// Of the `subjects` found in the data's wanted splits, none passed the filters: say
    /// which flags matched nothing, not that files are missing. Subjects
    /// asked for and not there are named in a warning.
    pub(crate) fn check_subjects(&self, found: &[String], kept: usize) -> Result<()> {
        let absent: Vec<&str> = self.subjects.iter().filter(|s| !found.contains(s)).map(String::as_str).collect();
        if kept == 0 && !found.is_empty() {
            let flags = [("--subjects", &self.subjects), ("--split", &self.splits)]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(f, v)| format!("{f} {}", v.join(",")))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(Error::Invalid {
                path: self.data_dir.clone(),
                problem: format!("{flags} match none of its sequences (subjects there: {})", found.join(", ")),
            });
        }
        if !absent.is_empty() {
            tracing::warn!("{}: no sequences of subjects {}", self.data_dir.display(), absent.join(", "));
        }
        Ok(())
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
    pub fn run<J: Send + Sync>(
        self,
        reporter: &dyn Reporter,
        plan: impl FnOnce() -> Result<Plan<J>> + Send,
        label: impl Fn(&J) -> String + Sync,
        convert: impl Fn(&J) -> Result<RecordBatch> + Sync,
    ) -> Result<ConvertOutcome> {
        let layout = self.opts.layout;
        let config = |inputs: Vec<InputFile>| serde_json::json!({ "settings": self.settings, "inputs": inputs, "layout": layout.describe() });
        let fingerprint = || fingerprint(&self.opts.data_dir, &self.inputs);
        let prepare = |force: bool| OutputDir::prepare_shard(&self.opts.out, layout.shard, Table::SourceFrames, force);
        // With --force the old output is cleared only once the inputs have
        // been read and planned: a wrong --data-dir or a damaged file must
        // not cost a finished output.
        let dir = match if self.opts.force { None } else { Some(prepare(false)?) } {
            None => None,
            Some(Prepared::Existing(manifest)) => {
                if manifest.extra.get("config") != Some(&config(fingerprint()?)) {
                    return Err(Error::OutputConflict { dir: self.opts.out.clone() });
                }
                tracing::info!(
                    "{}: up to date (same inputs and settings); --force rewrites it",
                    self.opts.out.display()
                );
                return Ok(ConvertOutcome { manifest, written: false });
            }
            Some(Prepared::Fresh(dir)) => Some(dir),
        };
        let started = std::time::Instant::now();
        // Reading the inputs is mostly one thread (one inflate stream per
        // file); checksumming them beside it costs no wall time.
        let (inputs, plan) = rayon::join(fingerprint, plan);
        let (config, plan) = (config(inputs?), plan?);
        tracing::debug!("{}: inputs read in {:.1} s", self.dataset, started.elapsed().as_secs_f64());
        if plan.jobs.is_empty() {
            return Err(Error::NothingToConvert { dir: self.opts.data_dir.clone() });
        }
        let dir = match dir {
            Some(dir) => dir,
            None => match prepare(true)? {
                Prepared::Fresh(dir) => dir,
                Prepared::Existing(_) => unreachable!("--force never keeps an output"),
            },
        };
        let groups = GroupedJobs::new(&plan.jobs, layout.sequences_per_file, layout.shard);
        reporter.start(&format!("converting {}", self.dataset), groups.owned_jobs() as u64);
        let mut files = groups.write(&dir, reporter, |job| {
            convert(job).map_err(|e| Error::Sequence { sequence: label(job), source: Box::new(e) })
        })?;
        reporter.finish();
        tracing::debug!("{}: converted and written in {:.1} s", self.dataset, started.elapsed().as_secs_f64());
        if dir.shard().writes_shared_files() {
            files.extend(write_camera_table(dir.path(), &plan.cameras)?);
        }
        let mut manifest = Manifest::new(Table::SourceFrames, files, self.opts.command.clone(), None);
        manifest.extra = serde_json::json!({
            "config": config,
            "dataset": self.dataset,
            "sequences": plan.jobs.len(),
            "notes": plan.notes,
        });
        let (count, owned) = (groups.count(), groups.owned.clone());
        let manifest = dir.finish_groups(manifest, count, owned, serde_json::Value::Null, &sharding::no_partials)?;
        Ok(ConvertOutcome { manifest, written: true })
    }
}

/// Jobs (sequences) in fixed-size groups, one output file per group, and
/// the groups this process owns.
pub(crate) struct GroupedJobs<'a, J> {
    groups: Vec<&'a [J]>,
    pub owned: Vec<usize>,
}

impl<'a, J: Sync> GroupedJobs<'a, J> {
    pub fn new(jobs: &'a [J], per_file: usize, shard: ShardSpec) -> Self {
        let groups: Vec<&[J]> = jobs.chunks(per_file.max(1)).collect();
        let owned = shard.owned(groups.len());
        GroupedJobs { groups, owned }
    }

    pub fn count(&self) -> usize {
        self.groups.len()
    }

    pub fn owned_jobs(&self) -> usize {
        self.owned.iter().map(|&g| self.groups[g].len()).sum()
    }

    /// Converts the owned groups and writes each to its file. With several
    /// groups, groups run in parallel, each converted and encoded (most of
    /// the work) by the thread that writes it; a lone group converts its
    /// sequences in parallel instead. Never both: nested parallelism would
    /// let a waiting thread start yet another group, and memory is bounded
    /// by one open file (a row group being encoded) and a few sequences per
    /// thread.
    pub fn write(
        &self,
        dir: &OutputDir,
        reporter: &dyn Reporter,
        convert: impl Fn(&J) -> Result<RecordBatch> + Sync,
    ) -> Result<Vec<FileEntry>> {
        let threads = rayon::current_num_threads();
        let convert = |job: &J| {
            let batch = convert(job);
            reporter.advance(1);
            batch
        };
        let write_group = |g: usize, parallel_jobs: bool| -> Result<Vec<FileEntry>> {
            let mut writer = dir.group_writer(Table::SourceFrames, g);
            let chunk = if parallel_jobs { threads * CHUNK_PER_THREAD } else { 1 };
            for jobs in self.groups[g].chunks(chunk) {
                let batches: Vec<RecordBatch> = if parallel_jobs {
                    jobs.par_iter().map(convert).collect::<Result<_>>()?
                } else {
                    jobs.iter().map(convert).collect::<Result<_>>()?
                };
                for batch in &batches {
                    writer.write(batch)?;
                }
            }
            Ok(writer.finish()?)
        };
        let per_group: Vec<Vec<FileEntry>> = if self.owned.len() > 1 && threads > 1 {
            self.owned.par_iter().map(|&g| write_group(g, false)).collect::<Result<_>>()?
        } else {
            self.owned.iter().map(|&g| write_group(g, true)).collect::<Result<_>>()?
        };
        Ok(per_group.into_iter().flatten().collect())
    }
}
