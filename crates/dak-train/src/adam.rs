//! Adam whose state is ours to save: libtorch's optimizer state is not
//! reachable through tch, and resuming exactly needs the moments.
//!
//! tch has no `_foreach_`/`_fused_adam_`, and an update per parameter
//! tensor is ~8 kernels × hundreds of tensors, which on a GPU costs more
//! than the arithmetic. So the parameters of one dtype live in one flat
//! buffer (each variable is a view into it, `set_data`), as do their
//! gradients (autograd accumulates into them in place, or
//! [`Adam::set_grads`] gathers a backward's gradients into them with one
//! `cat`), the moments and the fp32 master copy: an update is a handful of
//! kernels over the whole model.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// One parameter: the model's tensor (a view into its group's flat
/// buffer), where it lies there, and views of the moments and master copy.
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    offset: i64,
    numel: i64,
    master: Option<Tensor>,
    m: Tensor,
    v: Tensor,
}

/// The parameters of one dtype: flat buffers and their slots.
#[derive(Debug)]
struct Group {
    slots: Vec<Slot>,
    param: Tensor,
    /// Every slot's gradient is a view into this (from [`Adam::new`] on).
    /// Autograd adds into a defined gradient in place; only a backward that
    /// creates a graph would replace it, and none here does (checked in
    /// debug builds: the check costs a call per parameter).
    grad: Tensor,
    /// Zeros for the alignment gaps when gradients are gathered.
    gap: Tensor,
    master: Option<Tensor>,
    m: Tensor,
    v: Tensor,
}

#[derive(Debug)]
pub struct Adam {
    groups: Vec<Group>,
    betas: [f64; 2],
    eps: f64,
    /// Updates applied so far (bias correction).
    pub steps: i64,
}

/// Where each parameter starts in its group's buffers, in bytes: cuBLAS
/// takes its fastest (vectorised, tensor-core) kernels only for operands
/// aligned to 16 bytes, and a packed layout shifted every parameter after a
/// 1-element bias (the critics' outputs) off that. 256 is what cudaMalloc
/// gives a tensor of its own.
pub const PARAM_ALIGN_BYTES: i64 = 256;

/// Each variable's offset (in elements) in a buffer that holds them all,
/// every one starting at a multiple of [`PARAM_ALIGN_BYTES`]; and the total.
fn aligned_offsets(numels: impl IntoIterator<Item = i64>, elt_size: i64) -> (Vec<i64>, i64) {
    let step = (PARAM_ALIGN_BYTES / elt_size).max(1);
    let mut end: i64 = 0;
    let offsets = numels
        .into_iter()
        .map(|n| {
            let offset = (end + step - 1) / step * step;
            end = offset + n;
            offset
        })
        .collect();
    (offsets, end)
}

impl Group {
    fn new(mut vars: Vec<(String, Tensor)>) -> Group {
        let (kind, device) = (vars[0].1.kind(), vars[0].1.device());
        let elt_size = kind.elt_size_in_bytes() as i64;
        let (offsets, total) = aligned_offsets(vars.iter().map(|(_, t)| t.numel() as i64), elt_size);
        let param = Tensor::zeros([total], (kind, device));
        let grad = Tensor::zeros([total], (kind, device));
        let gap = Tensor::zeros([PARAM_ALIGN_BYTES / elt_size], (kind, device));
        let master = (kind != Kind::Float).then(|| Tensor::zeros([total], (Kind::Float, device)));
        let m = Tensor::zeros([total], (Kind::Float, device));
        let v = Tensor::zeros([total], (Kind::Float, device));
        // tch cannot assign `.grad`: one backward of Σ 0·p gives each
        // variable a gradient, which becomes a view into `grad` below
        // (autograd then accumulates into it in place).
        tch::with_grad(|| {
            let zeros: Vec<Tensor> = vars.iter().map(|(_, var)| var.sum(Kind::Float) * 0.0).collect();
            Tensor::stack(&zeros, 0).sum(Kind::Float).backward();
        });
        let slots = tch::no_grad(|| {
            vars.drain(..)
                .zip(offsets)
                .map(|((name, mut var), offset)| {
                    let numel = var.numel() as i64;
                    let shape = var.size();
                    let part = |t: &Tensor| t.narrow(0, offset, numel).view(shape.as_slice());
                    part(&param).copy_(&var);
                    var.set_data(&part(&param));
                    var.grad().set_data(&part(&grad));
                    let master = master.as_ref().map(|flat| {
                        let mut p = part(flat);
                        p.copy_(&var);
                        p
                    });
                    Slot { name, param: var, offset, numel, master, m: part(&m), v: part(&v) }
                })
                .collect()
        });
        Group { slots, param, grad, gap, master, m, v }
    }

