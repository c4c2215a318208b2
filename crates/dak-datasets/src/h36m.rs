//! `dak-prep h36m`: Human3.6M from the VideoPose3D files most users have
//! (`data_3d_h36m.npz`, `data_2d_h36m_gt.npz`, `data_2d_h36m_cpn_ft_h36m_dbb.npz`).
//!
//! Quirks handled: 2D sequences longer than the mocap are trimmed to the 3D
//! length (as VideoPose3D's `run.py` does); 2D-only sequences (S2–S4 in the
//! CPN file, the damaged S11 "Directions") are skipped and listed in the
//! manifest; the 32 mocap joints are reduced to VideoPose3D's 17.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use dak_core::camera::Camera;
use dak_core::joint_maps::H36M32_KEPT;
use dak_core::skeleton::NUM_JOINTS;
use dak_formats::array::expect_shape;
use dak_formats::npy::{Npy, Npz};
use dak_formats::pickle::{ArrayRef, Value};
use dak_formats::spill::Spill;
use dak_formats::Array;
use dak_io::{CameraRecord, RecordBatch, Reporter, SourceFrameBuilder, SourceFrameRow, TwoDSource};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::convert::{require, Conversion, ConvertOptions, ConvertOutcome, Plan};
use crate::{h36m_cameras, Error, Result};

pub const DATASET: &str = "h36m";
pub const FILE_3D: &str = "data_3d_h36m.npz";
pub const FILE_2D_GT: &str = "data_2d_h36m_gt.npz";
pub const FILE_2D_CPN: &str = "data_2d_h36m_cpn_ft_h36m_dbb.npz";
pub const CPN_DETECTOR: &str = "cpn_ft_h36m_dbb";
pub const FPS: f32 = 50.0;
/// The standard protocol: S1, S5–S8 train; S9, S11 test.
pub const TRAIN_SUBJECTS: [&str; 5] = ["S1", "S5", "S6", "S7", "S8"];

/// Which 2D files to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TwoDChoice {
    /// Ground-truth 2D from `data_2d_h36m_gt.npz` (projected from 3D if the file is absent).
    Gt,
    /// CPN detections from `data_2d_h36m_cpn_ft_h36m_dbb.npz` as `detected_2d_px`.
    Cpn,
    /// Both (each if present).
    #[default]
    Both,
}

impl TwoDChoice {
    fn gt(self) -> bool {
        matches!(self, Self::Gt | Self::Both)
    }

    fn cpn(self) -> bool {
        matches!(self, Self::Cpn | Self::Both)
    }
}

pub fn split_of(subject: &str) -> &'static str {
    if TRAIN_SUBJECTS.contains(&subject) {
        "train"
    } else {
        "test"
    }
}

type ByAction<T> = BTreeMap<String, T>;
/// `positions_3d`, subjects keyed in numeric order.
type Mocap = BTreeMap<(u32, String), ByAction<Stored>>;
/// `positions_2d`: one array per camera.
type Views = BTreeMap<String, ByAction<Vec<Stored>>>;

/// An array of an input file, shape-checked while the file was read, its
/// values decoded (and checked to be finite) only when its sequence is
/// converted: the files are read as streams, large arrays parked in a spill
/// file, so converting needs memory for a few sequences, not for the files.
#[derive(Clone)]
struct Stored {
    array: ArrayRef,
    path: Arc<Path>,
    /// Where in the file, e.g. `positions_3d['S1']['Walking']`.
    what: String,
}

impl Stored {
    fn frames(&self) -> usize {
        self.array.shape()[0]
    }

    fn load(&self) -> Result<Arc<Array>> {
        let array = self.array.load().map_err(|p| Error::invalid(&self.path, p.0))?;
        array.expect_finite(&self.what).map_err(|p| Error::invalid(&self.path, p.0))?;
        Ok(array)
    }
}

/// Subject → action → value, with subjects in numeric order (S1, S5, …, S11).
fn subject_order(subject: &str) -> (u32, String) {
    (subject.trim_start_matches('S').parse().unwrap_or(u32::MAX), subject.to_string())
}

