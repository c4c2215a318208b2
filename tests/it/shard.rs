//! `--shard-index I --num-shards N` and `dak-prep merge`: three processes
//! running at once write the same bytes as one process.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{binary, ok};

/// Every file of a directory (recursively not needed: outputs are flat), by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Same file names with the same bytes; names the first file that differs.
fn assert_same_files(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "{what}: different files");
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{what}: {name} differs:\n{}\n{}", String::from_utf8_lossy(x), String::from_utf8_lossy(y));
    }
}

fn in_dir(cwd: &Path, bin: &str, args: &[&str]) -> Command {
    let mut c = Command::new(binary(bin));
    c.current_dir(cwd).args(args).arg("-q");
    c
}

/// Runs `args` once whole in `root/one` and as 3 concurrent shards plus a
/// merge in `root/three` (same relative `out`, so the recorded commands
/// match), and returns both output directories.
fn whole_and_sharded(root: &Path, bin: &str, args: &[&str], out: &str) -> (PathBuf, PathBuf) {
    let (one, three) = (root.join("one"), root.join("three"));
    for d in [&one, &three] {
        std::fs::create_dir_all(d).unwrap();
    }
    ok(&in_dir(&one, bin, args).output().unwrap());
    let children: Vec<_> = (0..3)
        .map(|i| {
            let index = i.to_string();
            in_dir(&three, bin, args).args(["--shard-index", &index, "--num-shards", "3"]).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
    }
    assert!(!three.join(out).join("manifest.json").exists(), "shards write no final manifest");
    ok(&in_dir(&three, "dak-prep", &["merge", out]).output().unwrap());
    (one.join(out), three.join(out))
}

#[test]
fn sharded_prep_and_augment_equal_one_process_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = ["synth", "--out", "demo", "--frames", "60", "--sequences-per-file", "7"];
    let (one, three) = whole_and_sharded(&tmp.path().join("prep"), "dak-prep", &synth, "demo");
    let whole = files(&one);
    assert!(whole.iter().filter(|(n, _)| n.starts_with("part-")).count() >= 6, "several groups per shard");
    assert_same_files(&files(&three), &whole, "merged prep shards vs one process");

    // Synthetic clips from those shards: 6 files of 40 clips, two per shard.
    let shards = one.canonicalize().unwrap();
    let sample = [
        "--mode",
        "structure",
        "--shards",
        shards.to_str().unwrap(),
        "--dataset",
        "demo-source",
        "--out",
        "syn",
        "--clips",
        "230",
        "--clips-per-file",
        "40",
        "--chunk",
        "16",
        "--source-stats-clips",
        "50",
    ];
    let (one, three) = whole_and_sharded(&tmp.path().join("augment"), "dak-augment", &sample, "syn");
    // report.json holds timings; everything else must match.
    let strip = |v: Vec<(String, Vec<u8>)>| v.into_iter().filter(|(n, _)| n != "report.json").collect::<Vec<_>>();
    let whole = strip(files(&one));
    assert_eq!(whole.iter().filter(|(n, _)| n.starts_with("part-")).count(), 6);
    assert_same_files(&strip(files(&three)), &whole, "merged synthetic shards vs one process");
    // A shard beyond the 6 files has nothing to write, and says why.
    let mut idle_args = sample.to_vec();
    idle_args[7] = "idle";
    let idle = in_dir(&tmp.path().join("augment/three"), "dak-augment", &idle_args)
        .args(["--shard-index", "7", "--num-shards", "8"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&idle.stderr);
    assert!(idle.status.success() && log.contains("shard 7 of 8 has no work: 230 clips make 6 files"), "{log}");
    // The merged report carries the statistics of all clips, as the single run's does.
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(three.join("report.json")).unwrap()).unwrap();
    let single: serde_json::Value = serde_json::from_slice(&std::fs::read(one.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["synthetic"], single["synthetic"]);
    assert_eq!(report["synthetic"]["clips"], 230);
    // It reads back as a report, with the single run's settings and no wall time.
    let parsed: dak_augment::Report = serde_json::from_value(report.clone()).unwrap();
    assert_eq!((parsed.seconds, &parsed.settings), (None, &single["settings"]));
    assert!(serde_json::from_value::<dak_augment::Report>(single).unwrap().seconds.is_some());

    // Merging again is a no-op: the files stay as they are.
    let before = files(&three);
    let again = in_dir(&tmp.path().join("augment/three"), "dak-prep", &["merge", "syn"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    ok(&again);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(log.contains("already merged"), "{log}");
    assert_same_files(&files(&three), &before, "merged again");
}

#[test]
fn merge_names_missing_shards_and_bad_indices() {
    let tmp = tempfile::tempdir().unwrap();
    let base = ["synth", "--out", "demo", "--frames", "30", "--sequences-per-file", "20"];
    for i in ["0", "2"] {
        ok(&in_dir(tmp.path(), "dak-prep", &base).args(["--shard-index", i, "--num-shards", "3"]).output().unwrap());
    }
    let o = in_dir(tmp.path(), "dak-prep", &["merge", "demo"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("demo") && err.contains("missing shards [1] of 3"), "{err}");
    assert!(!tmp.path().join("demo/manifest.json").exists());

    let o = in_dir(tmp.path(), "dak-prep", &base).args(["--shard-index", "3", "--num-shards", "3"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--shard-index 3 --num-shards 3"), "{err}");

    // The missing shard completes the output.
    ok(&in_dir(tmp.path(), "dak-prep", &base).args(["--shard-index", "1", "--num-shards", "3"]).output().unwrap());
    ok(&in_dir(tmp.path(), "dak-prep", &["merge", "demo"]).output().unwrap());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("demo/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["files"].as_array().unwrap().len(), 5, "4 groups of 20 sequences and the camera table");
    assert!(!m["command"].to_string().contains("shard"), "shard flags are not recorded: {}", m["command"]);
}

#[test]
fn sharded_converter_on_dataset_fixtures() {
    let Some((fx, _)) = crate::convert::fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for dataset in ["h36m", "3dhp", "3dpw"] {
        let data = fx.join(dataset).canonicalize().unwrap();
        let args = [dataset, "--data-dir", data.to_str().unwrap(), "--out", "out", "--sequences-per-file", "1"];
        let (one, three) = whole_and_sharded(&tmp.path().join(dataset), "dak-prep", &args, "out");
        assert_same_files(&files(&three), &files(&one), dataset);
    }
}
