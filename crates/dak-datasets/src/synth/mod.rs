//! The embedded demo dataset: procedural people, actions and cameras, so
//! every command runs with no licensed data.
//!
//! Two domains make the cross-dataset gap measurable:
//! - `demo-source`, lab-like: Human3.6M's calibrated camera rig and subject
//!   names (S1, S5–S8 train; S9, S11 test), average proportions, moderate motion.
//! - `demo-target`, shifted: longer legs and arms, shorter torso, wider spread
//!   of sizes; cameras at other heights, distances and intrinsics (3DHP-like
//!   square sensors and 1080p); faster, larger, looser motion. Test split only.
//!
//! Everything is a pure function of the seed: each sequence draws from its own
//! RNG seeded by (seed, subject, action), so the thread count cannot change a byte.

pub mod body;
pub mod motion;

use std::path::Path;

use dak_core::camera::{Camera, Extrinsics, Intrinsics};
use dak_core::skeleton::{pose_to_flat, Pose3, NUM_JOINTS};
use dak_core::LimbGroup;
use dak_io::{
    write_camera_table, CameraRecord, Manifest, OutputDir, Prepared, RecordBatch, Reporter, SourceFrameBuilder,
    SourceFrameRow, Table, TwoDSource,
};
use nalgebra::{Matrix3, Vector2, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::convert::{GroupedJobs, Layout};
use crate::{h36m_cameras, Error, Result};
use body::Body;
use motion::{Action, Motion, MotionStyle};

pub const SOURCE_DATASET: &str = "demo-source";
pub const TARGET_DATASET: &str = "demo-target";
pub const DETECTOR_NAME: &str = "synthetic-noise";

/// What `dak-prep synth` generates. Defaults: a few minutes of training data
/// that still converts and trains in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SynthConfig {
    pub seed: u64,
    /// Frames per sequence (one sequence per subject and action).
    pub frames: usize,
    pub fps: f32,
    /// Standard deviation of the detector-like 2D noise (px); 0 writes no detections.
    pub detector_noise_px: f64,
    /// Fraction of detected joints that are gross outliers.
    pub detector_outlier_rate: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig { seed: 0, frames: 300, fps: 50.0, detector_noise_px: 3.0, detector_outlier_rate: 0.02 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Domain {
    Source,
    Target,
}

impl Domain {
    pub fn dataset(self) -> &'static str {
        match self {
            Domain::Source => SOURCE_DATASET,
            Domain::Target => TARGET_DATASET,
        }
    }

    fn style(self) -> MotionStyle {
        match self {
            Domain::Source => MotionStyle { tempo: 1.0, amplitude: 1.0, drift_deg: 3.0, arm_abduction_deg: 6.0 },
            Domain::Target => MotionStyle { tempo: 1.2, amplitude: 1.25, drift_deg: 6.0, arm_abduction_deg: 14.0 },
        }
    }

    /// Mean limb-group factor relative to Human3.6M proportions.
    fn group_mean(self, g: LimbGroup) -> f64 {
        match (self, g) {
            (Domain::Source, _) => 1.0,
            (Domain::Target, LimbGroup::Thighs | LimbGroup::Shanks) => 1.12,
            (Domain::Target, LimbGroup::Spine) => 0.88,
            (Domain::Target, LimbGroup::UpperArms | LimbGroup::Forearms) => 1.08,
            (Domain::Target, LimbGroup::PelvisHips) => 1.15,
            (Domain::Target, LimbGroup::Shoulders) => 0.92,
            (Domain::Target, _) => 1.0,
        }
    }

    /// (global mean, global std, per-group std)
    fn size_spread(self) -> (f64, f64, f64) {
        match self {
            Domain::Source => (1.0, 0.04, 0.03),
            Domain::Target => (0.97, 0.08, 0.06),
        }
    }
}

/// One generated subject.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectInfo {
    pub dataset: &'static str,
    pub subject: String,
    pub split: &'static str,
    pub bone_mm: Vec<f64>,
    #[serde(skip)]
    body: Body,
    #[serde(skip)]
    cameras: Vec<Camera>,
}