    /// Whether every gradient is still the view of `grad` it was made.
    fn grads_are_flat(&self) -> bool {
        let (base, size) = (self.grad.data_ptr() as usize, self.grad.kind().elt_size_in_bytes());
        self.slots.iter().all(|s| {
            let g = s.param.grad();
            g.defined() && g.data_ptr() as usize == base + s.offset as usize * size
        })
    }

    /// Write `grads` (one per slot, undefined for none) into `grad`, gaps
    /// and missing ones as zeros: one `cat` of every piece.
    fn gather(&mut self, grads: &mut dyn Iterator<Item = &Tensor>) {
        let mut pieces = Vec::with_capacity(2 * self.slots.len());
        let mut end = 0;
        for s in &self.slots {
            let g = grads.next().expect("one gradient per parameter");
            if s.offset > end {
                pieces.push(self.gap.narrow(0, 0, s.offset - end));
            }
            pieces.push(match g.defined() {
                true => g.reshape([-1]),
                false => Tensor::zeros([s.numel], (self.grad.kind(), self.grad.device())),
            });
            end = s.offset + s.numel;
        }
        let _ = Tensor::cat_out(&self.grad, &pieces, 0);
    }
}

impl Adam {
    /// Over every trainable variable of `vs`, sorted by name so the state
    /// file and the update order never depend on hash order. The variables
    /// become views into flat buffers (same values).
    pub fn new(vs: &VarStore, betas: [f64; 2], eps: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let mut by_kind: Vec<(Kind, Vec<(String, Tensor)>)> = Vec::new();
        for (name, t) in vars {
            match by_kind.iter_mut().find(|(k, _)| *k == t.kind()) {
                Some((_, group)) => group.push((name, t)),
                None => by_kind.push((t.kind(), vec![(name, t)])),
            }
        }
        let groups = by_kind.into_iter().map(|(_, vars)| Group::new(vars)).collect();
        Adam { groups, betas, eps, steps: 0 }
    }

    /// Zero the gradients before a backward that accumulates into them.
    pub fn zero_grad(&mut self) {
        for group in &mut self.groups {
            debug_assert!(group.grads_are_flat(), "a gradient left its flat buffer");
            let _ = group.grad.zero_();
        }
    }

