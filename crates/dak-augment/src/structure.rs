//! Structure augmentation (DESIGN.md §"Structure augmentation"): scale limb
//! groups by truncated-normal factors, move the thorax and both hips along
//! their parent bones, and rebuild the joints by forward kinematics so every
//! bone keeps its direction in every frame.

use dak_core::bones::{bone_lengths_and_directions, forward_kinematics};
use dak_core::{Intrinsics, LimbGroup, Pose3, NUM_JOINTS};
use rand::Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::truncated_normal::TruncatedNormal;

/// Joints moved along their parent bone by the joint perturbation: the
/// thorax (spine→thorax) and the right and left hips (pelvis→hip).
pub const PERTURBED_JOINTS: [usize; 3] = [8, 1, 4];

/// Parameters of structure augmentation; the defaults are DESIGN.md's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StructureConfig {
    /// Std of the per-group (local) factor F_l ~ N(1, σ_l).
    pub local_std: f64,
    /// Std of the whole-body (global) factor F_g ~ N(1, σ_g).
    pub global_std: f64,
    /// Both factors are truncated to [1 − kσ, 1 + kσ].
    pub truncation_sigmas: f64,
    /// Joint perturbation range r: u ~ U(−r, r) of the parent bone's length.
    pub perturb_range: f64,
}

impl Default for StructureConfig {
    fn default() -> Self {
        StructureConfig { local_std: 0.2, global_std: 0.3, truncation_sigmas: 2.0, perturb_range: 0.1 }
    }
}

