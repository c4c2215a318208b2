//! Training and evaluation data: videos of source shards and synthetic clips,
//! cut into T-frame windows and batched as tensors.
//!
//! Conventions (VideoPose3D / MixSTE): network inputs are 2D in screen
//! coordinates normalised by image width (x in [-1, 1], y keeping aspect);
//! targets are root-relative 3D in metres; windows running past either end
//! of a video repeat its edge frame.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dak_augment::source::SourceFilter;
use dak_core::camera::normalize_screen_f32;
use dak_core::{Intrinsics, NUM_JOINTS};
use dak_io::{ShardSet, Table, Verify};
use dak_nn::geometry::{gather_joints, intrinsics_row};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

const J2: usize = NUM_JOINTS * 2;
const J3: usize = NUM_JOINTS * 3;

/// Which 2D of the source frames feeds the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Input2d {
    /// `joints_2d_px`: the annotation or the projection of the 3D.
    #[default]
    Gt,
    /// `detected_2d_px` (CPN on Human3.6M, noisy detections on the demo).
    Detected,
}

/// One camera's view of one sequence, frames in order.
#[derive(Debug, Clone)]
pub struct Video {
    pub dataset: String,
    pub subject: String,
    /// The action of the first frame.
    pub action: String,
    /// Where the action changes within the video (3DHP's test sequences
    /// go through several activities): (first frame, action), in frame
    /// order; empty where `action` holds throughout.
    pub action_changes: Vec<(usize, String)>,
    pub sequence: String,
    pub camera: String,
    /// The sequence's frame number of this video's first frame; a video's
    /// frames are consecutive (a gap in the shards starts another video).
    pub first_frame: u32,
    pub intrinsics: Intrinsics,
    /// Normalised 2D, F × 17 × 2.
    pub inputs: Vec<f32>,
    /// Camera coordinates in mm, F × 17 × 3.
    pub poses_mm: Vec<f32>,
    pub valid: Vec<bool>,
}

impl Video {
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    /// The action at frame `f`.
    pub fn action_at(&self, f: usize) -> &str {
        let changed = self.action_changes.partition_point(|(first, _)| *first <= f);
        match changed {
            0 => &self.action,
            k => &self.action_changes[k - 1].1,
        }
    }
}

/// A window: `frames` consecutive frames of video `video` from `start`
/// (possibly negative or past the end: edge padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub video: usize,
    pub start: i64,
}

/// Videos of source shards that pass a filter.
#[derive(Debug, Clone, Default)]
pub struct VideoSet {
    pub videos: Vec<Video>,
    pub inputs: Vec<PathBuf>,
    /// Every (dataset, split, subject) the shards read hold, kept or not:
    /// what a filter that matched nothing could have asked for.
    pub held: std::collections::BTreeSet<(String, String, String)>,
}

type VideoKey = (String, String, String, String);

#[derive(Clone)]
struct FrameRow {
    frame: u32,
    action: String,
    input_px: Vec<f32>,
    /// Joints the detector did not find (confidence 0), where it says so.
    undetected: Option<[bool; NUM_JOINTS]>,
    pose: [f32; J3],
    valid: bool,
}

/// Detected 2D of joints the detector did not find (OpenPose writes 0, 0
/// with confidence 0; a derived joint is then halfway to the image corner)
/// is interpolated over time between the video's nearest frames that found
/// the joint, and held before the first and after the last, as dak-infer
/// treats a user's detections. Returns how many joints no frame found.
fn fill_undetected(frames: &mut [FrameRow]) -> usize {
    let mut never = 0;
    for j in 0..NUM_JOINTS {
        let missing = |r: &FrameRow| r.undetected.is_some_and(|u| u[j]);
        if !frames.iter().any(missing) {
            continue;
        }
        let seen: Vec<(usize, [f32; 2])> = frames
            .iter()
            .enumerate()
            .filter(|(_, r)| !missing(r))
            .map(|(f, r)| (f, [r.input_px[2 * j], r.input_px[2 * j + 1]]))
            .collect();
        if seen.is_empty() {
            never += 1;
            continue;
        }
        let track = dak_core::gaps::interpolate_track(&seen, frames.len());
        for (row, p) in frames.iter_mut().zip(track).filter(|(row, _)| missing(row)) {
            row.input_px[2 * j..2 * j + 2].copy_from_slice(&p);
        }
    }
    never
}

impl VideoSet {
    pub fn load(dirs: &[PathBuf], filter: &SourceFilter, input: Input2d) -> Result<Self> {
        Ok(Self::load_each(dirs, &[filter], input)?.remove(0))
    }

