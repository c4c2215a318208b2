//! dak-infer end to end on keypoint files written by
//! `scripts/fixtures/make_keypoints.py` (COCO results JSON, an OpenPose
//! folder, a short NumPy array).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{ok, python, run, workspace_root};

fn keypoint_files() -> Option<(tempfile::TempDir, PathBuf)> {
    let python = python()?;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kp");
    ok(&Command::new(python)
        .arg(workspace_root().join("scripts/fixtures/make_keypoints.py"))
        .arg(&out)
        .output()
        .unwrap());
    Some((dir, out))
}

fn infer(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let run_dir = crate::eval::trained_run();
    let args = [
        "--checkpoint",
        run_dir.to_str().unwrap(),
        "--keypoints",
        input.to_str().unwrap(),
        "--width",
        "1280",
        "--height",
        "720",
        "--out",
        out.to_str().unwrap(),
    ];
    run("dak-infer", &[&args[..], extra].concat())
}

fn poses(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("poses.json")).unwrap()).unwrap()
}

fn assert_px(actual: &serde_json::Value, expected: &serde_json::Value) {
    for (j, (a, e)) in actual.as_array().unwrap().iter().zip(expected.as_array().unwrap()).enumerate() {
        for k in 0..2 {
            let (a, e) = (a[k].as_f64().unwrap(), e[k].as_f64().unwrap());
            assert!((a - e).abs() < 1e-3, "joint {j}: {a} vs {e}");
        }
    }
}

#[test]
fn coco_results_map_to_our_joints_and_gaps_are_filled() {
    let Some((_dir, kp)) = keypoint_files() else { return };
    let out = kp.join("out-coco");
    let text = ok(&infer(&kp.join("coco.json"), &out, &["--render", "20"]));
    assert!(text.contains("40 frames (1 missing"), "{text}");
    let p = poses(&out);
    let frames = p["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 40);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kp.join("expected.json")).unwrap()).unwrap();
    // Frame 0 has a decoy person with a lower score: the main one is kept.
    assert_px(&frames[0]["keypoints_2d_px"], &expected["coco_frame0"]);
    // Frame 5 had no detection; frame 9's left wrist (COCO 9 → H36M 13) was weak.
    assert!(frames[5]["interpolated"].as_array().unwrap().iter().all(|b| b == true));
    assert_eq!(frames[9]["interpolated"][13], true);
    assert_eq!(frames[9]["interpolated"][16], false);
    assert_eq!(frames[5]["input_frame"], "5", "image ids name the frames");
    for f in frames {
        let root = &f["joints_3d_mm"][0];
        assert_eq!((root[0].as_f64(), root[1].as_f64(), root[2].as_f64()), (Some(0.0), Some(0.0), Some(0.0)));
    }
    assert_eq!(&std::fs::read(out.join("poses.parquet")).unwrap()[..4], b"PAR1");
    let pngs: Vec<_> = std::fs::read_dir(out.join("frames")).unwrap().collect();
    assert_eq!(pngs.len(), 2);
    // A rerun draws other frames: none of the old pictures stays.
    ok(&infer(&kp.join("coco.json"), &out, &["--render", "40"]));
    let pngs: Vec<_> = std::fs::read_dir(out.join("frames")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(pngs, ["frame-00000.png"]);
}

/// A profile view (one ear never seen), NaN gaps in an array, and inputs
/// that do not fit the image size given.
#[test]
fn side_views_and_nan_gaps_work_and_misfit_sizes_are_refused() {
    let Some((_dir, kp)) = keypoint_files() else { return };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kp.join("expected.json")).unwrap()).unwrap();
    let out = kp.join("out-side");
    ok(&infer(&kp.join("side.json"), &out, &[]));
    for (t, f) in poses(&out)["frames"].as_array().unwrap().iter().enumerate() {
        assert_eq!(f["interpolated"][10], false, "frame {t}: the head is seen");
        let (head, want) = (&f["keypoints_2d_px"][10], &expected["side_head"][t]);
        assert_px(&serde_json::json!([head]), &serde_json::json!([want]));
    }

    let out = kp.join("out-gaps");
    ok(&infer(&kp.join("gaps.npy"), &out, &[]));
    let p = poses(&out);
    assert_eq!(p["fill"]["missing_frames"], 1);
    assert!(p["frames"][2]["interpolated"].as_array().unwrap().iter().all(|b| b == true));
    assert_eq!(
        (&p["frames"][4]["interpolated"][13], &p["frames"][4]["interpolated"][12]),
        (&true.into(), &false.into())
    );

    let refused = |input: &str, extra: &[&str], want: &str| {
        let out = run(
            "dak-infer",
            &[
                &["--checkpoint", crate::eval::trained_run().to_str().unwrap()][..],
                &["--keypoints", kp.join(input).to_str().unwrap(), "--out", kp.join("out-refused").to_str().unwrap()],
                extra,
            ]
            .concat(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(input) && err.contains(want), "{input}: {err}");
        assert!(!kp.join("out-refused").join("poses.json").exists());
    };
    refused("short.npy", &["--width", "400", "--height", "300"], "outside the 400×300 image");
    refused("normalised.npy", &["--width", "1280", "--height", "720"], "look normalised");
    refused("openpose_empty", &["--width", "1280", "--height", "720"], "no person detected in any of its 3");
}

#[test]
fn an_openpose_folder_and_a_sequence_shorter_than_t_work() {
    let Some((_dir, kp)) = keypoint_files() else { return };
    let out = kp.join("out-openpose");
    ok(&infer(&kp.join("openpose"), &out, &[]));
    let p = poses(&out);
    assert_eq!(p["frames"].as_array().unwrap().len(), 12);
    assert_eq!(p["fill"]["missing_frames"], 1);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kp.join("expected.json")).unwrap()).unwrap();
    assert_px(&p["frames"][0]["keypoints_2d_px"], &expected["openpose_frame0"]);
    assert_eq!(p["frames"][11]["input_frame"], "video_000000000011_keypoints.json");

    // Names as OpenPose's --image_dir writes them (frame_2 … frame_10, not
    // zero-padded) come in frame order, not text order.
    let out = kp.join("out-named");
    ok(&infer(&kp.join("openpose_named"), &out, &[]));
    let p = poses(&out);
    for (t, f) in p["frames"].as_array().unwrap().iter().enumerate() {
        assert_eq!(f["input_frame"], format!("frame_{t}_keypoints.json"));
        let x = f["keypoints_2d_px"][0][0].as_f64().unwrap();
        assert!((x - expected["pelvis_x"][t].as_f64().unwrap()).abs() < 1e-3, "frame {t}: pelvis x {x}");
    }

    // 5 frames against the model's T = 9: padded, and every frame answered.
    let out = kp.join("out-short");
    ok(&infer(&kp.join("short.npy"), &out, &[]));
    let frames = poses(&out)["frames"].as_array().unwrap().clone();
    assert_eq!(frames.len(), 5);
    assert!(frames.iter().all(|f| f["joints_3d_mm"].as_array().unwrap().len() == 17));
}

