//! One training run: the step of paper Eq. 1–8 for each ablation, epochs
//! over shuffled windows, evaluation with flip averaging, and the state a
//! checkpoint must hold to resume exactly.
//!
//! Every random choice of a step (flips, limb scales, synthetic clips,
//! dropout) comes from a stream keyed by (seed, global step), and the window
//! order from one keyed by (seed, epoch); so the state to resume is the
//! weights, the optimizer moments and two counters.

use dak_augment::item_rng;
use dak_core::{metrics, NUM_JOINTS};
use dak_model::estimator::{DecoderTape, EncoderTape};
use dak_model::{gradient_reversal, Critic, Estimator, Features};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::adam::Adam;
use crate::config::TrainConfig;
use crate::data::{self, HostBatch, SyntheticSet, VideoSet, Window};
use crate::error::{Error, Result};
use crate::nets::Nets;

/// Batches the loader thread may have ready ahead of the steps.
const LOADER_AHEAD: usize = 2;

mod streams {
    pub const EPOCH_ORDER: u64 = 101;
    pub const STEP: u64 = 102;
}

/// The data a run trains and evaluates on.
#[derive(Debug)]
pub struct TrainData {
    pub train: VideoSet,
    pub eval: Option<VideoSet>,
    pub sma: Option<SyntheticSet>,
    pub dma: Option<SyntheticSet>,
}

/// Loss terms of one step (unweighted) and the weighted total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Losses {
    pub pe: f64,
    pub fd: f64,
    pub adv_str: f64,
    pub adv_dyn: f64,
    pub total: f64,
}

impl Losses {
    fn add_scaled(&mut self, o: &Losses, w: f64) {
        self.pe += o.pe * w;
        self.fd += o.fd * w;
        self.adv_str += o.adv_str * w;
        self.adv_dyn += o.adv_dyn * w;
        self.total += o.total * w;
    }
}

/// Which loss term a part of the objective adds to.
#[derive(Debug, Clone, Copy)]
enum Term {
    Pe,
    Fd,
    AdvStr,
    AdvDyn,
}

/// A step's loss parts while they are still on the device: read back once
/// the whole step (backward and update) is queued, so that the host waits
/// for the device once per step and never in the middle of it. Only the
/// parts the ablation has are kept, and the terms and the total are summed
/// on the host: no zeros, sums or weights as kernels of the step.
struct PendingLosses {
    parts: Vec<(Term, Tensor)>,
    weights: crate::config::LossWeights,
}

impl PendingLosses {
    fn new(weights: crate::config::LossWeights) -> PendingLosses {
        PendingLosses { parts: Vec::new(), weights }
    }

    fn add(&mut self, term: Term, part: &Tensor) {
        self.parts.push((term, part.detach()));
    }

    fn read(self) -> Losses {
        let values: Vec<f32> = match self.parts.as_slice() {
            [] => Vec::new(),
            [(_, one)] => Vec::try_from(one.reshape([1])).expect("an f32 loss"),
            parts => {
                let all: Vec<&Tensor> = parts.iter().map(|(_, t)| t).collect();
                Vec::try_from(Tensor::stack(&all, 0)).expect("f32 losses")
            }
        };
        let mut l = Losses::default();
        for ((term, _), v) in self.parts.iter().zip(values) {
            *match term {
                Term::Pe => &mut l.pe,
                Term::Fd => &mut l.fd,
                Term::AdvStr => &mut l.adv_str,
                Term::AdvDyn => &mut l.adv_dyn,
            } += f64::from(v);
        }
        let w = &self.weights;
        l.total = l.pe * w.pe + l.fd * w.fd + (l.adv_str * w.adv_str + l.adv_dyn * w.adv_dyn) * w.dg;
        l
    }
}

/// Held-out error of G, in mm over valid frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    pub mpjpe_mm: f64,
    pub p_mpjpe_mm: f64,
    pub frames: usize,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: u64,
    /// The epoch's mean of each loss term over its steps.
    pub losses: Losses,
    /// λ_grl at the epoch's first step; it ramps on within the epoch, step by step.
    pub grl_lambda: f64,
    pub learning_rate: f64,
    pub samples_per_s: f64,
    pub seconds: f64,
    pub eval: Option<EvalResult>,
}

