//! The truncated normal distribution of the limb-scale factors.

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// N(mean, std²) restricted to `[mean − k·std, mean + k·std]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TruncatedNormal {
    pub mean: f64,
    pub std: f64,
    /// Half-width of the kept interval in standard deviations.
    pub sigmas: f64,
}

impl TruncatedNormal {
    pub fn new(mean: f64, std: f64, sigmas: f64) -> Result<Self> {
        if !(std.is_finite() && std >= 0.0) {
            return Err(Error::Config { field: "std", reason: format!("must be a finite number ≥ 0, got {std}") });
        }
        if !(sigmas.is_finite() && sigmas > 0.0) {
            return Err(Error::Config { field: "truncation", reason: format!("must be > 0 sigmas, got {sigmas}") });
        }
        Ok(TruncatedNormal { mean, std, sigmas })
    }

    pub fn low(&self) -> f64 {
        self.mean - self.sigmas * self.std
    }

    pub fn high(&self) -> f64 {
        self.mean + self.sigmas * self.std
    }

    /// Standard deviation of the truncated distribution (smaller than `std`):
    /// for a symmetric cut at ±k, σ²·(1 − 2kφ(k)/(2Φ(k) − 1)).
    pub fn truncated_std(&self) -> f64 {
        let k = self.sigmas;
        let pdf = (-0.5 * k * k).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mass = erf(k / std::f64::consts::SQRT_2);
        self.std * (1.0 - 2.0 * k * pdf / mass).sqrt()
    }
}

impl Distribution<f64> for TruncatedNormal {
    /// Rejection from the untruncated normal: at the default 2σ cut ~95% of
    /// draws are kept, so this is cheaper than an inverse-CDF sampler.
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        if self.std == 0.0 {
            return self.mean;
        }
        let normal = Normal::new(self.mean, self.std).expect("std checked in new");
        let (lo, hi) = (self.low(), self.high());
        loop {
            let x = normal.sample(rng);
            if (lo..=hi).contains(&x) {
                return x;
            }
        }
    }
}

/// Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7): enough for a reported std.
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stays_in_range_with_the_configured_moments() {
        let d = TruncatedNormal::new(1.0, 0.3, 2.0).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        assert!(xs.iter().all(|&x| (0.4..=1.6).contains(&x)), "a draw left [0.4, 1.6]");
        let mean = xs.iter().sum::<f64>() / n as f64;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        // Standard errors at n = 2e5: mean ~6e-4, std ~4e-4; allow ~5 of them.
        assert!((mean - 1.0).abs() < 3e-3, "mean {mean}");
        let want = d.truncated_std();
        assert!((want - 0.3 * 0.8796).abs() < 1e-3, "analytic truncated std {want}");
        assert!((std - want).abs() < 2.5e-3, "std {std} vs {want}");
        // Both tails are reached: the cut, not the sampler, bounds the draws.
        assert!(xs.iter().any(|&x| x < 0.45) && xs.iter().any(|&x| x > 1.55));
    }

    #[test]
    fn rejects_nonsense_parameters() {
        assert!(TruncatedNormal::new(1.0, -0.1, 2.0).is_err());
        assert!(TruncatedNormal::new(1.0, 0.1, 0.0).is_err());
        assert!(TruncatedNormal::new(1.0, f64::NAN, 2.0).is_err());
    }

    #[test]
    fn zero_std_is_the_mean() {
        let d = TruncatedNormal::new(1.0, 0.0, 2.0).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(d.sample(&mut rng), 1.0);
    }
}
