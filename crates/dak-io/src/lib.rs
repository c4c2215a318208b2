//! Versioned Parquet shards for dak-pose.
//!
//! The column layout of every table lives in `schemas/*.json` at the top of
//! the repository; [`schema`] turns those files into Arrow schemas, so the
//! JSON is the single source of truth for Rust, Python and docs alike.
//!
//! A shard directory holds Parquet files and a `manifest.json` that is always
//! written last and atomically: a directory without a manifest is unfinished,
//! and every file the manifest lists has a size and SHA-256 that readers check.

pub mod atomic;
pub mod cameras;
pub mod clips;
mod columns;
pub mod error;
pub mod frames;
pub mod manifest;
pub mod progress;
pub mod read;
pub mod schema;
pub mod sharding;
pub mod write;

pub use arrow::array::RecordBatch;
pub use cameras::{read_camera_table, write_camera_table, CameraRecord};
pub use clips::{SyntheticClipBuilder, SyntheticClipRow, SyntheticClips};
pub use error::{Error, Result};
pub use frames::{SourceFrameBuilder, SourceFrameRow, SourceFrames, TwoDSource};
pub use manifest::{FileEntry, Manifest};
pub use progress::{Reporter, Silent};
pub use read::{panic_text, ShardReader, ShardSet, Verify};
pub use schema::Table;
pub use sharding::{ShardRecord, ShardSpec};
pub use write::{OutputDir, Prepared, ShardWriter, WriterOptions};

/// Name of the manifest file in every shard directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the camera table in a source shard directory.
pub const CAMERAS_FILE: &str = "cameras.parquet";

#[cfg(test)]
mod roundtrip_tests;
