//! Training the DAK-Pose estimator (DESIGN.md "Estimator and training",
//! paper §3.3.3–3.4): windows of source and synthetic shards (`data`), the
//! networks of an ablation (`nets`), the losses and epochs (`trainer`), an
//! Adam whose state checkpoints hold (`adam`), checkpoints and the PyTorch
//! export (`checkpoint`), and the run directory that ties them (`run`).

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod nets;
pub mod plot;
pub mod run;
pub mod trainer;

pub use config::{Ablation, LossWeights, Precision, TrainConfig};
pub use data::{Input2d, SyntheticSet, VideoSet};
pub use error::{Error, Result};
pub use trainer::{Backward, EpochRecord, EvalResult, Losses, TrainData, Trainer};

#[cfg(test)]
mod tests;
