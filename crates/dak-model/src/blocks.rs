//! Pre-norm transformer blocks with fused attention.

use tch::nn::{self, Module};
use tch::Tensor;

/// Multi-head self-attention over the second-to-last axis of `(N, S, C)`,
/// with `scaled_dot_product_attention` (flash / memory-efficient kernels
/// where the device has them).
#[derive(Debug)]
pub struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
}

impl Attention {
    pub fn new(p: nn::Path, channels: i64, heads: i64) -> Self {
        Attention {
            qkv: nn::linear(&p / "qkv", channels, 3 * channels, Default::default()),
            proj: nn::linear(&p / "proj", channels, channels, Default::default()),
            heads,
        }
    }

    pub fn forward(&self, x: &Tensor, dropout: f64, train: bool) -> Tensor {
        let (n, s, c) = x.size3().expect("attention input is (N, S, C)");
        let qkv = self.qkv.forward(x).view([n, s, 3, self.heads, c / self.heads]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let p = if train { dropout } else { 0.0 };
        let out = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, p, false, None, false);
        self.proj.forward(&out.transpose(1, 2).reshape([n, s, c]))
    }
}

/// LN → attention → residual; LN → MLP (GELU) → residual.
#[derive(Debug)]
pub struct Block {
    norm1: nn::LayerNorm,
    attention: Attention,
    norm2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    dropout: f64,
}

impl Block {
    pub fn new(p: nn::Path, channels: i64, heads: i64, mlp_ratio: i64, dropout: f64) -> Self {
        Block {
            norm1: nn::layer_norm(&p / "norm1", vec![channels], Default::default()),
            attention: Attention::new(&p / "attn", channels, heads),
            norm2: nn::layer_norm(&p / "norm2", vec![channels], Default::default()),
            fc1: nn::linear(&p / "mlp" / "fc1", channels, mlp_ratio * channels, Default::default()),
            fc2: nn::linear(&p / "mlp" / "fc2", mlp_ratio * channels, channels, Default::default()),
            dropout,
        }
    }

    /// `x`: `(N, S, C)`, attention over S.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = x + self.attention.forward(&self.norm1.forward(x), self.dropout, train).dropout(self.dropout, train);
        let h = self.fc2.forward(&self.fc1.forward(&self.norm2.forward(&x)).gelu("none"));
        &x + h.dropout(self.dropout, train)
    }
}

/// Attention over joints: `(B, T, J, C)` viewed as `(B·T, J, C)`.
pub fn over_joints(block: &Block, x: &Tensor, train: bool) -> Tensor {
    let (b, t, j, c) = x.size4().expect("(B, T, J, C)");
    block.forward(&x.reshape([b * t, j, c]), train).view([b, t, j, c])
}

/// Attention over frames: `(B, T, J, C)` viewed as `(B·J, T, C)`.
pub fn over_frames(block: &Block, x: &Tensor, train: bool) -> Tensor {
    let (b, t, j, c) = x.size4().expect("(B, T, J, C)");
    let y = block.forward(&x.permute([0, 2, 1, 3]).reshape([b * j, t, c]), train);
    y.view([b, j, t, c]).permute([0, 2, 1, 3])
}

/// Which axis a block attends over in a `(B, T, J, C)` stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Joints,
    Frames,
}

impl Axis {
    pub fn apply(self, block: &Block, x: &Tensor, train: bool) -> Tensor {
        match self {
            Axis::Joints => over_joints(block, x, train),
            Axis::Frames => over_frames(block, x, train),
        }
    }
}

/// A run of blocks whose activations were not kept (activation
/// checkpointing): only each block's input is. The run's output is a leaf
/// that collects the gradient of its uses; [`Recompute::backward`], called
/// after their backward, runs each block again, last first, to carry that
/// gradient into the block weights and into the graph of the run's input.
/// tch has no custom autograd nodes, so each recomputed block gets its
/// incoming gradient through the surrogate Σ y · g, whose gradient is g.
/// Needs deterministic blocks (dropout 0): the recomputation must see what
/// the first pass saw. Every block works clip by clip, so the recomputation
/// also goes `chunk` clips at a time: the activations alive at once are one
/// block's for `chunk` clips.
pub struct Recompute<'a> {
    /// The run's input, with its graph (embedding, fusion).
    start: Tensor,
    /// Each block with its input, detached.
    steps: Vec<(&'a Block, Axis, Tensor)>,
    /// The run's output, a leaf.
    output: Tensor,
    train: bool,
    chunk: i64,
}

impl<'a> Recompute<'a> {
    /// Runs `blocks` on `start` without recording a graph; returns the
    /// output (a leaf) and what the backward needs.
    pub fn forward(
        start: Tensor,
        blocks: impl IntoIterator<Item = (&'a Block, Axis)>,
        train: bool,
        chunk: usize,
    ) -> (Tensor, Recompute<'a>) {
        let mut steps = Vec::new();
        let mut x = start.detach();
        tch::no_grad(|| {
            for (block, axis) in blocks {
                let y = axis.apply(block, &x, train);
                steps.push((block, axis, std::mem::replace(&mut x, y)));
            }
        });
        let output = x.set_requires_grad(true);
        (output.shallow_clone(), Recompute { start, steps, output, train, chunk: chunk.max(1) as i64 })
    }

    /// Backward from the gradient the output collected (none: nothing used
    /// it, nothing to do).
    pub fn backward(self) {
        let mut grad = self.output.grad();
        if !grad.defined() {
            return;
        }
        for (block, axis, input) in self.steps.iter().rev() {
            let clips = input.size()[0];
            let mut grads = Vec::new();
            for first in (0..clips).step_by(self.chunk as usize) {
                let n = self.chunk.min(clips - first);
                let x = input.narrow(0, first, n).detach().set_requires_grad(true);
                let y = axis.apply(block, &x, self.train);
                (y * grad.narrow(0, first, n)).sum(tch::Kind::Float).backward();
                grads.push(x.grad());
            }
            grad = if grads.len() == 1 { grads.remove(0) } else { Tensor::cat(&grads, 0) };
        }
        if self.start.requires_grad() {
            (&self.start * grad).sum(tch::Kind::Float).backward();
        }
    }
}
