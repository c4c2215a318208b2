use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use dak_datasets::convert::{Layout, DEFAULT_SEQUENCES_PER_FILE};
use dak_datasets::synth::{self, SynthConfig};

use crate::ShardArgs;

use crate::progress::Bars;

/// Generate the embedded demo dataset (procedural, no licensed data needed).
///
/// Two domains in one shard directory: `demo-source` (Human3.6M camera rig,
/// subjects S1, S5–S8 for training and S9, S11 for testing) and `demo-target`
/// (other body proportions, camera placements and motion style; test only),
/// each with 8 actions seen by 4 cameras. The same seed gives byte-identical shards.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output shard directory.
    #[arg(long, default_value = "shards/demo")]
    pub out: PathBuf,
    /// Random seed; the whole dataset is a function of it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Frames per sequence (one sequence per subject and action).
    #[arg(long, default_value_t = 300)]
    pub frames: usize,
    /// Frame rate of the generated sequences.
    #[arg(long, default_value_t = 50.0)]
    pub fps: f32,
    /// Std of the detector-like noise on the detected 2D (px); 0 writes no detections.
    #[arg(long, default_value_t = 3.0)]
    pub noise_px: f64,
    /// Fraction of detected joints that are gross outliers (8× the noise).
    #[arg(long, default_value_t = 0.02)]
    pub outlier_rate: f64,
    /// Replace a finished output instead of leaving it as it is.
    #[arg(long)]
    pub force: bool,
    /// Sequences per output file; shards split the work by files.
    #[arg(long, default_value_t = DEFAULT_SEQUENCES_PER_FILE)]
    pub sequences_per_file: usize,
    #[command(flatten)]
    pub shard: ShardArgs,
}

pub fn run(args: SynthArgs, quiet: bool) -> anyhow::Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        frames: args.frames,
        fps: args.fps,
        detector_noise_px: args.noise_px,
        detector_outlier_rate: args.outlier_rate,
    };
    let layout = Layout { shard: args.shard.spec()?, sequences_per_file: args.sequences_per_file };
    let outcome = synth::generate(&config, &args.out, args.force, crate::command_line(), layout, &Bars::new(quiet))
        .with_context(|| format!("generating the demo dataset into {}", args.out.display()))?;
    let m = &outcome.manifest;
    if outcome.written {
        tracing::info!("wrote {} frames in {} files to {}", m.total_rows, m.files.len(), args.out.display());
    } else {
        tracing::info!("{} is up to date ({} frames); --force regenerates it", args.out.display(), m.total_rows);
    }
    Ok(())
}
