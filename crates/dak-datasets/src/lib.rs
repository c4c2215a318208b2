//! Where source shards come from: the procedural demo dataset that ships with
//! dak-pose ([`synth`]), and the public calibration data of the real datasets.

pub mod h36m_cameras;
pub mod synth;

/// Errors of dataset generation and conversion; each names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Shards(#[from] dak_io::Error),
    #[error("{dir}: holds a finished run with a different configuration; pass --force to replace it")]
    OutputConflict { dir: std::path::PathBuf },
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