pub struct Trainer {
    pub config: TrainConfig,
    pub nets: Nets,
    pub adam: Adam,
    pub device: Device,
    pub data: TrainData,
    /// Epochs completed.
    pub epoch: usize,
    pub global_step: u64,
    /// How a step's backward runs. Not part of the configuration: it
    /// changes how a step runs, not what it computes.
    backward: Backward,
    /// The next step's inputs, made while the device ran the step before.
    pub(crate) prefetched: Option<Prefetched>,
}

/// Inputs made ahead ([`Trainer::train_step_before`]), used only by the
/// step and windows they were made for.
pub(crate) struct Prefetched {
    pub(crate) step: u64,
    windows: Vec<Window>,
    pub(crate) inputs: StepInputs,
}

/// A step's windows, and their batch where the loader assembled it
/// already (else the training set assembles it).
#[derive(Clone, Copy)]
struct StepBatch<'a> {
    windows: &'a [Window],
    assembled: Option<&'a HostBatch>,
}

/// How a training step's backward runs: the same gradients (up to summation
/// order; at dropout 0, as [`Backward::Whole`]'s joined auxiliary pass
/// draws other masks) for different memory and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backward {
    /// Part by part (see [`Sink`]): ~1.5 passes of G alive at once. G
    /// alone (the baseline), one pass anyway, runs as [`Backward::Whole`].
    #[default]
    Parts,
    /// One backward of the summed objective, as a PyTorch script does:
    /// every pass's activations alive at once (~6.5 passes of G for the
    /// full method), fewer and larger backward calls, each auxiliary
    /// estimator's real and synthetic clips in one pass, and the gradients
    /// gathered from the backward instead of accumulated in place.
    Whole,
    /// Part by part with activation checkpointing: only each block's input
    /// is kept and the block recomputed in the backward, this many clips at
    /// a time (~⅓ more compute for a fraction of the memory).
    Checkpointed(usize),
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("epoch", &self.epoch).field("global_step", &self.global_step).finish()
    }
}

/// MPJPE as a loss: mean joint distance, or Σ `w` · distance with
/// per-frame weights `w` `(B, T)` that already hold the mean's division
/// ([`data::RealInputs::weight`]).
pub fn mpjpe_loss(pred: &Tensor, target: &Tensor, w: Option<&Tensor>) -> Tensor {
    // One norm kernel, not square, sum and root (and theirs backward).
    let dist = (pred.to_kind(Kind::Float) - target).norm_scalaropt_dim(2.0, [-1i64].as_slice(), false);
    match w {
        None => dist.mean(Kind::Float),
        Some(w) => (dist * w.unsqueeze(-1)).sum(Kind::Float),
    }
}

/// LSGAN discriminator loss of Eq. 4–5: synthetic → 0, real → 1, on the
/// critics' logits squashed to (0, 1). With gradient reversal the encoders
/// *maximise* this loss; on raw outputs a squared error has no upper bound
/// and the game diverges (losses in the hundreds), on probabilities it
/// stays within [0, 2]. Real clips count by `real_weight` `(B,)` (summing
/// to 1, or 0 when none may count: [`data::RealInputs::critic_weight`]).
pub fn lsgan_loss(d_synthetic: &Tensor, d_real: &Tensor, real_weight: &Tensor) -> Tensor {
    d_synthetic.to_kind(Kind::Float).sigmoid().square().mean(Kind::Float)
        + ((d_real.to_kind(Kind::Float).sigmoid() - 1.0).square() * real_weight).sum(Kind::Float)
}

/// A step's inputs on the device ([`Trainer::step_inputs`]), mirrored,
/// root-relative and weighted already; views of one uploaded block.
pub(crate) struct StepInputs {
    /// G's input: the real clips, then their structure-augmented twins if
    /// the ablation has them, `(B or 2B, T, 17, 2)`: one pass, no `cat`.
    g_in: Tensor,
    target: Tensor,
    /// Per-frame weights of the real clips' MPJPE `(B, T)`.
    weight: Tensor,
    /// Per-clip weights of the real clips for the critics `(B,)`.
    critic_weight: Tensor,
    twin_target: Option<Tensor>,
    /// SMA's and DMA's pairs: the real clips then the synthetic ones
    /// `(2B, T, 17, 2)` (an auxiliary estimator's joined pass), and the
    /// synthetic targets.
    sma: Option<(Tensor, Tensor)>,
    dma: Option<(Tensor, Tensor)>,
}

