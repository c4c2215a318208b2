//! `dak-prep 3dhp`: MPI-INF-3DHP training sequences (`S*/Seq*/annot.mat`,
//! MATLAB v5, with `camera.calibration`) and the test set
//! (`mpi_inf_3dhp_test_set/TS*/annot_data.mat`, MATLAB v7.3 = HDF5).
//!
//! 3D comes in camera coordinates (mm); world coordinates are left null.
//! `--joints-3d auto` takes `annot3` for training and `univ_annot3` (rescaled
//! to the Human3.6M skeleton height, as the official evaluation does) for test.

use std::path::{Path, PathBuf};

use dak_core::camera::{Extrinsics, Intrinsics};
use dak_core::joint_maps::{mpi3dhp28_index, MPI3DHP17_TO_H36M17};
use dak_core::skeleton::NUM_JOINTS;
use dak_formats::h5mat::H5Mat;
use dak_formats::mat::{self, MatValue};
use dak_formats::Array;
use dak_io::{CameraRecord, RecordBatch, Reporter, SourceFrameBuilder, SourceFrameRow, TwoDSource};
use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

use crate::convert::{Conversion, ConvertOptions, ConvertOutcome, Plan};
use crate::{Error, Result};

pub const DATASET: &str = "3dhp";
pub const TRAIN_FPS: f32 = 25.0;
pub const ANNOTATED_JOINTS: usize = 28;
/// Cameras at chest height whose views the usual protocol trains on.
pub const DEFAULT_CAMERAS: [usize; 8] = [0, 1, 2, 4, 5, 6, 7, 8];
pub const ACTIVITIES: [&str; 7] =
    ["Standing/Walking", "Exercising", "Sitting", "Reaching/Crouching", "On the Floor", "Sports", "Miscellaneous"];

/// Which 3D annotation to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Joints3d {
    /// `annot3` for training, `univ_annot3` for test (the official evaluation).
    #[default]
    Auto,
    Annot3,
    Univ,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mpi3dhpSettings {
    pub cameras: Vec<usize>,
    pub joints_3d: Joints3d,
    /// Keep every n-th training frame (the test set is always kept whole).
    pub stride: usize,
}

impl Default for Mpi3dhpSettings {
    fn default() -> Self {
        Self { cameras: DEFAULT_CAMERAS.to_vec(), joints_3d: Joints3d::Auto, stride: 1 }
    }
}

/// A test sequence's camera; the test files carry no calibration, so these are
/// the published numbers (TS1–4 studio camera, TS5–6 outdoor camera), from
/// the calibration files distributed with the test set.
pub fn test_intrinsics(sequence: &str) -> Intrinsics {
    let outdoor = matches!(sequence, "TS5" | "TS6");
    let (f, c, w, h) = if outdoor {
        ([1683.98345952, 1672.5937077248102], [939.85754016, 560.140743168], 1920, 1080)
    } else {
        ([1500.172, 1500.837], [1017.387, 1043.032], 2048, 2048)
    };
    Intrinsics { focal_length_px: f, center_px: c, radial: [0.0; 3], tangential: [0.0; 2], width_px: w, height_px: h }
}

pub fn test_fps(sequence: &str) -> f32 {
    if matches!(sequence, "TS5" | "TS6") {
        50.0
    } else {
        25.0
    }
}

/// One camera of a `camera.calibration` file.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibratedCamera {
    pub name: String,
    pub size: [u32; 2],
    /// Row-major 4×4.
    pub intrinsic: [f64; 16],
    /// Row-major 4×4, world → camera, mm.
    pub extrinsic: [f64; 16],
}

impl CalibratedCamera {
    pub fn intrinsics(&self) -> Intrinsics {
        let k = &self.intrinsic;
        Intrinsics {
            focal_length_px: [k[0], k[5]],
            center_px: [k[2], k[6]],
            radial: [0.0; 3],
            tangential: [0.0; 2],
            width_px: self.size[0],
            height_px: self.size[1],
        }
    }

    /// Checked by [`parse_calibration`].
    pub fn extrinsics(&self) -> Extrinsics {
        self.checked_extrinsics().expect("a parsed calibration holds rotations")
    }

    fn checked_extrinsics(&self) -> std::result::Result<Extrinsics, dak_core::GeometryError> {
        let e = &self.extrinsic;
        let rotation = Matrix3::new(e[0], e[1], e[2], e[4], e[5], e[6], e[8], e[9], e[10]);
        Extrinsics::from_camera_from_world(&rotation, &Vector3::new(e[3], e[7], e[11]))
    }
}

