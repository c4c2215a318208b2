//! `dak pipeline run|plan`: stages run in order, up-to-date stages are
//! skipped, a change reruns exactly what it reaches, and a bad file stops
//! before anything runs.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{binary, ok, workspace_root};

const PIPELINE: &str = r#"
[pipeline]
name = "t"

[vars]
clips = 48

[[stage]]
name = "prep"
run = "prep synth"
out = "shards/demo"
frames = 40

[[stage]]
name = "stats"
run = "prep stats"
args = ["shards/demo"]
json = "shards/demo.stats.json"

[[stage]]
name = "sample"
run = "augment sample"
mode = "structure"
shards = ["shards/demo"]
dataset = "demo-source"
out = "shards/syn"
clips = "${clips}"
clip_frames = 9
source_stats_clips = 20

[[stage]]
name = "train"
run = "train"
ablation = "sa-adg"
shards = ["shards/demo"]
sma = ["shards/syn"]
out = "runs/t"
train_dataset = "demo-source"
train_subjects = ["S1"]
eval_dataset = "demo-target"
eval_subjects = ["T1"]
frames = 9
channels = 16
encoder_layers = 2
decoder_layers = 1
heads = 2
batch_size = 16
lr = 1e-3
stride = 18
epochs = 1

[[stage]]
name = "eval"
run = "eval"
checkpoint = "runs/t"
shards = ["shards/demo"]
protocol = "demo"
"#;

fn dak(cwd: &Path, args: &[&str]) -> Output {
    Command::new(binary("dak")).current_dir(cwd).args(args).output().expect("dak starts")
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn rows(manifest_dir: &Path) -> u64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_dir.join("manifest.json")).unwrap()).unwrap();
    m["total_rows"].as_u64().unwrap()
}

#[test]
fn a_pipeline_runs_skips_what_is_up_to_date_and_reruns_what_a_change_reaches() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("p.toml"), PIPELINE).unwrap();

    ok(&dak(d, &["pipeline", "run", "p.toml", "-q"]));
    for out in [
        "shards/demo/manifest.json",
        "shards/demo.stats.json",
        "shards/syn/manifest.json",
        "runs/t/checkpoint.json",
        "runs/t/eval-demo/results.json",
    ] {
        assert!(d.join(out).exists(), "{out} missing after the run");
    }
    assert_eq!(rows(&d.join("shards/syn")), 48);
    let (prep_made, train_made) =
        (mtime(&d.join("shards/demo/manifest.json")), mtime(&d.join("runs/t/checkpoint.json")));

    // Everything is up to date: the plan runs nothing and a run touches nothing.
    let plan = ok(&dak(d, &["pipeline", "plan", "p.toml"]));
    assert!(plan.contains("5 stages, 0 to run"), "{plan}");
    let again = dak(d, &["pipeline", "run", "p.toml"]);
    ok(&again);
    assert_eq!(String::from_utf8_lossy(&again.stderr).matches("up to date").count(), 6, "five stages and the summary");
    assert_eq!(mtime(&d.join("runs/t/checkpoint.json")), train_made);

    // A changed sample count reaches sample, train and eval, not prep or stats.
    let plan = ok(&dak(d, &["pipeline", "plan", "p.toml", "--set", "clips=40"]));
    assert!(plan.contains("5 stages, 3 to run"), "{plan}");
    assert!(plan.contains("sample  (its settings changed)"), "{plan}");
    assert!(plan.contains("train   (input shards/syn is rewritten by stage `sample`)"), "{plan}");
    assert!(plan.contains("$ dak augment sample --mode structure --shards shards/demo --dataset demo-source --out shards/syn --clips 40"), "{plan}");
    assert!(plan.contains("--source-stats-clips 20 --force\n"), "the command as run gives it: {plan}");
    ok(&dak(d, &["pipeline", "run", "p.toml", "--set", "clips=40", "-q"]));
    assert_eq!(rows(&d.join("shards/syn")), 40);
    assert_eq!(mtime(&d.join("shards/demo/manifest.json")), prep_made, "prep was up to date");
    assert_ne!(mtime(&d.join("runs/t/checkpoint.json")), train_made, "train saw new synthetic clips");

    // --from forces a stage and all after it; a removed output is redone.
    let plan = ok(&dak(d, &["pipeline", "plan", "p.toml", "--set", "clips=40", "--from", "train"]));
    assert!(plan.contains("5 stages, 2 to run") && plan.contains("forced by --from"), "{plan}");
    std::fs::remove_file(d.join("shards/demo.stats.json")).unwrap();
    let plan = ok(&dak(d, &["pipeline", "plan", "p.toml", "--set", "clips=40"]));
    assert!(
        plan.contains("5 stages, 1 to run") && plan.contains("shards/demo.stats.json is missing or was changed"),
        "{plan}"
    );
    // A shard deleted by hand: its manifest is as it was, the stage is not up to date.
    std::fs::remove_file(d.join("shards/syn/part-00000.parquet")).unwrap();
    let plan = ok(&dak(d, &["pipeline", "plan", "p.toml", "--set", "clips=40"]));
    assert!(plan.contains("shards/syn/part-00000.parquet is gone or not the size its output records"), "{plan}");
}

