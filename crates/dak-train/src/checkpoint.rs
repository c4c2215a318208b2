//! Checkpoints and exports of a run directory.
//!
//! `checkpoint-eNNNN.safetensors` holds every network's weights and the
//! optimizer state; `checkpoint.json`, written last and atomically, names
//! the current one with its size and SHA-256. A crash at any moment leaves
//! either the previous checkpoint or the new one in force, never a partial
//! file that is taken for finished; a damaged or truncated file is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::trainer::Trainer;

pub const CHECKPOINT_JSON: &str = "checkpoint.json";
pub const EXPORT_WEIGHTS: &str = "model.safetensors";
pub const EXPORT_JSON: &str = "model.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInfo {
    pub format_version: u32,
    /// Epochs completed.
    pub epoch: usize,
    pub global_step: u64,
    pub adam_steps: i64,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub config: TrainConfig,
    /// What the run learns from ([`TrainInputs`]); absent in checkpoints
    /// written before it was recorded.
    #[serde(default)]
    pub inputs: Option<TrainInputs>,
}

/// The shard directories a run reads, each with a digest of its files'
/// SHA-256s (from its manifest): a finished run is up to date, and a run may
/// be resumed, only on the same data. Compared by content: a moved or
/// re-made directory with the same files is the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainInputs {
    pub shards: Vec<serde_json::Value>,
    pub sma: Vec<serde_json::Value>,
    pub dma: Vec<serde_json::Value>,
}

impl TrainInputs {
    /// Fails when a directory holds no finished shard set.
    pub fn of(shards: &[PathBuf], sma: &[PathBuf], dma: &[PathBuf]) -> Result<Self> {
        let describe = |dirs: &[PathBuf]| -> Result<Vec<serde_json::Value>> {
            dirs.iter()
                .map(|dir| {
                    let manifest = dak_io::Manifest::read(dir)?;
                    let listing: String = manifest.files.iter().map(|f| format!("{} {}\n", f.sha256, f.path)).collect();
                    // Absolute, so that a resume from elsewhere finds them;
                    // links kept (a cluster's mount may resolve per node).
                    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
                    Ok(serde_json::json!({ "dir": dir, "files_sha256": dak_io::atomic::sha256_hex(listing.as_bytes()) }))
                })
                .collect()
        };
        Ok(TrainInputs { shards: describe(shards)?, sma: describe(sma)?, dma: describe(dma)? })
    }

    fn of_trainer(trainer: &Trainer) -> Result<Self> {
        let dirs = |set: &Option<crate::SyntheticSet>| set.as_ref().map_or(Vec::new(), |s| s.dirs.clone());
        Self::of(&trainer.data.train.inputs, &dirs(&trainer.data.sma), &dirs(&trainer.data.dma))
    }

    /// The directories recorded (source, SMA, DMA): absolute since they
    /// were made so, as typed in older checkpoints.
    pub fn dirs(&self) -> (Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>) {
        let dirs =
            |list: &[serde_json::Value]| list.iter().filter_map(|d| d["dir"].as_str()).map(PathBuf::from).collect();
        (dirs(&self.shards), dirs(&self.sma), dirs(&self.dma))
    }

    /// Whether both name the same data (file digests, in order). Entries
    /// without a digest (an earlier record) are taken as the same.
    pub fn same_data(&self, other: &TrainInputs) -> bool {
        let recorded = |v: &[serde_json::Value]| v.iter().all(|d| d.get("files_sha256").is_some());
        if ![&self.shards, &self.sma, &self.dma].into_iter().all(|v| recorded(v)) {
            return true;
        }
        let sums = |v: &[serde_json::Value]| v.iter().map(|d| d["files_sha256"].clone()).collect::<Vec<_>>();
        sums(&self.shards) == sums(&other.shards)
            && sums(&self.sma) == sums(&other.sma)
            && sums(&self.dma) == sums(&other.dma)
    }
}

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint { path: path.to_path_buf(), reason: reason.into() }
}

/// Write `tensors` to `path` atomically; its size and SHA-256.
fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(u64, String)> {
    dak_nn::model_dir::write_safetensors(path, tensors).map_err(|e| match e {
        dak_nn::Error::Io { path, source } => Error::Io { path, source },
        dak_nn::Error::Model { path, reason } => checkpoint_error(&path, reason),
        other => checkpoint_error(path, other.to_string()),
    })?;
    // dak-io's errors name the file already.
    Ok(dak_io::atomic::sha256_file(path)?)
}

