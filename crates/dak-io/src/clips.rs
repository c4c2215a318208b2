//! The `synthetic_clips` table: one row per augmented clip, camera inline.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeListBuilder, ListBuilder, PrimitiveArray, PrimitiveBuilder, RecordBatch, StringArray,
    StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{Float32Type, Float64Type, Schema, UInt32Type, UInt64Type};
use dak_core::{Intrinsics, NUM_JOINTS};

use crate::columns::{
    append_fixed, finish_batch, fixed_builder, list_builder, primitives, strings, FixedRows, ListRows,
};
use crate::error::{Error, Result};
use crate::schema::Table;

#[derive(Debug, Clone, Copy)]
pub struct SyntheticClipRow<'a> {
    pub clip_id: u64,
    pub mode: &'a str,
    pub source_dataset: &'a str,
    pub source_sequence: &'a str,
    pub source_start_frame: u32,
    pub camera: &'a str,
    pub intrinsics: &'a Intrinsics,
    /// T × 17 × 3 values, frame-major.
    pub joints_3d_camera_mm: &'a [f32],
    /// T × 17 × 2 values, frame-major.
    pub joints_2d_px: &'a [f32],
}

pub struct SyntheticClipBuilder {
    schema: Arc<Schema>,
    clip_id: UInt64Builder,
    mode: StringBuilder,
    source_dataset: StringBuilder,
    source_sequence: StringBuilder,
    source_start_frame: UInt32Builder,
    camera: StringBuilder,
    num_frames: UInt32Builder,
    focal_length_px: FixedSizeListBuilder<PrimitiveBuilder<Float64Type>>,
    center_px: FixedSizeListBuilder<PrimitiveBuilder<Float64Type>>,
    radial: FixedSizeListBuilder<PrimitiveBuilder<Float64Type>>,
    tangential: FixedSizeListBuilder<PrimitiveBuilder<Float64Type>>,
    width_px: UInt32Builder,
    height_px: UInt32Builder,
    joints_3d_camera_mm: ListBuilder<PrimitiveBuilder<Float32Type>>,
    joints_2d_px: ListBuilder<PrimitiveBuilder<Float32Type>>,
    rows: usize,
}

impl SyntheticClipBuilder {
    pub fn with_capacity(capacity: usize) -> Self {
        let schema = Table::SyntheticClips.arrow_schema();
        SyntheticClipBuilder {
            clip_id: UInt64Builder::with_capacity(capacity),
            mode: StringBuilder::new(),
            source_dataset: StringBuilder::new(),
            source_sequence: StringBuilder::new(),
            source_start_frame: UInt32Builder::with_capacity(capacity),
            camera: StringBuilder::new(),
            num_frames: UInt32Builder::with_capacity(capacity),
            focal_length_px: fixed_builder(&schema, "focal_length_px", capacity),
            center_px: fixed_builder(&schema, "center_px", capacity),
            radial: fixed_builder(&schema, "radial", capacity),
            tangential: fixed_builder(&schema, "tangential", capacity),
            width_px: UInt32Builder::with_capacity(capacity),
            height_px: UInt32Builder::with_capacity(capacity),
            joints_3d_camera_mm: list_builder(&schema, "joints_3d_camera_mm", capacity),
            joints_2d_px: list_builder(&schema, "joints_2d_px", capacity),
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

    pub fn push(&mut self, row: &SyntheticClipRow<'_>) -> Result<()> {
        let frames = row.joints_3d_camera_mm.len() / (NUM_JOINTS * 3);
        let shape_err =
            |column, expected, found| Error::RowShape { row: format!("clip {}", row.clip_id), column, expected, found };
        if frames == 0 || row.joints_3d_camera_mm.len() != frames * NUM_JOINTS * 3 {
            return Err(shape_err(
                "joints_3d_camera_mm",
                frames.max(1) * NUM_JOINTS * 3,
                row.joints_3d_camera_mm.len(),
            ));
        }
        if row.joints_2d_px.len() != frames * NUM_JOINTS * 2 {
            return Err(shape_err("joints_2d_px", frames * NUM_JOINTS * 2, row.joints_2d_px.len()));
        }
        let k = row.intrinsics;
        self.clip_id.append_value(row.clip_id);
        self.mode.append_value(row.mode);
        self.source_dataset.append_value(row.source_dataset);
        self.source_sequence.append_value(row.source_sequence);
        self.source_start_frame.append_value(row.source_start_frame);
        self.camera.append_value(row.camera);
        self.num_frames.append_value(frames as u32);
        append_fixed(&mut self.focal_length_px, Some(&k.focal_length_px), 2);
        append_fixed(&mut self.center_px, Some(&k.center_px), 2);
        append_fixed(&mut self.radial, Some(&k.radial), 3);
        append_fixed(&mut self.tangential, Some(&k.tangential), 2);
        self.width_px.append_value(k.width_px);
        self.height_px.append_value(k.height_px);
        self.joints_3d_camera_mm.values().append_slice(row.joints_3d_camera_mm);
        self.joints_3d_camera_mm.append(true);
        self.joints_2d_px.values().append_slice(row.joints_2d_px);
        self.joints_2d_px.append(true);
        self.rows += 1;
        Ok(())
    }

    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.clip_id.finish()),
            Arc::new(self.mode.finish()),
            Arc::new(self.source_dataset.finish()),
            Arc::new(self.source_sequence.finish()),
            Arc::new(self.source_start_frame.finish()),
            Arc::new(self.camera.finish()),
            Arc::new(self.num_frames.finish()),
            Arc::new(self.focal_length_px.finish()),
            Arc::new(self.center_px.finish()),
            Arc::new(self.radial.finish()),
            Arc::new(self.tangential.finish()),
            Arc::new(self.width_px.finish()),
            Arc::new(self.height_px.finish()),
            Arc::new(self.joints_3d_camera_mm.finish()),
            Arc::new(self.joints_2d_px.finish()),
        ];
        finish_batch(&self.schema, columns)
    }
}

