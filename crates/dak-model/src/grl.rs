//! Gradient reversal: identity forward, gradient × (−λ) backward.

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// `x` unchanged; the gradient flowing back through it is multiplied by −λ.
/// Written as sg(x) + (x − sg(x))·(−λ) with sg = stop-gradient, so no custom
/// autograd node is needed: x − sg(x) is exactly 0 (the value is x bit for
/// bit) and its derivative is 1 (the gradient is −λ).
pub fn gradient_reversal(x: &Tensor, lambda: f64) -> Tensor {
    let stopped = x.detach();
    &stopped + (x - &stopped) * (-lambda)
}

/// λ ramps linearly from 0 to `lambda_max` over `warmup_epochs`, then stays.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrlSchedule {
    pub lambda_max: f64,
    pub warmup_epochs: f64,
}

impl Default for GrlSchedule {
    fn default() -> Self {
        GrlSchedule { lambda_max: 1.0, warmup_epochs: 50.0 }
    }
}

impl GrlSchedule {
    /// λ at a (fractional) epoch: `epoch / n_w · λ_max`, capped.
    pub fn lambda(&self, epoch: f64) -> f64 {
        if self.warmup_epochs <= 0.0 {
            return self.lambda_max;
        }
        self.lambda_max * (epoch / self.warmup_epochs).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn passes_values_and_flips_and_scales_gradients() {
        let x = Tensor::from_slice(&[1.5f64, -2.0, 3.25]).set_requires_grad(true);
        let y = gradient_reversal(&x, 0.7);
        assert_eq!(Vec::<f64>::try_from(&y).unwrap(), vec![1.5, -2.0, 3.25]);
        let w = Tensor::from_slice(&[2.0f64, 3.0, -1.0]);
        (&y * &w).sum(Kind::Double).backward();
        let g = Vec::<f64>::try_from(x.grad()).unwrap();
        for (gi, wi) in g.iter().zip([2.0, 3.0, -1.0]) {
            assert!((gi + 0.7 * wi).abs() < 1e-12, "{gi} vs {}", -0.7 * wi);
        }
    }

    #[test]
    fn warm_up_ramps_linearly_then_holds() {
        let s = GrlSchedule { lambda_max: 1.0, warmup_epochs: 50.0 };
        assert_eq!(s.lambda(0.0), 0.0);
        assert!((s.lambda(10.0) - 0.2).abs() < 1e-12);
        assert!((s.lambda(25.0) - 0.5).abs() < 1e-12);
        assert_eq!(s.lambda(50.0), 1.0);
        assert_eq!(s.lambda(80.0), 1.0);
        let half = GrlSchedule { lambda_max: 0.5, warmup_epochs: 4.0 };
        assert!((half.lambda(1.0) - 0.125).abs() < 1e-12);
        assert_eq!(GrlSchedule { lambda_max: 0.3, warmup_epochs: 0.0 }.lambda(0.0), 0.3);
    }
}
