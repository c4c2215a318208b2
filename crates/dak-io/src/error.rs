use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing shards. Every variant names
/// the file, so a user can tell which of many shards is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{dir}: holds {holds}, not {writing} shards: choose another output folder (--force replaces only an output of the same kind)")]
    ForeignOutput { dir: PathBuf, holds: String, writing: &'static str },
    #[error("{path}: not a readable Parquet file (corrupt or truncated?): {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: damaged Parquet data ({what})")]
    Damaged { path: PathBuf, what: String },
    #[error("{path}: writing failed (disk full or file size limit?): {source}")]
    ParquetWrite { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: {source}")]
    Arrow { path: PathBuf, source: arrow::error::ArrowError },
    #[error("{path}: not a dak-pose shard (no `dak.schema` metadata)")]
    NotAShard { path: PathBuf },
    #[error("{path}: holds table `{found}`, expected `{expected}`")]
    WrongTable { path: PathBuf, expected: String, found: String },
    #[error("{path}: schema `{table}` version {found} is not supported (this build reads version {supported}); re-create the shard with this version of dak-pose")]
    UnsupportedVersion { path: PathBuf, table: String, found: String, supported: u32 },
    #[error("{path}: column `{column}`: expected {expected}, found {found}")]
    ColumnMismatch { path: PathBuf, column: String, expected: String, found: String },
    #[error("{path}: size {found} bytes, manifest says {expected}: the file was truncated or replaced")]
    SizeMismatch { path: PathBuf, expected: u64, found: u64 },
    #[error("{path}: SHA-256 {found} does not match the manifest's {expected}: the file is corrupt")]
    ChecksumMismatch { path: PathBuf, expected: String, found: String },
    #[error("{dir}: no manifest.json — not a shard directory, or an unfinished run")]
    MissingManifest { dir: PathBuf },
    #[error("{dir}: not merged yet ({found} of {count} shard manifests, no manifest.json): once every shard has run, `dak-prep merge {dir}`")]
    Unmerged { dir: PathBuf, found: usize, count: usize },
    #[error("{path}: invalid manifest: {source}")]
    BadManifest { path: PathBuf, source: serde_json::Error },
    #[error("{path}: manifest version {found} is not supported (expected {supported})")]
    ManifestVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("--shard-index {index} --num-shards {count}: the index must be below the count, and the count at least 1")]
    BadShard { index: usize, count: usize },
    #[error("{dir}: cannot merge shards: {what}")]
    ShardMismatch { dir: PathBuf, what: String },
    #[error("{dir}: missing shards {missing:?} of {count}: run them (same command with --shard-index I --num-shards {count}) before merging")]
    MissingShards { dir: PathBuf, count: usize, missing: Vec<usize> },
    #[error("{dir}: no shard manifests (manifest.shard-*-of-*.json) and no manifest.json: nothing to merge")]
    NoShards { dir: PathBuf },
    #[error("row {row}: `{column}` has {found} values, expected {expected}")]
    RowShape { row: String, column: &'static str, expected: usize, found: usize },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
