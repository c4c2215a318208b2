//! SMA, the structure-prioritized motion augmentor (DESIGN.md §SMA).
//!
//! Stage 1 changes the last frame of a reference clip: the bone-angle (BA)
//! generator rotates each bone by a bounded angle, the rotation–translation
//! (RT) generator turns and moves the whole body, and bone lengths come from
//! the limb-scale distribution (not a network). Stage 2, the conditional
//! motion generator, fills the frames between the reference's first frame
//! and the augmented last frame in bone-direction space; every frame is
//! rebuilt by forward kinematics from one set of bone lengths, so bones are
//! exactly as long in every frame. An LSGAN discriminator on body-frame bone
//! directions and their frame-to-frame changes keeps the motion plausible.

use std::f64::consts::PI;

use dak_augment::source::WindowSampler;
use dak_core::Pose3;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::geometry::{
    bone_vectors, clips_to_tensor, forward_kinematics, norm_last, normalize, rotate, slerp, NUM_BONES,
};

pub const KIND: &str = "sma";
pub const DISCRIMINATOR_FILE: &str = "discriminator.safetensors";

/// Architecture and bounds of SMA (fixed when fitted, stored in `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaConfig {
    /// Clip length T the generators were fitted for.
    pub clip_frames: usize,
    /// Noise size of each of the three generators.
    pub noise_dim: usize,
    pub hidden: usize,
    /// Bound on each axis-angle component of the BA generator's rotation
    /// of one bone (so the angle itself reaches at most √3 × this).
    pub max_bone_angle_deg: f64,
    /// Largest global rotation about the camera's x, y (vertical), z axes.
    pub max_rotation_deg: [f64; 3],
    /// Largest root translation along the camera's x, y, z axes.
    pub max_translation_mm: [f64; 3],
    /// Largest per-bone rotation the motion generator adds to the
    /// interpolated directions (zero at the two ends of the clip).
    pub max_motion_residual_deg: f64,
    pub max_root_residual_mm: f64,
    /// Clips are pushed away from the camera until every joint is this deep.
    pub min_depth_mm: f64,
    /// How the base motion turns each bone from its first to its target
    /// direction. A `model.json` without it predates `slerp`: `lerp`.
    #[serde(default = "BaseMotion::before_slerp")]
    pub base_motion: BaseMotion,
}

/// The base motion the motion generator's residuals are added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaseMotion {
    /// Constant angular speed about the two directions' common normal.
    Slerp,
    /// The two directions blended linearly and renormalised: what models
    /// fitted before `slerp` learnt their residuals on. It turns fastest
    /// mid-clip, and opposite directions pass through a zero-length bone.
    Lerp,
}

impl BaseMotion {
    fn before_slerp() -> Self {
        BaseMotion::Lerp
    }
}

impl Default for SmaConfig {
    fn default() -> Self {
        SmaConfig {
            clip_frames: 27,
            noise_dim: 16,
            hidden: 256,
            max_bone_angle_deg: 20.0,
            max_rotation_deg: [15.0, 60.0, 15.0],
            max_translation_mm: [300.0, 100.0, 500.0],
            max_motion_residual_deg: 10.0,
            max_root_residual_mm: 50.0,
            min_depth_mm: 1000.0,
            base_motion: BaseMotion::Slerp,
        }
    }
}

impl SmaConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(Error::Config { field, reason });
        if self.clip_frames < 2 {
            return bad("clip_frames", format!("must be at least 2, got {}", self.clip_frames));
        }
        if self.noise_dim == 0 || self.hidden == 0 {
            return bad("hidden", "noise and hidden sizes must be positive".into());
        }
        let angles = [self.max_bone_angle_deg, self.max_motion_residual_deg];
        if angles.iter().chain(&self.max_rotation_deg).any(|a| !(0.0..=180.0).contains(a)) {
            return bad("max_*_deg", "angle bounds must be within [0, 180] degrees".into());
        }
        if self
            .max_translation_mm
            .iter()
            .chain([&self.max_root_residual_mm, &self.min_depth_mm])
            .any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return bad("max_translation_mm", "distances must be finite and ≥ 0".into());
        }
        Ok(())
    }

    /// Noise values per clip (BA, RT and motion generators).
    pub fn noise_len(&self) -> usize {
        3 * self.noise_dim
    }
}

/// How `dak-augment fit --mode sma` trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmaFitSettings {
    pub steps: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// Weight of the diversity term exp(−d/α) between two noise draws.
    pub diversity_weight: f64,
    /// α of the diversity term, in units of bone-direction difference.
    pub diversity_scale: f64,
    pub seed: u64,
}

