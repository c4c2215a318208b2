//! dak-train end to end on a small demo dataset: a run's files, resuming,
//! refusing damaged checkpoints, the PyTorch export, parameter counts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dak_datasets::synth::{self, SynthConfig};
use dak_io::Silent;

use crate::support::{ok, run};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// Demo shards and structure-augmented clips. The clips stand in for SMA and
/// DMA output here: the trainer reads any synthetic_clips shards, and fitting
/// both augmentors would triple the test's time.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let config = SynthConfig { seed: 5, frames: 40, ..SynthConfig::default() };
        synth::generate(&config, &root.join("demo"), false, vec!["test".into()], Default::default(), &Silent).unwrap();
        let shards = root.join("demo");
        let syn = root.join("syn");
        let args = ["-q", "--mode", "structure", "--shards", shards.to_str().unwrap(), "--dataset", "demo-source"];
        ok(&run(
            "dak-augment",
            &[&args[..], &["--out", syn.to_str().unwrap(), "--clips", "64", "--clip-frames", "9"]].concat(),
        ));
        Fixture { _dir: dir, root }
    })
}

/// The fixture's source shards.
pub fn shards() -> PathBuf {
    fixture().root.join("demo")
}

pub fn train(out: &Path, extra: &[&str]) -> std::process::Output {
    train_command(out, extra).output().expect("dak-train starts")
}

/// The tiny training run of these tests, not started yet.
pub fn train_command(out: &Path, extra: &[&str]) -> std::process::Command {
    let f = fixture();
    let shards = f.root.join("demo");
    let syn = f.root.join("syn");
    let base = [
        "--shards",
        shards.to_str().unwrap(),
        "--sma",
        syn.to_str().unwrap(),
        "--dma",
        syn.to_str().unwrap(),
        "--train-dataset",
        "demo-source",
        "--train-subjects",
        "S1",
        "--eval-dataset",
        "demo-target",
        "--eval-subjects",
        "T1",
        "--frames",
        "9",
        "--channels",
        "16",
        "--encoder-layers",
        "2",
        "--decoder-layers",
        "1",
        "--heads",
        "2",
        "--batch-size",
        "16",
        "--lr",
        "1e-3",
        "--stride",
        "18",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut command = std::process::Command::new(crate::support::binary("dak-train"));
    command.args(base).args(extra);
    command
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_run_writes_metrics_checkpoint_export_and_curves_and_is_then_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full");
    let text = ok(&train(&out, &["--epochs", "2"]));
    assert!(text.contains("held-out MPJPE"), "{text}");
    let m = metrics(&out);
    assert_eq!(m.len(), 2);
    for (i, r) in m.iter().enumerate() {
        assert_eq!(r["epoch"], i);
        for term in ["pe", "fd", "adv_str", "adv_dyn", "total"] {
            let v = r["losses"][term].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "{term} = {v}");
        }
        assert!(r["eval"]["mpjpe_mm"].as_f64().unwrap() > 0.0);
        assert!(r["samples_per_s"].as_f64().unwrap() > 0.0);
    }
    // GRL warm-up over 50 epochs: λ = epoch / 50.
    assert_eq!(m[1]["grl_lambda"].as_f64().unwrap(), 1.0 / 50.0);
    assert!((m[1]["learning_rate"].as_f64().unwrap() - 1e-3 * 0.99).abs() < 1e-15);
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["ablation"], "full");
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export/model.json")).unwrap()).unwrap();
    assert_eq!(model["model"]["channels"], 16);
    assert_eq!(model["trained_with_flip"], true);
    let (_, sha) = dak_io::atomic::sha256_file(&out.join("export/model.safetensors")).unwrap();
    assert_eq!(model["weights_sha256"], sha);
    if let Some(python) = crate::support::python() {
        let script = "import sys\nfrom safetensors.torch import load_file\nw = load_file(sys.argv[1])\nprint(len([k for k in w if k.startswith('G')]), tuple(w['head.weight'].shape), tuple(w['structural.blocks.0.attn.qkv.weight'].shape))";
        let text = ok(&std::process::Command::new(python)
            .args(["-c", script])
            .arg(out.join("export/model.safetensors"))
            .output()
            .unwrap());
        // Only G, without its prefix; nn.Linear layouts (out, in).
        assert_eq!(text.trim(), "0 (3, 16) (48, 16)", "{text}");
    }
    let again = ok(&train(&out, &["--epochs", "2"]));
    assert!(again.contains("up to date"), "{again}");
    let err = train(&out, &["--epochs", "2", "--ablation", "baseline"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("--force"));
}