/// Parses a Skeletool `camera.calibration` file (header, then per camera
/// `name`, `sensor`, `size`, `animated`, `intrinsic` 16, `extrinsic` 16, `radial`).
pub fn parse_calibration(text: &str) -> std::result::Result<Vec<CalibratedCamera>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(h) if h.starts_with("Skeletool Camera Calibration File") => {}
        other => return Err(format!("not a Skeletool camera calibration file (first line {other:?})")),
    }
    let numbers = |rest: &str, n: usize, key: &str| -> std::result::Result<Vec<f64>, String> {
        let v: Vec<f64> = rest
            .split_whitespace()
            .map(|t| t.parse::<f64>().map_err(|_| format!("`{key}` has a non-number {t:?}")))
            .collect::<std::result::Result<_, _>>()?;
        if v.len() != n || v.iter().any(|x| !x.is_finite()) {
            return Err(format!("`{key}` needs {n} finite numbers, found {}", v.len()));
        }
        Ok(v)
    };
    let mut cameras: Vec<CalibratedCamera> = Vec::new();
    for line in lines {
        let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if key == "name" {
            cameras.push(CalibratedCamera {
                name: rest.into(),
                size: [0, 0],
                intrinsic: [0.0; 16],
                extrinsic: [0.0; 16],
            });
            continue;
        }
        let camera = cameras.last_mut().ok_or_else(|| format!("`{key}` before the first `name`"))?;
        match key {
            "size" => {
                let v = numbers(rest, 2, key)?;
                camera.size = [v[0] as u32, v[1] as u32];
            }
            "intrinsic" => camera.intrinsic.copy_from_slice(&numbers(rest, 16, key)?),
            "extrinsic" => camera.extrinsic.copy_from_slice(&numbers(rest, 16, key)?),
            "sensor" | "animated" | "radial" => {}
            other => return Err(format!("unknown key `{other}`")),
        }
    }
    for c in &cameras {
        if c.intrinsic[0] <= 0.0 || c.intrinsic[5] <= 0.0 || c.size[0] == 0 {
            return Err(format!("camera {} lacks a size or intrinsic matrix", c.name));
        }
        c.checked_extrinsics().map_err(|e| format!("camera {}: extrinsic: {e}", c.name))?;
    }
    Ok(cameras)
}

/// A unit of conversion.
pub enum Job {
    Train { subject: String, seq: String, annot: PathBuf },
    Test { sequence: String, annot: PathBuf },
}

fn discover_train(dir: &Path) -> Vec<(String, String, PathBuf)> {
    let mut out = Vec::new();
    for s in 1..=8 {
        for q in 1..=2 {
            let path = dir.join(format!("S{s}/Seq{q}/annot.mat"));
            if path.is_file() {
                out.push((format!("S{s}"), format!("Seq{q}"), path));
            }
        }
    }
    out
}

fn discover_test(dir: &Path) -> Vec<(String, PathBuf)> {
    (1..=6)
        .filter_map(|t| {
            let name = format!("TS{t}");
            [dir.join("mpi_inf_3dhp_test_set").join(&name), dir.join(&name)]
                .into_iter()
                .map(|d| d.join("annot_data.mat"))
                .find(|p| p.is_file())
                .map(|p| (name, p))
        })
        .collect()
}