/// Where a step's parts go. `graph` sums them for one backward later, so
/// every pass's activations are alive at once (a full step holds ~6.5
/// passes of G). `backward` runs each part's backward as soon as it is
/// built, so only one decoder or auxiliary pass is held at a time: the
/// encoder's outputs are cut into leaves that collect the gradient of every
/// part, and [`Sink::finish`] carries it into the encoder with one
/// surrogate term Σ f · ∂L/∂f. The gradients are the same (up to summation
/// order). `checkpointed` goes further: every estimator pass keeps only its
/// blocks' inputs and recomputes each block during the backward
/// ([`dak_model::blocks::Recompute`]), ~⅓ more compute for a fraction of
/// the memory.
struct Sink<'n> {
    backward: bool,
    /// Checkpointed, recomputing this many clips at a time.
    checkpointed: Option<usize>,
    total: Option<Tensor>,
    /// (encoder output, its leaf), for the surrogate.
    cuts: Vec<(Tensor, Tensor)>,
    /// Checkpointed decoder runs waiting for the next part's backward.
    decoders: Vec<DecoderTape<'n>>,
    /// Checkpointed encoder runs of one part (features not cut), backward
    /// after that part's decoders.
    part_encoders: Vec<EncoderTape<'n>>,
    /// Checkpointed encoder runs whose features every part uses, finished last.
    encoders: Vec<EncoderTape<'n>>,
}

impl<'n> Sink<'n> {
    fn graph() -> Sink<'n> {
        Sink {
            backward: false,
            checkpointed: None,
            total: None,
            cuts: Vec::new(),
            decoders: Vec::new(),
            part_encoders: Vec::new(),
            encoders: Vec::new(),
        }
    }

    fn backward(checkpointed: Option<usize>) -> Sink<'n> {
        Sink { backward: true, checkpointed, ..Sink::graph() }
    }

    fn cut(&mut self, t: &Tensor) -> Tensor {
        if !self.backward {
            return t.shallow_clone();
        }
        let leaf = t.detach().set_requires_grad(true);
        self.cuts.push((t.shallow_clone(), leaf.shallow_clone()));
        leaf
    }

    /// `net`'s features of `x`; with `cut`, as leaves that collect the
    /// gradient of every part (G's features, used by several parts);
    /// without, they belong to the next emitted part, whose backward frees
    /// them (checkpointed: runs their encoder's backward too).
    fn encode(&mut self, net: &'n Estimator, x: &Tensor, cut: bool) -> Features {
        if let Some(chunk) = self.checkpointed {
            let (features, tape) = net.encode_checkpointed(x, true, chunk);
            if cut { &mut self.encoders } else { &mut self.part_encoders }.push(tape);
            return features;
        }
        let f = net.encode(x, true);
        if !cut {
            return f;
        }
        Features { structural: self.cut(&f.structural), dynamic: self.cut(&f.dynamic) }
    }

    fn decode(&mut self, net: &'n Estimator, structural: &Tensor, dynamic: &Tensor) -> Tensor {
        if let Some(chunk) = self.checkpointed {
            let (pose, tape) = net.decode_checkpointed(structural, dynamic, true, chunk);
            self.decoders.push(tape);
            return pose;
        }
        net.decode(structural, dynamic, true)
    }

    fn forward(&mut self, net: &'n Estimator, x: &Tensor) -> Tensor {
        let f = self.encode(net, x, false);
        self.decode(net, &f.structural, &f.dynamic)
    }

    fn emit(&mut self, part: Tensor) {
        if self.backward {
            part.backward();
            for tape in self.decoders.drain(..).rev() {
                tape.backward();
            }
            for tape in self.part_encoders.drain(..).rev() {
                tape.backward();
            }
        } else {
            self.total = Some(match self.total.take() {
                Some(total) => total + part,
                None => part,
            });
        }
    }

    /// The summed objective (graph), or the encoder's backward (backward).
    fn finish(self) -> Option<Tensor> {
        if !self.backward {
            return self.total;
        }
        debug_assert!(
            self.decoders.is_empty() && self.part_encoders.is_empty(),
            "a checkpointed pass without its part"
        );
        let surrogate: Vec<Tensor> = self
            .cuts
            .iter()
            .filter_map(|(output, leaf)| {
                let grad = leaf.grad();
                grad.defined().then(|| (output * grad).sum(Kind::Float))
            })
            .collect();
        if !surrogate.is_empty() {
            Tensor::stack(&surrogate, 0).sum(Kind::Float).backward();
        }
        for tape in self.encoders.into_iter().rev() {
            tape.backward();
        }
        None
    }
}

