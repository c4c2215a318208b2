//! The `source_frames` table: one row per (frame, camera).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, BooleanBuilder, FixedSizeListBuilder, Float32Builder, PrimitiveArray, PrimitiveBuilder,
    RecordBatch, StringArray, StringBuilder, UInt32Builder,
};
use arrow::datatypes::{Float32Type, Schema, UInt32Type};
use dak_core::NUM_JOINTS;

use crate::columns::{append_fixed, bools, finish_batch, fixed_builder, primitives, strings, FixedRows};
use crate::error::{Error, Result};
use crate::schema::Table;

pub const JOINTS_3D: usize = NUM_JOINTS * 3;
pub const JOINTS_2D: usize = NUM_JOINTS * 2;

/// Where the ground-truth 2D of a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoDSource {
    /// The dataset's own 2D annotation.
    Annotation,
    /// Projection of the 3D joints with the camera model.
    Projection,
}

impl TwoDSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TwoDSource::Annotation => "annotation",
            TwoDSource::Projection => "projection",
        }
    }
}

/// One frame seen by one camera, borrowed from the converter's buffers.
#[derive(Debug, Clone, Copy)]
pub struct SourceFrameRow<'a> {
    pub dataset: &'a str,
    pub split: &'a str,
    pub subject: &'a str,
    pub action: &'a str,
    pub sequence: &'a str,
    pub camera: &'a str,
    pub frame: u32,
    pub fps: f32,
    pub joints_3d_world_mm: Option<&'a [f32]>,
    pub joints_3d_camera_mm: &'a [f32],
    pub joints_2d_px: &'a [f32],
    pub joints_2d_source: TwoDSource,
    pub detected_2d_px: Option<&'a [f32]>,
    pub detected_2d_confidence: Option<&'a [f32]>,
    pub detector: Option<&'a str>,
    pub valid: bool,
}

/// Accumulates rows into a record batch of the `source_frames` schema.
pub struct SourceFrameBuilder {
    schema: Arc<Schema>,
    dataset: StringBuilder,
    split: StringBuilder,
    subject: StringBuilder,
    action: StringBuilder,
    sequence: StringBuilder,
    camera: StringBuilder,
    frame: UInt32Builder,
    fps: Float32Builder,
    joints_3d_world_mm: FixedSizeListBuilder<PrimitiveBuilder<Float32Type>>,
    joints_3d_camera_mm: FixedSizeListBuilder<PrimitiveBuilder<Float32Type>>,
    joints_2d_px: FixedSizeListBuilder<PrimitiveBuilder<Float32Type>>,
    joints_2d_source: StringBuilder,
    detected_2d_px: FixedSizeListBuilder<PrimitiveBuilder<Float32Type>>,
    detected_2d_confidence: FixedSizeListBuilder<PrimitiveBuilder<Float32Type>>,
    detector: StringBuilder,
    valid: BooleanBuilder,
    rows: usize,
}

fn check_len(row: &SourceFrameRow<'_>, column: &'static str, found: usize, expected: usize) -> Result<()> {
    if found != expected {
        return Err(Error::RowShape {
            row: format!("{}/{} camera {} frame {}", row.dataset, row.sequence, row.camera, row.frame),
            column,
            expected,
            found,
        });
    }
    Ok(())
}

