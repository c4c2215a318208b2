//! What a training run does, serialisable into `config.json` of the run and
//! readable from TOML.

use dak_augment::source::SourceFilter;
use dak_augment::StructureConfig;
use dak_model::{GrlSchedule, ModelConfig};
use serde::{Deserialize, Serialize};

use crate::data::Input2d;
use crate::error::{Error, Result};

/// The six rows of paper Table 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ablation {
    /// G on real pairs with L_pe only.
    Baseline,
    /// SMA clips added to G's supervision (+ L_fd).
    SaDirect,
    /// DMA clips added to G's supervision (+ L_fd).
    DaDirect,
    /// G′ on SMA clips, D_str aligns structural features (+ L_fd).
    SaAdg,
    /// G″ on DMA clips, D_dyn aligns dynamic features (+ L_fd).
    DaAdg,
    /// The whole method.
    Full,
}

impl Ablation {
    pub const ALL: [Ablation; 6] =
        [Ablation::Baseline, Ablation::SaDirect, Ablation::DaDirect, Ablation::SaAdg, Ablation::DaAdg, Ablation::Full];

    pub fn name(self) -> &'static str {
        match self {
            Ablation::Baseline => "baseline",
            Ablation::SaDirect => "sa-direct",
            Ablation::DaDirect => "da-direct",
            Ablation::SaAdg => "sa-adg",
            Ablation::DaAdg => "da-adg",
            Ablation::Full => "full",
        }
    }

    pub fn uses_sma(self) -> bool {
        matches!(self, Ablation::SaDirect | Ablation::SaAdg | Ablation::Full)
    }

    pub fn uses_dma(self) -> bool {
        matches!(self, Ablation::DaDirect | Ablation::DaAdg | Ablation::Full)
    }

    /// G′ and D_str exist.
    pub fn structural_adversary(self) -> bool {
        matches!(self, Ablation::SaAdg | Ablation::Full)
    }

    /// G″ and D_dyn exist.
    pub fn dynamic_adversary(self) -> bool {
        matches!(self, Ablation::DaAdg | Ablation::Full)
    }

    /// Feature disentanglement (structure augmentation + cross-reconstruction).
    pub fn disentangles(self) -> bool {
        self != Ablation::Baseline
    }
}

/// Loss weights of Eq. 6 and 8.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossWeights {
    pub pe: f64,
    pub fd: f64,
    pub dg: f64,
    pub adv_str: f64,
    pub adv_dyn: f64,
}

impl Default for LossWeights {
    fn default() -> Self {
        LossWeights { pe: 10.0, fd: 4.0, dg: 4.0, adv_str: 1.0, adv_dyn: 2.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    #[default]
    Fp32,
    /// bf16 weights and activations with fp32 master weights in the optimizer.
    Bf16,
}

/// Every field may be left out (a `--config` TOML names only what it
/// changes); unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub ablation: Ablation,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Learning rate × this after every epoch.
    pub lr_decay: f64,
    pub adam_betas: [f64; 2],
    pub adam_eps: f64,
    pub losses: LossWeights,
    pub grl: GrlSchedule,
    pub structure: StructureConfig,
    /// Mirror each training sample with probability 1/2; average a prediction
    /// with its mirrored twin at evaluation.
    pub flip: bool,
    pub input_2d: Input2d,
    /// Stride of the training windows (T: non-overlapping, as MixSTE); 0
    /// reads as 1 (runs stored with it resume), the flag refuses it.
    pub stride: Option<usize>,
    /// Which frames train; a table that leaves `splits` out keeps `["train"]`.
    #[serde(deserialize_with = "train_filter")]
    pub train: SourceFilter,
    /// Which frames are held out; a table that leaves `splits` out keeps `["test"]`.
    #[serde(deserialize_with = "eval_filter")]
    pub eval: SourceFilter,
    pub seed: u64,
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelConfig::default(),
            ablation: Ablation::Full,
            epochs: 120,
            batch_size: 64,
            learning_rate: 5e-5,
            lr_decay: 0.99,
            adam_betas: [0.9, 0.999],
            adam_eps: 1e-8,
            losses: LossWeights::default(),
            grl: GrlSchedule::default(),
            structure: StructureConfig::default(),
            flip: true,
            input_2d: Input2d::Gt,
            stride: None,
            train: SourceFilter { splits: vec!["train".into()], ..SourceFilter::default() },
            eval: SourceFilter { splits: vec!["test".into()], ..SourceFilter::default() },
            seed: 0,
            precision: Precision::Fp32,
        }
    }
}

