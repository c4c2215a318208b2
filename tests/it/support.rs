//! Locating the workspace, the built binaries and the project's Python.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace_root() -> PathBuf {
    // CARGO_MANIFEST_DIR is crates/dak-cli.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/dak-cli sits in the workspace")
        .to_path_buf()
}

/// Path of a dak-* binary, built by cargo alongside this test.
pub fn binary(name: &str) -> PathBuf {
    match name {
        "dak" => PathBuf::from(env!("CARGO_BIN_EXE_dak")),
        "dak-prep" => PathBuf::from(env!("CARGO_BIN_EXE_dak-prep")),
        "dak-augment" => PathBuf::from(env!("CARGO_BIN_EXE_dak-augment")),
        "dak-train" => PathBuf::from(env!("CARGO_BIN_EXE_dak-train")),
        "dak-eval" => PathBuf::from(env!("CARGO_BIN_EXE_dak-eval")),
        "dak-infer" => PathBuf::from(env!("CARGO_BIN_EXE_dak-infer")),
        other => panic!("unknown binary {other}"),
    }
}

/// A dak-* binary whose files may not grow past `kib` KiB, which fails
/// writes as a full disk does (bash counts -f in KiB; the ignored SIGXFSZ
/// turns the kill into EFBIG).
pub fn with_file_size_limit(kib: u32, bin: &str) -> Command {
    let mut command = Command::new("bash");
    command.args(["-c", &format!("ulimit -f {kib}; trap '' XFSZ; exec \"$0\" \"$@\"")]).arg(binary(bin));
    command
}

pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(binary(bin)).args(args).output().expect("binary starts")
}

/// The project's Python (`DAK_PYTHON`, else `.venv/bin/python`). Without one
/// the caller skips, except under CI, where its absence is a failure.
pub fn python() -> Option<PathBuf> {
    let candidate =
        std::env::var_os("DAK_PYTHON").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
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

/// The Parquet files of a directory, by name, with their bytes.
pub fn parquet_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// stdout of a run that must succeed (stderr in the failure message).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