/// Subjects of both domains with their bodies and cameras.
pub fn subjects(config: &SynthConfig) -> Vec<SubjectInfo> {
    let plan: [(Domain, &str, &str); 10] = [
        (Domain::Source, "S1", "train"),
        (Domain::Source, "S5", "train"),
        (Domain::Source, "S6", "train"),
        (Domain::Source, "S7", "train"),
        (Domain::Source, "S8", "train"),
        (Domain::Source, "S9", "test"),
        (Domain::Source, "S11", "test"),
        (Domain::Target, "T1", "test"),
        (Domain::Target, "T2", "test"),
        (Domain::Target, "T3", "test"),
    ];
    plan.iter()
        .enumerate()
        .map(|(i, &(domain, name, split))| {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed, i as u64, u64::MAX));
            let body = sample_body(domain, &mut rng);
            let cameras = match domain {
                Domain::Source => h36m_cameras::cameras_of(name).expect("source subjects are H36M subjects"),
                Domain::Target => shifted_rig(&mut rng),
            };
            SubjectInfo {
                dataset: domain.dataset(),
                subject: name.to_string(),
                split,
                bone_mm: body.bone_mm.to_vec(),
                body,
                cameras,
            }
        })
        .collect()
}

fn domain_of(subject: &SubjectInfo) -> Domain {
    if subject.dataset == SOURCE_DATASET {
        Domain::Source
    } else {
        Domain::Target
    }
}

fn truncated_normal(rng: &mut impl Rng, mean: f64, std: f64) -> f64 {
    let n = Normal::new(mean, std).expect("finite std");
    loop {
        let v = n.sample(rng);
        if (v - mean).abs() <= 2.0 * std {
            return v;
        }
    }
}

fn sample_body(domain: Domain, rng: &mut impl Rng) -> Body {
    let (global_mean, global_std, group_std) = domain.size_spread();
    let global = truncated_normal(rng, global_mean, global_std);
    let factors: Vec<(LimbGroup, f64)> =
        LimbGroup::ALL.iter().map(|&g| (g, truncated_normal(rng, domain.group_mean(g), group_std))).collect();
    Body::scaled(global, |g| factors.iter().find(|(h, _)| *h == g).map_or(1.0, |(_, f)| *f))
}

/// Four cameras around the capture centre at heights, distances and intrinsics
/// unlike the Human3.6M rig.
fn shifted_rig(rng: &mut impl Rng) -> Vec<Camera> {
    let base = rng.random_range(0.0..std::f64::consts::TAU);
    (0..4)
        .map(|k| {
            let square = k % 2 == 0;
            let (intrinsics, distance) = if square {
                let mut i = Intrinsics::pinhole(1500.0, 2048, 2048);
                i.center_px = [1017.4, 1043.0];
                i.radial = [-0.05, 0.02, 0.0];
                (i, rng.random_range(4800.0..6200.0))
            } else {
                let mut i = Intrinsics::pinhole(1680.0, 1920, 1080);
                i.center_px = [939.9, 560.1];
                (i, rng.random_range(6800.0..8000.0))
            };
            let azimuth = base + f64::from(k) * std::f64::consts::FRAC_PI_2 + rng.random_range(-0.3..0.3);
            let height = rng.random_range(800.0..2600.0);
            let center = Vector3::new(distance * azimuth.cos(), distance * azimuth.sin(), height);
            let target = Vector3::new(0.0, 0.0, rng.random_range(800.0..1100.0));
            Camera { id: format!("cam{k}"), intrinsics, extrinsics: look_at(&center, &target) }
        })
        .collect()
}

