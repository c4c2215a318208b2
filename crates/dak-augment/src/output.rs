//! Writing synthetic clips as `synthetic_clips` shards.

use std::path::{Path, PathBuf};

use dak_core::Intrinsics;
use dak_io::{Manifest, OutputDir, Prepared, ShardWriter, SyntheticClipBuilder, SyntheticClipRow, Table};

use crate::error::{Error, Result};

/// One finished synthetic clip, ready for its row.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticClip {
    pub clip_id: u64,
    pub source_dataset: String,
    pub source_sequence: String,
    pub source_start_frame: u32,
    pub camera: String,
    pub intrinsics: Intrinsics,
    /// T × 17 × 3, camera coordinates, mm.
    pub joints_3d_camera_mm: Vec<f32>,
    /// T × 17 × 2, px.
    pub joints_2d_px: Vec<f32>,
}

/// What [`SyntheticWriter::open`] found.
pub enum Opened {
    Fresh(Box<SyntheticWriter>),
    /// A finished output made with the same configuration.
    UpToDate(Manifest),
}

/// Appends clips in `clip_id` order and finishes the directory with a manifest.
pub struct SyntheticWriter {
    dir: OutputDir,
    writer: ShardWriter,
    builder: SyntheticClipBuilder,
    mode: String,
    config: serde_json::Value,
    batch_rows: usize,
}

impl SyntheticWriter {
    /// Prepare `out` for a run of `mode` described by `config` (settings and
    /// inputs). A finished output with the same config is up to date; one
    /// with another config is only replaced with `force`.
    pub fn open(out: &Path, mode: &str, config: serde_json::Value, force: bool) -> Result<Opened> {
        let dir = match OutputDir::prepare(out, force)? {
            Prepared::Existing(m) if m.extra.get("config") == Some(&config) => return Ok(Opened::UpToDate(m)),
            Prepared::Existing(_) => {
                return Err(Error::Source {
                    path: out.to_path_buf(),
                    reason: "holds a finished output made with other settings or inputs; pass --force to replace it"
                        .into(),
                })
            }
            Prepared::Fresh(dir) => dir,
        };
        let writer = dir.writer(Table::SyntheticClips, "part");
        Ok(Opened::Fresh(Box::new(SyntheticWriter {
            dir,
            writer,
            builder: SyntheticClipBuilder::with_capacity(256),
            mode: mode.to_string(),
            config,
            batch_rows: 256,
        })))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn push(&mut self, clip: &SyntheticClip) -> Result<()> {
        self.builder.push(&SyntheticClipRow {
            clip_id: clip.clip_id,
            mode: &self.mode,
            source_dataset: &clip.source_dataset,
            source_sequence: &clip.source_sequence,
            source_start_frame: clip.source_start_frame,
            camera: &clip.camera,
            intrinsics: &clip.intrinsics,
            joints_3d_camera_mm: &clip.joints_3d_camera_mm,
            joints_2d_px: &clip.joints_2d_px,
        })?;
        if self.builder.len() >= self.batch_rows {
            self.writer.write(&self.builder.finish())?;
        }
        Ok(())
    }

    /// Close the files and write the manifest (with `report` in its extras):
    /// the directory counts as finished only from here.
    pub fn finish(mut self, command: Vec<String>, seed: u64, report: serde_json::Value) -> Result<Manifest> {
        if !self.builder.is_empty() {
            self.writer.write(&self.builder.finish())?;
        }
        let files = self.writer.finish()?;
        let mut manifest = Manifest::new(Table::SyntheticClips, files, command, Some(seed));
        manifest.extra = serde_json::json!({ "mode": self.mode, "config": self.config, "report": report });
        self.dir.finish(&manifest)?;
        Ok(manifest)
    }
}

/// Write `report.json` next to the shards, atomically.
pub fn write_report(dir: &Path, report: &impl serde::Serialize) -> Result<PathBuf> {
    let path = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).expect("reports serialize");
    dak_io::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}
