//! dak-eval end to end, and the metrics against an independent numpy
//! reference (VideoPose3D's and the 3DHP protocol's formulas).

use std::path::PathBuf;
use std::process::Command;

use dak_core::metrics;
use dak_core::Pose3;
use nalgebra::Vector3;

use crate::support::{ok, python, run, workspace_root};

/// Metrics of dak-core and of `tests/python/metrics_reference.py` on the same poses.
fn compare_with_numpy(pred: &[Pose3], gt: &[Pose3]) {
    let Some(python) = python() else { return };
    let to_json = |poses: &[Pose3]| -> serde_json::Value {
        poses.iter().map(|p| p.iter().map(|v| vec![v.x, v.y, v.z]).collect::<Vec<_>>()).collect::<Vec<_>>().into()
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("poses.json");
    // The reference takes the protocol's joints in 3DHP's own order, so a
    // wrong PCK_JOINTS_3DHP cannot agree with it.
    let json = serde_json::json!({
        "pred": to_json(pred),
        "gt": to_json(gt),
        "to_3dhp": dak_core::joint_maps::MPI3DHP17_TO_H36M17,
    });
    std::fs::write(&input, serde_json::to_vec(&json).unwrap()).unwrap();
    let out = ok(&Command::new(python)
        .arg(workspace_root().join("tests/python/metrics_reference.py"))
        .arg(&input)
        .output()
        .unwrap());
    let reference: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let joints = &metrics::PCK_JOINTS_3DHP;
    let ours = [
        ("mpjpe", metrics::mpjpe(pred, gt).unwrap()),
        ("p_mpjpe", metrics::p_mpjpe(pred, gt).unwrap()),
        ("n_mpjpe", metrics::n_mpjpe(pred, gt).unwrap()),
        ("mpjve", metrics::mpjve(pred, gt).unwrap()),
        ("pck", metrics::pck(pred, gt, joints, metrics::PCK_THRESHOLD_MM).unwrap()),
        ("auc", metrics::auc(pred, gt, joints).unwrap()),
    ];
    for (name, value) in ours {
        let r = reference[name].as_f64().unwrap();
        assert!((value - r).abs() <= 1e-6 * r.abs().max(1.0), "{name}: ours {value} vs numpy {r}");
    }
}

/// A deterministic stream of values in [-1, 1).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

#[test]
fn metrics_agree_with_the_numpy_reference_on_random_poses() {
    let mut u = uniform(7);
    let poses = |u: &mut dyn FnMut() -> f64, scale: f64| -> Vec<Pose3> {
        (0..50).map(|_| std::array::from_fn(|_| Vector3::new(u() * scale, u() * scale, u() * scale))).collect()
    };
    let gt = poses(&mut u, 500.0);
    let pred = poses(&mut u, 500.0);
    compare_with_numpy(&pred, &gt);
}

#[test]
fn metrics_agree_with_the_numpy_reference_on_real_shaped_poses() {
    use dak_datasets::synth::{self, motion::Action, SynthConfig};
    let config = SynthConfig { frames: 60, ..SynthConfig::default() };
    let (_, poses) = synth::level_camera_sequences(&config, 1, &[Action::Box]).remove(0);
    let gt: Vec<Pose3> = poses.iter().map(dak_core::skeleton::root_relative).collect();
    // A plausible estimate: rotated, scaled, noisy, with a few wild joints.
    let mut u = uniform(3);
    let pred: Vec<Pose3> = gt
        .iter()
        .map(|p| {
            std::array::from_fn(|j| {
                let v = p[j];
                let r = Vector3::new(v.x * 0.995 - v.z * 0.1, v.y, v.x * 0.1 + v.z * 0.995) * 1.04;
                let wild = if j == 13 { 120.0 } else { 0.0 };
                r + Vector3::new(u() * 40.0 + wild, u() * 40.0, u() * 40.0)
            })
        })
        .collect();
    compare_with_numpy(&pred, &gt);
}

/// A tiny trained run on the shared training fixture.
pub fn trained_run() -> &'static PathBuf {
    static RUN: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        ok(&crate::train::train(&out, &["--epochs", "1", "--ablation", "baseline"]));
        (dir, out)
    })
    .1
}

