//! dak-augment: fit the paper's two motion augmentors (SMA, DMA) on source
//! shards and materialize synthetic 3D clips with their 2D projections.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::app::AugmentCommand;

/// Fit SMA/DMA and sample synthetic clips as shards.
///
/// Sampling is the default command: `dak-augment --mode sma|dma|structure
/// --shards S --out DIR --clips N` is `dak-augment sample ...` (sma and dma
/// need `--model` from `dak-augment fit`). Each run writes synthetic_clips
/// shards, a manifest and report.json (bone-length consistency, smoothness,
/// joint-angle violations and diversity against the source), and prints that
/// report.
#[derive(Debug, Parser)]
#[command(
    name = "dak-augment",
    version,
    about = "Fit the SMA/DMA motion augmentors and materialize synthetic clips with 2D projections"
)]
struct Cli {
    /// Only warnings and errors; no progress bars or summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: AugmentCommand,
}

/// `dak-augment --mode ...` means `dak-augment sample --mode ...`.
fn with_default_command(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let named = ["fit", "sample", "help", "-h", "--help", "-V", "--version"];
    let first = args.iter().skip(1).find(|a| !matches!(a.to_str(), Some("-q" | "--quiet")));
    if first.is_some_and(|a| !named.iter().any(|n| a.as_os_str() == *n)) {
        args.insert(1, "sample".into());
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    dak_cli::init(cli.quiet, true);
    dak_cli::report(cli.command.run(cli.quiet))
}