fn dict_items<'v>(value: &'v Value, path: &Path, what: &str) -> Result<Vec<(&'v str, &'v Value)>> {
    let Value::Dict(items) = value else {
        return Err(Error::invalid(path, format!("{what} is a {}, expected a dict", value.type_name())));
    };
    items
        .iter()
        .map(|(k, v)| match k.as_str() {
            Some(k) => Ok((k, v)),
            None => Err(Error::invalid(path, format!("{what} has a {} key, expected str", k.type_name()))),
        })
        .collect()
}

fn object_member(path: &Path, name: &str, spill: &Arc<Spill>) -> Result<Value> {
    let mut npz = Npz::open(path)?;
    match npz.get_spilled(name, spill)? {
        Npy::Object(v) => Ok(v),
        Npy::Array(a) => Err(Error::invalid(
            path,
            format!("{name} is a numeric array of shape {:?}, expected a pickled dict", a.shape),
        )),
    }
}

fn stored(value: &Value, path: &Arc<Path>, what: String, pattern: &[Option<usize>]) -> Result<Stored> {
    let Some(array) = value.as_array() else {
        return Err(Error::invalid(path, format!("{what} is a {}, expected an array", value.type_name())));
    };
    expect_shape(array.shape(), &what, pattern).map_err(|p| Error::invalid(path, p.0))?;
    Ok(Stored { array, path: path.clone(), what })
}

/// `positions_3d`: subject → action → (N, 32, 3) metres.
fn read_3d(path: &Path, spill: &Arc<Spill>) -> Result<Mocap> {
    let root = object_member(path, "positions_3d", spill)?;
    let path: Arc<Path> = path.into();
    let mut out = BTreeMap::new();
    for (subject, actions) in dict_items(&root, &path, "positions_3d")? {
        let mut by_action = ByAction::new();
        for (action, array) in dict_items(actions, &path, &format!("positions_3d['{subject}']"))? {
            let what = format!("positions_3d['{subject}']['{action}']");
            by_action.insert(action.to_string(), stored(array, &path, what, &[None, Some(32), Some(3)])?);
        }
        out.insert(subject_order(subject), by_action);
    }
    Ok(out)
}

/// `positions_2d`: subject → action → one (N, 17, 2) pixel array per camera.
fn read_2d(path: &Path, spill: &Arc<Spill>) -> Result<Views> {
    let root = object_member(path, "positions_2d", spill)?;
    let path: Arc<Path> = path.into();
    let cameras = h36m_cameras::camera_ids().len();
    let mut out = BTreeMap::new();
    for (subject, actions) in dict_items(&root, &path, "positions_2d")? {
        let mut by_action = ByAction::new();
        for (action, views) in dict_items(actions, &path, &format!("positions_2d['{subject}']"))? {
            let what = format!("positions_2d['{subject}']['{action}']");
            let views = views
                .as_seq()
                .ok_or_else(|| Error::invalid(&path, format!("{what} is a {}, expected a list", views.type_name())))?;
            if views.len() != cameras {
                return Err(Error::invalid(&path, format!("{what} has {} cameras, expected {cameras}", views.len())));
            }
            let arrays = views
                .iter()
                .enumerate()
                .map(|(k, v)| stored(v, &path, format!("{what}[{k}]"), &[None, Some(NUM_JOINTS), Some(2)]))
                .collect::<Result<Vec<_>>>()?;
            by_action.insert(action.to_string(), arrays);
        }
        out.insert(subject.to_string(), by_action);
    }
    Ok(out)
}

/// One motion-capture sequence with the 2D that goes with it.
pub struct Sequence {
    subject: String,
    action: String,
    world_m: Stored,
    cameras: Vec<Camera>,
    gt: Option<Vec<Stored>>,
    cpn: Option<Vec<Stored>>,
}