    /// One set per filter from one read of the shards (training and held-out
    /// sets come from the same directories; each read verifies every file's
    /// checksum). A frame that several filters keep is in each of their sets.
    pub fn load_each(dirs: &[PathBuf], filters: &[&SourceFilter], input: Input2d) -> Result<Vec<Self>> {
        let mut rows: Vec<BTreeMap<VideoKey, Vec<FrameRow>>> = filters.iter().map(|_| BTreeMap::new()).collect();
        let mut held = std::collections::BTreeSet::new();
        let mut cameras = BTreeMap::new();
        for dir in dirs {
            let set = ShardSet::open(dir, Verify::Checksums)?;
            if set.table() != Some(Table::SourceFrames) {
                return Err(Error::Data {
                    path: dir.clone(),
                    reason: format!("holds `{}` shards, not source frames", set.manifest().schema),
                });
            }
            for c in set.cameras()? {
                cameras.insert((c.dataset.clone(), c.subject.clone(), c.camera.clone()), c.intrinsics);
            }
            for batch in set.source_frames() {
                let b = batch?;
                for i in 0..b.len() {
                    let (dataset, split, subject) = (b.dataset.value(i), b.split.value(i), b.subject.value(i));
                    // Rows come grouped: a String only where the group changes.
                    if held.last().is_none_or(|(d, sp, su): &(String, String, String)| {
                        (d.as_str(), sp.as_str(), su.as_str()) != (dataset, split, subject)
                    }) {
                        held.insert((dataset.to_string(), split.to_string(), subject.to_string()));
                    }
                    let keeps = |k: &usize| filters[*k].keeps(dataset, split, subject);
                    let Some(last) = (0..filters.len()).rev().find(keeps) else {
                        continue;
                    };
                    let px = match input {
                        Input2d::Gt => b.joints_2d_px(i),
                        Input2d::Detected => b.detected_2d_px(i).ok_or_else(|| Error::Data {
                            path: dir.clone(),
                            reason: format!(
                                "frame {} of {dataset} {subject} {} has no detected 2D; use --input-2d gt",
                                b.frame.value(i),
                                b.sequence.value(i)
                            ),
                        })?,
                    };
                    let key = (
                        dataset.to_string(),
                        subject.to_string(),
                        b.sequence.value(i).to_string(),
                        b.camera.value(i).to_string(),
                    );
                    let undetected = match input {
                        Input2d::Detected => b.detected_2d_confidence(i).map(|c| std::array::from_fn(|j| c[j] <= 0.0)),
                        Input2d::Gt => None,
                    };
                    let row = FrameRow {
                        frame: b.frame.value(i),
                        action: b.action.value(i).to_string(),
                        input_px: px.to_vec(),
                        undetected,
                        pose: b.joints_3d_camera_mm(i).try_into().expect("schema fixes 51 values"),
                        valid: b.valid.value(i),
                    };
                    // Copies only for the other filters that keep the frame.
                    for k in (0..last).filter(keeps) {
                        rows[k].entry(key.clone()).or_default().push(row.clone());
                    }
                    rows[last].entry(key).or_default().push(row);
                }
            }
        }
        rows.into_iter().map(|rows| Self::assemble(dirs, rows, &cameras, &held)).collect()
    }