impl Trainer {
    pub fn new(config: TrainConfig, data: TrainData, device: Device) -> Result<Trainer> {
        config.validate()?;
        let ab = config.ablation;
        let need = |used: bool, set: &Option<SyntheticSet>, mode: &str| {
            if used && set.is_none() {
                return Err(Error::Config {
                    field: "synthetic shards",
                    reason: format!("ablation {} needs {mode} clips (--{mode} DIR)", ab.name()),
                });
            }
            Ok(())
        };
        need(ab.uses_sma(), &data.sma, "sma")?;
        need(ab.uses_dma(), &data.dma, "dma")?;
        if data.train.videos.is_empty() {
            return Err(Error::Data {
                path: data.train.inputs.first().cloned().unwrap_or_default(),
                reason: format!(
                    "no training frames pass the filter ({}); the shards hold {}",
                    config.train,
                    data.train.describe_held()
                ),
            });
        }
        tch::manual_seed(config.seed as i64);
        let nets = Nets::new(&config.model, ab, config.precision, device);
        let adam = Adam::new(&nets.vs, config.adam_betas, config.adam_eps);
        Ok(Trainer {
            config,
            nets,
            adam,
            device,
            data,
            epoch: 0,
            global_step: 0,
            backward: Backward::Parts,
            prefetched: None,
        })
    }

    /// How steps run their backward (see [`Backward`]). Checkpointing
    /// recomputes blocks and must see the same dropout masks as the first
    /// pass, which tch cannot replay, so it needs dropout 0 (the default).
    pub fn set_backward(&mut self, backward: Backward) -> Result<()> {
        if let Backward::Checkpointed(clips) = backward {
            if self.config.model.dropout > 0.0 {
                return Err(Error::Config {
                    field: "model.dropout",
                    reason: format!(
                        "{} with activation checkpointing: the recomputed blocks would draw other dropout masks; use dropout 0",
                        self.config.model.dropout
                    ),
                });
            }
            if clips == 0 {
                return Err(Error::Config {
                    field: "checkpoint_activations",
                    reason: "recompute chunks need at least 1 clip".into(),
                });
            }
        }
        self.backward = backward;
        Ok(())
    }

    pub fn learning_rate(&self, epoch: usize) -> f64 {
        self.config.learning_rate * self.config.lr_decay.powi(epoch as i32)
    }

    /// Steps in one epoch (the length of [`Self::epoch_batches`]).
    pub fn steps_per_epoch(&self) -> usize {
        self.data.train.window_count(self.config.stride()).div_ceil(self.config.batch_size)
    }

    /// The batches of `epoch`, in order.
    pub fn epoch_batches(&self, epoch: usize) -> Vec<Vec<Window>> {
        let mut windows = self.data.train.windows(self.config.stride());
        windows.shuffle(&mut item_rng(self.config.seed, streams::EPOCH_ORDER, epoch as u64));
        windows.chunks(self.config.batch_size).map(<[Window]>::to_vec).collect()
    }

    /// `n` clips of `set` drawn at random, on the host.
    fn synthetic<R: Rng>(&self, set: &Option<SyntheticSet>, n: usize, rng: &mut R) -> Option<(Tensor, Tensor)> {
        let set = set.as_ref()?;
        let idx: Vec<i64> = (0..n).map(|_| rng.random_range(0..set.len() as i64)).collect();
        Some(set.clips(&idx))
    }

    /// Which of `n` clips to mirror (none without flip augmentation).
    fn flip_draws<R: Rng>(&self, n: usize, rng: &mut R) -> Vec<bool> {
        (0..n).map(|_| self.config.flip && rng.random_bool(0.5)).collect()
    }

