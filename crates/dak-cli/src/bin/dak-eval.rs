//! dak-eval: evaluate a trained estimator under the paper's protocols.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::commands::eval;

/// Evaluate a dak-train run (or export) under a protocol of paper Tables
/// 1–4: MPJPE, P-MPJPE, N-MPJPE, PCK@150 mm and AUC per action (Human3.6M),
/// per test sequence (3DHP TS1–TS6) or per sequence (3DPW), written as
/// table.md, table.csv and results.json together with the checkpoint's and
/// shards' checksums; `--render N` draws prediction against ground truth.
///
/// Example: dak-eval --checkpoint runs/full --shards shards/h36m --protocol h36m-s1 --render 6
#[derive(Debug, Parser)]
#[command(name = "dak-eval", version, about = "Evaluate a trained estimator under the paper's protocols")]
struct Cli {
    /// Only warnings and errors; no table on stdout.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    args: eval::EvalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dak_cli::init(cli.quiet, true);
    dak_cli::report(eval::eval(cli.args, cli.quiet))
}
