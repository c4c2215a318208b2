use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Shards(#[from] dak_io::Error),
    #[error("invalid setting {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("{path}: {reason}")]
    Source { path: PathBuf, reason: String },
    #[error("no reference clips: {0}")]
    NoClips(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }
}