#[test]
fn resuming_equals_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    ok(&train(&whole, &["--epochs", "2", "--ablation", "sa-adg", "--no-flip"]));
    let split = dir.path().join("split");
    ok(&train(&split, &["--epochs", "1", "--ablation", "sa-adg", "--no-flip"]));
    // What a run killed while writing leaves: swept by the resume.
    let leftovers = [".checkpoint.json.p99999-0.tmp", ".checkpoint-e0002.safetensors.p99999-1.tmp.safetensors"];
    for name in leftovers {
        std::fs::write(split.join(name), b"half").unwrap();
    }
    // Resumed with no data named: the run's own (the source and the SMA
    // clips that sa-adg used) and its own settings.
    let resumed = run("dak-train", &["--out", split.to_str().unwrap(), "--epochs", "2", "--resume"]);
    ok(&resumed);
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains("--resume on the run's own shards") && log.contains("syn"), "{log}");
    // --force would start over with the flags given: not on a guess.
    let forced = run("dak-train", &["--out", split.to_str().unwrap(), "--epochs", "2", "--resume", "--force"]);
    let err = String::from_utf8_lossy(&forced.stderr);
    assert!(!forced.status.success() && err.contains("--resume --force needs the run's --shards"), "{err}");
    for name in leftovers {
        assert!(!split.join(name).exists(), "{name} left");
    }
    let (a, b) = (metrics(&whole), metrics(&split));
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["losses"], y["losses"]);
        assert_eq!(x["eval"], y["eval"]);
    }
    assert_eq!(
        std::fs::read(whole.join("export/model.safetensors")).unwrap(),
        std::fs::read(split.join("export/model.safetensors")).unwrap()
    );
    // Loaded from its export as from its run, a model trained without flips
    // gets no test-time flip.
    for path in [whole.clone(), whole.join("export")] {
        let model = dak_eval::model::LoadedModel::load(&path, tch::Device::Cpu).unwrap();
        assert!(!model.trained_with_flip, "{}", path.display());
    }
}

#[test]
fn a_truncated_checkpoint_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("base");
    ok(&train(&out, &["--epochs", "1", "--ablation", "baseline"]));
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("checkpoint.json")).unwrap()).unwrap();
    let file = out.join(info["file"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let err = train(&out, &["--epochs", "2", "--resume"]);
    assert!(!err.status.success());
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("truncated") && stderr.contains(info["file"].as_str().unwrap()), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // With --force too, the damaged run is started over.
    ok(&train(&out, &["--epochs", "1", "--ablation", "baseline", "--resume", "--force"]));
    assert_eq!(metrics(&out).len(), 1);
}

#[test]
fn print_params_reports_table_7_sizes() {
    let text = ok(&run("dak-train", &["--print-params", "--ablation", "baseline"]));
    let g = text.lines().find(|l| l.starts_with("G ")).unwrap_or_else(|| panic!("{text}"));
    assert!(g.contains("34.2"), "{g}");
    assert!(text.contains("G.decoder"), "{text}");
    // A --config file names only what it changes; a flag overrides it.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(&config, "ablation = \"baseline\"\n[model]\nchannels = 64\n").unwrap();
    let text = ok(&run("dak-train", &["--print-params", "--config", config.to_str().unwrap(), "--frames", "9"]));
    assert!(text.contains("T=9, C=64, L=4, K=6, ablation baseline"), "{text}");
    std::fs::write(&config, "[model]\nchanels = 64\n").unwrap();
    let out = run("dak-train", &["--print-params", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("small.toml") && err.contains("chanels"), "{err}");
}

/// The bench mode's filters narrow its grid to one row (how benches/gpu.sh
/// measures each configuration's peak memory in its own process), and with
/// shards it also times the loader.
#[test]
fn bench_filters_give_one_row_and_the_loader_rate() {
    let shards = shards();
    let small = ["--channels", "16", "--encoder-layers", "2", "--decoder-layers", "1", "--heads", "2"];
    let args = ["--bench", "--device", "cpu", "--batch-size", "2", "--bench-steps", "1", "--frames", "9"];
    let filters = ["--ablation", "full", "--precision", "fp32", "--shards", shards.to_str().unwrap()];
    let stdout = ok(&run("dak-train", &[&args[..], &small, &filters, &["--train-dataset", "demo-source"]].concat()));
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0]["work"], "train-full");
    assert_eq!((rows[0]["frames"].as_u64(), rows[0]["batch"].as_u64()), (Some(9), Some(2)));
    assert_eq!(rows[0]["precision"], "fp32");
    assert!(rows[0]["step_s"].as_f64().unwrap() > 0.0);
    assert_eq!(rows[1]["work"], "loader");
    assert!(rows[1]["windows_per_s"].as_f64().unwrap() > 0.0, "{stdout}");
    let stdout = ok(&run("dak-train", &[&args[..], &small, &filters[..2], &["--checkpoint-activations"]].concat()));
    let row: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(row["work"], "train-full-checkpointed", "{stdout}");
    assert!(row["step_s"].as_f64().unwrap() > 0.0);
    let stdout = ok(&run("dak-train", &[&args[..], &small, &filters[..2], &["--one-backward"]].concat()));
    let row: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(row["work"], "train-full-one-backward", "{stdout}");
    assert!(row["step_s"].as_f64().unwrap() > 0.0);
    // One backward and checkpointing are two ways to run the backward.
    let both = run("dak-train", &[&args[..], &small, &["--one-backward", "--checkpoint-activations"]].concat());
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(!both.status.success() && err.contains("cannot be used with"), "{err}");
}

