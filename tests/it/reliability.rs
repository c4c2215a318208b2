//! Crash safety and determinism: a process killed with SIGKILL at a random
//! moment and then re-run ends with exactly the output of an uninterrupted
//! run, and nothing it left behind passes for finished; the same command
//! and seed give the same bytes (shards) and the same losses (training).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{binary, ok};

/// Every file under `dir` (recursively) with its bytes, by relative path.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push((path.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn same_tree(a: &Path, b: &Path, skip: &[&str]) {
    let keep = |v: Vec<(String, Vec<u8>)>| {
        v.into_iter().filter(|(n, _)| !skip.iter().any(|s| n.ends_with(s))).collect::<Vec<_>>()
    };
    let (x, y) = (keep(tree(a)), keep(tree(b)));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&x), names(&y), "{} vs {}", a.display(), b.display());
    for ((n, p), (_, q)) in x.iter().zip(&y) {
        assert!(p == q, "{n} differs between {} and {}", a.display(), b.display());
    }
}

/// Kill `command` with SIGKILL after `delay`, if it is still running.
fn kill_after(mut command: Command, delay: Duration) -> bool {
    let mut child = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    child.kill().ok();
    child.wait().unwrap();
    killed
}

/// A killed output is either unfinished (readers refuse it: no manifest)
/// or complete (its manifest's checksums hold).
fn finished_or_refused(dir: &Path) {
    if dir.join("manifest.json").exists() {
        dak_io::ShardSet::open(dir, dak_io::Verify::Checksums).expect("a manifest only ever describes complete files");
    } else {
        let err = dak_io::ShardSet::open(dir, dak_io::Verify::Sizes).expect_err("no manifest: not a shard directory");
        assert!(err.to_string().contains("no manifest.json"), "{err}");
    }
}

/// Delays spread over a run's length, fixed so failures reproduce.
const DELAYS_MS: [u64; 3] = [40, 350, 900];

#[test]
fn killed_prep_and_augment_runs_finish_identically_when_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    // Each run in its own directory with the same relative `--out out`, so
    // the recorded command lines match too.
    let prep = |cwd: &Path| {
        std::fs::create_dir_all(cwd).unwrap();
        let mut c = Command::new(binary("dak-prep"));
        c.current_dir(cwd).args(["synth", "--frames", "200", "--sequences-per-file", "4", "--out", "out", "-q"]);
        c
    };
    let reference = tmp.path().join("ref");
    ok(&prep(&reference).output().unwrap());
    let mut killed = 0;
    for (i, ms) in DELAYS_MS.iter().enumerate() {
        let cwd = tmp.path().join(format!("killed-{i}"));
        killed += usize::from(kill_after(prep(&cwd), Duration::from_millis(*ms)));
        if cwd.join("out").exists() {
            finished_or_refused(&cwd.join("out"));
        }
        ok(&prep(&cwd).output().unwrap());
        same_tree(&reference.join("out"), &cwd.join("out"), &[]);
    }
    assert!(killed > 0, "no prep run was still going when killed");

    let shards = reference.join("out");
    let sample = |cwd: &Path| {
        std::fs::create_dir_all(cwd).unwrap();
        let mut c = Command::new(binary("dak-augment"));
        c.current_dir(cwd).args([
            "--mode",
            "structure",
            "--shards",
            shards.to_str().unwrap(),
            "--dataset",
            "demo-source",
        ]);
        c.args(["--clips", "3000", "--clips-per-file", "500", "--clip-frames", "27", "--out", "out", "-q"]);
        c
    };
    let syn_ref = tmp.path().join("syn-ref");
    ok(&sample(&syn_ref).output().unwrap());
    let mut killed = 0;
    for (i, ms) in DELAYS_MS.iter().enumerate() {
        let cwd = tmp.path().join(format!("syn-killed-{i}"));
        killed += usize::from(kill_after(sample(&cwd), Duration::from_millis(*ms)));
        if cwd.join("out").exists() {
            finished_or_refused(&cwd.join("out"));
        }
        ok(&sample(&cwd).output().unwrap());
        // report.json records the run's duration.
        same_tree(&syn_ref.join("out"), &cwd.join("out"), &["report.json"]);
    }
    assert!(killed > 0, "no sampling run was still going when killed");
    // Determinism across processes: a second run in a fresh directory.
    let again = tmp.path().join("syn-again");
    ok(&sample(&again).output().unwrap());
    same_tree(&syn_ref.join("out"), &again.join("out"), &["report.json"]);
}

