//! Result tables: one row per group, metrics over the group's valid frames.

use std::collections::BTreeMap;
use std::fmt::Write;

use dak_core::metrics::{ErrorSums, FrameErrors};
use dak_core::{metrics, Pose3};
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

/// The mean of `values`; none for none.
fn mean_if_any(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

impl Row {
    fn compute(group: &str, sums: &ErrorSums) -> Row {
        Row {
            group: group.to_string(),
            frames: sums.frames,
            mpjpe_mm: sums.mpjpe(),
            p_mpjpe_mm: sums.p_mpjpe(),
            n_mpjpe_mm: sums.n_mpjpe(),
            mpjve_mm: sums.mpjve(),
            pck150: 100.0 * sums.pck(),
            auc: 100.0 * sums.auc(),
        }
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

/// Error sums per group of one table, keyed by group name.
#[derive(Default)]
struct Groups(BTreeMap<String, ErrorSums>);

impl Groups {
    /// Count a frame in `group`, and its velocity where the previous frame
    /// of its video was valid and counted in the same group.
    fn add(&mut self, group: &str, errors: &FrameErrors, velocity: Option<(f64, &str)>) {
        let sums = match self.0.get_mut(group) {
            Some(sums) => sums,
            None => self.0.entry(group.to_string()).or_default(),
        };
        sums.add(errors);
        if let Some((mm, _)) = velocity.filter(|(_, previous)| *previous == group) {
            sums.add_velocity(mm);
        }
    }

    fn rows(&self) -> Vec<Row> {
        self.0.iter().map(|(group, sums)| Row::compute(group, sums)).collect()
    }
}

impl Table {
    /// Metrics of root-relative predictions (mm, F × 51 per video) against
    /// each video's ground truth, valid frames only. One pass over the
    /// frames; nothing is kept per frame.
    pub fn build(protocol: Protocol, videos: &VideoSet, predictions: &[Vec<f32>]) -> Table {
        let (mut rows, mut subjects, mut activities) = (Groups::default(), Groups::default(), Groups::default());
        let mut all = ErrorSums::default();
        let by_subject = protocol.grouping() != Grouping::Subject;
        let by_activity = protocol == Protocol::Mpi3dhp;
        let groups: Vec<String> = videos.videos.iter().map(|v| protocol.group_of(v)).collect();
        let mut previous: Option<(usize, usize, Pose3, Pose3)> = None;
        for (v, f, pred, gt) in videos.valid_pose_pairs(predictions) {
            let video = &videos.videos[v];
            let errors = FrameErrors::of(&pred, &gt, &metrics::PCK_JOINTS_3DHP);
            // A velocity pair is two consecutive frames of one video, both valid.
            let velocity = previous
                .filter(|(v0, f0, _, _)| *v0 == v && f0 + 1 == f)
                .map(|(_, f0, pred_0, gt_0)| (metrics::mpjve(&[pred_0, pred], &[gt_0, gt]).expect("two frames"), f0));
            rows.add(&groups[v], &errors, velocity.map(|(mm, _)| (mm, groups[v].as_str())));
            if by_subject {
                subjects.add(&video.subject, &errors, velocity.map(|(mm, _)| (mm, video.subject.as_str())));
            }
            if by_activity {
                activities.add(video.action_at(f), &errors, velocity.map(|(mm, f0)| (mm, video.action_at(f0))));
            }
            all.add(&errors);
            if let Some((mm, _)) = velocity {
                all.add_velocity(mm);
            }
            previous = Some((v, f, pred, gt));
        }
        let rows = rows.rows();
        let group_mean = Row::mean_of("mean over groups", &rows);
        Table {
            protocol,
            group_mean,
            rows,
            subjects: subjects.rows(),
            activities: activities.rows(),
            all_frames: Row::compute("all frames", &all),
        }
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
    use dak_train::data::Video;

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
            first_frame: 0,
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
        (VideoSet { videos, inputs: Vec::new(), held: Default::default() }, predictions)
    }

    /// Velocities only between consecutive valid frames of one video: not
    /// across an invalid frame, not from one video into the next.
    #[test]
    fn mpjve_takes_pairs_of_consecutive_valid_frames() {
        let (videos, predictions) = set(vec![
            video("S9", "Walking", &[0.0, 3.0, 100.0, 7.0], &[true, true, false, true]),
            video("S9", "Walking", &[50.0], &[true]),
        ]);
        let table = Table::build(Protocol::H36mFull, &videos, &predictions);
        let row = &table.rows[0];
        assert_eq!(row.frames, 4);
        // Only frames 0 → 1 of the first video: |3 − 0| on every joint.
        assert!((row.mpjve_mm.unwrap() - 3.0).abs() < 1e-4, "{row:?}");
        // A group without a pair has none, and the CSV leaves it empty.
        let (videos, predictions) = set(vec![video("S9", "Eating", &[1.0, 2.0], &[true, false])]);
        let table = Table::build(Protocol::H36mFull, &videos, &predictions);
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
        let table = Table::build(Protocol::H36mFull, &videos, &predictions);
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
        let table = Table::build(Protocol::Mpi3dhp, &videos, &predictions);
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
        let table = Table::build(Protocol::Mpi3dhp, &videos, &predictions);
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
        assert!(Table::build(Protocol::H36mFull, &videos, &predictions).activities.is_empty());
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
