//! Converting a file larger than the memory the process may use: the
//! Human3.6M `.npz` is read as a stream, its arrays parked in a spill file
//! and loaded a few sequences at a time, so the heap needed does not grow
//! with the file. Here the heap is capped below the unpacked arrays alone;
//! reading the file whole (member bytes, then decoded values) cannot fit.

use std::alloc::System;
use std::path::{Path, PathBuf};
use std::process::Command;

use cap::Cap;
use dak_datasets::convert::{ConvertOptions, Layout};
use dak_datasets::h36m::{self, TwoDChoice};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// 3D frames in the generated file: 96 MB of float32 once unpacked.
const FRAMES: usize = 250_000;
/// What the conversion may allocate on top of what the test holds: about
/// two open files' row groups being encoded and a sequence per thread (~50 MB).
const HEAP_LIMIT: usize = 72 << 20;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The project's Python, as tests/it/support.rs finds it; required under CI.
fn python() -> Option<PathBuf> {
    let candidate =
        std::env::var_os("DAK_PYTHON").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    if candidate.exists() {
        return Some(candidate);
    }
    assert!(std::env::var_os("CI").is_none(), "CI needs the project venv; run scripts/setup-python.sh");
    eprintln!("skipping: no project Python at {}", candidate.display());
    None
}

#[test]
fn human36m_file_larger_than_the_heap_limit_converts() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let generated = Command::new(python)
        .arg(workspace_root().join("scripts/fixtures/make_fixtures.py"))
        .arg(tmp.path())
        .args(["--h36m-scale", &FRAMES.to_string()])
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let unpacked = FRAMES * 32 * 3 * 4;
    assert!(unpacked > HEAP_LIMIT + (16 << 20), "the arrays alone must not fit the limit for this to mean anything");

    let opts = ConvertOptions {
        data_dir: tmp.path().join("h36m-scale"),
        out: tmp.path().join("out"),
        force: false,
        subjects: vec![],
        splits: vec![],
        command: vec!["test".into()],
        layout: Layout::default(),
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let before = ALLOCATOR.allocated();
    ALLOCATOR.set_limit(before + HEAP_LIMIT).unwrap();
    let outcome = pool.install(|| h36m::convert(&opts, TwoDChoice::Gt, &dak_io::Silent));
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    let outcome = outcome.expect("converts within the limit");
    assert_eq!(outcome.manifest.total_rows as usize, FRAMES * 4);
    eprintln!(
        "peak heap {} MiB for {} MiB of unpacked arrays",
        (ALLOCATOR.max_allocated() - before) >> 20,
        unpacked >> 20
    );
}
