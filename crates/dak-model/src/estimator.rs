//! G: structural encoder, dynamic encoder, MixSTE-style decoder, head.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::blocks::{over_frames, over_joints, Axis, Block, Recompute};
use crate::config::ModelConfig;

/// Disentangled features of a clip, both `(B, T, J, C)`.
#[derive(Debug)]
pub struct Features {
    /// From attention over the joints of each frame (spatial positions).
    pub structural: Tensor,
    /// From attention over the frames of each joint (temporal positions).
    pub dynamic: Tensor,
}

#[derive(Debug)]
pub struct Estimator {
    pub config: ModelConfig,
    structural_embed: nn::Linear,
    structural_pos: Tensor,
    structural_blocks: Vec<Block>,
    dynamic_embed: nn::Linear,
    dynamic_pos: Tensor,
    dynamic_blocks: Vec<Block>,
    fuse: nn::Linear,
    decoder_spatial_pos: Tensor,
    decoder_temporal_pos: Tensor,
    spatial_blocks: Vec<Block>,
    temporal_blocks: Vec<Block>,
    norm: nn::LayerNorm,
    head: nn::Linear,
}

impl Estimator {
    /// Variables live under `p` as `structural.*`, `dynamic.*`, `decoder.*`, `head.*`.
    pub fn new(p: &nn::Path, config: &ModelConfig) -> Self {
        config.validate().expect("validated model configuration");
        let (t, j, c) = (config.frames as i64, config.joints as i64, config.channels as i64);
        let (h, r, drop) = (config.heads as i64, config.mlp_ratio as i64, config.dropout);
        let blocks =
            |p: nn::Path, n: usize| -> Vec<Block> { (0..n).map(|i| Block::new(&p / i, c, h, r, drop)).collect() };
        let pos = |p: nn::Path, shape: &[i64]| p.var("pos", shape, nn::Init::Randn { mean: 0.0, stdev: 0.02 });
        let s = p / "structural";
        let d = p / "dynamic";
        let dec = p / "decoder";
        Estimator {
            config: config.clone(),
            structural_embed: nn::linear(&s / "embed", 2, c, Default::default()),
            structural_pos: pos(&s / "spatial", &[1, 1, j, c]),
            structural_blocks: blocks(&s / "blocks", config.encoder_layers.div_ceil(2)),
            dynamic_embed: nn::linear(&d / "embed", 2, c, Default::default()),
            dynamic_pos: pos(&d / "temporal", &[1, t, 1, c]),
            dynamic_blocks: blocks(&d / "blocks", config.encoder_layers / 2),
            fuse: nn::linear(&dec / "fuse", 2 * c, c, Default::default()),
            decoder_spatial_pos: pos(&dec / "spatial", &[1, 1, j, c]),
            decoder_temporal_pos: pos(&dec / "temporal", &[1, t, 1, c]),
            spatial_blocks: blocks(&dec / "spatial_blocks", config.decoder_layers),
            temporal_blocks: blocks(&dec / "temporal_blocks", config.decoder_layers),
            norm: nn::layer_norm(&dec / "norm", vec![c], Default::default()),
            head: nn::linear(p / "head", c, 3, Default::default()),
        }
    }

    /// 2D keypoints `(B, T, J, 2)` (normalised screen coordinates) to features.
    pub fn encode(&self, x: &Tensor, train: bool) -> Features {
        let x = x.to_kind(self.kind());
        let mut s = self.structural_embed.forward(&x) + &self.structural_pos;
        for b in &self.structural_blocks {
            s = over_joints(b, &s, train);
        }
        let mut d = self.dynamic_embed.forward(&x) + &self.dynamic_pos;
        for b in &self.dynamic_blocks {
            d = over_frames(b, &d, train);
        }
        Features { structural: s, dynamic: d }
    }

    /// Features to root-relative 3D `(B, T, J, 3)`. Taking s and d from
    /// different clips is the cross-reconstruction of Eq. 1–3.
    pub fn decode(&self, structural: &Tensor, dynamic: &Tensor, train: bool) -> Tensor {
        let mut x = self.fuse.forward(&Tensor::cat(&[structural, dynamic], -1));
        x = x + &self.decoder_spatial_pos + &self.decoder_temporal_pos;
        for (s, t) in self.spatial_blocks.iter().zip(&self.temporal_blocks) {
            x = over_joints(s, &x, train);
            x = over_frames(t, &x, train);
        }
        self.head.forward(&self.norm.forward(&x))
    }

