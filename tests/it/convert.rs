//! The dataset converters on files written by scripts/fixtures/make_fixtures.py
//! (the Python libraries that wrote the originals), checked against the
//! reference values the generator computes independently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dak_io::{ShardSet, Verify};
use nalgebra::Vector3;
use serde_json::Value;

use crate::support::{python, run, workspace_root};

/// The fixtures, generated once per test run; `None` when no Python is set up.
pub(crate) fn fixtures() -> Option<&'static (PathBuf, Value)> {
    static FIXTURES: OnceLock<Option<(PathBuf, Value)>> = OnceLock::new();
    FIXTURES
        .get_or_init(|| {
            let python = python()?;
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dataset-fixtures");
            let _ = std::fs::remove_dir_all(&dir);
            let out = Command::new(python)
                .arg(workspace_root().join("scripts/fixtures/make_fixtures.py"))
                .arg(&dir)
                .output()
                .expect("python starts");
            assert!(out.status.success(), "fixture generator failed: {}", String::from_utf8_lossy(&out.stderr));
            let expected = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
            Some((dir, expected))
        })
        .as_ref()
}

/// One converted row, keyed by (sequence, camera, frame).
#[derive(Debug)]
struct Row {
    split: String,
    world: Option<Vec<f32>>,
    camera: Vec<f32>,
    px: Vec<f32>,
    detected: Option<Vec<f32>>,
    valid: bool,
}

/// Every row of a converted set; also checks that each row's camera is in
/// the camera table under (dataset, subject, camera), the key the trainer and
/// the augmentors join on.
fn rows(dir: &Path) -> HashMap<(String, String, u32), Row> {
    let set = ShardSet::open(dir, Verify::Checksums).unwrap();
    let cameras: std::collections::HashSet<(String, String, String)> =
        set.cameras().unwrap().into_iter().map(|c| (c.dataset, c.subject, c.camera)).collect();
    let mut out = HashMap::new();
    for batch in set.source_frames() {
        let b = batch.unwrap();
        for i in 0..b.len() {
            let camera_key =
                (b.dataset.value(i).to_string(), b.subject.value(i).to_string(), b.camera.value(i).to_string());
            assert!(cameras.contains(&camera_key), "{}: no camera table row for {camera_key:?}", dir.display());
            let key = (b.sequence.value(i).to_string(), b.camera.value(i).to_string(), b.frame.value(i));
            let row = Row {
                split: b.split.value(i).into(),
                world: b.joints_3d_world_mm(i).map(<[f32]>::to_vec),
                camera: b.joints_3d_camera_mm(i).to_vec(),
                px: b.joints_2d_px(i).to_vec(),
                detected: b.detected_2d_px(i).map(<[f32]>::to_vec),
                valid: b.valid.value(i),
            };
            assert!(out.insert(key.clone(), row).is_none(), "duplicate row {key:?}");
        }
    }
    out
}

fn close(got: &[f32], want: &Value, tol: f64, what: &str) {
    let want: Vec<f64> = want.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
    }
}

fn joint(flat: &[f32], j: usize, dims: usize) -> &[f32] {
    &flat[dims * j..dims * (j + 1)]
}