impl StructureConfig {
    pub fn validate(&self) -> Result<()> {
        self.local()?;
        self.global()?;
        if !(self.perturb_range.is_finite() && (0.0..1.0).contains(&self.perturb_range)) {
            return Err(Error::Config {
                field: "perturb_range",
                reason: format!("must be in [0, 1), got {}", self.perturb_range),
            });
        }
        for (field, std) in [("local_std", self.local_std), ("global_std", self.global_std)] {
            if self.truncation_sigmas * std >= 1.0 {
                return Err(Error::Config {
                    field,
                    reason: format!(
                        "{std} × {} sigmas reaches a factor ≤ 0; bones would vanish or flip",
                        self.truncation_sigmas
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn local(&self) -> Result<TruncatedNormal> {
        TruncatedNormal::new(1.0, self.local_std, self.truncation_sigmas)
    }

    pub fn global(&self) -> Result<TruncatedNormal> {
        TruncatedNormal::new(1.0, self.global_std, self.truncation_sigmas)
    }

    /// Draw the limb scale and joint perturbation of one clip.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> StructureSample {
        let local = self.local().expect("validated config");
        let global = self.global().expect("validated config");
        let limb_scale = LimbScale { local: std::array::from_fn(|_| local.sample(rng)), global: global.sample(rng) };
        let perturbation = if self.perturb_range > 0.0 {
            let u = Uniform::new_inclusive(-self.perturb_range, self.perturb_range).expect("range checked");
            std::array::from_fn(|_| u.sample(rng))
        } else {
            [0.0; 3]
        };
        StructureSample { limb_scale, perturbation }
    }
}

/// One draw of the limb-scale distribution: a factor per limb group
/// (both sides of a symmetric group share it) and one for the whole body.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimbScale {
    /// Indexed like [`LimbGroup::ALL`].
    pub local: [f64; 9],
    pub global: f64,
}

impl LimbScale {
    pub const IDENTITY: LimbScale = LimbScale { local: [1.0; 9], global: 1.0 };

    /// Factor of every bone (indexed by child joint; entry 0 unused = 1).
    pub fn bone_factors(&self) -> [f64; NUM_JOINTS] {
        let mut f = [1.0; NUM_JOINTS];
        for (g, group) in LimbGroup::ALL.iter().enumerate() {
            for &bone in group.bones() {
                f[bone] = self.local[g] * self.global;
            }
        }
        f
    }
}

/// Everything random about one structure-augmented clip.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StructureSample {
    pub limb_scale: LimbScale,
    /// u for [`PERTURBED_JOINTS`], as a fraction of the parent bone.
    pub perturbation: [f64; 3],
}

impl StructureSample {
    pub const IDENTITY: StructureSample = StructureSample { limb_scale: LimbScale::IDENTITY, perturbation: [0.0; 3] };

    /// Final length factor of every bone. Moving a joint along its parent
    /// bone by u·|bone| with its children following rigidly lengthens that
    /// bone by (1 + u) and nothing else.
    pub fn bone_factors(&self) -> [f64; NUM_JOINTS] {
        let mut f = self.limb_scale.bone_factors();
        for (&joint, &u) in PERTURBED_JOINTS.iter().zip(&self.perturbation) {
            f[joint] *= 1.0 + u;
        }
        f
    }

    /// Augment one pose: same root, same bone directions, scaled bones.
    pub fn apply(&self, pose: &Pose3) -> Pose3 {
        apply_factors(pose, &self.bone_factors())
    }

    /// Augment every frame of a clip with the same factors.
    pub fn apply_clip(&self, clip: &[Pose3]) -> Vec<Pose3> {
        let f = self.bone_factors();
        clip.iter().map(|p| apply_factors(p, &f)).collect()
    }

    /// The pair (x_sa, X_sa) of DESIGN.md: the augmented clip (camera
    /// coordinates, mm) and its projection through the clip's own camera
    /// (T × 17 × 2 pixels).
    pub fn apply_with_projection(&self, clip: &[Pose3], camera: &Intrinsics) -> (Vec<Pose3>, Vec<f32>) {
        let augmented = self.apply_clip(clip);
        let pixels = crate::projection::project_clip(camera, &augmented);
        (augmented, pixels)
    }
}

fn apply_factors(pose: &Pose3, factors: &[f64; NUM_JOINTS]) -> Pose3 {
    let (mut lengths, directions) = bone_lengths_and_directions(pose);
    for (l, f) in lengths.iter_mut().zip(factors) {
        *l *= f;
    }
    forward_kinematics(pose[0], &lengths, &directions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dak_core::bones::bone_vectors;
    use nalgebra::Vector3;
    use rand::SeedableRng;

    fn pose(seed: u64) -> Pose3 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut p: Pose3 = std::array::from_fn(|_| {
            Vector3::new(
                rng.random_range(-400.0..400.0),
                rng.random_range(-800.0..800.0),
                rng.random_range(-200.0..200.0),
            )
        });
        for q in &mut p {
            q.z += 4000.0;
        }
        p
    }

    #[test]
    fn keeps_directions_and_scales_every_bone_by_its_factor() {
        let config = StructureConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for seed in 0..50 {
            let p = pose(seed);
            let sample = config.sample(&mut rng);
            let q = sample.apply(&p);
            assert_eq!(q[0], p[0], "root moved");
            let (bp, bq) = (bone_vectors(&p), bone_vectors(&q));
            let f = sample.bone_factors();
            for j in 1..NUM_JOINTS {
                // Same direction, length × factor: the whole vector scales.
                assert!((bq[j] - bp[j] * f[j]).norm() < 1e-9, "bone {j}: {:?} vs {:?}×{}", bq[j], bp[j], f[j]);
            }
        }
    }

    #[test]
    fn factors_combine_local_global_and_perturbation() {
        let mut sample = StructureSample::IDENTITY;
        sample.limb_scale.local[LimbGroup::ALL.iter().position(|g| *g == LimbGroup::Thighs).unwrap()] = 1.3;
        sample.limb_scale.global = 0.9;
        sample.perturbation = [0.05, -0.1, 0.0];
        let f = sample.bone_factors();
        assert!((f[2] - 1.3 * 0.9).abs() < 1e-12 && (f[5] - 1.3 * 0.9).abs() < 1e-12, "thighs share a factor");
        assert!((f[8] - 0.9 * 1.05).abs() < 1e-12, "thorax moved along spine→thorax");
        assert!((f[1] - 0.9 * 0.9).abs() < 1e-12, "right hip moved inwards");
        assert!((f[4] - 0.9).abs() < 1e-12, "left hip untouched");
        assert!((f[13] - 0.9).abs() < 1e-12);
    }

    #[test]
    fn symmetric_groups_share_one_factor_and_stay_in_range() {
        let config = StructureConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..1000 {
            let s = config.sample(&mut rng);
            assert!(s.limb_scale.local.iter().all(|f| (0.6..=1.4).contains(f)));
            assert!((0.4..=1.6).contains(&s.limb_scale.global));
            assert!(s.perturbation.iter().all(|u| u.abs() <= 0.1));
            let f = s.limb_scale.bone_factors();
            for (r, l) in [(2, 5), (3, 6), (12, 15), (13, 16), (11, 14)] {
                assert_eq!(f[r], f[l]);
            }
        }
    }

    #[test]
    fn clip_uses_one_sample_for_every_frame() {
        let clip: Vec<Pose3> = (0..5).map(pose).collect();
        let s = StructureConfig::default().sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(5));
        let out = s.apply_clip(&clip);
        for (p, q) in clip.iter().zip(&out) {
            assert_eq!(*q, s.apply(p));
        }
    }

    #[test]
    fn the_2d_of_a_pair_is_the_projection_of_its_3d() {
        let clip: Vec<Pose3> = (0..3).map(pose).collect();
        let camera = Intrinsics::pinhole(1100.0, 1000, 1000);
        let s = StructureConfig::default().sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(8));
        let (x3, x2) = s.apply_with_projection(&clip, &camera);
        assert_eq!(x3, s.apply_clip(&clip));
        for (f, p) in x3.iter().enumerate() {
            for (j, joint) in p.iter().enumerate() {
                let px = camera.project(joint);
                let o = (f * NUM_JOINTS + j) * 2;
                assert!((f64::from(x2[o]) - px.x).abs() < 1e-3 && (f64::from(x2[o + 1]) - px.y).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn config_refuses_vanishing_bones() {
        let bad = StructureConfig { global_std: 0.6, ..StructureConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("global_std"));
        assert!(StructureConfig { perturb_range: 1.5, ..Default::default() }.validate().is_err());
        StructureConfig::default().validate().unwrap();
    }
}
