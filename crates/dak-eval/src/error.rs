use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Train(#[from] dak_train::Error),
    #[error(transparent)]
    Shards(#[from] dak_io::Error),
    #[error("model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error(transparent)]
    Render(#[from] dak_render::Error),
    #[error(transparent)]
    Keypoints(#[from] dak_keypoints::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;