/// Runs a converter that must succeed.
fn convert_ok(command: &str, data: &Path, out: &Path) {
    let o = convert(&[command, "--data-dir", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{command} on {}: {}", data.display(), String::from_utf8_lossy(&o.stderr));
}

fn convert(args: &[&str]) -> std::process::Output {
    let mut all = vec!["-q"];
    all.extend_from_slice(args);
    run("dak-prep", &all)
}

#[test]
fn h36m_matches_reference_values_joints_units_and_cameras() {
    let Some((fx, expected)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("h36m");
    convert_ok("h36m", &fx.join("h36m"), &out);
    let rows = rows(&out);
    let e = &expected["h36m"];

    // Frame counts per sequence and camera, with 2D trimmed to the mocap length.
    let mut total = 0;
    for (subject, actions) in e["frames_3d"].as_object().unwrap() {
        for (action, n) in actions.as_object().unwrap() {
            let n = n.as_u64().unwrap() as u32;
            let seq = format!("{subject}/{action}");
            assert!(rows.contains_key(&(seq.clone(), "54138969".into(), n - 1)), "{seq} last frame");
            assert!(!rows.contains_key(&(seq, "54138969".into(), n)), "2D beyond the 3D is trimmed");
            total += 4 * n as usize;
        }
    }
    assert_eq!(rows.len(), total, "every 3D frame of every camera, nothing else");

    for s in e["samples"].as_array().unwrap() {
        let seq = format!("{}/{}", s["subject"].as_str().unwrap(), s["action"].as_str().unwrap());
        let key = (seq, s["camera"].as_str().unwrap().to_string(), s["frame"].as_u64().unwrap() as u32);
        let row = &rows[&key];
        let j = s["joint"].as_u64().unwrap() as usize;
        let what = format!("{key:?} joint {j}");
        close(joint(row.world.as_ref().unwrap(), j, 3), &s["world_mm"], 2e-3, &what);
        close(joint(&row.camera, j, 3), &s["camera_mm"], 2e-3, &what);
        close(joint(&row.px, j, 2), &s["pixel_gt"], 1e-4, &what);
        close(joint(row.detected.as_ref().unwrap(), j, 2), &s["pixel_cpn"], 1e-4, &what);
        assert_eq!(row.split, if key.0.starts_with("S1/") { "train" } else { "test" });
    }

    // Our camera model reproduces the ground-truth 2D of the file everywhere.
    let set = ShardSet::open(&out, Verify::Sizes).unwrap();
    let cameras = set.cameras().unwrap();
    let mut worst: f64 = 0.0;
    for ((seq, cam, _), row) in &rows {
        let subject = seq.split('/').next().unwrap();
        let camera = cameras.iter().find(|c| c.subject == subject && c.camera == *cam).unwrap().to_camera().unwrap();
        for j in 0..17 {
            let x = joint(&row.camera, j, 3);
            let p = camera.intrinsics.project(&Vector3::new(f64::from(x[0]), f64::from(x[1]), f64::from(x[2])));
            let q = joint(&row.px, j, 2);
            worst = worst.max((p.x - f64::from(q[0])).abs()).max((p.y - f64::from(q[1])).abs());
        }
    }
    assert!(worst < 1e-3, "projection differs from the file's 2D by {worst} px");

    // The manifest records what was converted, trimmed and skipped.
    let notes = &set.manifest().extra["notes"];
    let skipped: Vec<&str> = notes["skipped_2d_only"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(skipped.contains(&"S11/Directions"), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.starts_with("S2/")), "{skipped:?}");
    assert_eq!(notes["trimmed_2d"][0]["subject"], "S9");
    let inputs = &set.manifest().extra["config"]["inputs"];
    assert_eq!(inputs.as_array().unwrap().len(), 3, "3D, gt and CPN files recorded: {inputs}");
}

#[test]
fn h36m_numpy1_pickles_give_identical_shards_and_reruns_are_no_ops() {
    let Some((fx, _)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (new, old) = (tmp.path().join("new"), tmp.path().join("old"));
    for (data, out) in [("h36m", &new), ("h36m-legacy", &old)] {
        let o = convert(&["h36m", "--data-dir", fx.join(data).to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{data}: {}", String::from_utf8_lossy(&o.stderr));
    }
    for file in ["part-00000.parquet", "cameras.parquet"] {
        assert!(std::fs::read(new.join(file)).unwrap() == std::fs::read(old.join(file)).unwrap(), "{file} differs");
    }
    let manifest = std::fs::read(new.join("manifest.json")).unwrap();
    let data = fx.join("h36m");
    let o = run("dak-prep", &["h36m", "--data-dir", data.to_str().unwrap(), "--out", new.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("up to date"));
    assert_eq!(std::fs::read(new.join("manifest.json")).unwrap(), manifest, "a no-op leaves the manifest alone");
    // A filter changes the configuration: refused without --force, honoured with it.
    let args = ["h36m", "--data-dir", data.to_str().unwrap(), "--out", new.to_str().unwrap(), "--subjects", "S9"];
    assert!(!convert(&args).status.success());
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(convert(&forced).status.success());
    assert!(rows(&new).keys().all(|(seq, _, _)| seq.starts_with("S9/")));
    // --force over a damaged input fails before the finished output is touched.
    let manifest = std::fs::read(new.join("manifest.json")).unwrap();
    for case in ["h36m-truncated", "h36m-not-zip"] {
        let bad = fx.join("bad").join(case);
        let o = convert(&["h36m", "--data-dir", bad.to_str().unwrap(), "--out", new.to_str().unwrap(), "--force"]);
        assert!(!o.status.success(), "{case} was accepted");
        assert_eq!(std::fs::read(new.join("manifest.json")).unwrap(), manifest, "{case}: the output is still there");
    }
    // Subjects left out are not reported as 2D without 3D.
    let set = ShardSet::open(&new, Verify::Sizes).unwrap();
    let skipped = set.manifest().extra["notes"]["skipped_2d_only"].as_array().unwrap();
    assert!(skipped.iter().all(|s| s.as_str().unwrap().starts_with("S9/")), "{skipped:?}");
}

#[test]
fn h36m_without_2d_files_projects_from_3d() {
    let Some((fx, expected)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(fx.join("h36m/data_3d_h36m.npz"), data.join("data_3d_h36m.npz")).unwrap();
    let out = tmp.path().join("out");
    convert_ok("h36m", &data, &out);
    let rows = rows(&out);
    for s in expected["h36m"]["samples"].as_array().unwrap() {
        let seq = format!("{}/{}", s["subject"].as_str().unwrap(), s["action"].as_str().unwrap());
        let row = &rows[&(seq, s["camera"].as_str().unwrap().into(), s["frame"].as_u64().unwrap() as u32)];
        let j = s["joint"].as_u64().unwrap() as usize;
        close(joint(&row.px, j, 2), &s["pixel_gt"], 1e-3, "projected 2D");
        assert!(row.detected.is_none());
    }
}

#[test]
fn mpi_inf_3dhp_train_and_test_match_reference_values() {
    let Some((fx, expected)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("3dhp");
    convert_ok("3dhp", &fx.join("3dhp"), &out);
    // MATLAB's canonical empty in the test files reads as an empty array,
    // not as the dimensions MATLAB stores in its place.
    let v73 = dak_formats::h5mat::H5Mat::open(&fx.join("3dhp/mpi_inf_3dhp_test_set/TS1/annot_data.mat")).unwrap();
    let empty = v73.array("#refs#/a").unwrap();
    assert_eq!((empty.shape.as_slice(), empty.data.len()), ([0, 0].as_slice(), 0));
    let rows = rows(&out);
    let train = &expected["3dhp_train"];
    let cameras = train["cameras_used"].as_array().unwrap().len();
    let frames: u64 = train["frames"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    let test = &expected["3dhp_test"];
    let test_frames: u64 = test["frames"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(rows.len() as u64, frames * cameras as u64 + test_frames);
    for s in train["samples"].as_array().unwrap() {
        let seq = format!("{}/{}", s["subject"].as_str().unwrap(), s["sequence"].as_str().unwrap());
        let camera = format!("{}/{}", s["sequence"].as_str().unwrap(), s["camera"].as_u64().unwrap());
        let key = (seq, camera, s["frame"].as_u64().unwrap() as u32);
        let Some(row) = rows.get(&key) else { continue }; // cameras outside the default set
        let j = s["joint"].as_u64().unwrap() as usize;
        close(joint(&row.camera, j, 3), &s["camera_mm"], 2e-3, &format!("{key:?} annot3"));
        close(joint(&row.px, j, 2), &s["pixel"], 1e-3, &format!("{key:?} annot2"));
        assert!(row.world.is_none() && row.valid);
    }
    let mut invalid = 0;
    for s in test["samples"].as_array().unwrap() {
        let seq = s["sequence"].as_str().unwrap().to_string();
        let key = (seq.clone(), seq, s["frame"].as_u64().unwrap() as u32);
        let row = &rows[&key];
        let j = s["joint"].as_u64().unwrap() as usize;
        close(joint(&row.camera, j, 3), &s["univ_mm"], 2e-3, &format!("{key:?} univ_annot3"));
        close(joint(&row.px, j, 2), &s["pixel"], 1e-3, &format!("{key:?} annot2"));
        assert_eq!(row.valid, s["valid"].as_bool().unwrap(), "{key:?} valid_frame");
        invalid += usize::from(!row.valid);
        assert_eq!(row.split, "test");
    }
    assert!(invalid > 0, "the fixtures include invalid frames");
    let valid_ts1 = rows.iter().filter(|((s, _, _), r)| s == "TS1" && r.valid).count() as u64;
    assert_eq!(valid_ts1, test["valid_frames"]["TS1"].as_u64().unwrap());
    // The evaluation sees each frame's own activity (a test sequence goes
    // through several) and tabulates the valid frames per activity.
    let protocol = dak_eval::Protocol::Mpi3dhp;
    let videos =
        dak_train::VideoSet::load(std::slice::from_ref(&out), &protocol.filter(), dak_train::Input2d::Gt).unwrap();
    for s in test["samples"].as_array().unwrap() {
        let video = videos.videos.iter().find(|v| v.subject == s["sequence"].as_str().unwrap()).unwrap();
        let want = dak_datasets::mpi3dhp::ACTIVITIES[s["activity"].as_u64().unwrap() as usize - 1];
        assert_eq!(video.action_at(s["frame"].as_u64().unwrap() as usize), want, "{s}");
    }
    let truth: Vec<Vec<f32>> = videos
        .videos
        .iter()
        .map(|v| v.poses_mm.chunks_exact(51).flat_map(|p| (0..51).map(|k| p[k] - p[k % 3])).collect())
        .collect();
    let table = dak_eval::Table::build(protocol, &videos, &truth);
    assert!(table.activities.len() > 1, "{:?}", table.activities);
    let valid: u64 = test["valid_frames"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(table.activities.iter().map(|r| r.frames as u64).sum::<u64>(), valid);
    assert!(table.activities.iter().all(|r| r.mpjpe_mm < 1e-3), "{:?}", table.activities);
    // `dak-prep stats` counts every frame and the valid ones apart.
    let json = tmp.path().join("stats.json");
    let o = run("dak-prep", &["-q", "stats", out.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for (name, valid) in test["valid_frames"].as_object().unwrap() {
        let rows: Vec<&Value> =
            stats[0]["counts"].as_array().unwrap().iter().filter(|r| r["subject"] == name.as_str()).collect();
        let sum = |key: &str| rows.iter().map(|r| r[key].as_f64().unwrap()).sum::<f64>();
        assert_eq!(sum("frames"), test["frames"][name].as_f64().unwrap(), "{name}");
        assert_eq!(sum("valid_frames"), valid.as_f64().unwrap(), "{name}");
    }
}

#[test]
fn three_dpw_matches_reference_values_and_validity() {
    let Some((fx, expected)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("3dpw");
    convert_ok("3dpw", &fx.join("3dpw"), &out);
    let rows = rows(&out);
    let e = &expected["3dpw"];
    let mut want_rows = 0;
    for (name, n) in e["frames"].as_object().unwrap() {
        want_rows += n.as_u64().unwrap() * e["actors"][name].as_u64().unwrap();
    }
    assert_eq!(rows.len() as u64, want_rows);
    for s in e["samples"].as_array().unwrap() {
        let seq = format!("{}/{}", s["sequence"].as_str().unwrap(), s["actor"].as_u64().unwrap());
        let key = (seq, "phone".to_string(), s["frame"].as_u64().unwrap() as u32);
        let row = &rows[&key];
        let j = s["joint"].as_u64().unwrap() as usize;
        close(joint(&row.camera, j, 3), &s["camera_mm"], 2e-3, &format!("{key:?}"));
        close(joint(&row.px, j, 2), &s["pixel"], 1e-3, &format!("{key:?}"));
        assert_eq!(row.valid, s["valid"].as_bool().unwrap());
        assert_eq!(row.split, s["split"].as_str().unwrap());
    }

    // Detected 2D: OpenPose poses2d mapped to our joints, against numpy.
    let reference = Command::new(python().unwrap())
        .arg("-c")
        .arg(OPENPOSE_REFERENCE)
        .arg(fx.join("3dpw/sequenceFiles"))
        .output()
        .unwrap();
    assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
    let reference: Value = serde_json::from_slice(&reference.stdout).unwrap();
    let mut checked = 0;
    for (seq, frames) in reference.as_object().unwrap() {
        for (f, want) in frames.as_array().unwrap().iter().enumerate() {
            let row = &rows[&(seq.clone(), "phone".to_string(), f as u32)];
            close(row.detected.as_ref().unwrap(), &want["xy"], 1e-3, &format!("{seq} frame {f} detected 2D"));
            checked += 1;
        }
    }
    assert!(checked >= 10);
}

/// Independent reference of the OpenPose-18 → H36M-17 mapping, in numpy, on
/// pickles read the way 3DPW users read them (latin-1).
const OPENPOSE_REFERENCE: &str = r#"
import json, pickle, sys, pathlib
import numpy as np
W = np.zeros((17, 18))
for ours, theirs in {1: 8, 2: 9, 3: 10, 4: 11, 5: 12, 6: 13, 8: 1, 9: 0, 11: 5, 12: 6, 13: 7, 14: 2, 15: 3, 16: 4}.items():
    W[ours, theirs] = 1.0
W[0, [8, 11]] = 0.5
W[7, [8, 11]] = 0.25
W[7, 1] = 0.5
W[10, [16, 17]] = 0.5
out = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/*.pkl")):
    seq = pickle.load(open(path, "rb"), encoding="latin1")
    for actor, p2d in enumerate(seq["poses2d"]):
        xy = np.einsum("jk,nck->njc", W, p2d[:, :2, :])
        # The head is the one ear detected (confidence > 0) when the other is not.
        seen = p2d[:, 2, :] > 0
        for ear, other in [(16, 17), (17, 16)]:
            alone = seen[:, ear] & ~seen[:, other]
            xy[alone, 10] = p2d[alone, :2, ear]
        out[f"{path.stem}/{actor}"] = [{"xy": frame.reshape(-1).tolist()} for frame in xy]
json.dump(out, sys.stdout)
"#;

/// Every bad input gives a one-line error naming the file, and no output.
#[test]
fn bad_inputs_fail_with_one_line_naming_the_file() {
    let Some((fx, expected)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bad = expected["bad"].as_object().unwrap();
    assert!(bad.len() >= 10);
    for (file, problem) in bad {
        // bad/<case>/<path inside the data dir>
        let mut parts = file.splitn(3, '/');
        let (_, case) = (parts.next(), parts.next().unwrap());
        let data = fx.join("bad").join(case);
        let command = if case.starts_with("h36m") {
            "h36m"
        } else if case.starts_with("3dhp") {
            "3dhp"
        } else {
            "3dpw"
        };
        let out = tmp.path().join(case);
        let o = convert(&[command, "--data-dir", data.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{case} ({problem}) was accepted");
        assert_eq!(stderr.trim().lines().count(), 1, "{case}: one line: {stderr}");
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "{case}: the message names {name}: {stderr}");
        assert!(!out.join("manifest.json").exists(), "{case}: no manifest");
        let leftovers: Vec<_> =
            std::fs::read_dir(&out).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(leftovers.is_empty(), "{case}: nothing half-written: {leftovers:?}");
    }
}

/// A filter that matches nothing says so (not that files are missing), and
/// a split the dataset does not have is named.
#[test]
fn filters_that_match_nothing_are_named() {
    let Some((fx, _)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("3dhp", &["--subjects", "ts1"][..], "--subjects ts1 match none of its sequences (subjects there: S1"),
        ("3dhp", &["--split", "val"][..], "3DHP has the splits train, test, not `val`"),
        ("3dpw", &["--split", "val"][..], "3DPW has the splits train, validation, test, not `val`"),
        ("3dpw", &["--subjects", "nobody"][..], "--subjects nobody match none of its sequences"),
        ("h36m", &["--split", "testing"][..], "Human3.6M has the splits train, test, not `testing`"),
    ];
    for (command, filter, needle) in cases {
        let (data, out) = (fx.join(command), tmp.path().join(command));
        let args = [command, "--data-dir", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
        let o = convert(&[&args[..], filter].concat());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && stderr.contains(needle), "{command} {filter:?}: {stderr}");
    }
}

#[test]
fn missing_input_names_what_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    for (command, hint) in [("h36m", "data_3d_h36m.npz"), ("3dhp", "annot.mat"), ("3dpw", "sequenceFiles")] {
        let out = tmp.path().join(command);
        let o = convert(&[command, "--data-dir", tmp.path().to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(stderr.contains(hint) && stderr.contains("not found"), "{command}: {stderr}");
    }
}

#[test]
fn h36m_spill_on_a_full_disk_says_so_and_leaves_nothing() {
    let Some((fx, _)) = fixtures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 32 KiB files: the spill of the 54 KB of 3D arrays cannot be written.
    let o = crate::support::with_file_size_limit(32, "dak-prep")
        .args(["-q", "h36m", "--data-dir", fx.join("h36m").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("writing the spill file: File too large"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let left: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the spill is anonymous and nothing else was written: {left:?}");
}
