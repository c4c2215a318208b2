//! `manifest.json`: what a shard directory holds and how it was made.
//! Layout documented by `schemas/manifest.v1.schema.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::{sha256_file, write_atomic};
use crate::error::{Error, Result};
use crate::schema::Table;
use crate::MANIFEST_FILE;

/// `{dir, manifest_sha256}` of each shard directory, recorded with outputs
/// so a result can be traced to the exact inputs (an unreadable manifest
/// hashes as empty).
pub fn describe_dirs(dirs: &[PathBuf]) -> Vec<serde_json::Value> {
    dirs.iter()
        .map(|d| {
            let text = std::fs::read(d.join(MANIFEST_FILE)).unwrap_or_default();
            serde_json::json!({ "dir": d, "manifest_sha256": crate::atomic::sha256_hex(&text) })
        })
        .collect()
}

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Schema name of the main tables.
    pub schema: String,
    pub schema_version: u32,
    pub files: Vec<FileEntry>,
    /// Rows of the main tables (the camera table is not counted).
    pub total_rows: u64,
    /// The producing command line.
    pub command: Vec<String>,
    pub seed: Option<u64>,
    /// Tool and version.
    pub producer: String,
    /// Producer-specific facts: what was converted, parameters.
    pub extra: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the shard directory.
    pub path: String,
    pub schema: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    /// A manifest for `table` over `files`; `total_rows` counts files of that table.
    pub fn new(table: Table, files: Vec<FileEntry>, command: Vec<String>, seed: Option<u64>) -> Self {
        let total_rows = files.iter().filter(|f| f.schema == table.name()).map(|f| f.rows).sum();
        Manifest {
            manifest_version: MANIFEST_VERSION,
            schema: table.name().to_string(),
            schema_version: table.version(),
            files,
            total_rows,
            command,
            seed,
            producer: format!("dak-pose {}", env!("CARGO_PKG_VERSION")),
            extra: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        match Self::read_file(&Self::path_in(dir)) {
            // A sharded output before its merge is a step away from done.
            Err(Error::MissingManifest { dir }) => match crate::sharding::shard_manifests(&dir) {
                Ok(shards) if !shards.is_empty() => {
                    let count = shards.iter().map(|(_, n, _)| *n).max().unwrap_or(0);
                    Err(Error::Unmerged { dir, found: shards.len(), count })
                }
                _ => Err(Error::MissingManifest { dir }),
            },
            other => other,
        }
    }

    /// A manifest under any name (shard runs write `manifest.shard-*.json`).
    pub fn read_file(path: &Path) -> Result<Manifest> {
        let path = path.to_path_buf();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                return Err(Error::MissingManifest { dir });
            }
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|source| Error::BadManifest { path: path.clone(), source })?;
        if manifest.manifest_version != MANIFEST_VERSION {
            return Err(Error::ManifestVersion { path, found: manifest.manifest_version, supported: MANIFEST_VERSION });
        }
        Ok(manifest)
    }

    /// Written last, atomically: its presence marks the directory finished.
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_file(&Self::path_in(dir))
    }

    pub fn write_file(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(self).expect("manifest serialises");
        text.push(b'\n');
        write_atomic(path, &text)?;
        Ok(())
    }

    /// Check every listed file's size and, with `checksums`, its SHA-256.
    pub fn verify(&self, dir: &Path, checksums: bool) -> Result<()> {
        for f in &self.files {
            let path = dir.join(&f.path);
            let meta = std::fs::metadata(&path).map_err(Error::io(&path))?;
            if meta.len() != f.bytes {
                return Err(Error::SizeMismatch { path, expected: f.bytes, found: meta.len() });
            }
            if checksums {
                let (_, sha) = sha256_file(&path)?;
                if sha != f.sha256 {
                    return Err(Error::ChecksumMismatch { path, expected: f.sha256.clone(), found: sha });
                }
            }
        }
        Ok(())
    }

    pub fn files_of(&self, table: Table) -> impl Iterator<Item = &FileEntry> {
        self.files.iter().filter(move |f| f.schema == table.name())
    }
}

/// Every leaf where `other` differs from `base`, as `path.to.leaf: other's
/// (base's)` lines (`absent` where one side lacks the key), in key order.
pub fn value_differences(path: &str, base: &serde_json::Value, other: &serde_json::Value) -> Vec<String> {
    fn leaves(path: String, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::Object;
        match (a, b) {
            (Object(a), Object(b)) => {
                let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => leaves(at, x, y, out),
                        (Some(x), None) => out.push(format!("{at}: absent ({x})")),
                        (None, Some(y)) => out.push(format!("{at}: {y} (absent)")),
                        (None, None) => {}
                    }
                }
            }
            (a, b) if a != b => out.push(format!("{path}: {b} ({a})")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    leaves(path.to_string(), base, other, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::new(
            Table::SourceFrames,
            vec![FileEntry {
                path: "part-00000.parquet".into(),
                schema: "source_frames".into(),
                rows: 10,
                bytes: 3,
                sha256: "0".repeat(64),
            }],
            vec!["dak-prep".into(), "synth".into()],
            Some(7),
        );
        m.extra = serde_json::json!({"note": 1});
        m
    }

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Manifest::read(dir.path()), Err(Error::MissingManifest { .. })));
        // One shard of three done: named as a merge to come, not as no shards.
        let shard = dir.path().join("manifest.shard-1-of-3.json");
        std::fs::write(&shard, b"{}").unwrap();
        let err = Manifest::read(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Unmerged { found: 1, count: 3, .. }), "{err}");
        assert!(err.to_string().contains("dak-prep merge"), "{err}");
        std::fs::remove_file(shard).unwrap();
        let m = sample();
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), m);
        assert_eq!(m.total_rows, 10);
    }

    #[test]
    fn garbage_manifest_is_refused_with_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{\"manifest_version\": 1,").unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("manifest.json") && err.contains("invalid manifest"), "{err}");
    }

    /// The JSON Schema in schemas/ documents exactly the fields we write.
    #[test]
    fn json_schema_matches_struct() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../schemas/manifest.v1.schema.json")).unwrap();
        let written = serde_json::to_value(sample()).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let mut required: Vec<String> =
            schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        required.sort();
        assert_eq!(keys(&written), required);
        assert_eq!(keys(&written), keys(&schema["properties"]));
        let file_required: Vec<&str> = schema["properties"]["files"]["items"]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut fk = keys(&written["files"][0]);
        fk.sort();
        let mut fr: Vec<String> = file_required.iter().map(|s| s.to_string()).collect();
        fr.sort();
        assert_eq!(fk, fr);
    }
}
