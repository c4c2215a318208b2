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
    /// The demo's source domain, held-out subject: the in-domain reference
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
            Grouping::Sequence => video.sequence.clone(),
        }
    }
}