/// A `[train]`/`[eval]` table with the fields it names; the rest are the
/// defaults' (an empty list would mean "every split", the test split too).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFields {
    datasets: Option<Vec<String>>,
    splits: Option<Vec<String>>,
    subjects: Option<Vec<String>>,
}

fn filter_over<'de, D: serde::Deserializer<'de>>(d: D, split: &str) -> std::result::Result<SourceFilter, D::Error> {
    let f = FilterFields::deserialize(d)?;
    Ok(SourceFilter {
        datasets: f.datasets.unwrap_or_default(),
        splits: f.splits.unwrap_or_else(|| vec![split.to_string()]),
        subjects: f.subjects.unwrap_or_default(),
    })
}

fn train_filter<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SourceFilter, D::Error> {
    filter_over(d, "train")
}

fn eval_filter<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<SourceFilter, D::Error> {
    filter_over(d, "test")
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        self.model.validate().map_err(|reason| Error::Config { field: "model", reason })?;
        self.structure.validate().map_err(|e| Error::Config { field: "structure", reason: e.to_string() })?;
        let positive = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::Config { field, reason: format!("{v} must be positive") })
            }
        };
        positive("learning_rate", self.learning_rate)?;
        positive("lr_decay", self.lr_decay)?;
        positive("adam_eps", self.adam_eps)?;
        if self.epochs == 0 {
            return Err(Error::Config { field: "epochs", reason: "must be at least 1".into() });
        }
        if self.batch_size == 0 {
            return Err(Error::Config { field: "batch_size", reason: "must be at least 1".into() });
        }
        if self.adam_betas.iter().any(|b| !(0.0..1.0).contains(b)) {
            return Err(Error::Config {
                field: "adam_betas",
                reason: format!("{:?} must lie in [0, 1)", self.adam_betas),
            });
        }
        let w = &self.losses;
        if [w.pe, w.fd, w.dg, w.adv_str, w.adv_dyn, self.grl.lambda_max, self.grl.warmup_epochs]
            .iter()
            .any(|v| !v.is_finite() || *v < 0.0)
        {
            return Err(Error::Config { field: "losses/grl", reason: "weights must be finite and >= 0".into() });
        }
        Ok(())
    }

    pub fn stride(&self) -> usize {
        self.stride.unwrap_or(self.model.frames).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration file names only what it changes; the held-out split
    /// stays the test split when a `[train]`/`[eval]` table names other fields.
    #[test]
    fn a_partial_configuration_keeps_the_defaults() {
        let c: TrainConfig = serde_json::from_value(serde_json::json!({
            "epochs": 3,
            "model": { "channels": 64 },
            "losses": { "fd": 1.5 },
            "train": { "subjects": ["S1"] },
            "eval": { "datasets": ["3dhp"] },
        }))
        .unwrap();
        let d = TrainConfig::default();
        assert_eq!((c.epochs, c.model.channels, c.losses.fd), (3, 64, 1.5));
        assert_eq!((c.model.frames, c.losses.pe, c.learning_rate, c.ablation), (27, 10.0, 5e-5, Ablation::Full));
        assert_eq!(c.train, SourceFilter { subjects: vec!["S1".into()], ..d.train.clone() });
        assert_eq!(c.eval, SourceFilter { datasets: vec!["3dhp".into()], ..d.eval.clone() });
        let all: TrainConfig = serde_json::from_value(serde_json::json!({ "train": { "splits": [] } })).unwrap();
        assert!(all.train.splits.is_empty(), "an explicit empty list is every split");
        // A whole config.json reads back as itself; unknown keys are refused.
        assert_eq!(serde_json::from_value::<TrainConfig>(serde_json::to_value(&d).unwrap()).unwrap(), d);
        let err = serde_json::from_value::<TrainConfig>(serde_json::json!({ "model": { "chanels": 64 } }));
        assert!(err.unwrap_err().to_string().contains("chanels"));
        let err = serde_json::from_value::<TrainConfig>(serde_json::json!({ "train": { "split": ["x"] } }));
        assert!(err.unwrap_err().to_string().contains("split"));
    }

    #[test]
    fn impossible_sizes_are_refused_by_name() {
        let bad = |c: TrainConfig| c.validate().unwrap_err().to_string();
        let d = TrainConfig::default();
        let joints = bad(TrainConfig { model: ModelConfig { joints: 16, ..d.model.clone() }, ..d.clone() });
        assert!(joints.contains("joints 16"), "{joints}");
        d.validate().unwrap();
    }
}
