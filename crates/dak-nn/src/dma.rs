//! DMA, the dynamic-prioritized motion augmentor (DESIGN.md §DMA): a
//! stochastic motion predictor. A GRU encodes the reference clip; a latent
//! code z picks one of many futures; a GRU decoder rolls out P frames as
//! corrections to a constant-velocity extrapolation. Fitted with best-of-K
//! (only the closest of K futures is pulled to the truth, the others
//! lightly) plus a diversity term that pushes the K apart, so
//! different z give different, plausible motions.

use dak_augment::source::WindowSampler;
use dak_core::Pose3;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig, RNN};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::geometry::{self, clips_to_tensor};

pub const KIND: &str = "dma";
const POSE: i64 = 17 * 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmaConfig {
    /// Reference frames R the predictor reads.
    pub reference_frames: usize,
    /// Frames P it predicts.
    pub predicted_frames: usize,
    pub latent_dim: usize,
    pub hidden: usize,
}

impl DmaConfig {
    pub fn validate(&self) -> Result<()> {
        // The smoothness term reads the reference's last 3 frames.
        if self.reference_frames < 3 || self.predicted_frames == 0 || self.latent_dim == 0 || self.hidden == 0 {
            return Err(Error::Config {
                field: "reference_frames",
                reason: format!("need ≥ 3 reference frames and positive sizes, got {self:?}"),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmaFitSettings {
    pub steps: usize,
    pub batch: usize,
    /// K futures per reference for best-of-K.
    pub samples: usize,
    pub learning_rate: f64,
    pub diversity_weight: f64,
    /// α of exp(−d/α), d the mean joint distance between two futures (m).
    pub diversity_scale: f64,
    /// Weight of the mean error of all K futures: keeps the ones best-of-K
    /// does not pull from drifting off (diversity pushes them apart).
    pub all_futures_weight: f64,
    /// Weight of the excess jerk of the futures (with the reference's last
    /// frames) over the truth's: keeps X_com smooth across the junction.
    pub smoothness_weight: f64,
    pub seed: u64,
}

impl Default for DmaFitSettings {
    fn default() -> Self {
        DmaFitSettings {
            steps: 1500,
            batch: 32,
            samples: 8,
            learning_rate: 5e-4,
            diversity_weight: 0.02,
            diversity_scale: 0.1,
            all_futures_weight: 0.1,
            smoothness_weight: 0.05,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DmaLosses {
    /// Mean squared error of the best of K futures (m²).
    pub best_of_k: f64,
    pub diversity: f64,
    /// The best future's mean joint error, mm.
    pub best_mpjpe_mm: f64,
}

pub struct Dma {
    pub config: DmaConfig,
    device: Device,
    vs: nn::VarStore,
    encoder: nn::GRU,
    init: nn::Linear,
    decoder: nn::GRU,
    head: nn::Linear,
}

impl Dma {
    pub fn new(config: DmaConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (h, nz) = (config.hidden as i64, config.latent_dim as i64);
        let gru = nn::RNNConfig { batch_first: true, ..Default::default() };
        let encoder = nn::gru(&root / "encoder", POSE, h, gru);
        let init = nn::linear(&root / "init", h + nz, h, Default::default());
        let decoder = nn::gru(&root / "decoder", POSE + nz, h, gru);
        let head = nn::linear(
            &root / "head",
            h,
            POSE,
            nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true },
        );
        Ok(Dma { config, device, vs, encoder, init, decoder, head })
    }

    pub fn load(dir: &std::path::Path, device: Device) -> Result<Self> {
        let file = crate::model_dir::read::<DmaConfig>(dir, KIND)?;
        let mut dma = Dma::new(file.config, device)?;
        crate::model_dir::load_weights(dir, crate::model_dir::WEIGHTS_FILE, &mut dma.vs)?;
        Ok(dma)
    }

    pub fn save(&self, dir: &std::path::Path, fit: serde_json::Value) -> Result<()> {
        crate::model_dir::save(dir, KIND, &self.config, fit, &[(crate::model_dir::WEIGHTS_FILE, &self.vs)])
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn parameters(&self) -> usize {
        self.vs.trainable_variables().iter().map(|t| t.numel()).sum()
    }

    /// Predict `P` frames after reference clips `(B, R, 17, 3)` (mm) for
    /// latent codes `(B, latent_dim)`; returns `(B, P, 17, 3)` in mm, in the
    /// reference's kind.
    pub fn predict(&self, reference: &Tensor, latent: &Tensor) -> Tensor {
        let size = reference.size();
        let (b, r) = (size[0], size[1]);
        let kind = reference.kind();
        // Everything relative to the last reference root, in metres.
        let anchor = reference.select(1, r - 1).select(-2, 0).view([b, 1, 1, 3]);
        let x = ((reference - &anchor) / 1000.0).to_kind(Kind::Float).view([b, r, POSE]);
        let z = latent.to_kind(Kind::Float);
        let (_, encoded) = self.encoder.seq(&x);
        let h = encoded.0.select(0, 0);
        let state = nn::GRUState(self.init.forward(&Tensor::cat(&[h, z.shallow_clone()], 1)).tanh().unsqueeze(0));
        let mut state = state;
        let last = x.select(1, r - 1);
        // The decoder corrects a constant-velocity extrapolation (not an
        // integrated velocity: Adam-sized weight steps would then grow
        // quadratically over the horizon), so an untrained head already
        // extrapolates sensibly and training learns the deviation.
        let velocity = &last - x.select(1, r - 2);
        let mut pose = last.shallow_clone();
        let mut out = Vec::with_capacity(self.config.predicted_frames);
        for k in 0..self.config.predicted_frames {
            state = self.decoder.step(&Tensor::cat(&[&pose, &z], 1), &state);
            pose = &last + &velocity * (k + 1) as f64 + self.head.forward(&state.0.select(0, 0));
            out.push(pose.shallow_clone());
        }
        let predicted = Tensor::stack(&out, 1).view([b, self.config.predicted_frames as i64, 17, 3]);
        // A person keeps their bones: predicted bone directions, the last
        // reference frame's bone lengths (extrapolated joints otherwise
        // stretch limbs by the horizon's accumulated velocity).
        let lengths = geometry::norm_last(&geometry::bone_vectors(&x.select(1, r - 1).view([b, 1, 17, 3])));
        let bones = geometry::normalize(&geometry::bone_vectors(&predicted)) * lengths;
        let predicted = geometry::forward_kinematics(&predicted.select(-2, 0), &bones);
        (predicted.to_kind(kind) * 1000.0) + anchor
    }

    pub fn fit(
        &mut self,
        windows: &WindowSampler<'_>,
        settings: &DmaFitSettings,
        mut on_step: impl FnMut(usize, &DmaLosses),
    ) -> Result<DmaLosses> {
        let (r, p) = (self.config.reference_frames, self.config.predicted_frames);
        if windows.len() != r + p {
            return Err(Error::Config {
                field: "reference_frames",
                reason: format!("windows of {} frames for a model of {r} + {p}", windows.len()),
            });
        }
        if settings.samples < 2 {
            return Err(Error::Config { field: "samples", reason: "best-of-K needs K ≥ 2".into() });
        }
        if settings.batch == 0 {
            return Err(Error::Config { field: "batch", reason: "must be at least 1 clip".into() });
        }
        tch::manual_seed(settings.seed as i64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(settings.seed);
        let mut opt = nn::Adam::default().build(&self.vs, settings.learning_rate)?;
        let (b, k) = (settings.batch as i64, settings.samples as i64);
        let mut last = DmaLosses::default();
        for step in 0..settings.steps {
            let clips: Vec<Vec<Pose3>> = (0..settings.batch).map(|_| windows.sample(&mut rng).poses).collect();
            let refs: Vec<&[Pose3]> = clips.iter().map(|c| &c[..]).collect();
            let x = clips_to_tensor(&refs, self.device).to_kind(Kind::Float);
            let reference = x.narrow(1, 0, r as i64);
            let future = x.narrow(1, r as i64, p as i64);
            // K copies of each reference, each with its own latent code.
            let repeated = reference.repeat_interleave_self_int(k, 0, None);
            let latent = Tensor::randn([b * k, self.config.latent_dim as i64], (Kind::Float, self.device));
            let predicted = self.predict(&repeated, &latent).view([b, k, p as i64, 17, 3]) / 1000.0;
            let truth = (future / 1000.0).unsqueeze(1);
            let error = (&predicted - &truth).square().mean_dim([2, 3, 4].as_slice(), false, Kind::Float);
            let best = error.min_dim(1, false).0.mean(Kind::Float);
            let flat = predicted.view([b, k, -1]);
            let gaps = (flat.unsqueeze(2) - flat.unsqueeze(1)).view([b, k, k, p as i64, 17, 3]);
            let distance = (gaps.square().sum_dim_intlist(-1, false, None::<Kind>) + 1e-12).sqrt().mean_dim(
                [3, 4].as_slice(),
                false,
                Kind::Float,
            );
            let off_diagonal =
                Tensor::ones([k, k], (Kind::Float, self.device)) - Tensor::eye(k, (Kind::Float, self.device));
            let diversity = ((-distance / settings.diversity_scale).exp() * &off_diagonal).sum(Kind::Float)
                / (off_diagonal.sum(Kind::Float) * b as f64);
            let tail = (reference.narrow(1, r as i64 - 3, 3) / 1000.0).unsqueeze(1);
            let jerk = |x: &Tensor| {
                let n = x.size()[2];
                let d = |y: &Tensor, n: i64| y.narrow(2, 1, n - 1) - y.narrow(2, 0, n - 1);
                d(&d(&d(x, n), n - 1), n - 2).square().mean(Kind::Float)
            };
            let with_tail = Tensor::cat(&[tail.expand([b, k, 3, 17, 3], false), predicted.shallow_clone()], 2);
            let truth_jerk = jerk(&Tensor::cat(&[tail, truth.shallow_clone()], 2)).detach();
            let smoothness = (jerk(&with_tail) / (truth_jerk + 1e-12) - 1.0).relu();
            let loss = &best
                + settings.all_futures_weight * error.mean(Kind::Float)
                + settings.diversity_weight * &diversity
                + settings.smoothness_weight * smoothness;
            opt.zero_grad();
            loss.backward();
            opt.clip_grad_norm(1.0);
            opt.step();

            let joint_error = (&predicted - &truth).square().sum_dim_intlist(-1, false, None::<Kind>).sqrt().mean_dim(
                [2, 3].as_slice(),
                false,
                Kind::Float,
            );
            last = DmaLosses {
                best_of_k: f64::try_from(&best)?,
                diversity: f64::try_from(&diversity)?,
                best_mpjpe_mm: f64::try_from(joint_error.min_dim(1, false).0.mean(Kind::Float))? * 1000.0,
            };
            if !last.best_of_k.is_finite() {
                return Err(Error::Diverged { step, what: "best-of-K loss", value: last.best_of_k });
            }
            on_step(step, &last);
        }
        Ok(last)
    }
}
