//! A fitted augmentor on disk: `weights.safetensors` (names a PyTorch user
//! can load with `safetensors.torch.load_file`) and `model.json` (kind,
//! configuration, how it was fitted). `model.json` is written last and
//! atomically, so a directory without it is an unfinished fit.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};

pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const MODEL_FILE: &str = "model.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile<C> {
    pub kind: String,
    pub format_version: u32,
    pub config: C,
    /// Fitting settings, inputs and final losses.
    pub fit: serde_json::Value,
}

/// Save each `(file name, variables)` and then the model file into `dir`.
pub fn save<C: Serialize>(
    dir: &Path,
    kind: &str,
    config: &C,
    fit: serde_json::Value,
    weights: &[(&str, &VarStore)],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let model = dir.join(MODEL_FILE);
    if model.exists() {
        std::fs::remove_file(&model).map_err(|source| Error::Io { path: model.clone(), source })?;
    }
    // What a killed save left: full-size weights under temporary names.
    for entry in std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temporary(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for (name, vs) in weights {
        let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        write_safetensors(&dir.join(name), &tensors)?;
    }
    let file = ModelFile { kind: kind.to_string(), format_version: FORMAT_VERSION, config, fit };
    let text = serde_json::to_string_pretty(&file).expect("model files serialize");
    dak_io::atomic::write_atomic(&model, text.as_bytes())
        .map_err(|e| Error::Model { path: model.clone(), reason: e.to_string() })?;
    Ok(())
}

/// Write named tensors as safetensors to `path` through a temporary name
/// beside it, synced before the rename, so that a crash never leaves a
/// partial file under `path`. tch picks the format from the extension, so
/// the temporary keeps `.safetensors`; it names the process and the call,
/// so that two writers of one path never write into one temporary.
pub fn write_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    // `.NAME.pPID-N.tmp` + `.safetensors`.
    let mut tmp = dak_io::atomic::tmp_path_for(path).into_os_string();
    tmp.push(".safetensors");
    let tmp = PathBuf::from(tmp);
    let written = Tensor::write_safetensors(tensors, &tmp)
        .map_err(|e| Error::Model { path: tmp.clone(), reason: e.to_string() })
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|source| Error::Io { path: path.to_path_buf(), source })
        });
    if written.is_err() {
        // A full disk must not keep a full-size partial file.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

const TMP_SAFETENSORS: &str = ".tmp.safetensors";

/// Whether `name` is a temporary a killed writer left: of
/// [`write_safetensors`], or of any other atomic write (`.NAME.pPID-N.tmp`).
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TMP_SAFETENSORS) || dak_io::atomic::final_name_of_tmp(name).is_some()
}

/// Read `model.json` of `dir`, checking it holds a `kind` model.
pub fn read<C: DeserializeOwned>(dir: &Path, kind: &str) -> Result<ModelFile<C>> {
    let path = dir.join(MODEL_FILE);
    let bad = |reason: String| Error::Model { path: path.clone(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(if e.kind() == std::io::ErrorKind::NotFound {
            format!("not found; fit a model first with `dak-augment fit --mode {kind} --out {}`", dir.display())
        } else {
            e.to_string()
        })
    })?;
    let header: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not a model file: {e}")))?;
    let found = header.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
    if found != kind {
        return Err(bad(format!("holds a `{found}` model, not `{kind}`")));
    }
    let version = header.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version != u64::from(FORMAT_VERSION) {
        return Err(bad(format!("model format version {version}; this build reads version {FORMAT_VERSION}")));
    }
    serde_json::from_value(header).map_err(|e| bad(format!("unexpected model configuration: {e}")))
}

/// Load the weights file `name` of `dir` into `vs` (whose variables must all be there).
pub fn load_weights(dir: &Path, name: &str, vs: &mut VarStore) -> Result<()> {
    let path: PathBuf = dir.join(name);
    vs.load(&path).map_err(|e| Error::Model { path: path.clone(), reason: format!("unreadable weights: {e}") })
}