/// A decoded batch of synthetic clips.
#[derive(Debug, Clone)]
pub struct SyntheticClips {
    pub clip_id: PrimitiveArray<UInt64Type>,
    pub mode: StringArray,
    pub source_dataset: StringArray,
    pub source_sequence: StringArray,
    pub source_start_frame: PrimitiveArray<UInt32Type>,
    pub camera: StringArray,
    pub num_frames: PrimitiveArray<UInt32Type>,
    focal_length_px: FixedRows<Float64Type>,
    center_px: FixedRows<Float64Type>,
    radial: FixedRows<Float64Type>,
    tangential: FixedRows<Float64Type>,
    width_px: PrimitiveArray<UInt32Type>,
    height_px: PrimitiveArray<UInt32Type>,
    joints_3d_camera_mm: ListRows<Float32Type>,
    joints_2d_px: ListRows<Float32Type>,
}

impl SyntheticClips {
    pub fn from_batch(path: &Path, batch: &RecordBatch) -> Result<Self> {
        Ok(SyntheticClips {
            clip_id: primitives(path, batch, "clip_id")?,
            mode: strings(path, batch, "mode")?,
            source_dataset: strings(path, batch, "source_dataset")?,
            source_sequence: strings(path, batch, "source_sequence")?,
            source_start_frame: primitives(path, batch, "source_start_frame")?,
            camera: strings(path, batch, "camera")?,
            num_frames: primitives(path, batch, "num_frames")?,
            focal_length_px: FixedRows::new(path, batch, "focal_length_px")?,
            center_px: FixedRows::new(path, batch, "center_px")?,
            radial: FixedRows::new(path, batch, "radial")?,
            tangential: FixedRows::new(path, batch, "tangential")?,
            width_px: primitives(path, batch, "width_px")?,
            height_px: primitives(path, batch, "height_px")?,
            joints_3d_camera_mm: ListRows::new(path, batch, "joints_3d_camera_mm")?,
            joints_2d_px: ListRows::new(path, batch, "joints_2d_px")?,
        })
    }

    pub fn len(&self) -> usize {
        self.clip_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn intrinsics(&self, i: usize) -> Intrinsics {
        let two = |r: &FixedRows<Float64Type>| {
            let v = r.row(i).expect("non-nullable column");
            [v[0], v[1]]
        };
        let radial = self.radial.row(i).expect("non-nullable column");
        Intrinsics {
            focal_length_px: two(&self.focal_length_px),
            center_px: two(&self.center_px),
            radial: [radial[0], radial[1], radial[2]],
            tangential: two(&self.tangential),
            width_px: self.width_px.value(i),
            height_px: self.height_px.value(i),
        }
    }

    pub fn joints_3d_camera_mm(&self, i: usize) -> &[f32] {
        self.joints_3d_camera_mm.row(i)
    }

    pub fn joints_2d_px(&self, i: usize) -> &[f32] {
        self.joints_2d_px.row(i)
    }
}
