//! dak-train: train the DAK-Pose estimator on source and synthetic shards.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::commands::train;

/// Train the DAK-Pose estimator (dual encoders, MixSTE-style decoder,
/// auxiliary estimators G′/G″, cross-reconstruction, adversarial alignment
/// with gradient reversal and warm-up) from dak-prep and dak-augment shards.
///
/// Every epoch appends losses, GRL weight, learning rate, throughput and the
/// held-out MPJPE / P-MPJPE to RUN/metrics.jsonl and writes a checkpoint
/// atomically; `--resume` continues exactly. At the end the estimator G is
/// exported to RUN/export/model.safetensors (PyTorch names) with
/// RUN/export/model.json, and the curves to RUN/curves.png.
///
/// Example: dak-train --shards shards/h36m --sma shards/syn-sma --dma
/// shards/syn-dma --train-subjects S1 --eval-subjects S5,S6,S7,S8 --out runs/full
#[derive(Debug, Parser)]
#[command(name = "dak-train", version, about = "Train the DAK-Pose estimator from source and synthetic shards")]
struct Cli {
    /// Only warnings and errors; no progress bars or summary.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    args: train::TrainArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dak_cli::init(cli.quiet, true);
    dak_cli::report(train::train(cli.args, cli.quiet))
}
