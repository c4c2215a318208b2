//! Result tables: one row per group, metrics over the group's valid frames.

use std::collections::BTreeMap;
use std::fmt::Write;

use dak_core::{metrics, Pose3};
use dak_train::data::Video;
use dak_train::VideoSet;
use serde::{Deserialize, Serialize};

use crate::protocol::{Grouping, Protocol};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub group: String,
    pub frames: usize,
    pub mpjpe_mm: f64,
    pub p_mpjpe_mm: f64,
    pub n_mpjpe_mm: f64,
    /// MPJVE: mean per-joint error of the velocities (first differences)
    /// over pairs of consecutive valid frames, in mm/frame; none where the
    /// group has no such pair.
    #[serde(default)]
    pub mpjve_mm: Option<f64>,
    /// PCK@150 mm over the 14 joints of the 3DHP protocol, in %.
    pub pck150: f64,
    /// AUC over 0:5:150 mm on the same joints, in %.
    pub auc: f64,
}

/// A group's valid frames, and the velocity error of each pair of
/// consecutive valid frames of one video.
#[derive(Debug, Default)]
struct Frames {
    pred: Vec<Pose3>,
    gt: Vec<Pose3>,
    velocity_errors: Vec<f64>,
}

impl Frames {
    fn extend(&mut self, other: Frames) {
        self.pred.extend(other.pred);
        self.gt.extend(other.gt);
        self.velocity_errors.extend(other.velocity_errors);
    }
}

