//! Writing synthetic clips as `synthetic_clips` shards.

use std::path::{Path, PathBuf};

use dak_core::Intrinsics;
use dak_io::{
    FileEntry, Manifest, OutputDir, Prepared, ShardSpec, ShardWriter, SyntheticClipBuilder, SyntheticClipRow, Table,
};

use crate::error::{Error, Result};
use crate::report::StatisticsAccumulator;

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

/// Writes clips group by group (one file per group, `part-NNNNN.parquet`)
/// and finishes the directory with a manifest; a shard writes only its groups.
pub struct SyntheticWriter {
    dir: OutputDir,
    writer: Option<ShardWriter>,
    files: Vec<FileEntry>,
    builder: SyntheticClipBuilder,
    mode: String,
    config: serde_json::Value,
    batch_rows: usize,
}

impl SyntheticWriter {
    /// Prepare `out` (or this shard's part of it) for a run of `mode`
    /// described by `config` (settings and inputs). A finished output with
    /// the same config is up to date; one with another config is only
    /// replaced with `force`.
    pub fn open(out: &Path, mode: &str, config: serde_json::Value, force: bool, shard: ShardSpec) -> Result<Opened> {
        let dir = match OutputDir::prepare_shard(out, shard, Table::SyntheticClips, force)? {
            Prepared::Existing(m) if m.extra.get("config") == Some(&config) => return Ok(Opened::UpToDate(m)),
            Prepared::Existing(m) => {
                let old = m.extra.get("config").cloned().unwrap_or_default();
                let mut differ = dak_io::manifest::value_differences("", &old, &config);
                differ.truncate(5);
                return Err(Error::Source {
                    path: out.to_path_buf(),
                    reason: format!(
                        "holds clips made with other settings or inputs ({}; the held clips' in brackets); pass --force to replace them",
                        differ.join(", ")
                    ),
                });
            }
            Prepared::Fresh(dir) => dir,
        };
        Ok(Opened::Fresh(Box::new(SyntheticWriter {
            dir,
            writer: None,
            files: Vec::new(),
            builder: SyntheticClipBuilder::with_capacity(256),
            mode: mode.to_string(),
            config,
            batch_rows: 256,
        })))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn shard(&self) -> ShardSpec {
        self.dir.shard()
    }

    /// Clips pushed from here on go to group `group`'s file.
    pub fn start_group(&mut self, group: usize) -> Result<()> {
        self.end_group()?;
        self.writer = Some(self.dir.group_writer(Table::SyntheticClips, group));
        Ok(())
    }

    pub fn end_group(&mut self) -> Result<()> {
        if let Some(mut writer) = self.writer.take() {
            if !self.builder.is_empty() {
                writer.write(&self.builder.finish())?;
            }
            self.files.extend(writer.finish()?);
        }
        Ok(())
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
            let writer = self.writer.as_mut().expect("push after start_group");
            writer.write(&self.builder.finish())?;
        }
        Ok(())
    }

    /// Close the files and write the manifest (with `report` in its extras;
    /// its `synthetic` statistics come from the groups' accumulators, merged
    /// in group order): the directory, or this shard, counts as finished
    /// only from here. Returns the manifest written.
    pub fn finish(
        mut self,
        command: Vec<String>,
        seed: u64,
        mut report: serde_json::Value,
        groups: &[(usize, StatisticsAccumulator)],
        group_count: usize,
    ) -> Result<Manifest> {
        self.end_group()?;
        report["synthetic"] = serde_json::Value::Null;
        let mut manifest = Manifest::new(Table::SyntheticClips, self.files, command, Some(seed));
        manifest.extra = serde_json::json!({ "mode": self.mode, "config": self.config, "report": report });
        let partial = serde_json::json!({
            "statistics": groups.iter().map(|(g, acc)| serde_json::json!([g, acc.to_words()])).collect::<Vec<_>>(),
        });
        let owned = groups.iter().map(|(g, _)| *g).collect();
        let dir = self.dir.path().to_path_buf();
        let finalize =
            |extra: &mut serde_json::Value, partials: &[serde_json::Value]| finalize_report(&dir, extra, partials);
        Ok(self.dir.finish_groups(manifest, group_count, owned, partial, &finalize)?)
    }
}

/// Fill `extra.report.synthetic` of the output in `dir` from the shards'
/// per-group statistics (the [`dak_io::sharding::Finalize`] of synthetic clips).
pub fn finalize_report(
    dir: &Path,
    extra: &mut serde_json::Value,
    partials: &[serde_json::Value],
) -> dak_io::Result<()> {
    let bad =
        |why: &str| dak_io::Error::ShardMismatch { dir: dir.to_path_buf(), what: format!("shard statistics {why}") };
    let mut groups: Vec<(u64, StatisticsAccumulator)> = Vec::new();
    for partial in partials {
        for item in partial["statistics"].as_array().ok_or_else(|| bad("missing"))? {
            let group = item[0].as_u64().ok_or_else(|| bad("without a group"))?;
            let words: Vec<u64> = item[1]
                .as_array()
                .ok_or_else(|| bad("unreadable"))?
                .iter()
                .map(|w| w.as_u64().ok_or_else(|| bad("unreadable")))
                .collect::<dak_io::Result<_>>()?;
            groups.push((group, StatisticsAccumulator::from_words(&words).ok_or_else(|| bad("of the wrong size"))?));
        }
    }
    groups.sort_by_key(|(g, _)| *g);
    let stats = crate::sampling::merge_in_order(groups.iter().map(|(_, a)| a)).finish();
    extra["report"]["synthetic"] = serde_json::to_value(stats).expect("statistics serialise");
    Ok(())
}

/// Write `report.json` next to the shards, atomically.
pub fn write_report(dir: &Path, report: &impl serde::Serialize) -> dak_io::Result<PathBuf> {
    let path = dir.join("report.json");
    let text = serde_json::to_string_pretty(report).expect("reports serialize");
    dak_io::atomic::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}