/// Save the trainer's state into `run`.
pub fn save(run: &Path, trainer: &Trainer) -> Result<CheckpointInfo> {
    std::fs::create_dir_all(run).map_err(Error::io(run))?;
    let file = format!("checkpoint-e{:04}.safetensors", trainer.epoch);
    let path = run.join(&file);
    let mut tensors: Vec<(String, Tensor)> = trainer.nets.vs.variables().into_iter().collect();
    tensors.extend(trainer.adam.state());
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let (bytes, sha256) = write_tensors(&path, &tensors)?;
    let info = CheckpointInfo {
        format_version: FORMAT_VERSION,
        epoch: trainer.epoch,
        global_step: trainer.global_step,
        adam_steps: trainer.adam.steps,
        file: file.clone(),
        bytes,
        sha256,
        config: trainer.config.clone(),
        inputs: Some(TrainInputs::of_trainer(trainer)?),
    };
    let json = serde_json::to_string_pretty(&info).expect("checkpoint info serialises");
    let info_path = run.join(CHECKPOINT_JSON);
    dak_io::atomic::write_atomic(&info_path, json.as_bytes())?;
    // Older checkpoint files are superseded only once the new one is in force.
    for entry in std::fs::read_dir(run).map_err(Error::io(run))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("checkpoint-e") && name.ends_with(".safetensors") && name != file {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(info)
}

/// Read and check `checkpoint.json` of `run` (or of the file's directory).
pub fn read_info(run: &Path) -> Result<(CheckpointInfo, PathBuf)> {
    let info_path = if run.is_dir() { run.join(CHECKPOINT_JSON) } else { run.to_path_buf() };
    let text = std::fs::read_to_string(&info_path).map_err(|e| {
        checkpoint_error(
            &info_path,
            format!("cannot read ({e}); is this a dak-train run directory with a finished epoch?"),
        )
    })?;
    let info: CheckpointInfo = serde_json::from_str(&text)
        .map_err(|e| checkpoint_error(&info_path, format!("not a checkpoint description: {e}")))?;
    if info.format_version != FORMAT_VERSION {
        return Err(checkpoint_error(
            &info_path,
            format!("format version {} (this build reads {FORMAT_VERSION})", info.format_version),
        ));
    }
    let dir = info_path.parent().unwrap_or(Path::new("."));
    let weights = dir.join(&info.file);
    let len = std::fs::metadata(&weights).map_err(|e| checkpoint_error(&weights, format!("missing ({e})")))?.len();
    if len != info.bytes {
        return Err(checkpoint_error(
            &weights,
            format!("{len} bytes where {} were written: the file is truncated or was replaced", info.bytes),
        ));
    }
    let (_, sha) = dak_io::atomic::sha256_file(&weights)?;
    if sha != info.sha256 {
        return Err(checkpoint_error(&weights, "SHA-256 differs from checkpoint.json: the file is damaged"));
    }
    Ok((info, weights))
}

/// The named tensors of a checked checkpoint.
pub fn read_tensors(weights: &Path) -> Result<HashMap<String, Tensor>> {
    Ok(Tensor::read_safetensors(weights).map_err(|e| checkpoint_error(weights, e.to_string()))?.into_iter().collect())
}

/// Load a checkpoint into a trainer built with the same configuration.
pub fn restore(trainer: &mut Trainer, run: &Path) -> Result<CheckpointInfo> {
    let (info, weights) = read_info(run)?;
    // Only the epoch count may grow between a run and its resumption.
    let mut written = info.config.clone();
    written.epochs = trainer.config.epochs;
    if written != trainer.config {
        return Err(checkpoint_error(
            &weights,
            "was written with another configuration; resume with the run's own config.json",
        ));
    }
    let tensors = read_tensors(&weights)?;
    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in trainer.nets.vs.variables() {
            let src = tensors.get(&name).ok_or_else(|| checkpoint_error(&weights, format!("has no tensor {name}")))?;
            if src.size() != var.size() {
                return Err(checkpoint_error(
                    &weights,
                    format!("{name} is {:?}, the model wants {:?}", src.size(), var.size()),
                ));
            }
            var.copy_(src);
        }
        Ok(())
    })?;
    trainer.adam.load_state(&tensors, info.adam_steps).map_err(|reason| checkpoint_error(&weights, reason))?;
    trainer.epoch = info.epoch;
    trainer.global_step = info.global_step;
    Ok(info)
}

/// G's weights alone under PyTorch-style names (`structural.blocks.0.attn.qkv.weight`,
/// …, without the `G.` prefix), plus `model.json` with the architecture.
pub fn export(trainer: &Trainer, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    // A bf16 run exports its fp32 master weights, not their bf16 rounding.
    let master = trainer.adam.master_weights();
    let mut tensors: Vec<(String, Tensor)> = trainer
        .nets
        .vs
        .variables()
        .into_iter()
        .filter_map(|(n, t)| {
            let t = master.get(n.as_str()).map_or(t.shallow_clone(), |m| m.shallow_clone());
            n.strip_prefix("G.").map(|s| (s.to_string(), t.to_kind(tch::Kind::Float)))
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let path = dir.join(EXPORT_WEIGHTS);
    // The weights' checksum makes model.json change with them (the pipeline
    // fingerprints an export by it).
    let (_, weights_sha256) = write_tensors(&path, &tensors)?;
    let json = serde_json::json!({
        "weights_sha256": weights_sha256,
        "kind": "dak-pose-estimator",
        "format_version": FORMAT_VERSION,
        "model": trainer.config.model,
        "epoch": trainer.epoch,
        "ablation": trainer.config.ablation,
        // Test-time flip averaging is only right for a model trained with flips.
        "trained_with_flip": trainer.config.flip,
        "input_2d": trainer.config.input_2d,
        "input": "2D keypoints (B, T, 17, 2), pixels normalised as x/w*2-1, y/w*2-h/w",
        "output": "root-relative 3D (B, T, 17, 3) in metres, Human3.6M-17 order",
    });
    let json_path = dir.join(EXPORT_JSON);
    dak_io::atomic::write_atomic(&json_path, serde_json::to_string_pretty(&json).expect("json").as_bytes())
        .map_err(|e| checkpoint_error(&json_path, e.to_string()))?;
    Ok(path)
}
