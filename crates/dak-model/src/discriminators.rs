//! D_str and D_dyn: LSGAN critics on encoder features.

use tch::nn::{self, Module};
use tch::Tensor;

use crate::blocks::Block;
use crate::estimator::Features;

/// A critic of one encoder feature stream: D_str judges the structural
/// stream, D_dyn the dynamic one. One score per clip, `(B,)`.
pub trait Critic {
    /// The stream of `features` this critic judges.
    fn stream<'f>(&self, features: &'f Features) -> &'f Tensor;
    fn judge(&self, stream: &Tensor, train: bool) -> Tensor;
}

/// D_str on structural features fused over time and joints: `(B, T, J, C)` → `(B,)`.
#[derive(Debug)]
pub struct StructuralDiscriminator {
    norm: nn::LayerNorm,
    mlp: nn::Sequential,
}

impl StructuralDiscriminator {
    pub fn new(p: &nn::Path, channels: i64) -> Self {
        let mlp = nn::seq()
            .add(nn::linear(p / "fc1", channels, channels / 2, Default::default()))
            .add_fn(|x| x.leaky_relu())
            .add(nn::linear(p / "fc2", channels / 2, 1, Default::default()));
        // Encoder features are an unnormalised residual stream whose scale
        // drifts; normalising first keeps the critic's outputs (and the LSGAN
        // loss) in range whatever that scale is.
        StructuralDiscriminator { norm: nn::layer_norm(p / "norm", vec![channels], Default::default()), mlp }
    }

    pub fn forward(&self, structural: &Tensor) -> Tensor {
        let pooled = structural.mean_dim([1, 2].as_slice(), false, structural.kind());
        self.mlp.forward(&self.norm.forward(&pooled)).squeeze_dim(-1)
    }
}

impl Critic for StructuralDiscriminator {
    fn stream<'f>(&self, features: &'f Features) -> &'f Tensor {
        &features.structural
    }

    fn judge(&self, stream: &Tensor, _train: bool) -> Tensor {
        self.forward(stream)
    }
}

/// D_dyn: a one-block temporal transformer on dynamic features pooled over
/// joints: `(B, T, J, C)` → `(B,)`.
#[derive(Debug)]
pub struct DynamicDiscriminator {
    norm: nn::LayerNorm,
    embed: nn::Linear,
    pos: Tensor,
    block: Block,
    out: nn::Linear,
}

impl DynamicDiscriminator {
    pub fn new(p: &nn::Path, channels: i64, frames: i64) -> Self {
        let width = (channels / 2).max(8);
        DynamicDiscriminator {
            norm: nn::layer_norm(p / "norm", vec![channels], Default::default()),
            embed: nn::linear(p / "embed", channels, width, Default::default()),
            pos: p.var("pos", &[1, frames, width], nn::Init::Randn { mean: 0.0, stdev: 0.02 }),
            block: Block::new(p / "block", width, 4, 2, 0.0),
            out: nn::linear(p / "out", width, 1, Default::default()),
        }
    }

    pub fn forward(&self, dynamic: &Tensor, train: bool) -> Tensor {
        let pooled = dynamic.mean_dim([2].as_slice(), false, dynamic.kind());
        let h = self.block.forward(&(self.embed.forward(&self.norm.forward(&pooled)) + &self.pos), train);
        self.out.forward(&h.mean_dim([1].as_slice(), false, h.kind())).squeeze_dim(-1)
    }
}

impl Critic for DynamicDiscriminator {
    fn stream<'f>(&self, features: &'f Features) -> &'f Tensor {
        &features.dynamic
    }

    fn judge(&self, stream: &Tensor, train: bool) -> Tensor {
        self.forward(stream, train)
    }
}