impl Default for SmaFitSettings {
    fn default() -> Self {
        SmaFitSettings {
            steps: 2000,
            batch: 64,
            learning_rate: 2e-4,
            diversity_weight: 0.5,
            diversity_scale: 0.1,
            seed: 0,
        }
    }
}

/// The generators' output before bone lengths are applied.
pub struct SmaMotion {
    /// `(B, T, 16, 3)` unit bone directions.
    pub directions: Tensor,
    /// `(B, T, 3)` root positions, mm.
    pub root: Tensor,
}

pub struct Sma {
    pub config: SmaConfig,
    device: Device,
    generator_vs: nn::VarStore,
    ba: nn::Sequential,
    rt: nn::Sequential,
    motion: nn::Sequential,
    discriminator_vs: nn::VarStore,
    discriminator: nn::Sequential,
}

fn mlp(p: nn::Path, input: usize, hidden: usize, output: usize) -> nn::Sequential {
    let (i, h, o) = (input as i64, hidden as i64, output as i64);
    nn::seq()
        .add(nn::linear(&p / "0", i, h, Default::default()))
        .add_fn(|x| x.leaky_relu())
        .add(nn::linear(&p / "1", h, h, Default::default()))
        .add_fn(|x| x.leaky_relu())
        .add(nn::linear(&p / "2", h, o, Default::default()))
}

const POSE_IN: usize = 17 * 3;
const DIRS: usize = NUM_BONES * 3;

impl Sma {
    /// Fresh networks, initialised from libtorch's generator (seed it with
    /// `tch::manual_seed` first for reproducible weights).
    pub fn new(config: SmaConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let generator_vs = nn::VarStore::new(device);
        let root = generator_vs.root();
        let nz = config.noise_dim;
        let ba = mlp(&root / "ba", POSE_IN + nz, config.hidden, DIRS);
        let rt = mlp(&root / "rt", POSE_IN + nz, config.hidden, 6);
        let motion = mlp(&root / "motion", 2 * DIRS + nz + 2, config.hidden, DIRS + 3);
        let discriminator_vs = nn::VarStore::new(device);
        let discriminator = mlp(discriminator_vs.root() / "disc", 2 * DIRS, config.hidden, config.hidden);
        let discriminator = discriminator.add_fn(|x| x.leaky_relu().mean_dim(1, false, None::<Kind>)).add(nn::linear(
            discriminator_vs.root() / "disc" / "out",
            config.hidden as i64,
            1,
            Default::default(),
        ));
        Ok(Sma { config, device, generator_vs, ba, rt, motion, discriminator_vs, discriminator })
    }

    pub fn load(dir: &std::path::Path, device: Device) -> Result<Self> {
        let file = crate::model_dir::read::<SmaConfig>(dir, KIND)?;
        let mut sma = Sma::new(file.config, device)?;
        crate::model_dir::load_weights(dir, crate::model_dir::WEIGHTS_FILE, &mut sma.generator_vs)?;
        crate::model_dir::load_weights(dir, DISCRIMINATOR_FILE, &mut sma.discriminator_vs)?;
        Ok(sma)
    }

