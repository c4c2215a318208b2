//! `dak-prep merge`: join the parts of a sharded prep or augment run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use dak_io::sharding::{self, Merged};

/// Join the shards of a run made with `--shard-index I --num-shards N`.
///
/// Run once every shard has finished (e.g. a dependent Slurm job). Checks
/// that all N shard manifests are there, were made by the same command on
/// the same inputs, and that every file they list has its size; then writes
/// manifest.json — the same bytes a single process writes — and removes the
/// shard manifests. Works for source shards (dak-prep) and synthetic clips
/// (dak-augment sample, whose report.json is rebuilt from the shards'
/// statistics). Merging a finished directory again does nothing.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Output directory the shards wrote into (shared storage).
    pub dir: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    // The report is written here, before the manifest: a directory with a
    // manifest counts as finished.
    let finalize = |extra: &mut serde_json::Value, partials: &[serde_json::Value]| {
        if extra.get("report").is_some() {
            dak_augment::output::finalize_report(dir, extra, partials)?;
            // The manifest keeps what is reproducible; report.json has the
            // single run's fields, with no wall time for the whole.
            let mut report = extra["report"].clone();
            report["settings"] = extra["config"].clone();
            report["seconds"] = serde_json::Value::Null;
            report["clips_per_second"] = serde_json::Value::Null;
            dak_augment::output::write_report(dir, &report).map(drop)
        } else {
            sharding::no_partials(extra, partials)
        }
    };
    match sharding::merge(dir, &finalize).with_context(|| format!("merging the shards in {}", dir.display()))? {
        Merged::Joined(m) => {
            tracing::info!("{}: merged {} files, {} rows", dir.display(), m.files.len(), m.total_rows);
        }
        Merged::AlreadyMerged(m) => {
            tracing::info!("{}: already merged ({} rows); nothing to do", dir.display(), m.total_rows)
        }
    }
    Ok(())
}
