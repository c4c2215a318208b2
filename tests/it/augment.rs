//! dak-augment end to end on a small demo dataset: fit SMA and DMA, sample
//! all three modes, read the shards back, and the failure paths.

use std::path::Path;
use std::sync::OnceLock;

use dak_core::bones::bone_lengths;
use dak_core::skeleton::{pose_from_flat, NUM_JOINTS};
use dak_datasets::synth::{self, SynthConfig};
use dak_io::{ShardSet, Silent, Verify};

use crate::support::{ok, parquet_files, run};

/// Demo shards and fitted tiny models, made once for all tests here.
struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let config = SynthConfig { seed: 3, frames: 120, ..SynthConfig::default() };
        synth::generate(&config, &root.join("demo"), false, vec!["test".into()], Default::default(), &Silent).unwrap();
        let shards = root.join("demo");
        let shards = shards.to_str().unwrap();
        let sma = root.join("sma");
        fit_tiny_sma(shards, &sma);
        let dma = root.join("dma");
        ok(&run(
            "dak-augment",
            &[
                "-q",
                "fit",
                "--mode",
                "dma",
                "--shards",
                shards,
                "--out",
                dma.to_str().unwrap(),
                "--steps",
                "5",
                "--batch",
                "4",
                "--samples",
                "2",
                "--hidden",
                "32",
            ],
        ));
        Fixture { _dir: dir, root }
    })
}

fn fit_tiny_sma(shards: &str, out: &Path) {
    let args = ["-q", "fit", "--mode", "sma", "--shards", shards, "--out", out.to_str().unwrap()];
    ok(&run("dak-augment", &[&args[..], &["--steps", "5", "--batch", "8", "--hidden", "32"]].concat()));
}

fn sample(mode: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let f = fixture();
    let mut args = vec![
        "-q",
        "--mode",
        mode,
        "--shards",
        f.root.join("demo").to_str().unwrap().to_owned().leak(),
        "--out",
        out.to_str().unwrap().to_owned().leak(),
        "--clips",
        "40",
        "--seed",
        "5",
    ];
    let model = f.root.join(mode);
    if mode != "structure" {
        args.extend(["--model", model.to_str().unwrap().to_owned().leak()]);
    }
    args.extend_from_slice(extra);
    run("dak-augment", &args)
}

fn joints_3d(dir: &Path) -> Vec<f32> {
    let set = ShardSet::open(dir, Verify::Sizes).unwrap();
    let mut all = Vec::new();
    for batch in set.synthetic_clips() {
        let clips = batch.unwrap();
        for i in 0..clips.len() {
            all.extend_from_slice(clips.joints_3d_camera_mm(i));
        }
    }
    all
}

