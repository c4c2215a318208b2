//! A trained estimator G from a run directory (its current checkpoint) or
//! from an export directory (`model.json` + `model.safetensors`).

use std::path::{Path, PathBuf};

use dak_model::{Estimator, ModelConfig};
use dak_train::checkpoint;
use tch::nn::VarStore;
use tch::Device;

use crate::error::{Error, Result};

pub struct LoadedModel {
    pub config: ModelConfig,
    /// Whether the run trained with flip augmentation (test-time flip default).
    pub trained_with_flip: bool,
    /// The 2D the run trained on (the evaluation's default input).
    pub trained_input_2d: dak_train::Input2d,
    pub g: Estimator,
    _vs: VarStore,
    /// What was loaded, for the record kept with results.
    pub provenance: serde_json::Value,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel").field("config", &self.config).field("provenance", &self.provenance).finish()
    }
}

fn model_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Model { path: path.to_path_buf(), reason: reason.into() }
}

impl LoadedModel {
    pub fn load(path: &Path, device: Device) -> Result<LoadedModel> {
        if path.join(checkpoint::CHECKPOINT_JSON).exists() || path.ends_with(checkpoint::CHECKPOINT_JSON) {
            return Self::from_run(path, device);
        }
        let dir =
            if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
        if dir.join(checkpoint::EXPORT_JSON).exists() {
            return Self::from_export(&dir, device);
        }
        Err(model_error(
            path,
            "neither a dak-train run (checkpoint.json) nor an export (model.json + model.safetensors)",
        ))
    }

    fn from_run(path: &Path, device: Device) -> Result<LoadedModel> {
        let (info, weights) = checkpoint::read_info(path)?;
        let tensors = checkpoint::read_tensors(&weights)?;
        let provenance = serde_json::json!({
            "kind": "checkpoint",
            "path": weights,
            "epoch": info.epoch,
            "sha256": info.sha256,
            "ablation": info.config.ablation,
            "train_config": info.config,
        });
        let trained = (info.config.flip, info.config.input_2d);
        Self::build(info.config.model, trained, "G.", &tensors, &weights, device, provenance)
    }

    fn from_export(dir: &Path, device: Device) -> Result<LoadedModel> {
        let json_path = dir.join(checkpoint::EXPORT_JSON);
        let text = std::fs::read_to_string(&json_path).map_err(|e| model_error(&json_path, e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| model_error(&json_path, e.to_string()))?;
        if json["kind"] != "dak-pose-estimator" {
            return Err(model_error(&json_path, format!("kind {} is not dak-pose-estimator", json["kind"])));
        }
        let config: ModelConfig =
            serde_json::from_value(json["model"].clone()).map_err(|e| model_error(&json_path, e.to_string()))?;
        match json.get("format_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(checkpoint::FORMAT_VERSION) => {}
            v => {
                return Err(model_error(
                    &json_path,
                    format!(
                        "format version {} (this build reads {})",
                        v.map_or("missing".to_string(), |v| v.to_string()),
                        checkpoint::FORMAT_VERSION
                    ),
                ))
            }
        }
        let weights = dir.join(checkpoint::EXPORT_WEIGHTS);
        let (_, sha) = dak_io::atomic::sha256_file(&weights).map_err(|e| model_error(&weights, e.to_string()))?;
        // A replaced or damaged weights file must not load just because its shapes fit.
        if let Some(expected) = json.get("weights_sha256").and_then(serde_json::Value::as_str) {
            if expected != sha {
                return Err(model_error(
                    &weights,
                    format!("SHA-256 differs from {}: the file is damaged or was replaced", json_path.display()),
                ));
            }
        }
        let tensors = checkpoint::read_tensors(&weights)?;
        let provenance = serde_json::json!({ "kind": "export", "path": weights, "sha256": sha, "model": json });
        // Exports written before the flag was recorded came from flip-trained runs (the default).
        let flip = json.get("trained_with_flip").and_then(serde_json::Value::as_bool).unwrap_or(true);
        let input_2d = match json.get("input_2d") {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| model_error(&json_path, e.to_string()))?,
            None => dak_train::Input2d::Gt,
        };
        Self::build(config, (flip, input_2d), "", &tensors, &weights, device, provenance)
    }

    fn build(
        config: ModelConfig,
        (trained_with_flip, trained_input_2d): (bool, dak_train::Input2d),
        prefix: &str,
        tensors: &std::collections::HashMap<String, tch::Tensor>,
        weights: &Path,
        device: Device,
        provenance: serde_json::Value,
    ) -> Result<LoadedModel> {
        config.validate().map_err(|r| model_error(weights, r))?;
        let vs = VarStore::new(device);
        let g = Estimator::new(&vs.root(), &config);
        tch::no_grad(|| -> Result<()> {
            for (name, mut var) in vs.variables() {
                let key = format!("{prefix}{name}");
                let src = tensors.get(&key).ok_or_else(|| model_error(weights, format!("has no tensor {key}")))?;
                if src.size() != var.size() {
                    return Err(model_error(
                        weights,
                        format!("{key} is {:?}, the model wants {:?}", src.size(), var.size()),
                    ));
                }
                var.copy_(&src.to_kind(var.kind()));
            }
            Ok(())
        })?;
        Ok(LoadedModel { config, trained_with_flip, trained_input_2d, g, _vs: vs, provenance })
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.provenance["path"].as_str().unwrap_or_default())
    }
}