    /// libtorch's generators (dropout) from step `step`'s seed, right before
    /// its forward: inputs made ahead must not move it.
    fn seed_step(&self, step: u64) {
        tch::manual_seed((self.config.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15)) as i64);
    }

    /// Step `step`'s inputs on the device: the batch with its flips,
    /// structure-augmented twins and synthetic pairs, drawn from the step's
    /// seed (so the same whenever they are made). Made on the host and
    /// copied as one block through pinned memory, without waiting for the
    /// device ([`data::Upload`]).
    pub(crate) fn step_inputs(&self, batch: &HostBatch, step: u64) -> StepInputs {
        let cfg = &self.config;
        let ab = cfg.ablation;
        let mut rng = item_rng(cfg.seed, streams::STEP, step);
        let b = batch.len();
        let factors = ab.disentangles().then(|| {
            let factors: Vec<f64> = (0..b).flat_map(|_| cfg.structure.sample(&mut rng).bone_factors()).collect();
            Tensor::from_slice(&factors).view([b as i64, NUM_JOINTS as i64])
        });
        let flips = self.flip_draws(b, &mut rng);
        let sma = if ab.uses_sma() { self.synthetic(&self.data.sma, b, &mut rng) } else { None };
        let dma = if ab.uses_dma() { self.synthetic(&self.data.dma, b, &mut rng) } else { None };
        let (sma_flips, dma_flips) = (self.flip_draws(b, &mut rng), self.flip_draws(b, &mut rng));

        let real = batch.prepare(&flips, factors.as_ref());
        let mut block = data::Upload::default();
        let g_in = block.push(match &real.twin {
            Some((x_sa, _)) => Tensor::cat(&[&real.x, x_sa], 0),
            None => real.x.shallow_clone(),
        });
        let twin_target = real.twin.map(|(_, target_sa)| block.push(target_sa));
        let mut synthetic = |pair: Option<(Tensor, Tensor)>, flips: &[bool]| {
            pair.map(|(xs, ts)| {
                let mask = Tensor::from_slice(flips);
                let joined = Tensor::cat(&[&real.x, &data::flip_where(&xs, &mask)], 0);
                (block.push(joined), block.push(data::flip_where(&ts, &mask)))
            })
        };
        let (sma, dma) = (synthetic(sma, &sma_flips), synthetic(dma, &dma_flips));
        let (target, weight) = (block.push(real.target), block.push(real.weight));
        let critic_weight = block.push(real.critic_weight);
        let on_device = block.send(self.device);
        let take = |i: usize| on_device[i].shallow_clone();
        StepInputs {
            g_in: take(g_in),
            target: take(target),
            weight: take(weight),
            critic_weight: take(critic_weight),
            twin_target: twin_target.map(take),
            sma: sma.map(|(x, t)| (take(x), take(t))),
            dma: dma.map(|(x, t)| (take(x), take(t))),
        }
    }

    /// The step's objective as one tensor (for one `backward()`) and its
    /// terms. Training uses [`Self::train_step`], which holds far less
    /// memory for the same gradients.
    pub fn losses(&self, windows: &[Window], step: u64, epoch: f64) -> (Tensor, Losses) {
        let mut sink = Sink::graph();
        let inputs = self.inputs_for(StepBatch { windows, assembled: None }, step);
        self.seed_step(step);
        let terms = self.objective(inputs, epoch, &mut sink);
        (sink.finish().expect("every ablation has a pose term"), terms.read())
    }

    /// Step `step`'s inputs on the device for `windows`, and nothing else
    /// (the benchmark's share of a step that is not the network).
    pub fn prepare_inputs(&self, windows: &[Window], step: u64) {
        drop(self.inputs_for(StepBatch { windows, assembled: None }, step));
    }

    /// [`Self::step_inputs`] of `batch`, assembled here where the loader
    /// did not.
    fn inputs_for(&self, batch: StepBatch, step: u64) -> StepInputs {
        match batch.assembled {
            Some(assembled) => self.step_inputs(assembled, step),
            None => self.step_inputs(&self.data.train.host_batch(batch.windows, self.config.model.frames), step),
        }
    }

    /// One optimisation step on `windows`.
    pub fn train_step(&mut self, windows: &[Window], epoch_progress: f64) -> Losses {
        self.train_step_before(windows, None, epoch_progress)
    }

    /// One optimisation step on `windows`, then, while the device still
    /// works through it, the next step's inputs for `next` (the windows the
    /// next call will get): the host's share of a step leaves the device's
    /// critical path.
    pub fn train_step_before(&mut self, windows: &[Window], next: Option<&[Window]>, epoch_progress: f64) -> Losses {
        let next = next.map(|windows| StepBatch { windows, assembled: None });
        self.run_step(StepBatch { windows, assembled: None }, next, epoch_progress)
    }

    /// Gradients and update of the current step on `batch` (from the
    /// inputs made ahead for it, if any); then, with this step's kernels
    /// queued, the inputs of the `next` batch, before the losses are read
    /// (which waits for the device).
    fn run_step(&mut self, batch: StepBatch, next: Option<StepBatch>, epoch_progress: f64) -> Losses {
        let step = self.global_step;
        let inputs = match self.prefetched.take() {
            Some(p) if p.step == step && p.windows == batch.windows => p.inputs,
            _ => self.inputs_for(batch, step),
        };
        let terms = self.gradients_with(inputs, step, epoch_progress, self.backward);
        self.adam.step(self.learning_rate(self.epoch));
        self.global_step += 1;
        if let Some(next) = next {
            let inputs = self.inputs_for(next, step + 1);
            self.prefetched = Some(Prefetched { step: step + 1, windows: next.windows.to_vec(), inputs });
        }
        terms.read()
    }

    /// Replace the parameters' gradients by those of the step's objective,
    /// with its backward run as `backward` says.
    pub fn gradients(&mut self, windows: &[Window], step: u64, epoch: f64, backward: Backward) -> Losses {
        let inputs = self.inputs_for(StepBatch { windows, assembled: None }, step);
        self.gradients_with(inputs, step, epoch, backward).read()
    }

    fn gradients_with(&mut self, inputs: StepInputs, step: u64, epoch: f64, backward: Backward) -> PendingLosses {
        self.seed_step(step);
        // G alone is one pass whichever way: cutting its features off buys
        // no memory, only a second backward and the surrogate term.
        let backward = match backward {
            Backward::Parts if self.config.ablation == crate::config::Ablation::Baseline => Backward::Whole,
            other => other,
        };
        let mut sink = match backward {
            Backward::Whole => Sink::graph(),
            Backward::Parts => Sink::backward(None),
            Backward::Checkpointed(clips) => Sink::backward(Some(clips)),
        };
        if sink.backward {
            self.adam.zero_grad();
        }
        let terms = self.objective(inputs, epoch, &mut sink);
        if let Some(total) = sink.finish() {
            // Taken from the backward and gathered, not accumulated into
            // zeroed gradients: an in-place add per parameter less.
            let grads = Tensor::run_backward(&[total], &self.adam.parameters(), false, false);
            self.adam.set_grads(&grads);
        }
        terms
    }

    /// Paper Eq. 1–8 for `windows`, part by part into `sink`.
    fn objective<'n>(&'n self, inputs: StepInputs, epoch: f64, sink: &mut Sink<'n>) -> PendingLosses {
        let cfg = &self.config;
        let ab = cfg.ablation;
        let StepInputs { g_in, target, weight: w, critic_weight, twin_target, sma, dma } = inputs;
        let b = target.size()[0];
        let kind = self.nets.kind();
        let x = g_in.narrow(0, 0, b);
        let l = &cfg.losses;
        let mut terms = PendingLosses::new(*l);

        // G on real clips, plus their structure-augmented twins (x_sa, X_sa)
        // seen by the same camera.
        let g = &self.nets.g;
        let Features { structural: fs, dynamic: fdy } = sink.encode(g, &g_in.to_kind(kind), true);
        let (s, d) = (fs.narrow(0, 0, b), fdy.narrow(0, 0, b));
        let part = mpjpe_loss(&sink.decode(g, &s, &d), &target, Some(&w));
        terms.add(Term::Pe, &part);
        sink.emit(part * l.pe);
        if let Some(target_sa) = &twin_target {
            let (s_sa, d_sa) = (fs.narrow(0, b, b), fdy.narrow(0, b, b));
            let part = mpjpe_loss(&sink.decode(g, &s, &d_sa), &target, Some(&w));
            terms.add(Term::Fd, &part);
            sink.emit(part * l.fd);
            let part = mpjpe_loss(&sink.decode(g, &s_sa, &d), target_sa, Some(&w));
            terms.add(Term::Fd, &part);
            sink.emit(part * l.fd);
        }

        // "Direct": synthetic pairs supervise G like real ones.
        let direct = [(ab == crate::config::Ablation::SaDirect, &sma), (ab == crate::config::Ablation::DaDirect, &dma)];
        for (on, pair) in direct {
            if let (true, Some((joined, ts))) = (on, pair) {
                let part = mpjpe_loss(&sink.forward(g, &joined.narrow(0, b, b).to_kind(kind)), ts, None);
                terms.add(Term::Pe, &part);
                sink.emit(part * l.pe);
            }
        }

        // ADG: the auxiliary estimator learns real and synthetic pairs; the
        // discriminator tells its synthetic-side features from G's real ones,
        // and the reversed gradient pushes both encoders to make them alike.
        // Every layer works per clip, so one pass over real and synthetic
        // clips together is the same function as two passes apart. One
        // graph holds everything anyway and takes the one pass, as the
        // reference does (larger matrix products: the reference split in two
        // is 3 % slower in fp32 on an H200); part by part, they go apart so
        // that each holds its activations alone.
        let lambda = cfg.grl.lambda(epoch);
        let g_real = Features { structural: s, dynamic: d };
        let adversaries: [(_, Option<&dyn Critic>, _, _, _); 2] = [
            (&self.nets.g_sma, self.nets.d_str.as_ref().map(|c| c as _), &sma, l.adv_str, Term::AdvStr),
            (&self.nets.g_dma, self.nets.d_dyn.as_ref().map(|c| c as _), &dma, l.adv_dyn, Term::AdvDyn),
        ];
        for (aux, critic, pair, weight, adv_term) in adversaries {
            let (Some(aux), Some(critic), Some((joined, ts))) = (aux, critic, pair) else { continue };
            let (synthetic, fa) = if sink.backward {
                let part = mpjpe_loss(&sink.forward(aux, &x.to_kind(kind)), &target, Some(&w));
                terms.add(Term::Pe, &part);
                sink.emit(part * l.pe);
                let fa = sink.encode(aux, &joined.narrow(0, b, b).to_kind(kind), false);
                (sink.decode(aux, &fa.structural, &fa.dynamic), fa)
            } else {
                let f = sink.encode(aux, &joined.to_kind(kind), false);
                let pose = sink.decode(aux, &f.structural, &f.dynamic);
                let part = mpjpe_loss(&pose.narrow(0, 0, b), &target, Some(&w));
                terms.add(Term::Pe, &part);
                sink.emit(part * l.pe);
                let fa = Features { structural: f.structural.narrow(0, b, b), dynamic: f.dynamic.narrow(0, b, b) };
                (pose.narrow(0, b, b), fa)
            };
            let part = mpjpe_loss(&synthetic, ts, None);
            let syn = critic.judge(&gradient_reversal(critic.stream(&fa), lambda), true);
            let real = critic.judge(&gradient_reversal(critic.stream(&g_real), lambda), true);
            let adv = lsgan_loss(&syn, &real, &critic_weight);
            terms.add(Term::Pe, &part);
            terms.add(adv_term, &adv);
            sink.emit(part * l.pe + adv * (weight * l.dg));
        }
        terms
    }

    /// Train epoch `self.epoch` to its end; `on_step` sees each step's losses.
    /// A loader thread assembles the next batches while a step runs.
    pub fn train_epoch(&mut self, mut on_step: impl FnMut(&Losses, usize)) -> Result<EpochRecord> {
        let started = std::time::Instant::now();
        let batches = self.epoch_batches(self.epoch);
        let n = batches.len();
        let frames = self.config.model.frames;
        let mut mean = Losses::default();
        let mut samples = 0;
        // The loader reads the videos while the steps borrow the trainer.
        let videos = std::mem::take(&mut self.data.train);
        let trained = std::thread::scope(|scope| -> Result<()> {
            let (send, batches_ready) = std::sync::mpsc::sync_channel::<HostBatch>(LOADER_AHEAD);
            let (videos, batches) = (&videos, &batches);
            scope.spawn(move || {
                for windows in batches {
                    // A closed channel: the steps stopped early.
                    if send.send(videos.host_batch(windows, frames)).is_err() {
                        break;
                    }
                }
            });
            let mut ready = batches_ready.iter().peekable();
            let mut i = 0;
            while let Some(batch) = ready.next() {
                let progress = self.epoch as f64 + i as f64 / n as f64;
                let this = StepBatch { windows: &batches[i], assembled: Some(&batch) };
                i += 1;
                // The loader is far ahead: the next batch is there already.
                let next = ready.peek().map(|assembled| StepBatch { windows: &batches[i], assembled: Some(assembled) });
                let terms = self.run_step(this, next, progress);
                if !terms.total.is_finite() {
                    return Err(Error::Config {
                        field: "learning_rate",
                        reason: format!(
                            "loss became {} at step {} (epoch {}): {terms:?}",
                            terms.total, self.global_step, self.epoch
                        ),
                    });
                }
                mean.add_scaled(&terms, 1.0 / n as f64);
                samples += batch.len();
                on_step(&terms, batch.len());
            }
            Ok(())
        });
        self.data.train = videos;
        trained?;
        let seconds = started.elapsed().as_secs_f64();
        let record = EpochRecord {
            epoch: self.epoch,
            steps: self.global_step,
            losses: mean,
            grl_lambda: self.config.grl.lambda(self.epoch as f64),
            learning_rate: self.learning_rate(self.epoch),
            samples_per_s: samples as f64 / seconds.max(1e-9),
            seconds,
            eval: None,
        };
        self.epoch += 1;
        Ok(record)
    }

    /// G's 3D for every frame of every video (root-relative mm, f32,
    /// F × 51 per video), with flip averaging when configured.
    pub fn predict(&self, videos: &VideoSet) -> Vec<Vec<f32>> {
        predict_videos(&self.nets.g, videos, self.config.model.frames, self.config.flip, self.device)
    }

    pub fn evaluate(&self, videos: &VideoSet) -> Result<EvalResult> {
        evaluate_predictions(videos, &self.predict(videos))
    }
}