#[test]
fn a_bad_pipeline_is_refused_before_anything_runs_and_a_failed_stage_stops_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bad = PIPELINE.replace("clip_frames = 9", "clip_frame = 9");
    std::fs::write(d.join("bad.toml"), &bad).unwrap();
    let out = dak(d, &["pipeline", "run", "bad.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.toml:28: stage `sample`, key `clip_frame`: unexpected argument '--clip-frame'"), "{err}");
    assert!(!d.join("shards").exists(), "nothing ran");

    // The second stage fails at run time: the first keeps its result, the
    // failed one gets no stamp, the third does not run.
    let failing = r#"
[[stage]]
name = "prep"
run = "prep synth"
out = "shards/demo"
frames = 30
[[stage]]
name = "eval"
run = "eval"
checkpoint = "shards/demo"
shards = ["shards/demo"]
protocol = "demo"
out = "evals/x"
[[stage]]
name = "stats"
run = "prep stats"
args = ["shards/demo"]
json = "shards/demo.stats.json"
"#;
    std::fs::write(d.join("f.toml"), failing).unwrap();
    let out = dak(d, &["pipeline", "run", "f.toml", "-q"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("stage `eval` failed"), "{err}");
    assert!(d.join("shards/demo/.dak-stage.json").exists());
    // The failed stage holds a claim (a stamp without an output), not a stamp.
    let claim: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("evals/x/.dak-stage.json")).unwrap()).unwrap();
    assert_eq!((claim["stage"].as_str(), claim["output"].as_str()), (Some("eval"), Some("")));
    assert!(!d.join("shards/demo.stats.json").exists());
    let plan = ok(&dak(d, &["pipeline", "plan", "f.toml"]));
    assert!(plan.contains("3 stages, 2 to run") && plan.contains("its last run did not finish"), "{plan}");

    // A finished output the pipeline did not make (made by hand here) is
    // refused before anything runs, not replaced with --force; --from
    // replaces it.
    let own = r#"