/// A run is up to date, and may be resumed, only on the shards it learnt
/// from; --resume --force resumes the same run and starts any other over.
#[test]
fn a_run_is_only_up_to_date_and_resumable_on_its_own_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let other = dir.path().join("other-syn");
    let shards = shards();
    let args = ["-q", "--mode", "structure", "--shards", shards.to_str().unwrap(), "--dataset", "demo-source"];
    let more = ["--out", other.to_str().unwrap(), "--clips", "32", "--clip-frames", "9", "--seed", "9"];
    ok(&run("dak-augment", &[&args[..], &more].concat()));
    let own = ["--ablation", "sa-adg"];
    ok(&train(&out, &[&own[..], &["--epochs", "1"]].concat()));
    // --sma adds to the fixture's SMA directory: other data.
    let with_other = [&own[..], &["--sma", other.to_str().unwrap()]].concat();
    let refused = train(&out, &[&with_other[..], &["--epochs", "1"]].concat());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("other shards") && err.contains("--force"), "{err}");
    let resumed = train(&out, &[&with_other[..], &["--resume", "--epochs", "1"]].concat());
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(!resumed.status.success() && err.contains("other shards"), "{err}");
    // A mistyped directory is named as such, and --force does not clear the run for it.
    let missing = dir.path().join("nowhere");
    let typo = [&own[..], &["--sma", missing.to_str().unwrap(), "--epochs", "1", "--resume", "--force"]].concat();
    let failed = train(&out, &typo);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success() && err.contains("nowhere") && !err.contains("other shards"), "{err}");
    assert!(out.join("export/model.json").exists(), "the finished run is still there");
    // --resume --force on other data starts over.
    ok(&train(&out, &[&with_other[..], &["--resume", "--force", "--epochs", "2"]].concat()));
    let m = metrics(&out);
    assert_eq!((m.len(), m[0]["epoch"].as_u64()), (2, Some(0)));
    // The same run with more epochs resumes; its finished export is the new one.
    let info_before = std::fs::read(out.join("checkpoint.json")).unwrap();
    ok(&train(&out, &[&with_other[..], &["--resume", "--force", "--epochs", "3"]].concat()));
    assert_ne!(std::fs::read(out.join("checkpoint.json")).unwrap(), info_before);
    assert_eq!(metrics(&out).len(), 3);
    let export: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("export/model.json")).unwrap()).unwrap();
    assert_eq!(export["epoch"], 3);
    // Without --epochs, --resume --force keeps the run's own count: nothing
    // to train, nothing cleared.
    ok(&train(&out, &[&with_other[..], &["--resume", "--force"]].concat()));
    assert_eq!(metrics(&out).len(), 3);
    // The epochs of a --config file count as the flag's would.
    let more = dir.path().join("more.toml");
    std::fs::write(&more, "epochs = 4\n").unwrap();
    ok(&train(&out, &[&with_other[..], &["--resume", "--force", "--config", more.to_str().unwrap()]].concat()));
    assert_eq!(metrics(&out).len(), 4);
    // Plain --resume names a setting it would otherwise drop, and does not go back in epochs.
    let pe = train(&out, &[&with_other[..], &["--resume", "--lambda-pe", "5", "--epochs", "5"]].concat());
    let err = String::from_utf8_lossy(&pe.stderr);
    assert!(!pe.status.success() && err.contains("losses.pe: 5.0 (10.0)") && err.contains("--force"), "{err}");
    let back = train(&out, &[&with_other[..], &["--resume", "--epochs", "2"]].concat());
    let err = String::from_utf8_lossy(&back.stderr);
    assert!(!back.status.success() && err.contains("2 epochs asked for, but the run has finished 4"), "{err}");
    // A --config file with plain --resume changes only the keys it names:
    // the rest are the run's, not the defaults.
    ok(&train(&out, &[&with_other[..], &["--resume", "--config", more.to_str().unwrap()]].concat()));
    std::fs::write(&more, "[losses]\nfd = 1.5\n").unwrap();
    let wider = train(&out, &[&with_other[..], &["--resume", "--config", more.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&wider.stderr);
    assert!(!wider.status.success() && err.contains("losses.fd: 1.5 (4.0)"), "{err}");
    assert_eq!(metrics(&out).len(), 4);
}
