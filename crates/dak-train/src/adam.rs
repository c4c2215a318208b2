//! Adam whose state is ours to save: libtorch's optimizer state is not
//! reachable through tch, and resuming exactly needs the moments.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// One parameter: the model's tensor, its fp32 master copy when the model
/// runs in reduced precision, and the two moments.
#[derive(Debug)]
struct Slot {
    name: String,
    param: Tensor,
    master: Option<Tensor>,
    m: Tensor,
    v: Tensor,
}

#[derive(Debug)]
pub struct Adam {
    slots: Vec<Slot>,
    betas: [f64; 2],
    eps: f64,
    /// Updates applied so far (bias correction).
    pub steps: i64,
}

impl Adam {
    /// Over every trainable variable of `vs`, sorted by name so the state
    /// file and the update order never depend on hash order.
    pub fn new(vs: &VarStore, betas: [f64; 2], eps: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, param)| {
                let master = (param.kind() != Kind::Float).then(|| param.detach().to_kind(Kind::Float));
                let zeros = || Tensor::zeros(param.size(), (Kind::Float, param.device()));
                Slot { name, m: zeros(), v: zeros(), master, param }
            })
            .collect();
        Adam { slots, betas, eps, steps: 0 }
    }

    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut g = s.param.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr` from the gradients in place.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let [b1, b2] = self.betas;
        let c1 = 1.0 - b1.powi(self.steps as i32);
        let c2 = 1.0 - b2.powi(self.steps as i32);
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.param.grad();
                if !g.defined() {
                    continue;
                }
                let g = g.to_kind(Kind::Float);
                // In-place forms, 7 kernels and 2 temporaries per tensor
                // (the step costs per-parameter launches, not arithmetic):
                // m ← m + (1−β1)(g − m), v ← v + (1−β2)(g² − v),
                // p ← p − lr/c1 · m / (√v/√c2 + ε), the last as one addcdiv
                // with the scale folded into the denominator.
                let _ = s.m.lerp_(&g, 1.0 - b1);
                let _ = s.v.lerp_(&g.square(), 1.0 - b2);
                let scale = -c1 / lr;
                let mut denom = s.v.sqrt();
                let _ = denom.g_mul_scalar_(scale / c2.sqrt()).g_add_scalar_(self.eps * scale);
                match &mut s.master {
                    Some(master) => {
                        let _ = master.addcdiv_(&s.m, &denom);
                        s.param.copy_(master);
                    }
                    None => {
                        let _ = s.param.addcdiv_(&s.m, &denom);
                    }
                }
            }
        });
    }

    /// Moments (and master weights) as named tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(3 * self.slots.len());
        for s in &self.slots {
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
            for s in &mut self.slots {
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
}