#[test]
fn every_mode_writes_clips_that_stats_and_readers_accept() {
    let out = tempfile::tempdir().unwrap();
    // The demo shards hold the target domain's test cameras too; synthetic
    // clips must only be seen through the training domain's.
    let demo = ShardSet::open(&fixture().root.join("demo"), Verify::Sizes).unwrap();
    let (source_cameras, target_cameras): (Vec<_>, Vec<_>) =
        demo.cameras().unwrap().into_iter().partition(|c| c.dataset == "demo-source");
    assert!(
        !target_cameras.is_empty()
            && target_cameras.iter().all(|t| source_cameras.iter().all(|s| s.intrinsics != t.intrinsics))
    );
    let mut drawn = Vec::new();
    for mode in ["structure", "sma", "dma"] {
        let dir = out.path().join(mode);
        ok(&sample(mode, &dir, &[]));
        let set = ShardSet::open(&dir, Verify::Checksums).unwrap();
        assert_eq!(set.manifest().total_rows, 40);
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["mode"], mode);
        assert_eq!(report["synthetic"]["clips"], 40);
        assert!(report["source"]["clips"].as_u64().unwrap() > 0);
        if mode != "dma" {
            // The limb scales reach the clips: body proportions spread far
            // wider than the source's (demo: ~0.33 against ~0.04).
            let cv = |side: &str| report[side]["bone_length_spread_cv"].as_f64().unwrap();
            assert!(cv("synthetic") > 3.0 * cv("source"), "{mode}: {} vs {}", cv("synthetic"), cv("source"));
        }
        let mut ids = Vec::new();
        for batch in set.synthetic_clips() {
            let clips = batch.unwrap();
            for i in 0..clips.len() {
                ids.push(clips.clip_id.value(i));
                assert_eq!(clips.mode.value(i), mode);
                drawn.push((
                    mode,
                    clips.source_sequence.value(i).to_string(),
                    clips.source_start_frame.value(i),
                    format!("{:?}", clips.intrinsics(i)),
                ));
                assert_eq!(clips.num_frames.value(i), 27);
                assert_eq!(clips.source_dataset.value(i), "demo-source", "augmentors learn from the training split");
                // The stored 2D is the projection of the stored 3D with the stored camera.
                let k = clips.intrinsics(i);
                assert!(
                    source_cameras.iter().any(|c| c.intrinsics == k),
                    "{mode} clip {i}: not a source camera: {k:?}"
                );
                let (x3, x2) = (clips.joints_3d_camera_mm(i), clips.joints_2d_px(i));
                for f in [0usize, 13, 26] {
                    let pose = pose_from_flat(&x3[f * NUM_JOINTS * 3..(f + 1) * NUM_JOINTS * 3]);
                    for (j, p) in pose.iter().enumerate() {
                        let px = k.project(p);
                        let o = (f * NUM_JOINTS + j) * 2;
                        assert!((f64::from(x2[o]) - px.x).abs() < 1e-3 && (f64::from(x2[o + 1]) - px.y).abs() < 1e-3);
                    }
                }
                if mode != "dma" {
                    // Structure and SMA keep one set of bone lengths per clip
                    // (tolerance: the f32 storage of ~5 m coordinates).
                    let first = bone_lengths(&pose_from_flat(&x3[..NUM_JOINTS * 3]));
                    let last = bone_lengths(&pose_from_flat(&x3[26 * NUM_JOINTS * 3..]));
                    for j in 1..NUM_JOINTS {
                        assert!(
                            (first[j] - last[j]).abs() < 5e-3,
                            "{mode} clip {i} bone {j}: {} vs {}",
                            first[j],
                            last[j]
                        );
                    }
                }
            }
        }
        assert_eq!(ids, (0..40).collect::<Vec<u64>>());
        // Into a folder that does not exist yet.
        let json = out.path().join("stats").join(format!("{mode}.json"));
        let stats = ok(&run("dak-prep", &["stats", dir.to_str().unwrap(), "--json", json.to_str().unwrap()]));
        assert!(stats.contains(mode), "{stats}");
        let parsed: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let counts = &parsed[0]["counts"][0];
        assert_eq!((counts["mode"].as_str(), counts["clips"].as_f64()), (Some(mode), Some(40.0)), "{counts}");
        assert_eq!(counts["frames"].as_f64(), Some(40.0 * 27.0));
    }
    // One --seed for every mode (as pipelines have it) draws each mode's
    // references and cameras independently: clip i of SMA and of structure
    // augmentation are not views of one reference through one camera.
    let of = |mode: &str| drawn.iter().filter(|d| d.0 == mode).map(|d| (&d.1, d.2, &d.3)).collect::<Vec<_>>();
    let (structure, sma) = (of("structure"), of("sma"));
    let same = structure.iter().zip(&sma).filter(|(a, b)| a == b).count();
    assert!(same < 10, "{same} of 40 clips share reference and camera across modes");
}