fn losses(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::json!([v["epoch"], v["losses"], v["eval"]])
        })
        .collect()
}

#[test]
fn a_killed_training_run_resumes_to_the_uninterrupted_result() {
    use crate::train::{train, train_command};
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    ok(&train(&reference, &["--epochs", "3", "--ablation", "sa-adg"]));
    // Same seed, same thread count: the same losses in another process.
    let again = tmp.path().join("again");
    ok(&train(&again, &["--epochs", "3", "--ablation", "sa-adg"]));
    assert_eq!(losses(&again), losses(&reference));
    let mut killed = 0;
    for (i, ms) in DELAYS_MS.iter().enumerate() {
        let out = tmp.path().join(format!("killed-{i}"));
        let command = train_command(&out, &["--epochs", "3", "--ablation", "sa-adg"]);
        killed += usize::from(kill_after(command, Duration::from_millis(*ms * 3)));
        // --resume continues from the last complete checkpoint (or starts
        // when there is none); a finished run is up to date.
        ok(&train(&out, &["--epochs", "3", "--ablation", "sa-adg", "--resume"]));
        assert_eq!(losses(&out), losses(&reference), "run killed after {ms} ms");
        assert_eq!(
            std::fs::read(out.join("export/model.safetensors")).unwrap(),
            std::fs::read(reference.join("export/model.safetensors")).unwrap()
        );
    }
    assert!(killed > 0, "no training run was still going when killed");
}

/// A stage that runs out of space (here: a file size limit, which fails
/// writes the way a full disk does) stops the pipeline with the path, leaves
/// the earlier stages' outputs intact and up to date, and nothing
/// unfinished that passes for finished; with room again, only it reruns.
#[test]
fn a_pipeline_out_of_space_fails_cleanly_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pipeline = r#"
[[stage]]
name = "prep"
run = "prep synth"
out = "shards/demo"
frames = 20
[[stage]]
name = "sample"
run = "augment sample"
mode = "structure"
shards = ["shards/demo"]
dataset = "demo-source"
out = "shards/syn"
clips = 8000
clip_frames = 9
source_stats_clips = 20
"#;
    std::fs::write(d.join("p.toml"), pipeline).unwrap();
    let limited = crate::support::with_file_size_limit(4096, "dak")
        .current_dir(d)
        .args(["pipeline", "run", "p.toml", "-q"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&limited.stderr);
    assert!(!limited.status.success(), "the sample stage must not fit in 4 MiB files");
    assert!(err.contains("shards/syn") && err.contains("File too large"), "{err}");
    assert!(err.contains("stage `sample` failed"), "{err}");
    dak_io::ShardSet::open(&d.join("shards/demo"), dak_io::Verify::Checksums).expect("prep output intact");
    assert!(!d.join("shards/syn/manifest.json").exists());
    let plan = ok(&Command::new(binary("dak")).current_dir(d).args(["pipeline", "plan", "p.toml"]).output().unwrap());
    assert!(plan.contains("2 stages, 1 to run"), "{plan}");
    ok(&Command::new(binary("dak")).current_dir(d).args(["pipeline", "run", "p.toml", "-q"]).output().unwrap());
    dak_io::ShardSet::open(&d.join("shards/syn"), dak_io::Verify::Checksums).unwrap();
}
