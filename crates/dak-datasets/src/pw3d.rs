//! `dak-prep 3dpw`: 3DPW's `sequenceFiles/{train,validation,test}/*.pkl`
//! (Python-2 pickles). Each actor of a sequence becomes one video: SMPL-24
//! joint positions (world, metres) are moved into the moving phone camera
//! with the per-frame `cam_poses`, mapped to our 17 joints with
//! [`SMPL24_TO_H36M17`] (see there for the bias this adds), and projected with
//! `cam_intrinsics`. `campose_valid` becomes the per-frame `valid` flag;
//! the OpenPose `poses2d` become `detected_2d_px` via [`OPENPOSE18_TO_H36M17`].

use std::path::{Path, PathBuf};

use dak_core::camera::Intrinsics;
use dak_core::joint_maps::{
    map_detections, map_weighted, OPENPOSE18_TO_H36M17, OPENPOSE_JOINTS, SMPL24_TO_H36M17, SMPL_JOINTS,
};
use dak_core::skeleton::NUM_JOINTS;
use dak_formats::pickle::{self, Value};
use dak_formats::Array;
use dak_io::{CameraRecord, RecordBatch, Reporter, SourceFrameBuilder, SourceFrameRow, TwoDSource};
use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;

use crate::convert::{Conversion, ConvertOptions, ConvertOutcome, Plan};
use crate::{Error, Result};

pub const DATASET: &str = "3dpw";
pub const FPS: f32 = 30.0;
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];
pub const CAMERA: &str = "phone";
/// 3DPW's `poses2d` are OpenPose detections.
pub const DETECTOR: &str = "openpose";

pub struct Job {
    split: &'static str,
    name: String,
    path: PathBuf,
}

fn discover(opts: &ConvertOptions) -> Vec<Job> {
    let mut jobs = Vec::new();
    for split in SPLITS.into_iter().filter(|s| opts.wants_split(s)) {
        let dir = opts.data_dir.join("sequenceFiles").join(split);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "pkl")).collect();
        files.sort();
        for path in files {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if opts.wants_subject(&name) {
                jobs.push(Job { split, name, path });
            }
        }
    }
    jobs
}

pub fn convert(opts: &ConvertOptions, reporter: &dyn Reporter) -> Result<ConvertOutcome> {
    opts.check_splits("3DPW", &SPLITS)?;
    // Every sequence of the splits asked for (a split not there is a missing input).
    let everything = ConvertOptions { subjects: Vec::new(), ..opts.clone() };
    let found: Vec<String> = discover(&everything).into_iter().map(|j| j.name).collect();
    let jobs = discover(opts);
    opts.check_subjects(&found, jobs.len())?;
    if jobs.is_empty() {
        return Err(Error::MissingInput {
            path: opts.data_dir.join("sequenceFiles"),
            what: "3DPW's sequenceFiles/{train,validation,test}/*.pkl".into(),
        });
    }
    let conversion = Conversion {
        opts,
        dataset: DATASET,
        settings: serde_json::json!({ "subjects": opts.subjects, "splits": opts.splits }),
        inputs: jobs.iter().map(|j| j.path.clone()).collect(),
    };
    // Intrinsics live inside the pickles: read each once, in parallel, while planning.
    let plan = || -> Result<Plan<(Job, Pw3dSequence)>> {
        let loaded: Vec<(Job, Pw3dSequence)> = jobs
            .into_par_iter()
            .map(|job| Pw3dSequence::read(&job.path).map(|seq| (job, seq)))
            .collect::<Result<_>>()?;
        let mut cameras = Vec::new();
        for (job, seq) in &loaded {
            for actor in 0..seq.actors.len() {
                cameras.push(CameraRecord {
                    dataset: DATASET.into(),
                    subject: format!("{}/{actor}", job.name),
                    camera: CAMERA.into(),
                    intrinsics: seq.intrinsics,
                    extrinsics: None,
                });
            }
        }
        Ok(Plan { jobs: loaded, cameras, notes: serde_json::json!({}) })
    };
    conversion.run(reporter, plan, |(job, _)| job.name.clone(), |(job, seq)| sequence_batch(job, seq))
}

struct Actor {
    /// (N, 72): SMPL-24 joints, world, metres.
    joints: Array,
    /// (N, 3, 18): OpenPose x, y, confidence, where the file has them.
    poses2d: Option<Array>,
    valid: Vec<bool>,
}

struct Pw3dSequence {
    /// (N, 4, 4) world → camera, metres.
    cam_poses: Array,
    intrinsics: Intrinsics,
    actors: Vec<Actor>,
}

fn field<'v>(root: &'v Value, path: &Path, key: &str) -> Result<&'v Value> {
    root.get(key).ok_or_else(|| Error::invalid(path, format!("has no `{key}` (keys: {:?})", root.keys())))
}

fn array<'v>(value: &'v Value, path: &Path, what: &str, pattern: &[Option<usize>]) -> Result<&'v Array> {
    let Value::Array(a) = value else {
        return Err(Error::invalid(path, format!("{what} is a {}, expected an array", value.type_name())));
    };
    a.expect_shape(what, pattern).and_then(|()| a.expect_finite(what)).map_err(|p| Error::invalid(path, p.0))?;
    Ok(&**a)
}

fn per_actor<'v>(root: &'v Value, path: &Path, key: &str) -> Result<&'v [Value]> {
    let v = field(root, path, key)?;
    v.as_seq().ok_or_else(|| Error::invalid(path, format!("`{key}` is a {}, expected a list per actor", v.type_name())))
}

