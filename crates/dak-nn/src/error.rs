use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Augment(#[from] dak_augment::Error),
    #[error("{path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("invalid setting {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("{0}")]
    Device(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("fitting diverged at step {step}: {what} is {value}")]
    Diverged { step: usize, what: &'static str, value: f64 },
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<Error> for dak_augment::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Augment(inner) => inner,
            other => dak_augment::Error::Config { field: "model", reason: other.to_string() },
        }
    }
}