pub fn convert(opts: &ConvertOptions, settings: &Mpi3dhpSettings, reporter: &dyn Reporter) -> Result<ConvertOutcome> {
    if settings.stride == 0 {
        return Err(Error::Config { field: "stride", reason: "must be at least 1".into() });
    }
    if let Some(&c) = settings.cameras.iter().find(|&&c| c >= 14) {
        return Err(Error::Config { field: "cameras", reason: format!("3DHP has cameras 0–13, not {c}") });
    }
    opts.check_splits("3DHP", &["train", "test"])?;
    // The subjects of the splits asked for: a split whose files are not
    // there is a missing input, not a filter that matched nothing.
    let all_train = if opts.wants_split("train") { discover_train(&opts.data_dir) } else { Vec::new() };
    let all_test = if opts.wants_split("test") { discover_test(&opts.data_dir) } else { Vec::new() };
    let mut found: Vec<String> = all_train.iter().map(|(s, _, _)| s.clone()).collect();
    found.dedup();
    found.extend(all_test.iter().map(|(s, _)| s.clone()));
    let train: Vec<_> = all_train.into_iter().filter(|(s, _, _)| opts.wants_subject(s)).collect();
    let test: Vec<_> = all_test.into_iter().filter(|(s, _)| opts.wants_subject(s)).collect();
    opts.check_subjects(&found, train.len() + test.len())?;
    if train.is_empty() && test.is_empty() {
        return Err(Error::MissingInput {
            path: opts.data_dir.clone(),
            what: "S1..S8/Seq1..2/annot.mat (+ camera.calibration) or mpi_inf_3dhp_test_set/TS1..TS6/annot_data.mat"
                .into(),
        });
    }
    let mut inputs = Vec::new();
    for (_, _, annot) in &train {
        let calib = annot.with_file_name("camera.calibration");
        crate::convert::require(&calib, "the camera.calibration of this sequence")?;
        inputs.push(annot.clone());
        inputs.push(calib);
    }
    inputs.extend(test.iter().map(|(_, p)| p.clone()));
    let conversion = Conversion {
        opts,
        dataset: DATASET,
        settings: serde_json::json!({ "3dhp": settings, "subjects": opts.subjects, "splits": opts.splits }),
        inputs,
    };
    let plan = || -> Result<Plan<Job>> {
        let (mut jobs, mut records) = (Vec::new(), Vec::new());
        for (subject, seq, annot) in train {
            let calib_path = annot.with_file_name("camera.calibration");
            let text = std::fs::read_to_string(&calib_path)
                .map_err(|e| Error::invalid(&calib_path, format!("cannot read: {e}")))?;
            let all = parse_calibration(&text).map_err(|p| Error::invalid(&calib_path, p))?;
            for &c in &settings.cameras {
                let cam = all.get(c).ok_or_else(|| {
                    Error::invalid(&calib_path, format!("has {} cameras; camera {c} was asked for", all.len()))
                })?;
                records.push(CameraRecord {
                    dataset: DATASET.into(),
                    subject: subject.clone(),
                    camera: train_camera_id(&seq, c),
                    intrinsics: cam.intrinsics(),
                    extrinsics: Some(cam.extrinsics()),
                });
            }
            jobs.push(Job::Train { subject, seq, annot });
        }
        for (sequence, annot) in test {
            records.push(CameraRecord {
                dataset: DATASET.into(),
                subject: sequence.clone(),
                camera: sequence.clone(),
                intrinsics: test_intrinsics(&sequence),
                extrinsics: None,
            });
            jobs.push(Job::Test { sequence, annot });
        }
        Ok(Plan { jobs, cameras: records, notes: serde_json::json!({}) })
    };
    let label = |j: &Job| match j {
        Job::Train { subject, seq, .. } => format!("{subject}/{seq}"),
        Job::Test { sequence, .. } => sequence.clone(),
    };
    conversion.run(reporter, plan, label, |job| match job {
        Job::Train { subject, seq, annot } => train_batch(settings, subject, seq, annot),
        Job::Test { sequence, annot } => test_batch(settings, sequence, annot),
    })
}

/// Per-camera matrices of a `(14, 1)` cell variable.
fn cell_views<'m>(file: &'m mat::MatFile, path: &Path, name: &str, width: usize) -> Result<Vec<&'m Array>> {
    let Some(MatValue::Cell { items, .. }) = file.get(name) else {
        let found = file.get(name).map_or("nothing", MatValue::kind);
        return Err(Error::invalid(path, format!("`{name}` is {found}, expected a cell array (one per camera)")));
    };
    items
        .iter()
        .enumerate()
        .map(|(c, v)| match v {
            MatValue::Numeric(a) => {
                a.expect_shape(&format!("{name}{{{}}}", c + 1), &[None, Some(width)])
                    .map_err(|p| Error::invalid(path, p.0))?;
                Ok(a)
            }
            other => Err(Error::invalid(path, format!("{name}{{{}}} is a {}", c + 1, other.kind()))),
        })
        .collect()
}

/// A training camera's id, `Seq1/0`: each sequence directory has its own
/// `camera.calibration`, and (dataset, subject, camera) keys the camera
/// table, so the sequence is part of the camera's name.
fn train_camera_id(seq: &str, camera: usize) -> String {
    format!("{seq}/{camera}")
}