/// The 2D views of a sequence; longer than the mocap is trimmed when the
/// sequence is converted (noted here), shorter is an error.
fn take_views(
    source: &mut Option<Views>,
    path: &Path,
    subject: &str,
    action: &str,
    frames: usize,
    trimmed: &mut Vec<serde_json::Value>,
) -> Result<Option<Vec<Stored>>> {
    let Some(views) = source.as_mut().and_then(|s| s.get_mut(subject)).and_then(|a| a.remove(action)) else {
        return Ok(None);
    };
    for (k, view) in views.iter().enumerate() {
        let n2d = view.frames();
        if n2d < frames {
            return Err(Error::invalid(
                path,
                format!(
                    "positions_2d['{subject}']['{action}'][{k}] has {n2d} frames, fewer than the {frames} of the 3D"
                ),
            ));
        }
    }
    // One note per sequence, for whichever cameras' 2D runs longer.
    let longest = views.iter().map(Stored::frames).max().unwrap_or(frames);
    if longest > frames {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        trimmed.push(serde_json::json!({"file": file, "subject": subject, "action": action, "frames_2d": longest, "frames_3d": frames}));
    }
    Ok(Some(views))
}

/// Converts the VideoPose3D Human3.6M files in `opts.data_dir`.
pub fn convert(opts: &ConvertOptions, two_d: TwoDChoice, reporter: &dyn Reporter) -> Result<ConvertOutcome> {
    opts.check_splits("Human3.6M", &["train", "test"])?;
    let path_3d = opts.data_dir.join(FILE_3D);
    require(&path_3d, "VideoPose3D's data_3d_h36m.npz (see README: Human3.6M)")?;
    let gt_path = opts.data_dir.join(FILE_2D_GT);
    let cpn_path = opts.data_dir.join(FILE_2D_CPN);
    let use_gt = two_d.gt() && gt_path.is_file();
    let use_cpn = two_d.cpn() && cpn_path.is_file();
    if two_d.gt() && !use_gt {
        tracing::warn!("{}: not found; ground-truth 2D is projected from 3D", gt_path.display());
    }
    if two_d.cpn() && !use_cpn {
        tracing::warn!("{}: not found; no detected 2D", cpn_path.display());
    }
    let mut inputs = vec![path_3d.clone()];
    inputs.extend(use_gt.then(|| gt_path.clone()));
    inputs.extend(use_cpn.then(|| cpn_path.clone()));
    let conversion = Conversion {
        opts,
        dataset: DATASET,
        settings: serde_json::json!({ "2d": two_d, "subjects": opts.subjects, "splits": opts.splits }),
        inputs,
    };
    let plan = || -> Result<Plan<Sequence>> {
        // Beside the output: the space the converted shards need is larger.
        let spill =
            Spill::in_dir(&opts.out).map_err(|source| dak_formats::Error::Io { path: opts.out.clone(), source })?;
        let mocap = read_3d(&path_3d, &spill)?;
        let mut gt = use_gt.then(|| read_2d(&gt_path, &spill)).transpose()?;
        let mut cpn = use_cpn.then(|| read_2d(&cpn_path, &spill)).transpose()?;
        let (mut jobs, mut cameras, mut trimmed) = (Vec::new(), Vec::new(), Vec::new());
        for ((_, subject), actions) in mocap {
            if !opts.wants_subject(&subject) || !opts.wants_split(split_of(&subject)) {
                continue;
            }
            let rig = h36m_cameras::cameras_of(&subject).ok_or_else(|| {
                Error::invalid(&path_3d, format!("subject {subject} has no public Human3.6M calibration"))
            })?;
            cameras.extend(rig.iter().map(|c| CameraRecord {
                dataset: DATASET.into(),
                subject: subject.clone(),
                camera: c.id.clone(),
                intrinsics: c.intrinsics,
                extrinsics: Some(c.extrinsics),
            }));
            for (action, world_m) in actions {
                let frames = world_m.frames();
                let gt_views = take_views(&mut gt, &gt_path, &subject, &action, frames, &mut trimmed)?;
                let cpn_views = take_views(&mut cpn, &cpn_path, &subject, &action, frames, &mut trimmed)?;
                jobs.push(Sequence {
                    subject: subject.clone(),
                    action,
                    world_m,
                    cameras: rig.clone(),
                    gt: gt_views,
                    cpn: cpn_views,
                });
            }
        }
        // What is left in the 2D files of the wanted subjects has no mocap
        // (S2–S4, S11 Directions).
        let skipped: Vec<String> = [gt, cpn]
            .into_iter()
            .flatten()
            .flat_map(|m| m.into_iter())
            .filter(|(s, _)| opts.wants_subject(s) && opts.wants_split(split_of(s)))
            .flat_map(|(s, a)| a.into_keys().map(move |a| format!("{s}/{a}")))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !skipped.is_empty() {
            tracing::info!("{} 2D-only sequences without 3D skipped", skipped.len());
        }
        Ok(Plan { jobs, cameras, notes: serde_json::json!({ "trimmed_2d": trimmed, "skipped_2d_only": skipped }) })
    };
    conversion.run(reporter, plan, |s| format!("{}/{}", s.subject, s.action), sequence_batch)
}