    fn assemble(
        dirs: &[PathBuf],
        rows: BTreeMap<VideoKey, Vec<FrameRow>>,
        cameras: &BTreeMap<(String, String, String), Intrinsics>,
        held: &std::collections::BTreeSet<(String, String, String)>,
    ) -> Result<Self> {
        let mut videos = Vec::with_capacity(rows.len());
        for ((dataset, subject, sequence, camera), mut frames) in rows {
            frames.sort_by_key(|r| r.frame);
            // Overlapping shard sets (one converted twice into two
            // directories) would repeat frames: motion at half speed.
            if let Some(w) = frames.windows(2).find(|w| w[0].frame == w[1].frame) {
                return Err(Error::Data {
                    path: dirs.first().cloned().unwrap_or_default(),
                    reason: format!(
                        "frame {} of {dataset} {subject} {sequence} camera {camera} appears twice across {}: do the shard directories overlap?",
                        w[0].frame,
                        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            let intrinsics =
                *cameras.get(&(dataset.clone(), subject.clone(), camera.clone())).ok_or_else(|| Error::Data {
                    path: dirs.first().cloned().unwrap_or_default(),
                    reason: format!("no camera {camera} for {dataset} {subject} in the camera tables"),
                })?;
            // A gap in the frame numbers (shards written by other tools, or
            // filtered by hand) starts another video: no window or velocity
            // may span it.
            let numbers: Vec<u32> = frames.iter().map(|r| r.frame).collect();
            let runs = dak_core::gaps::consecutive_runs(&numbers);
            if runs.len() > 1 {
                tracing::warn!(
                    "{dataset} {subject} {sequence} camera {camera}: frames are missing between {}; it is split into {} videos",
                    runs.windows(2)
                        .map(|w| format!("{} and {}", frames[w[0].end - 1].frame, frames[w[1].start].frame))
                        .collect::<Vec<_>>()
                        .join(", "),
                    runs.len()
                );
            }
            for run in runs {
                let frames = &mut frames[run];
                let unfilled = fill_undetected(frames);
                if unfilled > 0 {
                    tracing::warn!(
                        "{dataset} {subject} {sequence} camera {camera}: {unfilled} joints are never detected in its {} \
                         frames from frame {}; their detector coordinates are used as they are",
                        frames.len(),
                        frames[0].frame
                    );
                }
                let mut inputs = Vec::with_capacity(frames.len() * J2);
                let mut poses_mm = Vec::with_capacity(frames.len() * J3);
                for r in frames.iter() {
                    normalize_screen_f32(&r.input_px, intrinsics.width_px, intrinsics.height_px, &mut inputs);
                    poses_mm.extend_from_slice(&r.pose);
                }
                let mut action_changes = Vec::new();
                for (f, pair) in frames.windows(2).enumerate() {
                    if pair[1].action != pair[0].action {
                        action_changes.push((f + 1, pair[1].action.clone()));
                    }
                }
                videos.push(Video {
                    dataset: dataset.clone(),
                    subject: subject.clone(),
                    action: frames[0].action.clone(),
                    action_changes,
                    sequence: sequence.clone(),
                    camera: camera.clone(),
                    first_frame: frames[0].frame,
                    intrinsics,
                    inputs,
                    poses_mm,
                    valid: frames.iter().map(|r| r.valid).collect(),
                });
            }
        }
        Ok(VideoSet { videos, inputs: dirs.to_vec(), held: held.clone() })
    }

    /// "demo-source: train S1, S2; test S9. demo-target: test T1": what the
    /// shards hold, to put beside a filter that matched nothing.
    pub fn describe_held(&self) -> String {
        let mut by_dataset: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for (d, split, subject) in &self.held {
            by_dataset.entry(d).or_default().entry(split).or_default().push(subject);
        }
        let datasets: Vec<String> = by_dataset
            .into_iter()
            .map(|(d, splits)| {
                let splits: Vec<String> =
                    splits.into_iter().map(|(s, subjects)| format!("{s} {}", subjects.join(", "))).collect();
                format!("{d}: {}", splits.join("; "))
            })
            .collect();
        if datasets.is_empty() {
            "no frames".into()
        } else {
            datasets.join(". ")
        }
    }

    pub fn frames(&self) -> usize {
        self.videos.iter().map(Video::len).sum()
    }

    /// `(video, frame, prediction, ground truth)` for every valid frame,
    /// in order, both root-relative in mm; `predictions` hold F × 51 values
    /// per video.
    pub fn valid_pose_pairs<'a>(
        &'a self,
        predictions: &'a [Vec<f32>],
    ) -> impl Iterator<Item = (usize, usize, dak_core::Pose3, dak_core::Pose3)> + 'a {
        use dak_core::skeleton::{pose_from_flat, root_relative};
        self.videos.iter().zip(predictions).enumerate().flat_map(|(v, (video, p))| {
            (0..video.len()).filter(|&f| video.valid[f]).map(move |f| {
                let gt = root_relative(&pose_from_flat(&video.poses_mm[f * J3..(f + 1) * J3]));
                (v, f, pose_from_flat(&p[f * J3..(f + 1) * J3]), gt)
            })
        })
    }

    /// How many windows [`Self::windows`] makes, without making them.
    pub fn window_count(&self, stride: usize) -> usize {
        self.videos.iter().map(|v| v.len().div_ceil(stride.max(1))).sum()
    }

    /// Windows tiling every video with stride `stride` (the last may run
    /// past the end and is padded).
    pub fn windows(&self, stride: usize) -> Vec<Window> {
        let mut out = Vec::new();
        for (v, video) in self.videos.iter().enumerate() {
            let mut start = 0;
            while start < video.len() {
                out.push(Window { video: v, start: start as i64 });
                start += stride.max(1);
            }
        }
        out
    }

    /// Stack windows into a batch.
    pub fn batch(&self, windows: &[Window], frames: usize, device: Device) -> Batch {
        self.host_batch(windows, frames).to_device(device)
    }

    /// Stack windows into a batch in host memory (what the training loop's
    /// background loader does while the device runs the previous step).
    pub fn host_batch(&self, windows: &[Window], frames: usize) -> HostBatch {
        let n = windows.len();
        let mut b = HostBatch {
            x: Vec::with_capacity(n * frames * J2),
            pose: Vec::with_capacity(n * frames * J3),
            valid: Vec::with_capacity(n * frames),
            cams: Vec::with_capacity(n * 9),
            screens: Vec::with_capacity(n * 2),
            clips: n,
            frames,
        };
        for w in windows {
            let video = &self.videos[w.video];
            for t in 0..frames as i64 {
                let f = (w.start + t).clamp(0, video.len() as i64 - 1) as usize;
                b.x.extend_from_slice(&video.inputs[f * J2..(f + 1) * J2]);
                b.pose.extend_from_slice(&video.poses_mm[f * J3..(f + 1) * J3]);
                // Padding frames repeat an edge: they carry no loss or metric.
                let inside = (0..video.len() as i64).contains(&(w.start + t));
                b.valid.push(if video.valid[f] && inside { 1.0f32 } else { 0.0 });
            }
            b.cams.extend(intrinsics_row(&video.intrinsics));
            b.screens.extend([f64::from(video.intrinsics.width_px), f64::from(video.intrinsics.height_px)]);
        }
        b
    }
}

/// A batch in host memory; [`HostBatch::to_device`] makes it a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    x: Vec<f32>,
    pose: Vec<f32>,
    valid: Vec<f32>,
    cams: Vec<f64>,
    screens: Vec<f64>,
    clips: usize,
    frames: usize,
}

impl HostBatch {
    pub fn len(&self) -> usize {
        self.clips
    }

    pub fn is_empty(&self) -> bool {
        self.clips == 0
    }

    /// The batch as host tensors: 2D `(B, T, 17, 2)`, poses in mm
    /// `(B, T, 17, 3)`, validity `(B, T)`, intrinsics rows `(B, 9)` and
    /// image sizes `(B, 2)` (the last two f64).
    fn tensors(&self) -> [Tensor; 5] {
        let (n, t, j) = (self.clips as i64, self.frames as i64, NUM_JOINTS as i64);
        [
            self.x_tensor(),
            Tensor::from_slice(&self.pose).view([n, t, j, 3]),
            Tensor::from_slice(&self.valid).view([n, t]),
            Tensor::from_slice(&self.cams).view([n, 9]),
            Tensor::from_slice(&self.screens).view([n, 2]),
        ]
    }