fn train_batch(settings: &Mpi3dhpSettings, subject: &str, seq: &str, path: &Path) -> Result<RecordBatch> {
    let file = mat::read(path)?;
    let annot2 = cell_views(&file, path, "annot2", ANNOTATED_JOINTS * 2)?;
    let annot3 = cell_views(&file, path, "annot3", ANNOTATED_JOINTS * 3)?;
    let use_univ = settings.joints_3d == Joints3d::Univ;
    let three_d = if use_univ { cell_views(&file, path, "univ_annot3", ANNOTATED_JOINTS * 3)? } else { annot3 };
    let sequence = format!("{subject}/{seq}");
    let mut builder = SourceFrameBuilder::with_capacity(0);
    let (mut c3, mut p2) = (vec![0f32; 51], vec![0f32; 34]);
    for &c in &settings.cameras {
        let camera = train_camera_id(seq, c);
        let (Some(a2), Some(a3)) = (annot2.get(c), three_d.get(c)) else {
            return Err(Error::invalid(path, format!("has no annotation for camera {c}")));
        };
        let frames = a3.shape[0];
        if a2.shape[0] != frames {
            return Err(Error::invalid(
                path,
                format!("camera {c}: annot2 has {} frames, annot3 {frames}", a2.shape[0]),
            ));
        }
        for (f, (r3, r2)) in a3.rows().zip(a2.rows()).enumerate().step_by(settings.stride) {
            for j in 0..NUM_JOINTS {
                let src = mpi3dhp28_index(j);
                c3[3 * j..3 * j + 3].iter_mut().zip(&r3[3 * src..3 * src + 3]).for_each(|(o, v)| *o = *v as f32);
                p2[2 * j..2 * j + 2].iter_mut().zip(&r2[2 * src..2 * src + 2]).for_each(|(o, v)| *o = *v as f32);
            }
            if let Some(v) = c3.iter().chain(&p2).find(|v| !v.is_finite()) {
                return Err(Error::invalid(path, format!("camera {c} frame {f} holds a non-finite coordinate ({v})")));
            }
            builder.push(&SourceFrameRow {
                dataset: DATASET,
                split: "train",
                subject,
                action: seq,
                sequence: &sequence,
                camera: &camera,
                // Subsampled frames stay a contiguous video at a lower rate.
                frame: (f / settings.stride) as u32,
                fps: TRAIN_FPS / settings.stride as f32,
                joints_3d_world_mm: None,
                joints_3d_camera_mm: &c3,
                joints_2d_px: &p2,
                joints_2d_source: TwoDSource::Annotation,
                detected_2d_px: None,
                detected_2d_confidence: None,
                detector: None,
                valid: true,
            })?;
        }
    }
    Ok(builder.finish())
}

fn test_batch(settings: &Mpi3dhpSettings, sequence: &str, path: &Path) -> Result<RecordBatch> {
    let file = H5Mat::open(path)?;
    let name3 = if settings.joints_3d == Joints3d::Annot3 { "annot3" } else { "univ_annot3" };
    let read = |name: &str, last: usize| -> Result<Array> {
        let a = file.array(name)?;
        a.expect_shape(name, &[None, Some(1), Some(NUM_JOINTS), Some(last)]).map_err(|p| Error::invalid(path, p.0))?;
        Ok(a)
    };
    let (mut a2, mut a3) = (read("annot2", 2)?, read(name3, 3)?);
    let frames = a3.shape[0];
    let per_frame = |name: &str| -> Result<Vec<f64>> {
        let a = file.array(name)?;
        if a.len() != frames {
            return Err(Error::invalid(path, format!("{name} has {} values for {frames} frames", a.len())));
        }
        Ok(a.data)
    };
    let valid = per_frame("valid_frame")?;
    let activity = per_frame("activity_annotation")?;
    if a2.shape[0] != frames {
        return Err(Error::invalid(path, format!("annot2 has {} frames, {name3} {frames}", a2.shape[0])));
    }
    let is_valid: Vec<bool> = valid.iter().map(|&v| v != 0.0).collect();
    hold_unannotated_frames(&mut a2.data, &is_valid, "annot2").map_err(|r| Error::invalid(path, r))?;
    hold_unannotated_frames(&mut a3.data, &is_valid, name3).map_err(|r| Error::invalid(path, r))?;
    let mut builder = SourceFrameBuilder::with_capacity(frames);
    let (mut c3, mut p2) = (vec![0f32; 51], vec![0f32; 34]);
    for f in 0..frames {
        for (j, &src) in MPI3DHP17_TO_H36M17.iter().enumerate() {
            for a in 0..3 {
                c3[3 * j + a] = a3.data[(f * NUM_JOINTS + src) * 3 + a] as f32;
            }
            for a in 0..2 {
                p2[2 * j + a] = a2.data[(f * NUM_JOINTS + src) * 2 + a] as f32;
            }
        }
        let label = activity[f] as usize;
        builder.push(&SourceFrameRow {
            dataset: DATASET,
            split: "test",
            subject: sequence,
            action: ACTIVITIES.get(label.wrapping_sub(1)).copied().unwrap_or("Unknown"),
            sequence,
            camera: sequence,
            frame: f as u32,
            fps: test_fps(sequence),
            joints_3d_world_mm: None,
            joints_3d_camera_mm: &c3,
            joints_2d_px: &p2,
            joints_2d_source: TwoDSource::Annotation,
            detected_2d_px: None,
            detected_2d_confidence: None,
            detector: None,
            valid: valid[f] != 0.0,
        })?;
    }
    Ok(builder.finish())
}