/// A camera at `center` looking at `target`, image y pointing down (world z up).
pub fn look_at(center: &Vector3<f64>, target: &Vector3<f64>) -> Extrinsics {
    let forward = (target - center).normalize();
    let right = forward.cross(&Vector3::z()).normalize();
    let down = forward.cross(&right);
    let camera_from_world = Matrix3::from_rows(&[right.transpose(), down.transpose(), forward.transpose()]);
    Extrinsics::from_camera_from_world(&camera_from_world, &(-(camera_from_world * center)))
        .expect("right, down, forward are orthonormal and right-handed")
}

/// splitmix64 over three words: independent, stable per-stream seeds.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// World joints of one sequence.
pub fn sequence_world(config: &SynthConfig, subject_index: usize, subject: &SubjectInfo, action: Action) -> Vec<Pose3> {
    let action_index = Action::ALL.iter().position(|a| *a == action).expect("known action") as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed, subject_index as u64, action_index));
    let motion = Motion::new(action, domain_of(subject).style(), &mut rng);
    (0..config.frames).map(|f| subject.body.pose(&motion.at(f as f64 / f64::from(config.fps)))).collect()
}

/// Demo motion of the first `subjects` subjects doing `actions`, seen by a
/// level camera 4.5 m in front (world z up → camera y down), in memory:
/// `("subject/action", camera-frame poses)`. For tests and benches that need
/// plausible motion without writing shards.
pub fn level_camera_sequences(config: &SynthConfig, subjects: usize, actions: &[Action]) -> Vec<(String, Vec<Pose3>)> {
    let mut sequences = Vec::new();
    for (i, s) in self::subjects(config).iter().enumerate().take(subjects) {
        for &action in actions {
            let poses = sequence_world(config, i, s, action)
                .iter()
                .map(|p| std::array::from_fn(|j| Vector3::new(p[j].x, -p[j].z + 900.0, p[j].y + 4500.0)))
                .collect();
            sequences.push((format!("{}/{action:?}", s.subject), poses));
        }
    }
    sequences
}

/// What a synth run did.
#[derive(Debug, Clone)]
pub struct SynthOutcome {
    pub manifest: Manifest,
    /// False when a finished run with the same configuration was already there.
    pub written: bool,
}

/// Generate the demo dataset into `out` (source frames + camera table + manifest).
pub fn generate(
    config: &SynthConfig,
    out: &Path,
    force: bool,
    command: Vec<String>,
    layout: Layout,
    reporter: &dyn Reporter,
) -> Result<SynthOutcome> {
    if config.frames == 0 {
        return Err(Error::Config { field: "frames", reason: "must be at least 1".into() });
    }
    if !config.fps.is_finite() || config.fps <= 0.0 {
        return Err(Error::Config { field: "fps", reason: "must be positive".into() });
    }
    if !config.detector_noise_px.is_finite() || config.detector_noise_px < 0.0 {
        return Err(Error::Config { field: "noise-px", reason: "must be a number ≥ 0 (pixels)".into() });
    }
    if !(0.0..=1.0).contains(&config.detector_outlier_rate) {
        return Err(Error::Config { field: "outlier-rate", reason: "must lie within [0, 1]".into() });
    }
    let mut config_json = serde_json::to_value(config).expect("config serialises");
    config_json["layout"] = layout.describe();
    let dir = match OutputDir::prepare_shard(out, layout.shard, Table::SourceFrames, force)? {
        Prepared::Existing(manifest) if manifest.extra.get("config") == Some(&config_json) => {
            return Ok(SynthOutcome { manifest, written: false });
        }
        Prepared::Existing(_) => return Err(Error::OutputConflict { dir: out.to_path_buf() }),
        Prepared::Fresh(dir) => dir,
    };

    let subjects = subjects(config);
    let jobs: Vec<(usize, Action)> =
        (0..subjects.len()).flat_map(|s| Action::ALL.into_iter().map(move |a| (s, a))).collect();
    let groups = GroupedJobs::new(&jobs, layout.sequences_per_file, layout.shard);
    reporter.start("synthesising sequences", groups.owned_jobs() as u64);
    let mut files = groups.write(&dir, reporter, |&(s, action)| sequence_batch(config, s, &subjects[s], action))?;
    reporter.finish();
    let cameras: Vec<CameraRecord> = subjects
        .iter()
        .flat_map(|s| {
            s.cameras.iter().map(|c| CameraRecord {
                dataset: s.dataset.to_string(),
                subject: s.subject.clone(),
                camera: c.id.clone(),
                intrinsics: c.intrinsics,
                extrinsics: Some(c.extrinsics),
            })
        })
        .collect();
    if layout.shard.writes_shared_files() {
        files.extend(write_camera_table(dir.path(), &cameras)?);
    }
    let mut manifest = Manifest::new(Table::SourceFrames, files, command, Some(config.seed));
    manifest.extra = serde_json::json!({
        "config": config_json,
        "datasets": [SOURCE_DATASET, TARGET_DATASET],
        "actions": Action::ALL.iter().map(|a| a.name()).collect::<Vec<_>>(),
        "subjects": subjects,
    });
    let manifest = dir.finish_groups(
        manifest,
        groups.count(),
        groups.owned.clone(),
        serde_json::Value::Null,
        &dak_io::sharding::no_partials,
    )?;
    Ok(SynthOutcome { manifest, written: true })
}