impl Pw3dSequence {
    fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::invalid(path, format!("cannot read: {e}")))?;
        let root = pickle::from_bytes(&bytes).map_err(|p| Error::invalid(path, p.0))?;
        if !matches!(root, Value::Dict(_)) {
            return Err(Error::invalid(path, format!("holds a {}, expected a 3DPW sequence dict", root.type_name())));
        }
        let cam_poses = array(field(&root, path, "cam_poses")?, path, "cam_poses", &[None, Some(4), Some(4)])?.clone();
        let frames = cam_poses.shape[0];
        let k = array(field(&root, path, "cam_intrinsics")?, path, "cam_intrinsics", &[Some(3), Some(3)])?;
        let (fx, fy, cx, cy) = (k.data[0], k.data[4], k.data[2], k.data[5]);
        if !(fx > 0.0 && fy > 0.0) {
            return Err(Error::invalid(path, format!("cam_intrinsics has non-positive focal lengths ({fx}, {fy})")));
        }
        // 3DPW frames are 1080×1920 or 1920×1080, centred near the principal point.
        let (w, h) = if cx < cy { (1080, 1920) } else { (1920, 1080) };
        let intrinsics = Intrinsics {
            focal_length_px: [fx, fy],
            center_px: [cx, cy],
            radial: [0.0; 3],
            tangential: [0.0; 2],
            width_px: w,
            height_px: h,
        };
        let joints = per_actor(&root, path, "jointPositions")?;
        let valid = per_actor(&root, path, "campose_valid")?;
        if joints.len() != valid.len() {
            return Err(Error::invalid(
                path,
                format!("{} actors in jointPositions, {} in campose_valid", joints.len(), valid.len()),
            ));
        }
        let poses2d = match root.get("poses2d") {
            Some(_) => Some(per_actor(&root, path, "poses2d")?),
            None => None,
        };
        if poses2d.is_some_and(|p| p.len() != joints.len()) {
            return Err(Error::invalid(path, "poses2d and jointPositions have different actor counts"));
        }
        let actors = joints
            .iter()
            .zip(valid)
            .enumerate()
            .map(|(i, (j, v))| {
                let joints = array(j, path, &format!("jointPositions[{i}]"), &[Some(frames), Some(SMPL_JOINTS * 3)])?;
                let valid = array(v, path, &format!("campose_valid[{i}]"), &[Some(frames)])?;
                let poses2d = poses2d
                    .map(|p| {
                        array(&p[i], path, &format!("poses2d[{i}]"), &[Some(frames), Some(3), Some(OPENPOSE_JOINTS)])
                    })
                    .transpose()?
                    .cloned();
                Ok(Actor { joints: joints.clone(), poses2d, valid: valid.data.iter().map(|&x| x != 0.0).collect() })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { cam_poses, intrinsics, actors })
    }
}

fn sequence_batch(job: &Job, seq: &Pw3dSequence) -> Result<RecordBatch> {
    let frames = seq.cam_poses.shape[0];
    let mut builder = SourceFrameBuilder::with_capacity(frames * seq.actors.len());
    let (mut w, mut c, mut p) = (vec![0f32; 51], vec![0f32; 51], vec![0f32; 34]);
    let (mut d, mut conf) = (vec![0f32; 34], vec![0f32; NUM_JOINTS]);
    for (a, actor) in seq.actors.iter().enumerate() {
        let subject = format!("{}/{a}", job.name);
        for f in 0..frames {
            let m = &seq.cam_poses.data[f * 16..(f + 1) * 16];
            let rotation = Matrix3::new(m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]);
            let translation = Vector3::new(m[3], m[7], m[11]);
            let smpl: Vec<Vector3<f64>> = actor.joints.data[f * 72..(f + 1) * 72]
                .chunks_exact(3)
                .map(|x| Vector3::new(x[0], x[1], x[2]))
                .collect();
            let world = map_weighted(&SMPL24_TO_H36M17, &smpl);
            for (j, x) in world.iter().enumerate() {
                let cam = (rotation * x + translation) * 1000.0;
                let px = seq.intrinsics.project(&cam);
                for k in 0..3 {
                    w[3 * j + k] = (x[k] * 1000.0) as f32;
                    c[3 * j + k] = cam[k] as f32;
                }
                p[2 * j] = px.x as f32;
                p[2 * j + 1] = px.y as f32;
            }
            if let Some(poses2d) = &actor.poses2d {
                let m = &poses2d.data[f * 3 * OPENPOSE_JOINTS..(f + 1) * 3 * OPENPOSE_JOINTS];
                let xy: Vec<[f64; 2]> = (0..OPENPOSE_JOINTS).map(|k| [m[k], m[OPENPOSE_JOINTS + k]]).collect();
                // Seen = detected at all (confidence > 0), as OpenPose marks it.
                let (points, confidence) =
                    map_detections(&OPENPOSE18_TO_H36M17, &xy, &m[2 * OPENPOSE_JOINTS..], f64::MIN_POSITIVE);
                for j in 0..NUM_JOINTS {
                    d[2 * j] = points[j][0] as f32;
                    d[2 * j + 1] = points[j][1] as f32;
                    conf[j] = confidence[j].clamp(0.0, 1.0) as f32;
                }
            }
            let detected = actor.poses2d.is_some();
            builder.push(&SourceFrameRow {
                dataset: DATASET,
                split: job.split,
                subject: &subject,
                action: &job.name,
                sequence: &subject,
                camera: CAMERA,
                frame: f as u32,
                fps: FPS,
                joints_3d_world_mm: Some(&w),
                joints_3d_camera_mm: &c,
                joints_2d_px: &p,
                joints_2d_source: TwoDSource::Projection,
                detected_2d_px: detected.then_some(&d[..]),
                detected_2d_confidence: detected.then_some(&conf[..]),
                detector: detected.then_some(DETECTOR),
                valid: actor.valid[f],
            })?;
        }
    }
    Ok(builder.finish())
}