[[stage]]
name = "prep"
run = "prep synth"
out = "mine"
frames = 30
"#;
    std::fs::write(d.join("own.toml"), own).unwrap();
    ok(&dak(d, &["prep", "synth", "--out", "mine", "--frames", "30", "-q"]));
    let manifest = std::fs::read(d.join("mine/manifest.json")).unwrap();
    for command in ["plan", "run"] {
        let out = dak(d, &["pipeline", command, "own.toml", "-q"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("no stamp says this pipeline made") && err.contains("--from prep"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(d.join("mine/manifest.json")).unwrap(), manifest, "left as it was");
    ok(&dak(d, &["pipeline", "run", "own.toml", "--from", "prep", "-q"]));
    assert!(d.join("mine/.dak-stage.json").exists());
}

/// Every shipped pipeline parses and checks (data paths pointed at empty directories).
#[test]
fn shipped_pipelines_are_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let root = workspace_root();
    let mut found = 0;
    for entry in std::fs::read_dir(root.join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        found += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let mut args = vec!["pipeline".to_string(), "plan".into(), path.to_string_lossy().into_owned()];
        for var in ["h36m_data", "mpi3dhp_data", "pw3d_data"] {
            if text.contains(&format!("{var} =")) {
                let dir = tmp.path().join(var);
                std::fs::create_dir_all(&dir).unwrap();
                args.extend(["--set".into(), format!("{var}={}", dir.display())]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let plan = ok(&dak(tmp.path(), &args));
        assert!(plan.contains("$ dak "), "{}: {plan}", path.display());
    }
    assert!(found >= 5, "demo, h36m-s1, h36m-full, h36m-to-3dhp, h36m-to-3dpw");
}

/// Raw data deleted once converted leaves what was made from it standing;
/// an output that another run is making stops this run before it decides.
#[test]
fn outputs_outlive_their_raw_inputs_and_a_stage_has_one_maker() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Stands in for raw data: made outside the pipeline.
    ok(&dak(d, &["prep", "synth", "-q", "--out", "raw/demo", "--frames", "20"]));
    let stats = r#"
[[stage]]
name = "stats"
run = "prep stats"
args = ["raw/demo"]
json = "out/stats.json"
"#;
    std::fs::write(d.join("s.toml"), stats).unwrap();
    ok(&dak(d, &["pipeline", "run", "s.toml", "-q"]));
    let made = std::fs::read(d.join("out/stats.json")).unwrap();

    std::fs::remove_dir_all(d.join("raw")).unwrap();
    let plan = ok(&dak(d, &["pipeline", "plan", "s.toml"]));
    assert!(plan.contains("1 stages, 0 to run"), "{plan}");
    let run = dak(d, &["pipeline", "run", "s.toml"]);
    ok(&run);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("input raw/demo is gone; keeping what it made"), "{log}");
    assert_eq!(std::fs::read(d.join("out/stats.json")).unwrap(), made);

    // With other settings the output is no longer what they would make:
    // the missing input is refused before anything runs.
    ok(&dak(d, &["prep", "synth", "-q", "--out", "raw/other", "--frames", "5"]));
    std::fs::write(d.join("s2.toml"), stats.replace(r#"["raw/demo"]"#, r#"["raw/other", "raw/demo"]"#)).unwrap();
    let changed = dak(d, &["pipeline", "plan", "s2.toml"]);
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(
        !changed.status.success() && err.contains("raw/demo does not exist and no earlier stage writes it"),
        "{err}"
    );

    // A stage that must run (forced) with its input gone stops before it
    // touches the output or its stamp: the next run keeps them.
    let forced = dak(d, &["pipeline", "run", "s.toml", "--from", "stats"]);
    let err = String::from_utf8_lossy(&forced.stderr);
    assert!(!forced.status.success() && err.contains("stage `stats`: input raw/demo does not exist"), "{err}");
    assert!(ok(&dak(d, &["pipeline", "plan", "s.toml"])).contains("1 stages, 0 to run"));
    assert_eq!(std::fs::read(d.join("out/stats.json")).unwrap(), made);

    // Another run holds the output: this run stops, naming it. A lock
    // file nobody holds (a killed run's) is no lock.
    let path = d.join("out/.stats.json.dak-lock");
    let mut held = std::fs::File::create(&path).unwrap();
    held.try_lock().unwrap();
    std::io::Write::write_all(&mut held, b"4242\n").unwrap();
    let run = dak(d, &["pipeline", "run", "s.toml"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && err.contains("out/stats.json is being made by another run (process 4242)"),
        "{err}"
    );
    drop(held);
    assert!(path.exists());
    ok(&dak(d, &["pipeline", "run", "s.toml", "-q"]));
    assert!(!path.exists(), "released after the stage");
}

/// A stage stops when the pipeline run that started it is gone: that run's
/// lock on the output went with it, and the next run may start another maker.
#[test]
fn a_stage_stops_when_its_pipeline_run_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |parent: String| {
        Command::new(binary("dak"))
            .current_dir(dir.path())
            .args(["prep", "synth", "--frames", "30", "-q", "--out", "demo"])
            .env("DAK_PIPELINE_PARENT", parent)
            .output()
            .unwrap()
    };
    let orphan = synth("1".into());
    let err = String::from_utf8_lossy(&orphan.stderr);
    assert_eq!(orphan.status.code(), Some(143), "{err}");
    assert!(err.contains("pipeline run that started this stage (process 1) is gone"), "{err}");
    assert!(!dir.path().join("demo/manifest.json").exists());
    ok(&synth(std::process::id().to_string()));
    assert!(dir.path().join("demo/manifest.json").exists());
}

/// The cluster examples in pipelines/slurm/ stay runnable: each array task's
/// command (run through the script with `srun` stubbed out) and each merge
/// line in the comments parse as `dak` command lines, and the merge joins
/// the directory the tasks write.
#[test]
fn cluster_examples_parse_and_merge_what_their_tasks_write() {
    use clap::Parser;
    let dir = workspace_root().join("pipelines/slurm");
    let stub = tempfile::tempdir().unwrap();
    let log = stub.path().join("srun.args");
    let srun = stub.path().join("srun");
    std::fs::write(&srun, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n", log.display())).unwrap();
    std::fs::set_permissions(&srun, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let parse = |what: &str, words: Vec<String>| -> dak_cli::app::Dak {
        dak_cli::app::Dak::try_parse_from(&words).unwrap_or_else(|e| panic!("{what}: {words:?}: {e}"))
    };
    let out_of = |words: &[String]| words.iter().skip_while(|w| *w != "--out").nth(1).cloned();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let task: Vec<String> = match path.extension().and_then(|e| e.to_str()) {
            Some("sbatch") => {
                let status = Command::new("bash")
                    .arg(&path)
                    .env("PATH", format!("{}:{}", stub.path().display(), std::env::var("PATH").unwrap()))
                    .env("SLURM_ARRAY_TASK_ID", "3")
                    .env("SLURM_ARRAY_TASK_COUNT", "8")
                    .env_remove("SHARED")
                    .status()
                    .unwrap();
                assert!(status.success(), "{name}");
                std::fs::read_to_string(&log).unwrap().lines().map(String::from).collect()
            }
            Some("yaml") => {
                // The container's folded `sh -c` script, with the index the Job sets.
                let script: Vec<&str> = text
                    .lines()
                    .skip_while(|l| !l.trim_start().starts_with("- >-"))
                    .skip(1)
                    .take_while(|l| !l.trim_start().starts_with("resources:"))
                    .collect();
                script
                    .join(" ")
                    .replace("\"$JOB_COMPLETION_INDEX\"", "3")
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            }
            _ => continue,
        };
        parse(&name, task.clone());
        assert!(task.windows(2).any(|w| w[0] == "--shard-index" && w[1] == "3"), "{name}: {task:?}");
        let merge: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once("dak prep merge ").map(|(_, rest)| rest))
            .map(|rest| rest.trim_end_matches('"').replace("${SHARED:-/shared/dak}", "/shared/dak"))
            .flat_map(|rest| ["dak", "prep", "merge"].map(String::from).into_iter().chain([rest]).collect::<Vec<_>>())
            .collect();
        assert_eq!(merge.len(), 4, "{name}: one merge line");
        parse(&name, merge.clone());
        assert_eq!(out_of(&task).as_deref(), Some(merge[3].as_str()), "{name}: the merge joins the tasks' output");
        checked += 1;
    }
    assert_eq!(checked, 3, "two Slurm scripts and one Kubernetes Job");
}