#[test]
fn a_malformed_keypoint_file_names_file_and_field() {
    let Some((_dir, kp)) = keypoint_files() else { return };
    let out = infer(&kp.join("bad_coco.json"), &kp.join("out-bad"), &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad_coco.json") && err.contains("result 3") && err.contains("keypoints"), "{err}");
    assert!(!kp.join("out-bad").join("poses.json").exists());

    let empty = kp.join("empty.csv");
    std::fs::write(&empty, "\n").unwrap();
    let out = infer(&empty, &kp.join("out-empty"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("empty.csv") && err.contains("no frames"), "{err}");

    let (run_dir, input) = (crate::eval::trained_run(), kp.join("short.npy"));
    let args = ["--checkpoint", run_dir.to_str().unwrap(), "--keypoints", input.to_str().unwrap()];
    let out = run("dak-infer", &[&args[..], &["--width", "0", "--height", "720", "--out", "out-width"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--width 0"), "{err}");

    let out = infer(&kp.join("short.npy"), &kp.join("out-conf"), &["--min-confidence", "1.5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--min-confidence 1.5"), "{err}");
}

/// The export loads, strictly by name, into the PyTorch twin of G in
/// `benches/reference/dak_pose_torch.py`, and predicts the same 3D.
#[test]
fn the_export_predicts_the_same_in_pytorch() {
    let Some((_dir, kp)) = keypoint_files() else { return };
    let Some(python) = python() else { return };
    let out = kp.join("out-torch");
    let export = crate::eval::trained_run().join("export");
    let short = kp.join("short.npy");
    let args = ["--checkpoint", export.to_str().unwrap(), "--keypoints", short.to_str().unwrap()];
    ok(&run(
        "dak-infer",
        &[&args[..], &["--width", "1280", "--height", "720", "--no-flip", "--out", out.to_str().unwrap()]].concat(),
    ));
    let torch_out = kp.join("torch.json");
    ok(&Command::new(python)
        .arg(workspace_root().join("benches/reference/dak_pose_torch.py"))
        .args([
            export.as_os_str(),
            kp.join("short.npy").as_os_str(),
            "1280".as_ref(),
            "720".as_ref(),
            torch_out.as_os_str(),
        ])
        .output()
        .unwrap());
    let theirs: Vec<Vec<Vec<f64>>> = serde_json::from_slice(&std::fs::read(&torch_out).unwrap()).unwrap();
    let ours = poses(&out);
    for (f, frame) in ours["frames"].as_array().unwrap().iter().enumerate() {
        for (j, joint) in frame["joints_3d_mm"].as_array().unwrap().iter().enumerate() {
            for k in 0..3 {
                let (a, b) = (joint[k].as_f64().unwrap(), theirs[f][j][k]);
                assert!((a - b).abs() < 0.01, "frame {f} joint {j}: {a} mm (ours) vs {b} mm (PyTorch)");
            }
        }
    }
}