    /// [`Self::encode`] keeping only each block's input (activation
    /// checkpointing). The features come back as leaves that collect the
    /// gradient of every use; [`EncoderTape::backward`], called after the
    /// last use's backward, carries it into the encoder, recomputing
    /// `chunk` clips at a time.
    pub fn encode_checkpointed(&self, x: &Tensor, train: bool, chunk: usize) -> (Features, EncoderTape<'_>) {
        let x = x.to_kind(self.kind());
        let start = self.structural_embed.forward(&x) + &self.structural_pos;
        let (s, structural) =
            Recompute::forward(start, self.structural_blocks.iter().map(|b| (b, Axis::Joints)), train, chunk);
        let start = self.dynamic_embed.forward(&x) + &self.dynamic_pos;
        let (d, dynamic) =
            Recompute::forward(start, self.dynamic_blocks.iter().map(|b| (b, Axis::Frames)), train, chunk);
        (Features { structural: s, dynamic: d }, EncoderTape { runs: [structural, dynamic] })
    }

    /// [`Self::decode`] keeping only each block's input. The result's graph
    /// reaches back to the last block only; [`DecoderTape::backward`], called
    /// after the backward of the loss built on it, carries the gradient on
    /// into the blocks, the fusion and `structural`/`dynamic`.
    pub fn decode_checkpointed(
        &self,
        structural: &Tensor,
        dynamic: &Tensor,
        train: bool,
        chunk: usize,
    ) -> (Tensor, DecoderTape<'_>) {
        let mut start = self.fuse.forward(&Tensor::cat(&[structural, dynamic], -1));
        start = start + &self.decoder_spatial_pos + &self.decoder_temporal_pos;
        let blocks = self
            .spatial_blocks
            .iter()
            .zip(&self.temporal_blocks)
            .flat_map(|(s, t)| [(s, Axis::Joints), (t, Axis::Frames)]);
        let (x, run) = Recompute::forward(start, blocks, train, chunk);
        (self.head.forward(&self.norm.forward(&x)), DecoderTape { run })
    }

    /// The kind the weights (and so the activations) are in.
    pub fn kind(&self) -> tch::Kind {
        self.structural_embed.ws.kind()
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let f = self.encode(x, train);
        self.decode(&f.structural, &f.dynamic, train)
    }
}

/// The encoder runs of a checkpointed [`Estimator::encode_checkpointed`].
pub struct EncoderTape<'a> {
    /// The structural and the dynamic run.
    runs: [Recompute<'a>; 2],
}

impl EncoderTape<'_> {
    /// Backward through the encoder with the gradient the features
    /// collected (a feature nothing used is skipped).
    pub fn backward(self) {
        for run in self.runs {
            run.backward();
        }
    }
}

/// The decoder run of a checkpointed [`Estimator::decode_checkpointed`];
/// the loss's backward stops at the last block's output.
pub struct DecoderTape<'a> {
    run: Recompute<'a>,
}