    /// The step's real clips made ready on the host, where the work
    /// overlaps the device's previous step instead of adding a dozen small
    /// kernels to this one: inputs and root-relative targets mirrored
    /// where `flips` says, the frame weights normalised, and with `factors`
    /// `(B, 17)` the structure-augmented twins (each projected with its
    /// clip's camera) mirrored alike.
    pub fn prepare(&self, flips: &[bool], factors: Option<&Tensor>) -> RealInputs {
        assert_eq!(flips.len(), self.clips, "one flip per clip");
        let [x, pose, valid, cams, screens] = self.tensors();
        let mask = Tensor::from_slice(flips);
        let twin = factors.map(|factors| {
            let pose_sa = dak_nn::geometry::structure_augment(&pose.to_kind(Kind::Double), factors);
            let px = dak_nn::geometry::project(&pose_sa, &cams);
            let target = root_relative_m(&pose_sa).to_kind(Kind::Float);
            (flip_where(&normalize_px_tensor(&px, &screens), &mask), flip_where(&target, &mask))
        });
        // A clip with a padded or invalid frame is real for the pose loss
        // but not for the critics: its frozen tail would tell them "real".
        // Where no clip is whole (every video shorter than T), the critics
        // would see no real clip at all: then each counts by its valid share.
        let mut whole = valid.amin([1i64].as_slice(), false);
        if f64::try_from(whole.sum(Kind::Float)).unwrap_or(0.0) == 0.0 {
            whole = valid.mean_dim([1i64].as_slice(), false, Kind::Float);
        }
        RealInputs {
            x: flip_where(&x, &mask),
            target: flip_where(&root_relative_m(&pose), &mask),
            weight: &valid / (valid.sum(Kind::Float) * NUM_JOINTS as f64).clamp_min(1.0),
            critic_weight: &whole / whole.sum(Kind::Float).clamp_min(1.0),
            twin,
        }
    }

    /// The network inputs `(B, T, 17, 2)` alone on `device` (what
    /// prediction needs of a batch).
    pub fn inputs_on(&self, device: Device) -> Tensor {
        upload(&self.x_tensor(), device)
    }

    fn x_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.x).view([self.clips as i64, self.frames as i64, NUM_JOINTS as i64, 2])
    }

    pub fn to_device(&self, device: Device) -> Batch {
        let [x, pose_mm, valid, intrinsics, screen] = self.tensors().map(|t| upload(&t, device));
        Batch { x, pose_mm, valid, intrinsics, screen }
    }
}

/// A step's real clips on the host ([`HostBatch::prepare`]), all f32.
#[derive(Debug)]
pub struct RealInputs {
    /// Normalised 2D `(B, T, 17, 2)`.
    pub x: Tensor,
    /// Root-relative metres `(B, T, 17, 3)`.
    pub target: Tensor,
    /// Per-frame weights `(B, T)`: validity over 17 × the valid frames, so
    /// that Σ weight · joint error is the mean over valid frames.
    pub weight: Tensor,
    /// Per-clip weights `(B,)` of the real side of the adversarial losses:
    /// 1 / (clips with every frame valid) for those, 0 for the others.
    pub critic_weight: Tensor,
    /// The structure-augmented twins' (2D, target).
    pub twin: Option<(Tensor, Tensor)>,
}

/// Host tensors that go to the device as one block, with one copy instead
/// of one each, and come back as views of it. Each starts at a multiple of
/// 64 values (256 bytes), so that vectorised kernels read it as they would
/// a tensor of its own.
#[derive(Debug, Default)]
pub struct Upload {
    parts: Vec<Tensor>,
}

impl Upload {
    const ALIGN: i64 = 64;

    /// Adds `t` (host, converted to f32); its index in [`Upload::send`]'s
    /// output.
    pub fn push(&mut self, t: Tensor) -> usize {
        self.parts.push(t);
        self.parts.len() - 1
    }

    /// Everything pushed, on `device`, in push order and shapes.
    pub fn send(self, device: Device) -> Vec<Tensor> {
        if self.parts.is_empty() {
            return Vec::new();
        }
        let mut flat = Vec::with_capacity(2 * self.parts.len());
        let mut offsets = Vec::with_capacity(self.parts.len());
        let mut end = 0;
        for t in &self.parts {
            let n = t.numel() as i64;
            offsets.push(end);
            flat.push(t.to_kind(Kind::Float).reshape([-1]));
            let pad = (Self::ALIGN - n % Self::ALIGN) % Self::ALIGN;
            if pad > 0 {
                flat.push(Tensor::zeros([pad], (Kind::Float, Device::Cpu)));
            }
            end += n + pad;
        }
        let block = upload(&Tensor::cat(&flat, 0), device);
        self.parts
            .iter()
            .zip(offsets)
            .map(|(t, at)| block.narrow(0, at, t.numel() as i64).view(t.size().as_slice()))
            .collect()
    }
}

