//! The evaluation protocols of paper Tables 1–4, plus the demo's target domain.

use dak_augment::source::SourceFilter;
use serde::{Deserialize, Serialize};

use dak_train::data::Video;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Protocol {
    /// Human3.6M, trained on S1, tested on S5–S8 (Table 1).
    #[serde(rename = "h36m-s1")]
    H36mS1,
    /// Human3.6M, trained on S1, S5–S8, tested on S9 and S11 (Table 2).
    #[serde(rename = "h36m-full")]
    H36mFull,
    /// MPI-INF-3DHP test set TS1–TS6, valid frames (Table 3).
    #[serde(rename = "3dhp")]
    Mpi3dhp,
    /// 3DPW test split (Table 4).
    #[serde(rename = "3dpw")]
    Pw3d,
    /// The demo dataset's shifted target domain.
    #[serde(rename = "demo")]
    Demo,
    /// The demo's source domain, held-out subjects: the in-domain reference
    /// that shows the generalisation gap.
    #[serde(rename = "demo-source")]
    DemoSource,
}

/// How rows of a result table are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    Action,
    Subject,
    Sequence,
}

impl Grouping {
    /// What a row is, as table headers and the CSV's `table` column say.
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Action => "action",
            Grouping::Subject => "sequence",
            Grouping::Sequence => "recording",
        }
    }
}

impl Protocol {
    pub const ALL: [Protocol; 6] =
        [Protocol::H36mS1, Protocol::H36mFull, Protocol::Mpi3dhp, Protocol::Pw3d, Protocol::Demo, Protocol::DemoSource];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::H36mS1 => "h36m-s1",
            Protocol::H36mFull => "h36m-full",
            Protocol::Mpi3dhp => "3dhp",
            Protocol::Pw3d => "3dpw",
            Protocol::Demo => "demo",
            Protocol::DemoSource => "demo-source",
        }
    }

    pub fn parse(name: &str) -> Result<Protocol, String> {
        Protocol::ALL.into_iter().find(|p| p.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
            format!("unknown protocol `{name}`; one of {}", names.join(", "))
        })
    }

    /// The frames the protocol tests on.
    pub fn filter(self) -> SourceFilter {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Protocol::H36mS1 => {
                SourceFilter { datasets: list(&["h36m"]), subjects: list(&["S5", "S6", "S7", "S8"]), splits: vec![] }
            }
            Protocol::H36mFull => {
                SourceFilter { datasets: list(&["h36m"]), subjects: list(&["S9", "S11"]), splits: vec![] }
            }
            Protocol::Mpi3dhp => SourceFilter { datasets: list(&["3dhp"]), splits: list(&["test"]), subjects: vec![] },
            Protocol::Pw3d => SourceFilter { datasets: list(&["3dpw"]), splits: list(&["test"]), subjects: vec![] },
            Protocol::Demo => {
                SourceFilter { datasets: list(&["demo-target"]), splits: list(&["test"]), subjects: vec![] }
            }
            Protocol::DemoSource => {
                SourceFilter { datasets: list(&["demo-source"]), splits: list(&["test"]), subjects: vec![] }
            }
        }
    }

    pub fn grouping(self) -> Grouping {
        match self {
            Protocol::H36mS1 | Protocol::H36mFull | Protocol::Demo | Protocol::DemoSource => Grouping::Action,
            Protocol::Mpi3dhp => Grouping::Subject,
            Protocol::Pw3d => Grouping::Sequence,
        }
    }

    /// Human3.6M papers report the mean over actions; the others over frames.
    pub fn averages_groups(self) -> bool {
        matches!(self, Protocol::H36mS1 | Protocol::H36mFull | Protocol::Demo | Protocol::DemoSource)
    }

    pub fn group_of(self, video: &Video) -> String {
        match self.grouping() {
            Grouping::Action => video.action.clone(),
            Grouping::Subject => video.subject.clone(),
            // 3DPW's converter names a person's track `sequence/actor` and
            // keeps the recording's name in `action`: one row per recording.
            Grouping::Sequence => video.action.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(dataset: &str, subject: &str, action: &str, sequence: &str) -> Video {
        Video {
            dataset: dataset.into(),
            subject: subject.into(),
            action: action.into(),
            action_changes: Vec::new(),
            sequence: sequence.into(),
            camera: "c".into(),
            first_frame: 0,
            intrinsics: dak_core::Intrinsics::pinhole(1000.0, 1000, 1000),
            inputs: Vec::new(),
            poses_mm: Vec::new(),
            valid: Vec::new(),
        }
    }

    #[test]
    fn rows_are_actions_test_sequences_and_recordings() {
        // Human3.6M: per action, whatever the subject and camera.
        assert_eq!(Protocol::H36mFull.group_of(&video("h36m", "S9", "Walking", "S9/Walking 1")), "Walking");
        // 3DHP: per test sequence.
        assert_eq!(Protocol::Mpi3dhp.group_of(&video("3dhp", "TS3", "Walk/Stand", "TS3")), "TS3");
        // 3DPW: both people of a recording are one row.
        let actors = ["downtown_arguing_00/0", "downtown_arguing_00/1"]
            .map(|track| Protocol::Pw3d.group_of(&video("3dpw", track, "downtown_arguing_00", track)));
        assert_eq!(actors, ["downtown_arguing_00", "downtown_arguing_00"]);
    }
}
