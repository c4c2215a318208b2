//! `dak-eval`: the paper's protocols on a trained estimator, with tables
//! that record what produced them, and pictures of predictions.

pub mod error;
pub mod infer;
pub use dak_keypoints as keypoints;
pub mod model;
pub mod protocol;
pub mod render;
pub mod table;

use std::path::{Path, PathBuf};

use dak_core::NUM_JOINTS;
use dak_train::trainer::predict_videos;
use dak_train::{Input2d, VideoSet};
use serde::{Deserialize, Serialize};
use tch::Device;

pub use error::{Error, Result};
pub use model::LoadedModel;
pub use protocol::Protocol;
pub use table::{Row, Table};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    pub protocol: Protocol,
    pub input_2d: Input2d,
    /// Average each prediction with its mirrored twin.
    pub flip: bool,
}

/// Everything `dak-eval` writes to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub options: EvalOptions,
    pub table: Table,
    /// Checkpoint or export that made the predictions.
    pub model: serde_json::Value,
    /// Shard directories with their manifests' SHA-256.
    pub shards: Vec<serde_json::Value>,
    pub command: Vec<String>,
}

impl EvalReport {
    pub fn summary(&self) -> String {
        let h = self.table.headline();
        let mut s =
            format!("{}: MPJPE {:.1} mm, P-MPJPE {:.1} mm", self.options.protocol.name(), h.mpjpe_mm, h.p_mpjpe_mm);
        if self.options.protocol == Protocol::Mpi3dhp {
            s.push_str(&format!(", PCK@150 {:.1} %, AUC {:.1} %", h.pck150, h.auc));
        }
        s.push_str(&format!(" ({}, {} frames)", h.group, h.frames));
        s
    }
}

/// The test frames of `protocol` in `shards`.
pub fn load_videos(shards: &[PathBuf], options: &EvalOptions) -> Result<VideoSet> {
    let filter = options.protocol.filter();
    let videos = VideoSet::load(shards, &filter, options.input_2d)?;
    // Frames that only pad a video or that the dataset excludes (3DHP's
    // valid_frame) are predicted but never scored: with none left, a table
    // of zeros would look like a result.
    let scored = videos.videos.iter().flat_map(|v| &v.valid).filter(|&&ok| ok).count();
    if videos.videos.is_empty() || scored == 0 {
        return Err(Error::Data {
            path: shards.first().cloned().unwrap_or_default(),
            reason: format!(
                "no {}frames for protocol {} ({}); the shards hold {}",
                if videos.videos.is_empty() { "" } else { "valid " },
                options.protocol.name(),
                filter,
                videos.describe_held()
            ),
        });
    }
    Ok(videos)
}

/// Predict every frame and tabulate.
pub fn evaluate(
    model: &LoadedModel,
    videos: &VideoSet,
    options: &EvalOptions,
    device: Device,
) -> Result<(Table, Vec<Vec<f32>>)> {
    let predictions = predict_videos(&model.g, videos, model.config.frames, options.flip, device);
    check_finite(videos, &predictions, &model.provenance)?;
    let table = Table::build(options.protocol, videos, &predictions);
    Ok((table, predictions))
}

/// A NaN or infinite prediction (a damaged model, an overflow) would turn
/// MPJPE into NaN while PCK quietly counts the joint as a miss, and
/// `results.json` could no longer be read back: refuse it instead.
pub(crate) fn check_finite(videos: &VideoSet, predictions: &[Vec<f32>], model: &serde_json::Value) -> Result<()> {
    for (video, pred) in videos.videos.iter().zip(predictions) {
        if let Some(i) = pred.iter().position(|v| !v.is_finite()) {
            return Err(Error::Model {
                path: model["path"].as_str().map(PathBuf::from).unwrap_or_default(),
                reason: format!(
                    "predicts {} for {} frame {} (joint {}): the weights are damaged or the arithmetic overflowed",
                    pred[i],
                    video.sequence,
                    video.first_frame as usize + i / (NUM_JOINTS * 3),
                    dak_core::skeleton::JOINT_NAMES[i / 3 % NUM_JOINTS]
                ),
            });
        }
    }
    Ok(())
}

/// `results.json`, `table.md`, `table.csv` in `out`, each written atomically.
pub fn write_report(out: &Path, report: &EvalReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io { path: out.to_path_buf(), source })?;
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        dak_io::atomic::write_atomic(&path, text.as_bytes()).map(|_| ()).map_err(Error::from)
    };
    write("results.json", &serde_json::to_string_pretty(report).expect("report serialises"))?;
    let header = format!(
        "# {} — {}\n\nmodel: {}\n\n",
        report.options.protocol.name(),
        report.summary(),
        report.model["path"].as_str().unwrap_or("?")
    );
    write("table.md", &(header + &report.table.markdown()))?;
    write("table.csv", &report.table.csv())
}
