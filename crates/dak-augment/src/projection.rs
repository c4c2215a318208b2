//! Cameras for synthetic clips and the projection of clips to 2D.

use dak_core::{Intrinsics, Pose3, NUM_JOINTS};
use dak_io::CameraRecord;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Random changes to a drawn camera's intrinsics (both off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraJitter {
    /// Relative std of the focal length (fx and fy scaled by one factor).
    pub focal_rel_std: f64,
    /// Std of the principal point shift, px.
    pub center_std_px: f64,
}

/// A camera a synthetic clip is seen through.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewCamera {
    /// `dataset/subject/camera` of the source camera it came from.
    pub id: String,
    pub intrinsics: Intrinsics,
}

/// The cameras of the source shards, to draw synthetic views from.
#[derive(Debug, Clone)]
pub struct CameraPool {
    cameras: Vec<ViewCamera>,
}

impl CameraPool {
    pub fn from_records(records: &[CameraRecord]) -> Result<Self> {
        if records.is_empty() {
            return Err(Error::Config { field: "cameras", reason: "the source shards hold no cameras".into() });
        }
        let cameras = records
            .iter()
            .map(|r| ViewCamera { id: format!("{}/{}/{}", r.dataset, r.subject, r.camera), intrinsics: r.intrinsics })
            .collect();
        Ok(CameraPool { cameras })
    }

    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }

    pub fn cameras(&self) -> &[ViewCamera] {
        &self.cameras
    }

    /// A camera drawn uniformly, with jitter applied.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R, jitter: &CameraJitter) -> ViewCamera {
        let mut camera = self.cameras[rng.random_range(0..self.cameras.len())].clone();
        let k = &mut camera.intrinsics;
        if jitter.focal_rel_std > 0.0 {
            let s = Normal::new(1.0, jitter.focal_rel_std).expect("finite std").sample(rng).max(0.1);
            k.focal_length_px = k.focal_length_px.map(|f| f * s);
        }
        if jitter.center_std_px > 0.0 {
            let n = Normal::new(0.0, jitter.center_std_px).expect("finite std");
            k.center_px = [k.center_px[0] + n.sample(rng), k.center_px[1] + n.sample(rng)];
        }
        camera
    }
}

/// Project a clip (camera coordinates, mm) to pixels: T × 17 × 2 values.
pub fn project_clip(intrinsics: &Intrinsics, clip: &[Pose3]) -> Vec<f32> {
    let mut out = vec![0.0; clip.len() * NUM_JOINTS * 2];
    project_clip_into(intrinsics, clip, &mut out);
    out
}

pub fn project_clip_into(intrinsics: &Intrinsics, clip: &[Pose3], out: &mut [f32]) {
    assert_eq!(out.len(), clip.len() * NUM_JOINTS * 2, "output buffer size");
    for (pose, out) in clip.iter().zip(out.chunks_exact_mut(NUM_JOINTS * 2)) {
        for (joint, xy) in pose.iter().zip(out.chunks_exact_mut(2)) {
            let px = intrinsics.project(joint);
            xy[0] = px.x as f32;
            xy[1] = px.y as f32;
        }
    }
}

/// Project many clips in parallel, each with its own camera.
pub fn project_clips(clips: &[(&Intrinsics, &[Pose3])]) -> Vec<Vec<f32>> {
    clips.par_iter().map(|(k, c)| project_clip(k, c)).collect()
}

/// Flatten a clip to T × 17 × 3 f32 values (the shard layout).
pub fn flatten_clip(clip: &[Pose3]) -> Vec<f32> {
    let mut out = vec![0.0; clip.len() * NUM_JOINTS * 3];
    for (pose, out) in clip.iter().zip(out.chunks_exact_mut(NUM_JOINTS * 3)) {
        dak_core::skeleton::pose_to_flat(pose, out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;
    use rand::SeedableRng;

    fn intrinsics() -> Intrinsics {
        Intrinsics {
            focal_length_px: [1145.0, 1144.0],
            center_px: [512.5, 515.4],
            radial: [-0.207, 0.247, -0.003],
            tangential: [-0.0009, -0.0014],
            width_px: 1000,
            height_px: 1002,
        }
    }

    #[test]
    fn matches_the_geometry_core_joint_by_joint() {
        let k = intrinsics();
        let clip: Vec<Pose3> = (0..4)
            .map(|f| {
                std::array::from_fn(|j| {
                    Vector3::new(j as f64 * 30.0 - 250.0, f as f64 * 40.0 - 300.0, 4500.0 + j as f64)
                })
            })
            .collect();
        let px = project_clip(&k, &clip);
        for (f, pose) in clip.iter().enumerate() {
            for (j, p) in pose.iter().enumerate() {
                let want = k.project(p);
                let i = (f * NUM_JOINTS + j) * 2;
                assert!((f64::from(px[i]) - want.x).abs() < 1e-3 && (f64::from(px[i + 1]) - want.y).abs() < 1e-3);
            }
        }
        let par = project_clips(&[(&k, &clip[..]), (&k, &clip[1..])]);
        assert_eq!(par[0], px);
        assert_eq!(par[1], px[NUM_JOINTS * 2..]);
    }

    #[test]
    fn jitter_moves_only_what_it_says() {
        let record = CameraRecord {
            dataset: "d".into(),
            subject: "S1".into(),
            camera: "c0".into(),
            intrinsics: intrinsics(),
            extrinsics: None,
        };
        let pool = CameraPool::from_records(&[record]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let plain = pool.draw(&mut rng, &CameraJitter::default());
        assert_eq!(plain.intrinsics, intrinsics());
        assert_eq!(plain.id, "d/S1/c0");
        let j = pool.draw(&mut rng, &CameraJitter { focal_rel_std: 0.05, center_std_px: 0.0 });
        let ratio = j.intrinsics.focal_length_px[0] / 1145.0;
        assert!((j.intrinsics.focal_length_px[1] / 1144.0 - ratio).abs() < 1e-12 && ratio != 1.0);
        assert_eq!(j.intrinsics.center_px, intrinsics().center_px);
        assert!(CameraPool::from_records(&[]).is_err());
    }
}