#[test]
fn same_seed_same_bytes_and_reruns_are_no_ops() {
    let out = tempfile::tempdir().unwrap();
    let (a, b, c) = (out.path().join("a"), out.path().join("b"), out.path().join("c"));
    let quiet = ok(&sample("sma", &a, &["--chunk", "7"]));
    assert!(quiet.trim().is_empty(), "-q prints nothing: {quiet}");
    ok(&sample("sma", &b, &["--chunk", "7"]));
    assert!(parquet_files(&a) == parquet_files(&b), "same seed and settings must give byte-identical shards");
    // Another chunk size batches the network differently: equal up to float rounding.
    ok(&sample("sma", &c, &["--chunk", "16"]));
    let (xa, xc) = (joints_3d(&a), joints_3d(&c));
    assert_eq!(xa.len(), xc.len());
    let worst = xa.iter().zip(&xc).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(worst < 0.05, "chunking moved a joint by {worst} mm");
    let before = std::fs::read(a.join("manifest.json")).unwrap();
    ok(&sample("sma", &a, &["--chunk", "7"]));
    assert_eq!(std::fs::read(a.join("manifest.json")).unwrap(), before, "an up-to-date output is left alone");
    let other = sample("sma", &a, &["--chunk", "7", "--focal-jitter", "0.01"]);
    assert!(!other.status.success());
    // The refusal names what differs (the asked-for value, the held one in brackets).
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("--force") && err.contains("camera_jitter.focal_rel_std: 0.01 (0.0)"), "{err}");
    // --force with a mistyped filter fails before the finished output is touched.
    let typo = sample("sma", &a, &["--chunk", "7", "--focal-jitter", "0.01", "--force", "--subjects", "S99"]);
    assert!(!typo.status.success() && String::from_utf8_lossy(&typo.stderr).contains("S99"));
    assert_eq!(std::fs::read(a.join("manifest.json")).unwrap(), before, "the finished output is still there");
    ok(&sample("sma", &a, &["--chunk", "7", "--focal-jitter", "0.01", "--force"]));
    assert!(parquet_files(&a) != parquet_files(&b), "other settings give other shards");
}

