//! Result tables: one row per group, metrics over the group's valid frames.

use std::collections::BTreeMap;
use std::fmt::Write;

use dak_core::{metrics, Pose3};
use dak_train::VideoSet;
use serde::{Deserialize, Serialize};

use crate::protocol::Protocol;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub group: String,
    pub frames: usize,
    pub mpjpe_mm: f64,
    pub p_mpjpe_mm: f64,
    pub n_mpjpe_mm: f64,
    /// PCK@150 mm over the 14 joints of the 3DHP protocol, in %.
    pub pck150: f64,
    /// AUC over 0:5:150 mm on the same joints, in %.
    pub auc: f64,
}

impl Row {
    pub fn compute(group: &str, pred: &[Pose3], gt: &[Pose3]) -> Result<Row, dak_core::GeometryError> {
        let joints = &metrics::PCK_JOINTS_3DHP;
        Ok(Row {
            group: group.to_string(),
            frames: pred.len(),
            mpjpe_mm: metrics::mpjpe(pred, gt)?,
            p_mpjpe_mm: metrics::p_mpjpe(pred, gt)?,
            n_mpjpe_mm: metrics::n_mpjpe(pred, gt)?,
            pck150: 100.0 * metrics::pck(pred, gt, joints, metrics::PCK_THRESHOLD_MM)?,
            auc: 100.0 * metrics::auc(pred, gt, joints)?,
        })
    }

    fn mean_of(group: &str, rows: &[Row]) -> Row {
        let n = rows.len().max(1) as f64;
        let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
        Row {
            group: group.to_string(),
            frames: rows.iter().map(|r| r.frames).sum(),
            mpjpe_mm: mean(|r| r.mpjpe_mm),
            p_mpjpe_mm: mean(|r| r.p_mpjpe_mm),
            n_mpjpe_mm: mean(|r| r.n_mpjpe_mm),
            pck150: mean(|r| r.pck150),
            auc: mean(|r| r.auc),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub protocol: Protocol,
    pub rows: Vec<Row>,
    /// Mean over groups (the Human3.6M convention).
    pub group_mean: Row,
    /// Over all frames at once.
    pub all_frames: Row,
}

impl Table {
    /// Metrics of root-relative predictions (mm, F × 51 per video) against
    /// each video's ground truth, valid frames only.
    pub fn build(
        protocol: Protocol,
        videos: &VideoSet,
        predictions: &[Vec<f32>],
    ) -> Result<Table, dak_core::GeometryError> {
        let mut groups: BTreeMap<String, (Vec<Pose3>, Vec<Pose3>)> = BTreeMap::new();
        for (v, pred, gt) in videos.valid_pose_pairs(predictions) {
            let entry = groups.entry(protocol.group_of(&videos.videos[v])).or_default();
            entry.0.push(pred);
            entry.1.push(gt);
        }
        let mut rows = Vec::new();
        let (mut all_pred, mut all_gt) = (Vec::new(), Vec::new());
        for (group, (pred, gt)) in groups {
            if pred.is_empty() {
                continue;
            }
            rows.push(Row::compute(&group, &pred, &gt)?);
            all_pred.extend(pred);
            all_gt.extend(gt);
        }
        let all_frames = Row::compute("all frames", &all_pred, &all_gt)?;
        Ok(Table { protocol, group_mean: Row::mean_of("mean over groups", &rows), rows, all_frames })
    }

    /// The protocol's headline row.
    pub fn headline(&self) -> &Row {
        if self.protocol.averages_groups() {
            &self.group_mean
        } else {
            &self.all_frames
        }
    }

    pub fn markdown(&self) -> String {
        let mut s =
            String::from("| group | frames | MPJPE (mm) | P-MPJPE (mm) | N-MPJPE (mm) | PCK@150 (%) | AUC (%) |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for r in self.rows.iter().chain([&self.group_mean, &self.all_frames]) {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.group, r.frames, r.mpjpe_mm, r.p_mpjpe_mm, r.n_mpjpe_mm, r.pck150, r.auc
            );
        }
        s
    }

    pub fn csv(&self) -> String {
        let mut s = String::from("group,frames,mpjpe_mm,p_mpjpe_mm,n_mpjpe_mm,pck150,auc\n");
        for r in self.rows.iter().chain([&self.group_mean, &self.all_frames]) {
            let group = if r.group.contains([',', '"']) {
                format!("\"{}\"", r.group.replace('"', "\"\""))
            } else {
                r.group.clone()
            };
            let _ = writeln!(
                s,
                "{group},{},{},{},{},{},{}",
                r.frames, r.mpjpe_mm, r.p_mpjpe_mm, r.n_mpjpe_mm, r.pck150, r.auc
            );
        }
        s
    }
}
