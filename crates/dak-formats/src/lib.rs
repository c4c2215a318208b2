//! Readers for the outside file formats that pose datasets are distributed
//! in. Every reader works on untrusted bytes: malformed input is an error
//! value naming the file and the problem, never a panic, and no allocation is
//! larger than the input can justify.
//!
//! - [`npy`]: NumPy `.npy` arrays and `.npz` archives (zip of `.npy`).
//! - [`pickle`]: a restricted pickle decoder (protocols 0–5) that knows the
//!   NumPy globals found in VideoPose3D and 3DPW files, and nothing else.
//! - [`mat`]: MATLAB v5 `.mat` files (numeric, cell, struct, char).
//! - [`h5mat`]: MATLAB v7.3 `.mat` files, which are HDF5.

pub mod array;
pub mod h5mat;
pub mod mat;
pub mod npy;
pub mod pickle;
pub mod spill;

use std::path::{Path, PathBuf};

pub use array::{Array, DType};

/// An error reading an outside file; the message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {problem}")]
    Malformed { path: PathBuf, problem: String },
}

impl Error {
    pub fn malformed(path: &Path, problem: impl Into<String>) -> Self {
        Self::Malformed { path: path.to_path_buf(), problem: problem.into() }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. } | Self::Malformed { path, .. } => path,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem found while decoding bytes, before it is tied to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl Problem {
    pub fn at(self, path: &Path) -> Error {
        Error::malformed(path, self.0)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! problem {
    ($($arg:tt)*) => { $crate::Problem(format!($($arg)*)) };
}
pub(crate) use problem;

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Fills `buf` as far as the input goes; fewer bytes than asked means the
/// input ended.
pub(crate) fn read_up_to(input: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