/// Frames excluded from evaluation (`valid_frame` 0) may carry no usable
/// annotation; a non-finite value there would poison every window of the
/// video it sits in. Such a frame takes the values of the nearest finite
/// frame before it (else after it); a non-finite value in a valid frame is
/// an error. `data` is frame-major, `valid.len()` frames.
fn hold_unannotated_frames(data: &mut [f64], valid: &[bool], name: &str) -> std::result::Result<(), String> {
    let per_frame = data.len() / valid.len().max(1);
    let finite = |data: &[f64], f: usize| data[f * per_frame..(f + 1) * per_frame].iter().all(|v| v.is_finite());
    let ok: Vec<bool> = (0..valid.len()).map(|f| finite(data, f)).collect();
    if let Some(f) = (0..valid.len()).find(|&f| valid[f] && !ok[f]) {
        return Err(format!("{name} holds a non-finite value in frame {f}, which valid_frame marks valid"));
    }
    for f in (0..valid.len()).filter(|&f| !ok[f]) {
        let source = (0..f).rev().chain(f + 1..valid.len()).find(|&g| ok[g]);
        let Some(g) = source else {
            return Err(format!("{name} holds no finite frame"));
        };
        data.copy_within(g * per_frame..(g + 1) * per_frame, f * per_frame);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unannotated_frames_hold_their_neighbour_and_annotated_ones_must_be_finite() {
        let nan = f64::NAN;
        // 4 frames × 2 values; frames 0 and 2 are excluded and unannotated.
        let mut data = vec![nan, nan, 1.0, 2.0, nan, 5.0, 3.0, 4.0];
        hold_unannotated_frames(&mut data, &[false, true, false, true], "annot2").unwrap();
        assert_eq!(data, vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0]);
        let mut data = vec![1.0, nan];
        let err = hold_unannotated_frames(&mut data, &[true], "univ_annot3").unwrap_err();
        assert!(err.contains("univ_annot3") && err.contains("frame 0"), "{err}");
        assert!(hold_unannotated_frames(&mut [nan], &[false], "annot2").unwrap_err().contains("no finite frame"));
    }

    const CALIB: &str = "Skeletool Camera Calibration File V1.0\nname          0\n  sensor      10 10\n  size        2048 2048\n  animated    0\n  intrinsic   1500 0 1024 0 0 1501 1020 0 0 0 1 0 0 0 0 1 \n  extrinsic   1 0 0 10 0 1 0 20 0 0 1 30 0 0 0 1 \n  radial      0\n";

    #[test]
    fn calibration_round_trip() {
        let cams = parse_calibration(CALIB).unwrap();
        assert_eq!(cams.len(), 1);
        let i = cams[0].intrinsics();
        assert_eq!((i.focal_length_px, i.center_px, i.width_px), ([1500.0, 1501.0], [1024.0, 1020.0], 2048));
        let x = cams[0].extrinsics().world_to_camera(&Vector3::new(1.0, 2.0, 3.0));
        assert!((x - Vector3::new(11.0, 22.0, 33.0)).norm() < 1e-9);
    }

    #[test]
    fn calibration_errors_are_specific() {
        assert!(parse_calibration("hello").unwrap_err().contains("not a Skeletool"));
        let bad = CALIB.replace("1500 0 1024", "1500 x 1024");
        assert!(parse_calibration(&bad).unwrap_err().contains("non-number"));
        let mirrored = CALIB.replace("0 0 1 30", "0 0 -1 30");
        let err = parse_calibration(&mirrored).unwrap_err();
        assert!(err.contains("camera 0: extrinsic: not a rotation matrix (determinant -1"), "{err}");
    }
}