/// `t` (in host memory) on `device` without waiting for the device: from
/// pageable memory a copy waits until the device has finished everything
/// queued before it, so inputs made while a step runs would wait for its
/// end. Through pinned memory the copy joins the queue instead (the pinned
/// block stays reserved until the copy is done). Falls back to the plain
/// copy where memory cannot be pinned.
pub fn upload(t: &Tensor, device: Device) -> Tensor {
    if device == Device::Cpu {
        return t.shallow_clone();
    }
    // `_pin_memory`: tch passes a device to `pin_memory`, and for that
    // argument libtorch 2.11 prints a deprecation warning on every call.
    match t.f_internal_pin_memory(device) {
        Ok(pinned) => pinned.to_device_(device, pinned.kind(), true, false),
        Err(_) => t.to(device),
    }
}

/// A batch on the training device.
#[derive(Debug)]
pub struct Batch {
    /// Normalised 2D `(B, T, 17, 2)`.
    pub x: Tensor,
    /// Camera coordinates in mm `(B, T, 17, 3)`, f32.
    pub pose_mm: Tensor,
    /// 1 where a frame counts in losses and metrics `(B, T)`.
    pub valid: Tensor,
    /// Intrinsics rows `(B, 9)`, f64 (for projection of augmented poses).
    pub intrinsics: Tensor,
    /// Image width and height `(B, 2)`, f64.
    pub screen: Tensor,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.x.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Root-relative targets in metres.
    pub fn target(&self) -> Tensor {
        root_relative_m(&self.pose_mm)
    }
}

/// `(…, 17, 3)` mm → root-relative metres.
pub fn root_relative_m(pose_mm: &Tensor) -> Tensor {
    (pose_mm - pose_mm.narrow(-2, 0, 1)) / 1000.0
}

/// Pixels `(B, T, 17, 2)` to screen coordinates ([`dak_core::camera::normalize_screen`]) with
/// per-sample `(B, 2)` sizes.
pub fn normalize_px_tensor(px: &Tensor, screen: &Tensor) -> Tensor {
    let w = screen.select(1, 0).view([-1, 1, 1, 1]);
    let h = screen.select(1, 1).view([-1, 1, 1, 1]);
    let offset = Tensor::cat(&[Tensor::ones_like(&h), &h / &w], -1);
    (px / &w * 2.0 - offset).to_kind(Kind::Float)
}

/// Synthetic clips (`dak-augment` output) of one mode, all in memory.
#[derive(Debug)]
pub struct SyntheticSet {
    pub mode: String,
    /// `(N, T, 17, 2)` normalised 2D.
    pub x: Tensor,
    /// `(N, T, 17, 3)` root-relative metres.
    pub target: Tensor,
    pub dirs: Vec<PathBuf>,
}