fn sequence_batch(s: &Sequence) -> Result<RecordBatch> {
    let world_m = s.world_m.load()?;
    let load_views = |views: &Option<Vec<Stored>>| -> Result<Option<Vec<Arc<Array>>>> {
        views.as_ref().map(|v| v.iter().map(Stored::load).collect()).transpose()
    };
    let (gt, cpn) = (load_views(&s.gt)?, load_views(&s.cpn)?);
    let frames = world_m.shape[0];
    let sequence = format!("{}/{}", s.subject, s.action);
    // "Walking 1" and "Walking 2" are takes of one action.
    let action = s.action.split_whitespace().next().unwrap_or(&s.action);
    let split = split_of(&s.subject);
    let mut builder = SourceFrameBuilder::with_capacity(frames * s.cameras.len());
    let (mut w, mut c, mut p, mut d) = (vec![0f32; 51], vec![0f32; 51], vec![0f32; 34], vec![0f32; 34]);
    for (k, camera) in s.cameras.iter().enumerate() {
        let to_camera = camera.extrinsics.world_to_camera_map();
        // 2D rows past the mocap's last frame are not read (trimmed).
        for (f, mocap) in world_m.rows().enumerate() {
            for (j, &src) in H36M32_KEPT.iter().enumerate() {
                let world = Vector3::new(mocap[3 * src], mocap[3 * src + 1], mocap[3 * src + 2]) * 1000.0;
                let cam = to_camera.apply(&world);
                for a in 0..3 {
                    w[3 * j + a] = world[a] as f32;
                    c[3 * j + a] = cam[a] as f32;
                }
                let px = match &gt {
                    Some(views) => {
                        let row = &views[k].data[(f * NUM_JOINTS + j) * 2..];
                        [row[0], row[1]]
                    }
                    None => {
                        let px = camera.intrinsics.project(&cam);
                        [px.x, px.y]
                    }
                };
                p[2 * j] = px[0] as f32;
                p[2 * j + 1] = px[1] as f32;
                if let Some(views) = &cpn {
                    let row = &views[k].data[(f * NUM_JOINTS + j) * 2..];
                    d[2 * j] = row[0] as f32;
                    d[2 * j + 1] = row[1] as f32;
                }
            }
            builder.push(&SourceFrameRow {
                dataset: DATASET,
                split,
                subject: &s.subject,
                action,
                sequence: &sequence,
                camera: &camera.id,
                frame: f as u32,
                fps: FPS,
                joints_3d_world_mm: Some(&w),
                joints_3d_camera_mm: &c,
                joints_2d_px: &p,
                joints_2d_source: if gt.is_some() { TwoDSource::Annotation } else { TwoDSource::Projection },
                detected_2d_px: cpn.as_ref().map(|_| &d[..]),
                detected_2d_confidence: None,
                detector: cpn.as_ref().map(|_| CPN_DETECTOR),
                valid: true,
            })?;
        }
    }
    Ok(builder.finish())
}