/// The mean of `values`; none for none.
fn mean_if_any(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl Row {
    fn compute(group: &str, frames: &Frames) -> Result<Row, dak_core::GeometryError> {
        let (pred, gt) = (&frames.pred, &frames.gt);
        let joints = &metrics::PCK_JOINTS_3DHP;
        let v = &frames.velocity_errors;
        Ok(Row {
            group: group.to_string(),
            frames: pred.len(),
            mpjpe_mm: metrics::mpjpe(pred, gt)?,
            p_mpjpe_mm: metrics::p_mpjpe(pred, gt)?,
            n_mpjpe_mm: metrics::n_mpjpe(pred, gt)?,
            mpjve_mm: mean_if_any(v),
            pck150: 100.0 * metrics::pck(pred, gt, joints, metrics::PCK_THRESHOLD_MM)?,
            auc: 100.0 * metrics::auc(pred, gt, joints)?,
        })
    }

    fn mean_of(group: &str, rows: &[Row]) -> Row {
        let n = rows.len().max(1) as f64;
        let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
        let velocities: Vec<f64> = rows.iter().filter_map(|r| r.mpjve_mm).collect();
        Row {
            group: group.to_string(),
            frames: rows.iter().map(|r| r.frames).sum(),
            mpjpe_mm: mean(|r| r.mpjpe_mm),
            p_mpjpe_mm: mean(|r| r.p_mpjpe_mm),
            n_mpjpe_mm: mean(|r| r.n_mpjpe_mm),
            mpjve_mm: mean_if_any(&velocities),
            pck150: mean(|r| r.pck150),
            auc: mean(|r| r.auc),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub protocol: Protocol,
    /// One row per group of the protocol (action, test sequence or recording).
    pub rows: Vec<Row>,
    /// One row per subject, where the protocol's groups are not subjects
    /// already (Human3.6M: S9, S11; 3DPW: each person of a recording).
    #[serde(default)]
    pub subjects: Vec<Row>,
    /// One row per activity, frame by frame, where the protocol's rows
    /// mix activities (3DHP's test sequences; its official script's
    /// activity-wise table).
    #[serde(default)]
    pub activities: Vec<Row>,
    /// Mean over groups (the Human3.6M convention).
    pub group_mean: Row,
    /// Over all frames at once.
    pub all_frames: Row,
}

/// One valid frame: (video, frame, prediction, ground truth), root-relative mm.
type FramePair = (usize, usize, Pose3, Pose3);

/// `frames` (in video and frame order) grouped by `key(video, frame)`; a
/// velocity pair is two consecutive frames of one video in one group.
fn gather(videos: &VideoSet, frames: &[FramePair], key: impl Fn(&Video, usize) -> String) -> BTreeMap<String, Frames> {
    let mut groups: BTreeMap<String, Frames> = BTreeMap::new();
    let mut previous: Option<(String, &FramePair)> = None;
    for pair @ (v, f, pred, gt) in frames {
        let group = key(&videos.videos[*v], *f);
        let entry = groups.entry(group.clone()).or_default();
        if let Some((_, (_, _, pred_0, gt_0))) =
            previous.as_ref().filter(|(g, (v0, f0, _, _))| *g == group && v0 == v && f0 + 1 == *f)
        {
            entry.velocity_errors.push(metrics::mpjve(&[*pred_0, *pred], &[*gt_0, *gt]).expect("two frames"));
        }
        entry.pred.push(*pred);
        entry.gt.push(*gt);
        previous = Some((group, pair));
    }
    groups
}

impl Table {
    /// Metrics of root-relative predictions (mm, F × 51 per video) against
    /// each video's ground truth, valid frames only.
    pub fn build(
        protocol: Protocol,
        videos: &VideoSet,
        predictions: &[Vec<f32>],
    ) -> Result<Table, dak_core::GeometryError> {
        let pairs: Vec<FramePair> = videos.valid_pose_pairs(predictions).collect();
        let mut rows = Vec::new();
        let mut all = Frames::default();
        for (group, frames) in gather(videos, &pairs, |v, _| protocol.group_of(v)) {
            rows.push(Row::compute(&group, &frames)?);
            all.extend(frames);
        }
        let table_of = |key: &dyn Fn(&Video, usize) -> String| {
            gather(videos, &pairs, key)
                .iter()
                .map(|(group, frames)| Row::compute(group, frames))
                .collect::<Result<Vec<Row>, _>>()
        };
        let subjects =
            if protocol.grouping() == Grouping::Subject { Vec::new() } else { table_of(&|v, _| v.subject.clone())? };
        let activities =
            if protocol == Protocol::Mpi3dhp { table_of(&|v, f| v.action_at(f).to_string())? } else { Vec::new() };
        let all_frames = Row::compute("all frames", &all)?;
        let group_mean = Row::mean_of("mean over groups", &rows);
        Ok(Table { protocol, group_mean, rows, subjects, activities, all_frames })
    }

    /// The protocol's headline row.
    pub fn headline(&self) -> &Row {
        if self.protocol.averages_groups() {
            &self.group_mean
        } else {
            &self.all_frames
        }
    }

    /// The protocol's rows, the two summaries, then (where there are any)
    /// the per-subject and per-activity rows under their own headers.
    pub fn markdown(&self) -> String {
        const HEADER: &str =
            "| frames | MPJPE (mm) | P-MPJPE (mm) | N-MPJPE (mm) | MPJVE (mm/frame) | PCK@150 (%) | AUC (%) |\n";
        let line = |s: &mut String, r: &Row| {
            let mpjve = r.mpjve_mm.map_or("—".to_string(), |v| format!("{v:.1}"));
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {mpjve} | {:.1} | {:.1} |",
                r.group, r.frames, r.mpjpe_mm, r.p_mpjpe_mm, r.n_mpjpe_mm, r.pck150, r.auc
            );
        };
        let rule = "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        let mut s = format!("| {} {HEADER}{rule}", self.protocol.grouping().name());
        for r in self.rows.iter().chain([&self.group_mean, &self.all_frames]) {
            line(&mut s, r);
        }
        for (name, rows) in [("subject", &self.subjects), ("activity", &self.activities)] {
            if !rows.is_empty() {
                let _ = write!(s, "\n| {name} {HEADER}{rule}");
                for r in rows {
                    line(&mut s, r);
                }
            }
        }
        s
    }

    /// One line per row; `table` says which table it belongs to (the
    /// protocol's grouping, `summary`, `subject` or `activity`).
    pub fn csv(&self) -> String {
        let mut s = String::from("table,group,frames,mpjpe_mm,p_mpjpe_mm,n_mpjpe_mm,mpjve_mm,pck150,auc\n");
        let grouping = self.protocol.grouping().name();
        let tables = self.rows.iter().map(|r| (grouping, r)).chain(
            [&self.group_mean, &self.all_frames]
                .into_iter()
                .map(|r| ("summary", r))
                .chain(self.subjects.iter().map(|r| ("subject", r)))
                .chain(self.activities.iter().map(|r| ("activity", r))),
        );
        for (table, r) in tables {
            let group = if r.group.contains([',', '"']) {
                format!("\"{}\"", r.group.replace('"', "\"\""))
            } else {
                r.group.clone()
            };
            let mpjve = r.mpjve_mm.map_or(String::new(), |v| v.to_string());
            let _ = writeln!(
                s,
                "{table},{group},{},{},{},{},{mpjve},{},{}",
                r.frames, r.mpjpe_mm, r.p_mpjpe_mm, r.n_mpjpe_mm, r.pck150, r.auc
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const J3: usize = dak_core::NUM_JOINTS * 3;

    /// A video of `offsets.len()` frames of one pose (joint j at x = 10 j),
    /// with predictions that are the root-relative pose shifted by
    /// `offsets[f]` mm along x.
    fn video(subject: &str, action: &str, offsets: &[f32], valid: &[bool]) -> (Video, Vec<f32>) {
        let pose: Vec<f32> = (0..dak_core::NUM_JOINTS).flat_map(|j| [10.0 * j as f32, 0.0, 4000.0]).collect();
        let poses_mm: Vec<f32> = offsets.iter().flat_map(|_| pose.clone()).collect();
        let predictions = offsets
            .iter()
            .flat_map(|&o| (0..dak_core::NUM_JOINTS).flat_map(move |j| [10.0 * j as f32 + o, 0.0, 0.0]))
            .collect();
        let video = Video {
            dataset: "h36m".into(),
            subject: subject.into(),
            action: action.into(),
            action_changes: Vec::new(),
            sequence: format!("{subject}/{action}"),
            camera: "c".into(),
            intrinsics: dak_core::Intrinsics::pinhole(1000.0, 1000, 1000),
            inputs: vec![0.0; offsets.len() * dak_core::NUM_JOINTS * 2],
            poses_mm,
            valid: valid.to_vec(),
        };
        assert_eq!(video.poses_mm.len(), offsets.len() * J3);
        (video, predictions)
    }

    fn set(videos: Vec<(Video, Vec<f32>)>) -> (VideoSet, Vec<Vec<f32>>) {
        let (videos, predictions) = videos.into_iter().unzip();
        (VideoSet { videos, inputs: Vec::new() }, predictions)
    }

    /// Velocities only between consecutive valid frames of one video: not
    /// across an invalid frame, not from one video into the next.
    #[test]
    fn mpjve_takes_pairs_of_consecutive_valid_frames() {
        let (videos, predictions) = set(vec![
            video("S9", "Walking", &[0.0, 3.0, 100.0, 7.0], &[true, true, false, true]),
            video("S9", "Walking", &[50.0], &[true]),
        ]);
        let table = Table::build(Protocol::H36mFull, &videos, &predictions).unwrap();
        let row = &table.rows[0];
        assert_eq!(row.frames, 4);
        // Only frames 0 → 1 of the first video: |3 − 0| on every joint.
        assert!((row.mpjve_mm.unwrap() - 3.0).abs() < 1e-4, "{row:?}");
        // A group without a pair has none, and the CSV leaves it empty.
        let (videos, predictions) = set(vec![video("S9", "Eating", &[1.0, 2.0], &[true, false])]);
        let table = Table::build(Protocol::H36mFull, &videos, &predictions).unwrap();
        assert_eq!(table.rows[0].mpjve_mm, None);
        assert!(table.csv().lines().nth(1).unwrap().contains(",,"), "{}", table.csv());
    }

    #[test]
    fn subjects_get_their_own_rows_where_groups_are_not_subjects() {
        let (videos, predictions) = set(vec![
            video("S9", "Walking", &[1.0, 1.0], &[true, true]),
            video("S11", "Walking", &[5.0, 5.0, 5.0], &[true, true, true]),
            video("S11", "Eating", &[5.0], &[true]),
        ]);
        let table = Table::build(Protocol::H36mFull, &videos, &predictions).unwrap();
        let groups = |rows: &[Row]| rows.iter().map(|r| (r.group.clone(), r.frames)).collect::<Vec<_>>();
        assert_eq!(groups(&table.rows), [("Eating".into(), 1), ("Walking".into(), 5)]);
        assert_eq!(groups(&table.subjects), [("S11".into(), 4), ("S9".into(), 2)]);
        // Each subject's own error: a constant x shift of 1 and 5 mm.
        assert!((table.subjects[1].mpjpe_mm - 1.0).abs() < 1e-4 && (table.subjects[0].mpjpe_mm - 5.0).abs() < 1e-4);
        let md = table.markdown();
        assert!(md.starts_with("| action | frames |") && md.contains("\n| subject | frames |"), "{md}");
        let csv = table.csv();
        assert!(
            csv.contains("\nsubject,S9,2,")
                && csv.contains("\naction,Walking,5,")
                && csv.contains("\nsummary,all frames,6,")
        );
        // 3DHP's rows are its test sequences (its subjects): no second table.
        let table = Table::build(Protocol::Mpi3dhp, &videos, &predictions).unwrap();
        assert!(table.subjects.is_empty() && !table.markdown().contains("| subject |"));
    }

    /// 3DHP's test sequences go through several activities: a row per
    /// activity takes each frame by its own activity, and velocities only
    /// within one.
    #[test]
    fn activities_are_taken_frame_by_frame() {
        let (mut ts1, p1) = video("TS1", "Walk", &[0.0, 2.0, 4.0, 10.0, 11.0], &[true; 5]);
        ts1.action_changes = vec![(3, "Sit".into())];
        let (ts2, p2) = video("TS2", "Sit", &[1.0, 1.0], &[true, true]);
        assert_eq!((ts1.action_at(2), ts1.action_at(3), ts1.action_at(4)), ("Walk", "Sit", "Sit"));
        let (videos, predictions) = set(vec![(ts1, p1), (ts2, p2)]);
        let table = Table::build(Protocol::Mpi3dhp, &videos, &predictions).unwrap();
        let groups: Vec<_> = table.activities.iter().map(|r| (r.group.as_str(), r.frames)).collect();
        assert_eq!(groups, [("Sit", 4), ("Walk", 3)]);
        // Sit: pairs 10 → 11 (1 mm) and 1 → 1 (0); the 4 → 10 step crosses activities.
        assert!((table.activities[0].mpjve_mm.unwrap() - 0.5).abs() < 1e-4, "{:?}", table.activities[0]);
        // Walk: 0 → 2 → 4.
        assert!((table.activities[1].mpjve_mm.unwrap() - 2.0).abs() < 1e-4);
        // The sequence rows still take the whole sequence, crossing included.
        assert!((table.rows[0].mpjve_mm.unwrap() - (2.0 + 2.0 + 6.0 + 1.0) / 4.0).abs() < 1e-4);
        assert!(table.markdown().contains("\n| activity | frames |") && table.csv().contains("\nactivity,Sit,4,"));
        // Human3.6M has none.
        assert!(Table::build(Protocol::H36mFull, &videos, &predictions).unwrap().activities.is_empty());
    }

    /// A NaN or infinite prediction is refused by name (video, frame,
    /// joint), not turned into a NaN table whose PCK still looks plausible.
    #[test]
    fn non_finite_predictions_are_refused_by_name() {
        let (videos, mut predictions) = set(vec![video("S9", "Walking", &[0.0, 1.0], &[true, true])]);
        let model = serde_json::json!({ "path": "runs/x/model.safetensors" });
        crate::check_finite(&videos, &predictions, &model).unwrap();
        predictions[0][J3 + 3 * 4 + 1] = f32::NAN;
        let err = crate::check_finite(&videos, &predictions, &model).unwrap_err().to_string();
        assert!(err.contains("runs/x/model.safetensors") && err.contains("NaN for S9/Walking frame 1 (joint"), "{err}");
        assert!(err.contains(dak_core::skeleton::JOINT_NAMES[4]), "{err}");
        predictions[0][J3 + 3 * 4 + 1] = f32::INFINITY;
        assert!(crate::check_finite(&videos, &predictions, &model).is_err());
    }
}