    /// The trainable variables, in the order [`Self::set_grads`] takes
    /// their gradients.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.groups.iter().flat_map(|g| &g.slots).map(|s| s.param.shallow_clone()).collect()
    }

    /// Make `grads` (one per [`Self::parameters`], undefined where the
    /// objective did not reach it: zero) the gradients. With those taken
    /// from the backward (`Tensor::run_backward`), this is a handful of
    /// copies instead of the in-place add per parameter that a backward
    /// accumulating into zeroed gradients makes.
    pub fn set_grads(&mut self, grads: &[Tensor]) {
        let expected: usize = self.groups.iter().map(|g| g.slots.len()).sum();
        assert_eq!(grads.len(), expected, "one gradient per parameter");
        let mut grads = grads.iter();
        tch::no_grad(|| {
            for group in &mut self.groups {
                group.gather(&mut grads);
            }
        });
    }

    /// One update with learning rate `lr` from the gradients in place.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let [b1, b2] = self.betas;
        let c1 = 1.0 - b1.powi(self.steps as i32);
        let c2 = 1.0 - b2.powi(self.steps as i32);
        let scale = -c1 / lr;
        // m ← m + (1−β1)(g − m), v ← v + (1−β2)(g² − v),
        // p ← p − lr/c1 · m / (√v/√c2 + ε), the last as one addcdiv with the
        // scale folded into the denominator. A parameter no backward has
        // ever reached has zero moments, so an update of zero: it keeps its
        // value. One reached before but not this step has a zero gradient
        // and moves on its momentum (PyTorch skips it instead).
        tch::no_grad(|| {
            for group in &mut self.groups {
                debug_assert!(group.grads_are_flat(), "a gradient left its flat buffer");
                let g = group.grad.to_kind(Kind::Float);
                let _ = group.m.lerp_(&g, 1.0 - b1);
                let _ = group.v.lerp_(&g.square(), 1.0 - b2);
                let mut denom = group.v.sqrt();
                let _ = denom.g_mul_scalar_(scale / c2.sqrt()).g_add_scalar_(self.eps * scale);
                match &mut group.master {
                    Some(master) => {
                        let _ = master.addcdiv_(&group.m, &denom);
                        group.param.copy_(master);
                    }
                    None => {
                        let _ = group.param.addcdiv_(&group.m, &denom);
                    }
                }
            }
        });
    }

    /// The fp32 master copy of each reduced-precision variable, by name:
    /// the weights a bf16 run has learnt, before rounding to bf16.
    pub fn master_weights(&self) -> std::collections::HashMap<&str, &Tensor> {
        self.groups.iter().flat_map(|g| &g.slots).filter_map(|s| Some((s.name.as_str(), s.master.as_ref()?))).collect()
    }

    /// Moments (and master weights) as named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for s in self.groups.iter().flat_map(|g| &g.slots) {
            out.push((format!("adam.m.{}", s.name), s.m.shallow_clone()));
            out.push((format!("adam.v.{}", s.name), s.v.shallow_clone()));
            if let Some(master) = &s.master {
                out.push((format!("adam.master.{}", s.name), master.shallow_clone()));
            }
        }
        out
    }

    /// Restore from [`Self::state`]'s tensors; names must match exactly.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        steps: i64,
    ) -> Result<(), String> {
        tch::no_grad(|| {
            for s in self.groups.iter_mut().flat_map(|g| &mut g.slots) {
                let get = |kind: &str| {
                    let key = format!("adam.{kind}.{}", s.name);
                    tensors.get(&key).ok_or_else(|| format!("missing optimizer tensor {key}"))
                };
                s.m.copy_(get("m")?);
                s.v.copy_(get("v")?);
                if let Some(master) = &mut s.master {
                    master.copy_(get("master")?);
                }
            }
            Ok::<(), String>(())
        })?;
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::{nn, Device};

    /// Same trajectory as libtorch's Adam.
    #[test]
    fn matches_torch_adam() {
        let run = |ours: bool| -> Vec<f32> {
            // No global RNG: tests run in parallel threads that share it.
            let vs = VarStore::new(Device::Cpu);
            let mut lin = nn::linear(vs.root() / "l", 4, 2, Default::default());
            let fixed =
                |n: i64, shape: &[i64]| (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.37).sin().view(shape);
            tch::no_grad(|| {
                lin.ws.copy_(&fixed(8, &[2, 4]));
                lin.bs.as_mut().unwrap().copy_(&fixed(2, &[2]));
            });
            let x = fixed(32, &[8, 4]);
            let y = fixed(16, &[8, 2]).cos();
            let mut mine = Adam::new(&vs, [0.9, 0.999], 1e-8);
            let mut theirs = nn::Adam::default().build(&vs, 1e-2).unwrap();
            for _ in 0..20 {
                let loss = (nn::Module::forward(&lin, &x) - &y).square().mean(Kind::Float);
                if ours {
                    mine.zero_grad();
                    loss.backward();
                    mine.step(1e-2);
                } else {
                    theirs.backward_step(&loss);
                }
            }
            Vec::<f32>::try_from(lin.ws.flatten(0, -1)).unwrap()
        };
        let (a, b) = (run(true), run(false));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    fn loss_of(lin: &nn::Linear) -> Tensor {
        let x = (Tensor::arange(24, (Kind::Float, Device::Cpu)) * 0.31).sin().view([6, 4]);
        nn::Module::forward(lin, &x).square().mean(Kind::Float)
    }

    /// Variables, gradients and moments share flat buffers, and the
    /// variables the model holds see every update.
    #[test]
    fn parameters_and_gradients_live_in_one_buffer() {
        let vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "l", 4, 3, Default::default());
        let before = lin.ws.copy();
        let mut adam = Adam::new(&vs, [0.9, 0.999], 1e-8);
        assert_eq!(lin.ws, before, "flattening keeps the values");
        assert_eq!(adam.groups.len(), 1);
        let base = adam.groups[0].param.data_ptr() as usize;
        let slot_ptrs: Vec<usize> = [lin.bs.as_ref().unwrap(), &lin.ws].iter().map(|t| t.data_ptr() as usize).collect();
        // l.bias then l.weight, by name; the weight not packed right after
        // the 3-float bias but at the next 256 bytes.
        assert_eq!(slot_ptrs, [base, base + 256]);
        for _ in 0..3 {
            adam.zero_grad();
            loss_of(&lin).backward();
            adam.step(1e-2);
            assert!(adam.groups[0].grads_are_flat());
        }
        assert_ne!(lin.ws, before);
        adam.zero_grad();
        assert_eq!(adam.groups[0].grad.abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(lin.ws.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    /// Every parameter starts 256-byte aligned in its buffers, whatever
    /// the sizes before it (a packed layout put the critics' 1-element
    /// biases' successors off cuBLAS's 16-byte alignment).
    #[test]
    fn parameters_start_aligned() {
        assert_eq!(aligned_offsets([3, 8, 1, 130, 128], 2), (vec![0, 128, 256, 384, 640], 768));
        assert_eq!(aligned_offsets([3, 64, 1], 4), (vec![0, 64, 128], 129));
        assert_eq!(aligned_offsets([], 4), (vec![], 0));
        for kind in [Kind::Float, Kind::BFloat16] {
            let vs = VarStore::new(Device::Cpu);
            let layers: Vec<nn::Linear> =
                (0..4).map(|i| nn::linear(vs.root() / format!("l{i}"), 5, 1 + i, Default::default())).collect();
            let mut vs = vs;
            vs.set_kind(kind);
            let adam = Adam::new(&vs, [0.9, 0.999], 1e-8);
            let base = adam.groups[0].param.data_ptr() as usize;
            for l in &layers {
                for t in [&l.ws, l.bs.as_ref().unwrap()] {
                    assert_eq!(t.kind(), kind);
                    assert_eq!((t.data_ptr() as usize - base) % 256, 0, "{kind:?}");
                }
            }
        }
    }

    /// A parameter no loss has reached keeps its value and zero moments
    /// while the others update.
    #[test]
    fn a_parameter_without_gradient_is_left_alone() {
        let vs = VarStore::new(Device::Cpu);
        let used = nn::linear(vs.root() / "a", 4, 3, Default::default());
        let unused = nn::linear(vs.root() / "b", 4, 3, Default::default());
        let (used_before, unused_before) = (used.ws.copy(), unused.ws.copy());
        let mut adam = Adam::new(&vs, [0.9, 0.999], 1e-8);
        for _ in 0..2 {
            adam.zero_grad();
            loss_of(&used).backward();
            adam.step(1e-2);
        }
        assert_ne!(used.ws, used_before);
        assert_eq!(unused.ws, unused_before);
        let state: std::collections::HashMap<String, Tensor> = adam.state().into_iter().collect();
        assert_eq!(state["adam.m.b.weight"].abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert!(state["adam.m.a.weight"].abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    /// Gradients gathered from `run_backward` are those a backward
    /// accumulating into zeroed gradients leaves: the same values in the
    /// same flat buffer, zeros for a parameter the loss did not reach and
    /// in the alignment gaps, whatever was there before.
    #[test]
    fn gathered_gradients_equal_accumulated_ones() {
        for kind in [Kind::Float, Kind::BFloat16] {
            let mut vs = VarStore::new(Device::Cpu);
            let used = nn::linear(vs.root() / "a", 4, 3, Default::default());
            let _unused = nn::linear(vs.root() / "b", 4, 3, Default::default());
            vs.set_kind(kind);
            let mut adam = Adam::new(&vs, [0.9, 0.999], 1e-8);
            let x = (Tensor::arange(24, (Kind::Float, Device::Cpu)) * 0.31).sin().view([6, 4]).to_kind(kind);
            let loss = || nn::Module::forward(&used, &x).to_kind(Kind::Float).square().mean(Kind::Float);
            adam.zero_grad();
            loss().backward();
            let accumulated = adam.groups[0].grad.copy();
            assert!(accumulated.abs().sum(Kind::Float).double_value(&[]) > 0.0);
            let _ = adam.groups[0].grad.fill_(7.0);
            let grads = Tensor::run_backward(&[loss()], &adam.parameters(), false, false);
            // a.bias, a.weight, b.bias, b.weight: b's are not reached.
            assert!(grads[1].defined() && !grads[2].defined() && !grads[3].defined());
            adam.set_grads(&grads);
            assert_eq!(adam.groups[0].grad, accumulated, "{kind:?}");
            assert!(adam.groups[0].grads_are_flat());
            assert_eq!(used.ws.grad(), grads[1], "the variables see the gathered gradients");
        }
    }

    /// bf16 variables update through an fp32 master copy.
    #[test]
    fn reduced_precision_updates_through_the_master_copy() {
        let mut vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "l", 4, 3, Default::default());
        vs.set_kind(Kind::BFloat16);
        let mut adam = Adam::new(&vs, [0.9, 0.999], 1e-8);
        let x = (Tensor::arange(24, (Kind::Float, Device::Cpu)) * 0.31).sin().view([6, 4]).to_kind(Kind::BFloat16);
        for _ in 0..5 {
            adam.zero_grad();
            nn::Module::forward(&lin, &x).to_kind(Kind::Float).square().mean(Kind::Float).backward();
            adam.step(1e-3);
        }
        let group = &adam.groups[0];
        let master = group.master.as_ref().expect("bf16 group has a master copy");
        assert_eq!(lin.ws.kind(), Kind::BFloat16);
        assert_eq!(group.param, master.to_kind(Kind::BFloat16), "variables are the rounded master");
        assert!(group.grads_are_flat());
    }
}