#[test]
fn bad_inputs_fail_in_one_line_naming_what_is_wrong() {
    let out = tempfile::tempdir().unwrap();
    let f = fixture();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--mode".into(), "sma".into()], "--model"),
        (
            vec!["--mode".into(), "dma".into(), "--model".into(), f.root.join("sma").display().to_string()],
            "`sma` model",
        ),
        (
            vec!["--mode".into(), "sma".into(), "--model".into(), out.path().join("none").display().to_string()],
            "model.json",
        ),
        (vec!["--mode".into(), "structure".into(), "--device".into(), "cuda:7".into()], "cuda:7"),
        (vec!["--mode".into(), "structure".into(), "--global-std".into(), "0.6".into()], "global_std"),
        (vec!["--mode".into(), "structure".into(), "--clip-frames".into(), "500".into()], "longest: 120"),
        (vec!["--mode".into(), "structure".into(), "--clips".into(), "0".into()], "--clips 0"),
        (vec!["--mode".into(), "structure".into(), "--subjects".into(), "S99".into()], "--subjects S99"),
    ];
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let dir = out.path().join(format!("case{i}"));
        let mut args: Vec<String> = vec!["-q".into(), "--shards".into(), f.root.join("demo").display().to_string()];
        args.extend(["--out".into(), dir.display().to_string()]);
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let res = run("dak-augment", &args);
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "case {i} succeeded");
        assert!(err.contains(needle), "case {i}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(!dir.join("manifest.json").exists());
    }
    let missing = run(
        "dak-augment",
        &["-q", "--mode", "structure", "--shards", "/no/such/dir", "--out", out.path().join("x").to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/dir"));
}

#[test]
fn fit_writes_a_loadable_model_and_skips_when_up_to_date() {
    let f = fixture();
    let sma = f.root.join("sma");
    for file in ["model.json", "weights.safetensors", "discriminator.safetensors", "fit.jsonl"] {
        assert!(sma.join(file).exists(), "{file} missing");
    }
    let log = std::fs::read_to_string(sma.join("fit.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 5);
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(sma.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["kind"], "sma");
    assert_eq!(model["config"]["clip_frames"], 27);
    // A PyTorch user loads the weights by name, with PyTorch's layouts.
    if let Some(python) = crate::support::python() {
        let script = "import sys\nfrom safetensors.torch import load_file\nw = load_file(sys.argv[1])\nprint(tuple(w['ba.0.weight'].shape), tuple(w['rt.2.weight'].shape))\nw = load_file(sys.argv[2])\nprint(tuple(w['decoder.weight_ih_l0'].shape))";
        let out = std::process::Command::new(python)
            .args(["-c", script])
            .arg(sma.join("weights.safetensors"))
            .arg(f.root.join("dma").join("weights.safetensors"))
            .output()
            .unwrap();
        let text = ok(&out);
        // BA: pose (51) + noise (16) → hidden 32; RT: hidden → 6; decoder GRU: 3·32 × (51 + 32).
        assert_eq!(text.trim(), "(32, 67) (6, 32)\n(96, 83)", "{text}");
    }
    let before = std::fs::metadata(sma.join("weights.safetensors")).unwrap().modified().unwrap();
    let shards = f.root.join("demo");
    fit_tiny_sma(shards.to_str().unwrap(), &sma);
    assert_eq!(std::fs::metadata(sma.join("weights.safetensors")).unwrap().modified().unwrap(), before);
}

/// `fit --seed` decides the networks' starting weights too (fitted for 0
/// steps, a model is its initialisation); a DMA model then samples clips of
/// the length it was fitted for.
#[test]
fn fit_seed_sets_the_initial_weights() {
    let f = fixture();
    let shards = f.root.join("demo");
    let out = tempfile::tempdir().unwrap();
    for mode in ["sma", "dma"] {
        let weights = |seed: &str, name: &str| {
            let dir = out.path().join(format!("{mode}-{name}"));
            let args =
                ["-q", "fit", "--mode", mode, "--shards", shards.to_str().unwrap(), "--out", dir.to_str().unwrap()];
            let t = if mode == "dma" { "9" } else { "27" };
            let fit = ["--steps", "0", "--hidden", "16", "--seed", seed, "--clip-frames", t];
            ok(&run("dak-augment", &[&args[..], &fit].concat()));
            std::fs::read(dir.join("weights.safetensors")).unwrap()
        };
        let (a, b, c) = (weights("1", "a"), weights("1", "b"), weights("2", "c"));
        assert_eq!(a, b, "{mode}: the same seed, the same start");
        assert_ne!(a, c, "{mode}: another seed, another start");
    }
    // A finished model of other settings, or of the other kind, is replaced only with --force.
    let sma_a = out.path().join("sma-a");
    let refit = |mode: &str, extra: &[&str]| {
        let args =
            ["-q", "fit", "--mode", mode, "--shards", shards.to_str().unwrap(), "--out", sma_a.to_str().unwrap()];
        run("dak-augment", &[&args[..], &["--steps", "0", "--hidden", "16", "--clip-frames", "27"], extra].concat())
    };
    for (mode, seed, needle) in [("sma", "3", "other settings"), ("dma", "1", "holds a `sma` model")] {
        let refused = refit(mode, &["--seed", seed]);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && err.contains(needle) && err.contains("--force"), "{mode}: {err}");
    }
    ok(&refit("sma", &["--seed", "3", "--force"]));
    let clips = out.path().join("clips");
    let model = out.path().join("dma-a");
    let args = ["-q", "--mode", "dma", "--model", model.to_str().unwrap(), "--shards", shards.to_str().unwrap()];
    ok(&run("dak-augment", &[&args[..], &["--out", clips.to_str().unwrap(), "--clips", "4"]].concat()));
    for batch in ShardSet::open(&clips, Verify::Sizes).unwrap().synthetic_clips() {
        let b = batch.unwrap();
        assert!((0..b.len()).all(|i| b.num_frames.value(i) == 9), "clips of the fitted T = 9");
    }
    // Offsets whose clips end inside the reference would hold no predicted
    // frame (the model reads R = 50 + 9 - 27 = 32 frames): refused.
    let early = sample_with_early_offsets(&args, &out.path().join("early"));
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(!early.status.success() && err.contains("none would hold a predicted frame"), "{err}");
    let zero = ["-q", "fit", "--mode", "sma", "--shards", shards.to_str().unwrap(), "--batch", "0"];
    let fit = run("dak-augment", &[&zero[..], &["--out", out.path().join("zero").to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&fit.stderr);
    assert!(!fit.status.success() && err.contains("batch"), "{err}");
}

fn sample_with_early_offsets(args: &[&str], out: &Path) -> std::process::Output {
    let offsets = ["--m-min", "10", "--m-max", "20", "--clips", "4", "--out", out.to_str().unwrap()];
    run("dak-augment", &[args, &offsets].concat())
}