fn sequence_batch(
    config: &SynthConfig,
    subject_index: usize,
    subject: &SubjectInfo,
    action: Action,
) -> Result<RecordBatch> {
    let world = sequence_world(config, subject_index, subject, action);
    let mut rng = ChaCha8Rng::seed_from_u64(mix(config.seed ^ 0x00D5_7EC7, subject_index as u64, action as u64));
    let noise = Normal::new(0.0, config.detector_noise_px.max(1e-9)).expect("finite std");
    let sequence = format!("{}/{}", subject.subject, action.name());
    let mut builder = SourceFrameBuilder::with_capacity(world.len() * subject.cameras.len());
    let (mut w, mut c, mut p, mut d, mut conf) =
        (vec![0f32; 51], vec![0f32; 51], vec![0f32; 34], vec![0f32; 34], vec![0f32; NUM_JOINTS]);
    for camera in &subject.cameras {
        for (f, pose) in world.iter().enumerate() {
            let in_camera: Pose3 = pose.map(|x| camera.extrinsics.world_to_camera(&x));
            pose_to_flat(pose, &mut w);
            pose_to_flat(&in_camera, &mut c);
            let mut in_front = true;
            for (j, x) in in_camera.iter().enumerate() {
                in_front &= x.z > 100.0;
                let px = camera.intrinsics.project(x);
                p[2 * j] = px.x as f32;
                p[2 * j + 1] = px.y as f32;
                if config.detector_noise_px > 0.0 {
                    let scale = if rng.random_bool(config.detector_outlier_rate) { 8.0 } else { 1.0 };
                    let e = Vector2::new(noise.sample(&mut rng), noise.sample(&mut rng)) * scale;
                    d[2 * j] = (px.x + e.x) as f32;
                    d[2 * j + 1] = (px.y + e.y) as f32;
                    let z = e.norm() / (3.0 * config.detector_noise_px);
                    conf[j] = (-z * z).exp().max(0.05) as f32;
                }
            }
            let detected = config.detector_noise_px > 0.0;
            builder.push(&SourceFrameRow {
                dataset: subject.dataset,
                split: subject.split,
                subject: &subject.subject,
                action: action.name(),
                sequence: &sequence,
                camera: &camera.id,
                frame: f as u32,
                fps: config.fps,
                joints_3d_world_mm: Some(&w),
                joints_3d_camera_mm: &c,
                joints_2d_px: &p,
                joints_2d_source: TwoDSource::Projection,
                detected_2d_px: detected.then_some(&d[..]),
                detected_2d_confidence: detected.then_some(&conf[..]),
                detector: detected.then_some(DETECTOR_NAME),
                valid: in_front,
            })?;
        }
    }
    Ok(builder.finish())
}