impl DecoderTape<'_> {
    pub fn backward(self) {
        self.run.backward();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    fn tiny() -> ModelConfig {
        ModelConfig {
            frames: 9,
            channels: 64,
            encoder_layers: 2,
            decoder_layers: 1,
            heads: 4,
            ..ModelConfig::default()
        }
    }

    #[test]
    fn shapes_and_disentangled_paths() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Estimator::new(&vs.root(), &tiny());
        let x = Tensor::randn([3, 9, 17, 2], (Kind::Float, Device::Cpu));
        let f = g.encode(&x, false);
        assert_eq!(f.structural.size(), vec![3, 9, 17, 64]);
        assert_eq!(f.dynamic.size(), vec![3, 9, 17, 64]);
        assert_eq!(g.forward(&x, false).size(), vec![3, 9, 17, 3]);
        // The structural path never mixes frames: changing frame 5 leaves
        // frame 0's structural features alone, but not its dynamic ones.
        let y = x.copy();
        let _ = y.get(0).get(5).fill_(3.0);
        let g2 = g.encode(&y, false);
        let diff = |a: &Tensor, b: &Tensor| f64::try_from((a.get(0).get(0) - b.get(0).get(0)).abs().max()).unwrap();
        assert!(diff(&f.structural, &g2.structural) < 1e-6);
        assert!(diff(&f.dynamic, &g2.dynamic) > 1e-4);
    }

    /// Checkpointed encode/decode give the gradients of the plain passes,
    /// for every parameter and for the input's graph.
    #[test]
    fn checkpointed_passes_give_the_plain_gradients() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Estimator::new(&vs.root(), &tiny());
        let x = Tensor::randn([2, 9, 17, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let target = Tensor::randn([2, 9, 17, 3], (Kind::Float, Device::Cpu));
        let grads = |checkpointed: bool| -> Vec<(String, Tensor)> {
            for t in vs.variables().values().chain([&x]) {
                let grad = t.grad();
                if grad.defined() {
                    let _ = grad.detach().zero_();
                }
            }
            // Features used twice (both decodes), as in cross-reconstruction.
            if checkpointed {
                // One clip at a time in the encoder, both at once in the decoder.
                let (f, encoder) = g.encode_checkpointed(&x, true, 1);
                for swap in [false, true] {
                    let d = if swap { f.dynamic.flip([0]) } else { f.dynamic.shallow_clone() };
                    let (y, decoder) = g.decode_checkpointed(&f.structural, &d, true, 2);
                    (y - &target).square().mean(Kind::Float).backward();
                    decoder.backward();
                }
                encoder.backward();
            } else {
                let f = g.encode(&x, true);
                let mut loss = Tensor::zeros([], (Kind::Float, Device::Cpu));
                for swap in [false, true] {
                    let d = if swap { f.dynamic.flip([0]) } else { f.dynamic.shallow_clone() };
                    loss += (g.decode(&f.structural, &d, true) - &target).square().mean(Kind::Float);
                }
                loss.backward();
            }
            let mut out: Vec<(String, Tensor)> =
                vs.variables().into_iter().map(|(n, v)| (n, v.grad().copy())).collect();
            out.push(("input".into(), x.grad().copy()));
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        };
        let plain = grads(false);
        let checkpointed = grads(true);
        for ((name, a), (_, b)) in plain.iter().zip(&checkpointed) {
            let scale = f64::try_from(a.abs().max()).unwrap().max(1e-6);
            let diff = f64::try_from((a - b).abs().max()).unwrap();
            assert!(diff <= 1e-4 * scale, "{name}: checkpointed gradient off by {diff} (scale {scale})");
            assert!(f64::try_from(b.abs().sum(Kind::Float)).unwrap() > 0.0, "{name}: no gradient");
        }
    }

    #[test]
    fn overfits_a_handful_of_clips_to_a_few_mm() {
        dak_core::testing::run_alone("estimator::tests::overfits_a_handful_of_clips_to_a_few_mm_alone");
    }

    /// Its initial weights and dropout masks come from torch's global
    /// generator, which the other tests of this binary draw from at the
    /// same time: alone, the run is the same every time.
    #[test]
    #[ignore = "run alone by overfits_a_handful_of_clips_to_a_few_mm"]
    fn overfits_a_handful_of_clips_to_a_few_mm_alone() {
        use dak_datasets::synth::{self, motion::Action, SynthConfig};
        // Two 9-frame clips of demo motion: 2D = x/z, y/z; 3D root-relative in metres.
        let config = SynthConfig { frames: 18, ..SynthConfig::default() };
        let (_, poses) = synth::level_camera_sequences(&config, 1, &[Action::Walk]).remove(0);
        let (mut x2, mut x3) = (Vec::new(), Vec::new());
        for p in &poses {
            for q in p {
                x2.extend([(q.x / q.z) as f32, (q.y / q.z) as f32]);
                x3.extend((q - p[0]).iter().map(|v| (*v / 1000.0) as f32));
            }
        }
        let x = Tensor::from_slice(&x2).view([2, 9, 17, 2]) * 4.0;
        let y = Tensor::from_slice(&x3).view([2, 9, 17, 3]);
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Estimator::new(&vs.root(), &ModelConfig { channels: 48, ..tiny() });
        // Memorising with an L2-norm loss is slow at the end: decay the
        // learning rate geometrically to 1% so Adam settles instead of rattling.
        let (lr, steps) = (2e-3, 2000);
        let mut opt = nn::Adam::default().build(&vs, lr).unwrap();
        let mut mpjpe = f64::INFINITY;
        for step in 0..steps {
            opt.set_lr(lr * 0.01f64.powf(step as f64 / steps as f64));
            let err =
                (g.forward(&x, true) - &y).square().sum_dim_intlist(-1, false, None::<Kind>).sqrt().mean(Kind::Float);
            opt.backward_step(&err);
            mpjpe = f64::try_from(&err).unwrap() * 1000.0;
        }
        let eval = f64::try_from(
            (g.forward(&x, false) - &y).square().sum_dim_intlist(-1, false, None::<Kind>).sqrt().mean(Kind::Float),
        )
        .unwrap()
            * 1000.0;
        assert!(mpjpe < 10.0 && eval < 10.0, "still {mpjpe:.1} mm (eval {eval:.1} mm) from two memorisable clips");
    }
}