    pub fn save(&self, dir: &std::path::Path, fit: serde_json::Value) -> Result<()> {
        crate::model_dir::save(
            dir,
            KIND,
            &self.config,
            fit,
            &[(crate::model_dir::WEIGHTS_FILE, &self.generator_vs), (DISCRIMINATOR_FILE, &self.discriminator_vs)],
        )
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn parameters(&self) -> (usize, usize) {
        let count = |vs: &nn::VarStore| vs.trainable_variables().iter().map(|t| t.numel()).sum();
        (count(&self.generator_vs), count(&self.discriminator_vs))
    }

    /// Stage 1 and 2 on reference clips `(B, T, 17, 3)` (f32, mm) with
    /// noise `(B, 3·noise_dim)`.
    pub fn motion(&self, reference: &Tensor, noise: &Tensor) -> SmaMotion {
        let c = &self.config;
        let (b, t) = (reference.size()[0], reference.size()[1]);
        let rad = |deg: f64| deg.to_radians();
        let first = reference.select(1, 0);
        let last = reference.select(1, t - 1);
        let root_first = first.select(-2, 0);
        let root_last = last.select(-2, 0);
        let dir_first = normalize(&bone_vectors(&first));
        let dir_last = normalize(&bone_vectors(&last));
        let pose = ((&last - root_last.unsqueeze(-2)) / 1000.0).flatten(1, -1);
        let nz = c.noise_dim as i64;
        let z = |k: i64| noise.narrow(1, k * nz, nz);

        let ba = self.ba.forward(&Tensor::cat(&[&pose, &z(0)], 1)).tanh().view([b, NUM_BONES as i64, 3])
            * rad(c.max_bone_angle_deg);
        let bent = rotate(&ba, &dir_last);
        let rt = self.rt.forward(&Tensor::cat(&[&pose, &z(1)], 1));
        let bounds = |v: [f64; 3]| Tensor::from_slice(&v.map(|x| x as f32)).to(self.device);
        let rotation = rt.narrow(1, 0, 3).tanh() * bounds(c.max_rotation_deg.map(rad));
        let translation = rt.narrow(1, 3, 3).tanh() * bounds(c.max_translation_mm);
        let target_dirs = rotate(&rotation.unsqueeze(1), &bent);
        let target_root = root_last + translation;

        let time = (Tensor::arange(t, (Kind::Float, self.device)) / (t - 1) as f64).view([1, t, 1]);
        let bump = (&time * PI).sin();
        let w = time.unsqueeze(-1);
        let (from, to) = (dir_first.unsqueeze(1), target_dirs.unsqueeze(1));
        let base = match c.base_motion {
            BaseMotion::Slerp => slerp(&from, &to, &w),
            BaseMotion::Lerp => normalize(&(&from * (1.0 - &w) + &to * &w)),
        };
        let condition = Tensor::cat(&[dir_first.flatten(1, -1), target_dirs.flatten(1, -1), z(2)], 1)
            .unsqueeze(1)
            .expand([b, t, 2 * DIRS as i64 + nz], false);
        let clock = Tensor::cat(&[&time, &bump], -1).expand([b, t, 2], false);
        let m = self.motion.forward(&Tensor::cat(&[condition, clock], -1));
        let residual = m.narrow(-1, 0, DIRS as i64).tanh().view([b, t, NUM_BONES as i64, 3])
            * rad(c.max_motion_residual_deg)
            * bump.unsqueeze(-1);
        let directions = rotate(&residual, &base);
        let root = root_first.unsqueeze(1) * (1.0 - &time)
            + target_root.unsqueeze(1) * &time
            + m.narrow(-1, DIRS as i64, 3).tanh() * c.max_root_residual_mm * &bump;
        SmaMotion { directions, root }
    }

    /// Joints `(B, T, 17, 3)` (f64) from the motion and per-clip bone
    /// lengths `(B, 16)`: one set of lengths for every frame.
    pub fn assemble(&self, motion: &SmaMotion, lengths: &Tensor) -> Tensor {
        let b = lengths.size()[0];
        let dirs = normalize(&motion.directions.to_kind(Kind::Double));
        let bones = dirs * lengths.to_kind(Kind::Double).view([b, 1, NUM_BONES as i64, 1]);
        let x = forward_kinematics(&motion.root.to_kind(Kind::Double), &bones);
        push_beyond(&x, self.config.min_depth_mm)
    }

    /// Body-frame bone directions (orientation removed) and their changes
    /// over time, scored by the discriminator: `(B,)`.
    pub fn discriminate(&self, directions: &Tensor) -> Tensor {
        let local = body_frame(directions).flatten(2, -1);
        let t = local.size()[1];
        let change = Tensor::cat(
            &[local.narrow(1, 0, 1).zeros_like(), local.narrow(1, 1, t - 1) - local.narrow(1, 0, t - 1)],
            1,
        );
        self.discriminator.forward(&Tensor::cat(&[local, change], -1)).squeeze_dim(-1)
    }

    /// Fit the generators and the discriminator on source windows.
    pub fn fit(
        &mut self,
        windows: &WindowSampler<'_>,
        settings: &SmaFitSettings,
        mut on_step: impl FnMut(usize, &SmaLosses),
    ) -> Result<SmaLosses> {
        let t = self.config.clip_frames;
        if windows.len() != t {
            return Err(Error::Config {
                field: "clip_frames",
                reason: format!("windows of {} frames for a model of {t}", windows.len()),
            });
        }
        if settings.batch == 0 {
            return Err(Error::Config { field: "batch", reason: "must be at least 1 clip".into() });
        }
        tch::manual_seed(settings.seed as i64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(settings.seed);
        let adam = nn::Adam { beta1: 0.5, beta2: 0.999, wd: 0.0, eps: 1e-8, amsgrad: false };
        let mut opt_g = adam.build(&self.generator_vs, settings.learning_rate)?;
        let mut opt_d = adam.build(&self.discriminator_vs, settings.learning_rate)?;
        let mut last = SmaLosses::default();
        for step in 0..settings.steps {
            let batch = |rng: &mut rand_chacha::ChaCha8Rng| {
                let clips: Vec<Vec<Pose3>> = (0..settings.batch).map(|_| windows.sample(rng).poses).collect();
                let refs: Vec<&[Pose3]> = clips.iter().map(|c| &c[..]).collect();
                clips_to_tensor(&refs, self.device).to_kind(Kind::Float)
            };
            let reference = batch(&mut rng);
            let real = batch(&mut rng);
            let b = settings.batch as i64;
            let noise = |_| Tensor::randn([b, self.config.noise_len() as i64], (Kind::Float, self.device));
            let one = self.motion(&reference, &noise(0));
            let two = self.motion(&reference, &noise(1));

            let real_dirs = normalize(&bone_vectors(&real));
            let d_real = self.discriminate(&real_dirs);
            let d_fake = self.discriminate(&one.directions.detach());
            let loss_d: Tensor = 0.5 * ((d_real - 1.0).square().mean(Kind::Float) + d_fake.square().mean(Kind::Float));
            opt_d.zero_grad();
            loss_d.backward();
            opt_d.step();

            let adversarial = 0.5 * (self.discriminate(&one.directions) - 1.0).square().mean(Kind::Float);
            let apart = (&one.directions - &two.directions).abs().mean_dim([1, 2, 3].as_slice(), false, Kind::Float)
                + ((&one.root - &two.root).abs() / 1000.0).mean_dim([1, 2].as_slice(), false, Kind::Float);
            let diversity = (-apart / settings.diversity_scale).exp().mean(Kind::Float);
            let loss_g = &adversarial + settings.diversity_weight * &diversity;
            opt_g.zero_grad();
            loss_g.backward();
            opt_g.step();

            last = SmaLosses {
                discriminator: f64::try_from(&loss_d)?,
                adversarial: f64::try_from(&adversarial)?,
                diversity: f64::try_from(&diversity)?,
            };
            for (what, value) in [("discriminator loss", last.discriminator), ("generator loss", last.adversarial)] {
                if !value.is_finite() {
                    return Err(Error::Diverged { step, what, value });
                }
            }
            on_step(step, &last);
        }
        Ok(last)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SmaLosses {
    pub discriminator: f64,
    pub adversarial: f64,
    pub diversity: f64,
}

/// Shift clips along the camera's z axis until every joint is at least
/// `min_depth` deep (bone lengths and directions unchanged).
pub fn push_beyond(x: &Tensor, min_depth: f64) -> Tensor {
    let z = x.select(-1, 2);
    let nearest = z.flatten(1, -1).amin([1].as_slice(), false);
    let shift = (min_depth - nearest).clamp_min(0.0);
    let b = x.size()[0];
    let mut shape = vec![b];
    shape.extend(std::iter::repeat_n(1, x.dim() - 2));
    shape.push(1);
    let offset =
        Tensor::cat(&[shift.zeros_like().view([b, 1]), shift.zeros_like().view([b, 1]), shift.view([b, 1])], 1);
    let view: Vec<i64> = shape[..shape.len() - 1].iter().copied().chain([3]).collect();
    x + offset.view(view.as_slice())
}

/// Bone directions `(B, T, 16, 3)` expressed in a body frame built from
/// the hips and the lower spine: the same posture gives the same numbers
/// whichever way the body faces.
pub fn body_frame(directions: &Tensor) -> Tensor {
    // Bone b is the bone of joint b + 1: r_hip 0, l_hip 3, spine 6.
    let across = normalize(&(directions.select(-2, 3) - directions.select(-2, 0)));
    let up = directions.select(-2, 6);
    let forward = normalize(&across.cross(&up, -1));
    let upright = forward.cross(&across, -1);
    let axes = [across, upright, forward];
    let parts: Vec<Tensor> =
        axes.iter().map(|a| (directions * a.unsqueeze(-2)).sum_dim_intlist(-1, false, None::<Kind>)).collect();
    Tensor::stack(&parts, -1)
}

/// Bone lengths `(B, 16)` of the first frame of reference clips `(B, T, 17, 3)`.
pub fn first_frame_lengths(reference: &Tensor) -> Tensor {
    norm_last(&bone_vectors(&reference.select(1, 0))).squeeze_dim(-1)
}