/// Sliding non-overlapping windows of T frames over each video (the last
/// one edge-padded), batched; predictions of padding frames are dropped.
pub fn predict_videos(
    g: &dak_model::Estimator,
    videos: &VideoSet,
    frames: usize,
    flip: bool,
    device: Device,
) -> Vec<Vec<f32>> {
    let windows = videos.windows(frames);
    let mut out: Vec<Vec<f32>> = videos.videos.iter().map(|v| vec![0.0; v.len() * NUM_JOINTS * 3]).collect();
    let kind = g.kind();
    tch::no_grad(|| {
        for chunk in windows.chunks(256) {
            let x = videos.host_batch(chunk, frames).inputs_on(device).to_kind(kind);
            let mut pred = g.forward(&x, false).to_kind(Kind::Float);
            if flip {
                pred = (pred + data::flip(&g.forward(&data::flip(&x), false).to_kind(Kind::Float))) / 2.0;
            }
            // The root is the origin by definition of the targets.
            let pred = (&pred - pred.narrow(-2, 0, 1)) * 1000.0;
            let values = Vec::<f32>::try_from(pred.to_device(Device::Cpu).flatten(0, -1)).expect("f32 predictions");
            let per_window = frames * NUM_JOINTS * 3;
            for (k, w) in chunk.iter().enumerate() {
                let video = &mut out[w.video];
                let len = video.len() / (NUM_JOINTS * 3);
                for t in 0..frames {
                    let f = w.start as usize + t;
                    if f >= len {
                        break;
                    }
                    let src = &values[k * per_window + t * NUM_JOINTS * 3..][..NUM_JOINTS * 3];
                    video[f * NUM_JOINTS * 3..(f + 1) * NUM_JOINTS * 3].copy_from_slice(src);
                }
            }
        }
    });
    out
}

/// MPJPE and P-MPJPE of root-relative predictions against each video's
/// root-relative ground truth, over valid frames.
pub fn evaluate_predictions(videos: &VideoSet, predictions: &[Vec<f32>]) -> Result<EvalResult> {
    let (pred, gt): (Vec<_>, Vec<_>) = videos.valid_pose_pairs(predictions).map(|(_, _, p, g)| (p, g)).unzip();
    let err = |e: dak_core::GeometryError| Error::Data {
        path: videos.inputs.first().cloned().unwrap_or_default(),
        reason: format!("evaluation: {e}"),
    };
    if pred.is_empty() {
        return Err(Error::Data {
            path: videos.inputs.first().cloned().unwrap_or_default(),
            reason: "no valid evaluation frames".into(),
        });
    }
    Ok(EvalResult {
        mpjpe_mm: metrics::mpjpe(&pred, &gt).map_err(err)?,
        p_mpjpe_mm: metrics::p_mpjpe(&pred, &gt).map_err(err)?,
        frames: pred.len(),
    })
}
