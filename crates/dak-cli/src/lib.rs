//! Shared plumbing of the dak-* binaries: logging, progress bars, error exit.
//! Each binary is a thin clap front end over the library crates.

pub mod commands;
pub mod progress;

use std::process::ExitCode;

/// Set up `tracing` (RUST_LOG overrides; `-q` keeps only warnings).
pub fn init_logging(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

/// Print an error with its chain of causes, one line, and pick the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// The command line as the manifest records it.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}
