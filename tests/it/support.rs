//! Locating the workspace, the built binaries and the project's Python.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// Path of a dak-* binary, built (once per test run) if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "dak-cli", "--bins"])
            .current_dir(workspace_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the dak-* binaries failed");
    });
    // target/debug/deps/it-HASH → target/debug/NAME
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("target dir").join(name)
}

pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(binary(bin)).args(args).output().expect("binary starts")
}

/// The project's Python (`DAK_PYTHON`, else `.venv/bin/python`). Without one
/// the caller skips, except under CI, where its absence is a failure.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("DAK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    if candidate.exists() {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs the project venv ({}); run scripts/setup-python.sh",
        candidate.display()
    );
    eprintln!("skipping: no project Python at {} (run scripts/setup-python.sh)", candidate.display());
    None
}