impl SyntheticSet {
    /// Read every clip of `dirs`; clips must be `frames` long.
    pub fn load(dirs: &[PathBuf], frames: usize) -> Result<Self> {
        let (mut x, mut pose, mut modes) = (Vec::new(), Vec::new(), std::collections::BTreeSet::new());
        for dir in dirs {
            let set = ShardSet::open(dir, Verify::Checksums)?;
            if set.table() != Some(Table::SyntheticClips) {
                return Err(Error::Data {
                    path: dir.clone(),
                    reason: format!("holds `{}` shards, not synthetic clips", set.manifest().schema),
                });
            }
            for batch in set.synthetic_clips() {
                let b = batch?;
                for i in 0..b.len() {
                    let t = b.num_frames.value(i) as usize;
                    if t != frames {
                        return Err(Error::Data {
                            path: dir.clone(),
                            reason: format!("clip {} has {t} frames; the model takes T = {frames}", b.clip_id.value(i)),
                        });
                    }
                    let k = b.intrinsics(i);
                    normalize_screen_f32(b.joints_2d_px(i), k.width_px, k.height_px, &mut x);
                    pose.extend_from_slice(b.joints_3d_camera_mm(i));
                    modes.insert(b.mode.value(i).to_string());
                }
            }
        }
        let n = (pose.len() / (frames * J3)) as i64;
        if n == 0 {
            return Err(Error::Data {
                path: dirs.first().cloned().unwrap_or_default(),
                reason: "no synthetic clips".into(),
            });
        }
        let (t, j) = (frames as i64, NUM_JOINTS as i64);
        let pose = Tensor::from_slice(&pose).view([n, t, j, 3]);
        Ok(SyntheticSet {
            mode: modes.into_iter().collect::<Vec<_>>().join("+"),
            x: Tensor::from_slice(&x).view([n, t, j, 2]),
            target: root_relative_m(&pose),
            dirs: dirs.to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        self.x.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Clips `indices` in host memory: (x, target).
    pub fn clips(&self, indices: &[i64]) -> (Tensor, Tensor) {
        let idx = Tensor::from_slice(indices).to(self.x.device());
        let host = |t: &Tensor| t.index_select(0, &idx).to(Device::Cpu);
        (host(&self.x), host(&self.target))
    }
}

/// Left/right joint swap of the Human3.6M-17 skeleton.
pub const FLIP_PERMUTATION: [i64; NUM_JOINTS] = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13];

/// Mirror `(…, 17, D)` poses or keypoints about the camera's vertical axis:
/// negate x and swap left and right joints (VideoPose3D's flip augmentation).
/// Built from views of `x` and concatenations, not from an index or sign
/// tensor: on a device those would be host→device copies, each a wait for
/// the device (evaluation flips on the device).
pub fn flip(x: &Tensor) -> Tensor {
    let d = *x.size().last().expect("non-scalar");
    let mirrored = Tensor::cat(&[x.narrow(-1, 0, 1).neg(), x.narrow(-1, 1, d - 1)], -1);
    gather_joints(&mirrored, &FLIP_PERMUTATION)
}

/// Flip the samples where `mask` `(B,)` is true.
pub fn flip_where(x: &Tensor, mask: &Tensor) -> Tensor {
    let shape: Vec<i64> = std::iter::once(-1).chain(std::iter::repeat_n(1, x.dim() - 1)).collect();
    flip(x).where_self(&mask.view(shape.as_slice()), x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenPose's undetected joints (0, 0, confidence 0) are interpolated
    /// over the video, held at its ends, and left alone where no frame found them.
    #[test]
    fn undetected_joints_are_filled_over_time() {
        let row = |f: u32, x: f32, missing: &[usize]| FrameRow {
            frame: f,
            action: "a".into(),
            input_px: (0..NUM_JOINTS).flat_map(|j| [x + j as f32, 2.0 * x]).collect(),
            undetected: Some(std::array::from_fn(|j| missing.contains(&j))),
            pose: [0.0; J3],
            valid: true,
        };
        let mut frames = vec![row(0, 10.0, &[3, 5]), row(1, 0.0, &[5]), row(2, 30.0, &[3, 5]), row(3, 0.0, &[3, 5])];
        frames[1].input_px[6..8].copy_from_slice(&[20.0, 40.0]);
        let before = frames[0].input_px.clone();
        assert_eq!(fill_undetected(&mut frames), 1, "joint 5 is never found");
        let at = |f: usize, j: usize| [frames[f].input_px[2 * j], frames[f].input_px[2 * j + 1]];
        assert_eq!((at(0, 3), at(2, 3), at(3, 3)), ([20.0, 40.0], [20.0, 40.0], [20.0, 40.0]));
        assert_eq!(at(0, 5), [before[10], before[11]], "never found: as it was");
        let mut gap = vec![row(0, 10.0, &[]), row(1, 0.0, &[4]), row(2, 0.0, &[4]), row(3, 40.0, &[])];
        assert_eq!(fill_undetected(&mut gap), 0);
        assert_eq!([gap[1].input_px[8], gap[2].input_px[8]], [24.0, 34.0]);
        assert_eq!(gap[1].input_px[0], 0.0, "found joints are not touched");
    }

    /// Frames 0–2 and 5–6 of one sequence are two videos: no window and no
    /// velocity pair may join frame 2 to frame 5.
    #[test]
    fn a_gap_in_frame_numbers_starts_another_video() {
        let row = |f: u32| FrameRow {
            frame: f,
            action: if f < 6 { "walk".into() } else { "sit".into() },
            input_px: vec![500.0; 2 * NUM_JOINTS],
            undetected: None,
            pose: [f as f32; J3],
            valid: true,
        };
        let key = ("d".to_string(), "S1".to_string(), "seq".to_string(), "0".to_string());
        let rows = BTreeMap::from([(key, [6, 1, 0, 5, 2].map(row).to_vec())]);
        let cameras = BTreeMap::from([(
            ("d".to_string(), "S1".to_string(), "0".to_string()),
            Intrinsics::pinhole(1000.0, 1000, 1000),
        )]);
        let set = VideoSet::assemble(&[PathBuf::from("shards")], rows, &cameras, &Default::default()).unwrap();
        let spans: Vec<(u32, usize)> = set.videos.iter().map(|v| (v.first_frame, v.len())).collect();
        assert_eq!(spans, [(0, 3), (5, 2)]);
        assert_eq!(set.videos[1].poses_mm[0], 5.0);
        assert_eq!((set.videos[1].action.as_str(), set.videos[1].action_at(1)), ("walk", "sit"));
        assert_eq!(set.frames(), 5);
    }

    #[test]
    fn flip_is_an_involution_that_swaps_sides() {
        let x = Tensor::randn([2, 3, 17, 3], (Kind::Float, Device::Cpu));
        let y = flip(&x);
        assert_eq!(f64::try_from((flip(&y) - &x).abs().max()).unwrap(), 0.0);
        // The same as gathering with the permutation and negating x, in 3D and 2D.
        for v in [x.shallow_clone(), x.narrow(-1, 0, 2)] {
            let gathered = v.index_select(-2, &Tensor::from_slice(&FLIP_PERMUTATION));
            let sign = Tensor::from_slice(&[-1.0f32, 1.0, 1.0]).narrow(0, 0, v.size()[3]);
            assert!(flip(&v).equal(&(gathered * sign)));
        }
        // Left hip (4) of the flip is the right hip (1) mirrored.
        let a = Vec::<f32>::try_from(y.get(0).get(0).get(4)).unwrap();
        let b = Vec::<f32>::try_from(x.get(0).get(0).get(1)).unwrap();
        assert_eq!(a, vec![-b[0], b[1], b[2]]);
        let mask = Tensor::from_slice(&[true, false]);
        let z = flip_where(&x, &mask);
        assert_eq!(f64::try_from((z.get(1) - x.get(1)).abs().max()).unwrap(), 0.0);
        assert_eq!(f64::try_from((z.get(0) - y.get(0)).abs().max()).unwrap(), 0.0);
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max()).unwrap()
    }

    /// Three clips of 4 frames with random 2D, poses ~4.5 m in front of a
    /// pinhole camera, and the last clip's two last frames invalid.
    fn host_batch() -> HostBatch {
        let (n, t) = (3, 4);
        let pose = Tensor::randn([n, t, 17, 3], (Kind::Float, Device::Cpu)) * 200.0
            + Tensor::from_slice(&[0.0f32, 0.0, 4500.0]);
        let x = Tensor::rand([n, t, 17, 2], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let k = Intrinsics::pinhole(1145.0, 1000, 1002);
        let mut valid = vec![1.0f32; (n * t) as usize];
        valid[10] = 0.0;
        valid[11] = 0.0;
        HostBatch {
            x: Vec::try_from(x.flatten(0, -1)).unwrap(),
            pose: Vec::try_from(pose.flatten(0, -1)).unwrap(),
            valid,
            cams: (0..n).flat_map(|_| intrinsics_row(&k)).collect(),
            screens: (0..n).flat_map(|_| [1000.0, 1002.0]).collect(),
            clips: n as usize,
            frames: t as usize,
        }
    }

    /// A mirrored clip is mirrored in its input, its target and both of
    /// its twin's; the others are left as they are.
    #[test]
    fn prepared_clips_mirror_inputs_targets_and_twins_together() {
        let batch = host_batch();
        let factors = Tensor::rand([3, 17], (Kind::Double, Device::Cpu)) * 0.4 + 0.8;
        let plain = batch.prepare(&[false; 3], Some(&factors));
        let flips = [true, false, true];
        let mirrored = batch.prepare(&flips, Some(&factors));
        let (pt, mt) = (plain.twin.unwrap(), mirrored.twin.unwrap());
        for (i, &flipped) in flips.iter().enumerate() {
            let i = i as i64;
            let expect = |t: &Tensor| if flipped { flip(&t.get(i)) } else { t.get(i) };
            assert_eq!(max_diff(&mirrored.x.get(i), &expect(&plain.x)), 0.0, "x of clip {i}");
            assert_eq!(max_diff(&mirrored.target.get(i), &expect(&plain.target)), 0.0, "target of clip {i}");
            assert_eq!(max_diff(&mt.0.get(i), &expect(&pt.0)), 0.0, "twin x of clip {i}");
            assert_eq!(max_diff(&mt.1.get(i), &expect(&pt.1)), 0.0, "twin target of clip {i}");
        }
        assert!(max_diff(&plain.x, &mirrored.x) > 0.1, "some clip mirrored");
        // Unit factors: the twin is the clip itself, seen by its camera.
        let same = batch.prepare(&flips, Some(&Tensor::ones([3, 17], (Kind::Double, Device::Cpu))));
        let (x_sa, target_sa) = same.twin.unwrap();
        assert!(max_diff(&target_sa, &same.target) < 1e-6);
        let [_, pose, _, cams, screens] = batch.tensors();
        let seen = normalize_px_tensor(&dak_nn::geometry::project(&pose.to_kind(Kind::Double), &cams), &screens);
        assert!(max_diff(&x_sa, &flip_where(&seen, &Tensor::from_slice(&flips))) < 1e-6);
        // Targets are root-relative metres.
        assert_eq!(max_diff(&plain.target.narrow(-2, 0, 1), &Tensor::zeros([1], (Kind::Float, Device::Cpu))), 0.0);
        assert!(max_diff(&plain.target, &((&pose - pose.narrow(-2, 0, 1)) / 1000.0)) < 1e-6);
    }

    /// Σ weight · error is the mean error over valid frames.
    #[test]
    fn prepared_weights_average_over_valid_frames() {
        let real = host_batch().prepare(&[false; 3], None);
        assert!(real.twin.is_none());
        let w = Vec::<f32>::try_from(real.weight.flatten(0, -1)).unwrap();
        assert_eq!(w.len(), 12);
        assert_eq!((w[10], w[11]), (0.0, 0.0));
        assert!(w[..10].iter().all(|&v| (v - 1.0 / (10.0 * 17.0)).abs() < 1e-9), "{w:?}");
        let error = Tensor::rand([3, 4, 17], (Kind::Float, Device::Cpu));
        let weighted = f64::try_from((&error * real.weight.unsqueeze(-1)).sum(Kind::Float)).unwrap();
        let mean = f64::try_from(error.flatten(0, 1).narrow(0, 0, 10).mean(Kind::Float)).unwrap();
        assert!((weighted - mean).abs() < 1e-6, "{weighted} vs {mean}");
        // The critics see only the two clips whose frames are all valid.
        assert_eq!(Vec::<f32>::try_from(&real.critic_weight).unwrap(), [0.5, 0.5, 0.0]);
        // With no clip whole, each counts by its share of valid frames.
        let mut short = host_batch();
        short.valid = vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let w = Vec::<f32>::try_from(&short.prepare(&[false; 3], None).critic_weight).unwrap();
        assert!(w.iter().zip([0.5, 1.0 / 6.0, 1.0 / 3.0]).all(|(a, b)| (a - b).abs() < 1e-6), "{w:?}");
        // No valid frame: weights 0, not a division by zero.
        let mut none = host_batch();
        none.valid.fill(0.0);
        let none = none.prepare(&[false; 3], None);
        assert_eq!(f64::try_from(none.weight.abs().sum(Kind::Float)).unwrap(), 0.0);
        assert_eq!(f64::try_from(none.critic_weight.abs().sum(Kind::Float)).unwrap(), 0.0);
    }

    /// One block goes up; each part comes back whole, in its shape, at an
    /// offset of a multiple of 64 values.
    #[test]
    fn an_upload_returns_each_part_as_a_view_of_one_block() {
        let parts = [
            Tensor::rand([2, 3, 17, 2], (Kind::Float, Device::Cpu)),
            Tensor::rand([5], (Kind::Double, Device::Cpu)),
            Tensor::rand([2, 3], (Kind::Float, Device::Cpu)).transpose(0, 1),
        ];
        let mut block = Upload::default();
        let slots: Vec<usize> = parts.iter().map(|p| block.push(p.shallow_clone())).collect();
        let back = block.send(Device::Cpu);
        assert_eq!(back.len(), 3);
        for (part, &i) in parts.iter().zip(&slots) {
            assert_eq!(back[i].size(), part.size());
            assert_eq!(back[i].kind(), Kind::Float);
            assert!(max_diff(&back[i], part) < 1e-7);
        }
        let address = |t: &Tensor| t.data_ptr() as usize;
        assert_eq!(address(&back[1]) - address(&back[0]), 4 * 256, "204 values padded to 256");
        assert_eq!(address(&back[2]) - address(&back[1]), 4 * 64);
        assert!(Upload::default().send(Device::Cpu).is_empty());
    }

    /// One read for several filters gives what a read per filter gives,
    /// frames kept by both filters included.
    #[test]
    fn one_read_for_several_filters_equals_a_read_each() {
        use dak_datasets::synth::{self, SynthConfig};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let config = SynthConfig { frames: 12, ..SynthConfig::default() };
        synth::generate(&config, &out, false, vec![], Default::default(), &dak_io::Silent).unwrap();
        let dirs = vec![out];
        let train = SourceFilter { splits: vec!["train".into()], ..SourceFilter::default() };
        let test = SourceFilter { splits: vec!["test".into()], ..SourceFilter::default() };
        let everything = SourceFilter::default();
        let sets = VideoSet::load_each(&dirs, &[&train, &test, &everything], Input2d::Detected).unwrap();
        for (set, filter) in sets.iter().zip([&train, &test, &everything]) {
            let alone = VideoSet::load(&dirs, filter, Input2d::Detected).unwrap();
            assert!(!alone.videos.is_empty(), "{filter:?}");
            assert_eq!(format!("{:?}", set.videos), format!("{:?}", alone.videos), "{filter:?}");
        }
        assert_eq!(sets[0].frames() + sets[1].frames(), sets[2].frames());
    }

    /// The same frames from two directories (one conversion copied) are
    /// refused, not interleaved into videos twice as long.
    #[test]
    fn overlapping_shard_directories_are_refused() {
        use dak_datasets::synth::{self, SynthConfig};
        fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
            std::fs::create_dir_all(to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                let target = to.join(entry.file_name());
                if entry.file_type().unwrap().is_dir() {
                    copy_dir(&entry.path(), &target);
                } else {
                    std::fs::copy(entry.path(), target).unwrap();
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let config = SynthConfig { frames: 12, ..SynthConfig::default() };
        synth::generate(&config, &a, false, vec![], Default::default(), &dak_io::Silent).unwrap();
        copy_dir(&a, &b);
        let one = VideoSet::load(std::slice::from_ref(&a), &SourceFilter::default(), Input2d::Gt).unwrap();
        assert!(one.frames() > 0);
        let err = VideoSet::load(&[a, b], &SourceFilter::default(), Input2d::Gt).unwrap_err().to_string();
        assert!(err.contains("appears twice") && err.contains("overlap"), "{err}");
    }

    /// A video whose frames change action (3DHP's test sequences) keeps
    /// where each action starts, in frame order whatever the row order.
    #[test]
    fn a_video_keeps_where_its_action_changes() {
        let row = |frame: u32, action: &str| FrameRow {
            frame,
            action: action.into(),
            input_px: vec![500.0; J2],
            undetected: None,
            pose: [1.0; J3],
            valid: true,
        };
        let key = ("3dhp".to_string(), "TS1".to_string(), "TS1".to_string(), "TS1".to_string());
        let frames = vec![row(3, "Sit"), row(0, "Walk"), row(4, "Walk"), row(1, "Walk"), row(2, "Sit")];
        let cameras = BTreeMap::from([(
            ("3dhp".to_string(), "TS1".to_string(), "TS1".to_string()),
            Intrinsics::pinhole(1000.0, 1000, 1000),
        )]);
        let set = VideoSet::assemble(&[], BTreeMap::from([(key, frames)]), &cameras, &Default::default()).unwrap();
        let video = &set.videos[0];
        assert_eq!(video.action, "Walk");
        assert_eq!(video.action_changes, [(2, "Sit".to_string()), (4, "Walk".to_string())]);
        let actions: Vec<&str> = (0..5).map(|f| video.action_at(f)).collect();
        assert_eq!(actions, ["Walk", "Walk", "Sit", "Sit", "Walk"]);
    }

    #[test]
    fn pixel_normalisation_matches_videopose3d() {
        let px = [0.0f32, 0.0, 1000.0, 1002.0, 500.0, 501.0, 123.25, 987.5];
        let mut want = Vec::new();
        normalize_screen_f32(&px, 1000, 1002, &mut want);
        assert_eq!(want[..2], [-1.0, -1.002]);
        let t = normalize_px_tensor(
            &Tensor::from_slice(&px).to_kind(Kind::Double).view([1, 1, 4, 2]),
            &Tensor::from_slice(&[1000.0f64, 1002.0]).view([1, 2]),
        );
        let got = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }
}
