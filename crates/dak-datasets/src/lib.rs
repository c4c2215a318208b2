//! Where source shards come from: the procedural demo dataset that ships with
//! dak-pose ([`synth`]), and the public calibration data of the real datasets.

pub mod convert;
pub mod h36m;
pub mod h36m_cameras;
pub mod mpi3dhp;
pub mod pw3d;
pub mod synth;

use std::path::PathBuf;

/// Errors of dataset generation and conversion; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Shards(#[from] dak_io::Error),
    #[error("{dir}: holds a finished run with a different configuration; pass --force to replace it")]
    OutputConflict { dir: PathBuf },
    #[error(transparent)]
    Format(#[from] dak_formats::Error),
    #[error("{path}: not found; expected {what}")]
    MissingInput { path: PathBuf, what: String },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("{dir}: nothing to convert (no input files match the layout and filters)")]
    NothingToConvert { dir: PathBuf },
    #[error("{sequence}: {source}")]
    Sequence { sequence: String, source: Box<Error> },
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(path: &std::path::Path, problem: impl Into<String>) -> Self {
        Self::Invalid { path: path.to_path_buf(), problem: problem.into() }
    }
}
