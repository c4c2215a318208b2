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
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

/// Print an error with its chain of causes, one line, and pick the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Messages often embed their cause ("{path}: {source}"); print each once.
            let mut line = String::new();
            for cause in err.chain().map(ToString::to_string) {
                if !line.ends_with(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// The command line as the manifest records it.
pub fn command_line() -> Vec<String> {
    std::env::args().collect()
}

/// Writes to stdout; a closed pipe (`dak-prep stats | head`) ends output quietly.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