#[test]
fn eval_writes_traceable_tables_and_a_picture() {
    let run_dir = trained_run();
    let shards = crate::train::shards();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("eval");
    let args = ["--checkpoint", run_dir.to_str().unwrap(), "--shards", shards.to_str().unwrap(), "--protocol", "demo"];
    let text = ok(&run("dak-eval", &[&args[..], &["--out", out.to_str().unwrap(), "--render", "9"]].concat()));
    assert!(text.contains("demo: MPJPE"), "{text}");
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let rows = results["table"]["rows"].as_array().unwrap();
    // The demo's eight actions, every target subject.
    assert_eq!(rows.len(), 8, "{rows:?}");
    let frames: u64 = rows.iter().map(|r| r["frames"].as_u64().unwrap()).sum();
    assert_eq!(frames, results["table"]["all_frames"]["frames"].as_u64().unwrap());
    assert_eq!(results["model"]["kind"], "checkpoint");
    assert_eq!(results["model"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(results["shards"][0]["manifest_sha256"].as_str().unwrap().len(), 64);
    // Per subject too, the same frames in all.
    let subjects = results["table"]["subjects"].as_array().unwrap();
    assert!(!subjects.is_empty());
    assert_eq!(frames, subjects.iter().map(|r| r["frames"].as_u64().unwrap()).sum::<u64>());
    // Demo videos are consecutive frames: every row has a velocity error.
    assert!(rows.iter().chain(subjects).all(|r| r["mpjve_mm"].as_f64().unwrap() > 0.0), "{rows:?}");
    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    let count = |table: &str| csv.lines().filter(|l| l.starts_with(&format!("{table},"))).count();
    assert_eq!((count("action"), count("summary"), count("subject")), (8, 2, subjects.len()), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 8 + 2 + subjects.len());
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(md.contains("| mean over groups |") && md.contains("| subject | frames |"), "{md}");

    // The picture: 9 frames in rows of 8 panels of 200 px, each row a
    // label strip and two views; the second row's last 7 places are empty.
    let file = std::fs::File::open(out.join("render.png")).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1600, 832));
    let pixel = |x: u32, y: u32| &buf[((y * info.width + x) * 3) as usize..][..3];
    assert!((200..1600).all(|x| (416..832).all(|y| pixel(x, y) == [255, 255, 255])));
    for panel in 0..9 {
        for row in 0..2 {
            let (x0, y0) = ((panel % 8) * 200, (panel / 8) * 416 + 16 + row * 200);
            let mut black = 0;
            let mut red = 0;
            for y in y0..y0 + 200 {
                for x in x0..x0 + 200 {
                    match pixel(x, y) {
                        [0, 0, 0] => black += 1,
                        [214, 39, 40] => red += 1,
                        _ => {}
                    }
                }
            }
            assert!(
                black > 50 && red > 20,
                "panel {panel} view {row}: {black} ground-truth and {red} prediction pixels"
            );
        }
    }
}

/// An export whose weights are not the ones its model.json names, or of
/// another format, is refused by name; too large a picture is refused
/// before anything is evaluated.
#[test]
fn eval_refuses_a_damaged_or_foreign_export() {
    let shards = crate::train::shards();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    std::fs::create_dir(&export).unwrap();
    for name in ["model.json", "model.safetensors"] {
        std::fs::copy(trained_run().join("export").join(name), export.join(name)).unwrap();
    }
    let eval = |extra: &[&str]| {
        let args = ["--checkpoint", export.to_str().unwrap(), "--shards", shards.to_str().unwrap()];
        let out = dir.path().join("eval");
        run("dak-eval", &[&args[..], &["--protocol", "demo", "--out", out.to_str().unwrap()], extra].concat())
    };
    ok(&eval(&[]));
    let out = eval(&["--render", "65"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("65"));

    let weights = export.join("model.safetensors");
    let original = std::fs::read(&weights).unwrap();
    let mut damaged = original.clone();
    *damaged.last_mut().unwrap() ^= 0x40;
    std::fs::write(&weights, &damaged).unwrap();
    let err = String::from_utf8_lossy(&eval(&[]).stderr).to_string();
    assert!(err.contains("model.safetensors") && err.contains("SHA-256 differs"), "{err}");

    std::fs::write(&weights, &original).unwrap();
    let json_path = export.join("model.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    json["format_version"] = 99.into();
    std::fs::write(&json_path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = String::from_utf8_lossy(&eval(&[]).stderr).to_string();
    assert!(err.contains("model.json") && err.contains("format version 99"), "{err}");
}

#[test]
fn eval_names_what_is_missing() {
    let run_dir = trained_run();
    let shards = crate::train::shards();
    let args = ["--checkpoint", run_dir.to_str().unwrap(), "--shards", shards.to_str().unwrap(), "--protocol", "3dpw"];
    let out = run("dak-eval", &args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no frames for protocol 3dpw"), "{err}");
    let out =
        run("dak-eval", &["--checkpoint", "/nonexistent", "--shards", shards.to_str().unwrap(), "--protocol", "demo"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
}

/// The evaluation feeds the 2D the model learnt from unless told otherwise,
/// from a run and from its export alike.
#[test]
fn eval_feeds_the_2d_the_model_was_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("detected");
    ok(&crate::train::train(&run_dir, &["--epochs", "1", "--ablation", "baseline", "--input-2d", "detected"]));
    let shards = crate::train::shards();
    for (checkpoint, extra, want) in [
        (run_dir.clone(), None, "detected"),
        (run_dir.join("export"), None, "detected"),
        (run_dir.clone(), Some("gt"), "gt"),
    ] {
        let out = dir.path().join(format!("eval-{want}-{}", checkpoint.ends_with("export")));
        let mut args = vec!["--checkpoint", checkpoint.to_str().unwrap(), "--shards", shards.to_str().unwrap()];
        args.extend(["--protocol", "demo", "--out", out.to_str().unwrap()]);
        if let Some(input) = extra {
            args.extend(["--input-2d", input]);
        }
        ok(&run("dak-eval", &args));
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        assert_eq!(results["options"]["input_2d"], want, "{}", checkpoint.display());
    }
}
