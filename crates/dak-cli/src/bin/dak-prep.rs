//! dak-prep: make source shards — the demo dataset, and converters for
//! Human3.6M, MPI-INF-3DHP and 3DPW — and inspect them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dak_cli::commands::{convert, stats, synth};

#[derive(Debug, Parser)]
#[command(name = "dak-prep", version, about = "Convert pose datasets into versioned Parquet shards and inspect them")]
struct Cli {
    /// Only warnings and errors; no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Synth(synth::SynthArgs),
    H36m(convert::H36mArgs),
    #[command(name = "3dhp")]
    Mpi3dhp(convert::Mpi3dhpArgs),
    #[command(name = "3dpw")]
    Pw3d(convert::Pw3dArgs),
    Stats(stats::StatsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dak_cli::init_logging(cli.quiet);
    dak_cli::report(match cli.command {
        Command::Synth(args) => synth::run(args, cli.quiet),
        Command::H36m(args) => convert::h36m(args, cli.quiet),
        Command::Mpi3dhp(args) => convert::mpi3dhp(args, cli.quiet),
        Command::Pw3d(args) => convert::pw3d(args, cli.quiet),
        Command::Stats(args) => stats::run(args),
    })
}
