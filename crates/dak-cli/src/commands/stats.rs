use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use dak_stats::shard_stats;

/// Print frames per subject and action, and bone-length distributions per
/// dataset (or per augmentation mode for synthetic shards).
///
/// The bone-length table is the structural domain gap in numbers: compare
/// the means and spreads of two datasets bone by bone.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Shard directories (each with a manifest.json).
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Also write the tables as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: StatsArgs) -> anyhow::Result<()> {
    let mut json = Vec::new();
    for dir in &args.shards {
        let stats = shard_stats(dir).with_context(|| format!("reading statistics of {}", dir.display()))?;
        crate::print_stdout(&format!(
            "== {} ({}) ==\n{}\n\nbone lengths (mm):\n{}\n\n",
            dir.display(),
            stats.table.name(),
            dak_stats::to_text(&stats.counts),
            dak_stats::to_text(&stats.bones)
        ))?;
        json.push(serde_json::json!({
            "dir": dir,
            "table": stats.table.name(),
            "counts": dak_stats::to_json(&stats.counts),
            "bones": dak_stats::to_json(&stats.bones),
        }));
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_vec_pretty(&json).expect("json serialises");
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        dak_io::atomic::write_atomic(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
