//! MATLAB v7.3 `.mat` files: HDF5 behind a 512-byte MATLAB user block (the
//! format of the MPI-INF-3DHP test set's `annot_data.mat`).
//!
//! Arrays come out as h5py shows them: MATLAB's column-major `(2, 17, 1, N)`
//! is read as the C-order `(N, 1, 17, 2)`.

use std::path::{Path, PathBuf};

use crate::array::{Array, DType};
use crate::mat::{detect_version, MatVersion};
use crate::{Error, Result};

pub struct H5Mat {
    path: PathBuf,
    file: hdf5_pure::File,
    /// Size of the file: bounds what its datasets can expand to.
    bytes: usize,
}

/// Deflate expands at most ~1032:1; a dataset declaring more than this many
/// bytes per file byte (beyond a floor for tiny files) is damaged, and is
/// refused before the HDF5 reader tries to allocate it.
const MAX_EXPANSION: usize = 1100;
const MIN_LIMIT: usize = 256 << 20;

impl H5Mat {
    /// Opens a v7.3 `.mat` file (or any HDF5 file with datasets at the root).
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = crate::read_file(path)?;
        let version = detect_version(&bytes);
        if version == MatVersion::V5 {
            return Err(Error::malformed(path, "is a MATLAB v5 file, expected MATLAB v7.3 (HDF5)"));
        }
        if !hdf5_pure::is_hdf5_bytes(&bytes) {
            return Err(Error::malformed(path, "not a MATLAB v7.3 (HDF5) file: no HDF5 signature"));
        }
        let size = bytes.len();
        let file = hdf5_pure::File::from_bytes(bytes)
            .map_err(|e| Error::malformed(path, format!("damaged or truncated HDF5 file: {e}")))?;
        Ok(Self { path: path.into(), file, bytes: size })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Variable names (datasets at the root; MATLAB's `#refs#` group is not one).
    pub fn names(&self) -> Result<Vec<String>> {
        self.file.root().datasets().map_err(|e| Error::malformed(&self.path, format!("cannot list variables: {e}")))
    }

    /// Reads a numeric variable as `f64` in h5py's (C-order) shape.
    pub fn array(&self, name: &str) -> Result<Array> {
        let bad = |what: String| Error::malformed(&self.path, format!("{name}: {what}"));
        let dataset = self.file.dataset(name).map_err(|e| match self.names() {
            Ok(names) if !names.iter().any(|n| n == name) => bad(format!("no such variable; the file holds {names:?}")),
            _ => bad(format!("damaged or truncated HDF5 file: {e}")),
        })?;
        // MATLAB stores an empty array as its dimensions, marked MATLAB_empty.
        let empty = dataset.attrs().ok().and_then(|a| a.get("MATLAB_empty").and_then(|v| v.as_u64())) == Some(1);
        if empty {
            let dims = dataset.read_f64().map_err(|e| bad(format!("cannot read an empty array's dimensions: {e}")))?;
            let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
            if dims.iter().any(|d| !(d.is_finite() && *d >= 0.0)) || !shape.contains(&0) {
                return Err(bad(format!("marked empty, but its dimensions are {dims:?}")));
            }
            return Array::from_vec(DType::F64, shape, Vec::new()).map_err(|p| bad(p.0));
        }
        let shape = dataset.shape().map_err(|e| bad(e.to_string()))?;
        let shape = shape
            .into_iter()
            .map(|d| usize::try_from(d).map_err(|_| bad(format!("extent {d} does not fit in memory"))))
            .collect::<Result<Vec<_>>>()?;
        let count = crate::array::element_count(&shape).map_err(|p| bad(p.0))?;
        let limit = self.bytes.saturating_mul(MAX_EXPANSION).max(MIN_LIMIT);
        if count.checked_mul(8).is_none_or(|b| b > limit) {
            return Err(bad(format!(
                "declares {count} elements, more than a {}-byte file can hold: damaged",
                self.bytes
            )));
        }
        let data = dataset.read_f64().map_err(|e| bad(format!("cannot read as numbers: {e}")))?;
        Array::from_vec(DType::F64, shape, data).map_err(|p| bad(p.0))
    }

    /// The `MATLAB_class` attribute of a variable (`double`, `logical`, ...).
    pub fn matlab_class(&self, name: &str) -> Option<String> {
        let attrs = self.file.dataset(name).ok()?.attrs().ok()?;
        attrs.get("MATLAB_class").and_then(|v| v.as_str().map(str::to_string))
    }
}