impl SourceFrameBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        let schema = Table::SourceFrames.arrow_schema();
        SourceFrameBuilder {
            dataset: StringBuilder::new(),
            split: StringBuilder::new(),
            subject: StringBuilder::new(),
            action: StringBuilder::new(),
            sequence: StringBuilder::new(),
            camera: StringBuilder::new(),
            frame: UInt32Builder::with_capacity(capacity),
            fps: Float32Builder::with_capacity(capacity),
            joints_3d_world_mm: fixed_builder(&schema, "joints_3d_world_mm", capacity),
            joints_3d_camera_mm: fixed_builder(&schema, "joints_3d_camera_mm", capacity),
            joints_2d_px: fixed_builder(&schema, "joints_2d_px", capacity),
            joints_2d_source: StringBuilder::new(),
            detected_2d_px: fixed_builder(&schema, "detected_2d_px", capacity),
            detected_2d_confidence: fixed_builder(&schema, "detected_2d_confidence", capacity),
            detector: StringBuilder::new(),
            valid: BooleanBuilder::with_capacity(capacity),
            schema,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Append a row; a joint array of the wrong width is refused before anything is appended.
    pub fn push(&mut self, row: &SourceFrameRow<'_>) -> Result<()> {
        if let Some(w) = row.joints_3d_world_mm {
            check_len(row, "joints_3d_world_mm", w.len(), JOINTS_3D)?;
        }
        check_len(row, "joints_3d_camera_mm", row.joints_3d_camera_mm.len(), JOINTS_3D)?;
        check_len(row, "joints_2d_px", row.joints_2d_px.len(), JOINTS_2D)?;
        if let Some(d) = row.detected_2d_px {
            check_len(row, "detected_2d_px", d.len(), JOINTS_2D)?;
        }
        if let Some(c) = row.detected_2d_confidence {
            check_len(row, "detected_2d_confidence", c.len(), NUM_JOINTS)?;
        }
        self.dataset.append_value(row.dataset);
        self.split.append_value(row.split);
        self.subject.append_value(row.subject);
        self.action.append_value(row.action);
        self.sequence.append_value(row.sequence);
        self.camera.append_value(row.camera);
        self.frame.append_value(row.frame);
        self.fps.append_value(row.fps);
        append_fixed(&mut self.joints_3d_world_mm, row.joints_3d_world_mm, JOINTS_3D);
        append_fixed(&mut self.joints_3d_camera_mm, Some(row.joints_3d_camera_mm), JOINTS_3D);
        append_fixed(&mut self.joints_2d_px, Some(row.joints_2d_px), JOINTS_2D);
        self.joints_2d_source.append_value(row.joints_2d_source.as_str());
        append_fixed(&mut self.detected_2d_px, row.detected_2d_px, JOINTS_2D);
        append_fixed(&mut self.detected_2d_confidence, row.detected_2d_confidence, NUM_JOINTS);
        self.detector.append_option(row.detector);
        self.valid.append_value(row.valid);
        self.rows += 1;
        Ok(())
    }

    /// Take the rows so far as a batch; the builder is empty afterwards.
    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.dataset.finish()),
            Arc::new(self.split.finish()),
            Arc::new(self.subject.finish()),
            Arc::new(self.action.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(self.camera.finish()),
            Arc::new(self.frame.finish()),
            Arc::new(self.fps.finish()),
            Arc::new(self.joints_3d_world_mm.finish()),
            Arc::new(self.joints_3d_camera_mm.finish()),
            Arc::new(self.joints_2d_px.finish()),
            Arc::new(self.joints_2d_source.finish()),
            Arc::new(self.detected_2d_px.finish()),
            Arc::new(self.detected_2d_confidence.finish()),
            Arc::new(self.detector.finish()),
            Arc::new(self.valid.finish()),
        ];
        finish_batch(&self.schema, columns)
    }
}

/// A decoded batch of source frames with typed, zero-copy row access.
#[derive(Debug, Clone)]
pub struct SourceFrames {
    pub dataset: StringArray,
    pub split: StringArray,
    pub subject: StringArray,
    pub action: StringArray,
    pub sequence: StringArray,
    pub camera: StringArray,
    pub frame: PrimitiveArray<UInt32Type>,
    pub fps: PrimitiveArray<Float32Type>,
    joints_3d_world_mm: FixedRows<Float32Type>,
    joints_3d_camera_mm: FixedRows<Float32Type>,
    joints_2d_px: FixedRows<Float32Type>,
    pub joints_2d_source: StringArray,
    detected_2d_px: FixedRows<Float32Type>,
    detected_2d_confidence: FixedRows<Float32Type>,
    pub detector: StringArray,
    pub valid: BooleanArray,
}

impl SourceFrames {
    /// Decode a batch read from `path` (used in error messages).
    pub fn from_batch(path: &Path, batch: &RecordBatch) -> Result<Self> {
        Ok(SourceFrames {
            dataset: strings(path, batch, "dataset")?,
            split: strings(path, batch, "split")?,
            subject: strings(path, batch, "subject")?,
            action: strings(path, batch, "action")?,
            sequence: strings(path, batch, "sequence")?,
            camera: strings(path, batch, "camera")?,
            frame: primitives(path, batch, "frame")?,
            fps: primitives(path, batch, "fps")?,
            joints_3d_world_mm: FixedRows::new(path, batch, "joints_3d_world_mm")?,
            joints_3d_camera_mm: FixedRows::new(path, batch, "joints_3d_camera_mm")?,
            joints_2d_px: FixedRows::new(path, batch, "joints_2d_px")?,
            joints_2d_source: strings(path, batch, "joints_2d_source")?,
            detected_2d_px: FixedRows::new(path, batch, "detected_2d_px")?,
            detected_2d_confidence: FixedRows::new(path, batch, "detected_2d_confidence")?,
            detector: strings(path, batch, "detector")?,
            valid: bools(path, batch, "valid")?,
        })
    }

    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn joints_3d_world_mm(&self, i: usize) -> Option<&[f32]> {
        self.joints_3d_world_mm.row(i)
    }

    pub fn joints_3d_camera_mm(&self, i: usize) -> &[f32] {
        self.joints_3d_camera_mm.row(i).expect("non-nullable column")
    }

    pub fn joints_2d_px(&self, i: usize) -> &[f32] {
        self.joints_2d_px.row(i).expect("non-nullable column")
    }

    pub fn detected_2d_px(&self, i: usize) -> Option<&[f32]> {
        self.detected_2d_px.row(i)
    }

    pub fn detected_2d_confidence(&self, i: usize) -> Option<&[f32]> {
        self.detected_2d_confidence.row(i)
    }
}
