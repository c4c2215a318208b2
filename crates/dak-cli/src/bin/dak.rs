//! dak: the whole workflow behind one command, and declarative pipelines.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::app::Dak;

fn main() -> ExitCode {
    let cli = Dak::parse();
    dak_cli::init(cli.quiet, cli.command.runs_libtorch());
    dak_cli::report(cli.command.run(cli.quiet))
}
