//! The `cameras` table of a source shard directory (`cameras.parquet`).

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringBuilder, UInt32Builder};
use arrow::datatypes::{Float64Type, UInt32Type};
use dak_core::{Camera, Extrinsics, Intrinsics};

use crate::columns::{append_fixed, finish_batch, fixed_builder, primitives, strings, FixedRows};
use crate::error::Result;
use crate::manifest::FileEntry;
use crate::read::ShardReader;
use crate::schema::Table;
use crate::write::{ShardWriter, WriterOptions};

/// A camera of one subject of one dataset. Extrinsics are absent for moving
/// cameras (3DPW) and where the dataset gives none (3DHP test set).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRecord {
    pub dataset: String,
    pub subject: String,
    pub camera: String,
    pub intrinsics: Intrinsics,
    pub extrinsics: Option<Extrinsics>,
}

impl CameraRecord {
    pub fn to_camera(&self) -> Option<Camera> {
        Some(Camera { id: self.camera.clone(), intrinsics: self.intrinsics, extrinsics: self.extrinsics? })
    }
}

/// Write the camera table into `dir` (one file, written atomically).
pub fn write_camera_table(dir: &Path, cameras: &[CameraRecord]) -> Result<Vec<FileEntry>> {
    let schema = Table::Cameras.arrow_schema();
    let n = cameras.len();
    let mut dataset = StringBuilder::new();
    let mut subject = StringBuilder::new();
    let mut camera = StringBuilder::new();
    let mut focal = fixed_builder::<Float64Type>(&schema, "focal_length_px", n);
    let mut center = fixed_builder::<Float64Type>(&schema, "center_px", n);
    let mut radial = fixed_builder::<Float64Type>(&schema, "radial", n);
    let mut tangential = fixed_builder::<Float64Type>(&schema, "tangential", n);
    let mut width = UInt32Builder::with_capacity(n);
    let mut height = UInt32Builder::with_capacity(n);
    let mut rotation = fixed_builder::<Float64Type>(&schema, "world_from_camera_wxyz", n);
    let mut translation = fixed_builder::<Float64Type>(&schema, "center_world_mm", n);
    for c in cameras {
        dataset.append_value(&c.dataset);
        subject.append_value(&c.subject);
        camera.append_value(&c.camera);
        append_fixed(&mut focal, Some(&c.intrinsics.focal_length_px), 2);
        append_fixed(&mut center, Some(&c.intrinsics.center_px), 2);
        append_fixed(&mut radial, Some(&c.intrinsics.radial), 3);
        append_fixed(&mut tangential, Some(&c.intrinsics.tangential), 2);
        width.append_value(c.intrinsics.width_px);
        height.append_value(c.intrinsics.height_px);
        append_fixed(&mut rotation, c.extrinsics.as_ref().map(|e| &e.world_from_camera_wxyz[..]), 4);
        append_fixed(&mut translation, c.extrinsics.as_ref().map(|e| &e.center_world_mm[..]), 3);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(dataset.finish()),
        Arc::new(subject.finish()),
        Arc::new(camera.finish()),
        Arc::new(focal.finish()),
        Arc::new(center.finish()),
        Arc::new(radial.finish()),
        Arc::new(tangential.finish()),
        Arc::new(width.finish()),
        Arc::new(height.finish()),
        Arc::new(rotation.finish()),
        Arc::new(translation.finish()),
    ];
    let batch = finish_batch(&schema, columns);
    let stem = crate::CAMERAS_FILE.trim_end_matches(".parquet");
    let mut writer = ShardWriter::new(dir, Table::Cameras, stem, WriterOptions::for_table(Table::Cameras));
    writer.write(&batch)?;
    writer.finish()
}

pub fn read_camera_table(path: &Path) -> Result<Vec<CameraRecord>> {
    let mut out = Vec::new();
    for batch in ShardReader::open(path, Table::Cameras)? {
        let batch = batch?;
        let dataset = strings(path, &batch, "dataset")?;
        let subject = strings(path, &batch, "subject")?;
        let camera = strings(path, &batch, "camera")?;
        let focal = FixedRows::<Float64Type>::new(path, &batch, "focal_length_px")?;
        let center = FixedRows::<Float64Type>::new(path, &batch, "center_px")?;
        let radial = FixedRows::<Float64Type>::new(path, &batch, "radial")?;
        let tangential = FixedRows::<Float64Type>::new(path, &batch, "tangential")?;
        let width = primitives::<UInt32Type>(path, &batch, "width_px")?;
        let height = primitives::<UInt32Type>(path, &batch, "height_px")?;
        let rotation = FixedRows::<Float64Type>::new(path, &batch, "world_from_camera_wxyz")?;
        let translation = FixedRows::<Float64Type>::new(path, &batch, "center_world_mm")?;
        for i in 0..batch.num_rows() {
            let two = |r: &FixedRows<Float64Type>| {
                let v = r.row(i).expect("non-nullable column");
                [v[0], v[1]]
            };
            let k = radial.row(i).expect("non-nullable column");
            let extrinsics = match (rotation.row(i), translation.row(i)) {
                (Some(q), Some(t)) => Some(Extrinsics {
                    world_from_camera_wxyz: [q[0], q[1], q[2], q[3]],
                    center_world_mm: [t[0], t[1], t[2]],
                }),
                _ => None,
            };
            out.push(CameraRecord {
                dataset: dataset.value(i).to_string(),
                subject: subject.value(i).to_string(),
                camera: camera.value(i).to_string(),
                intrinsics: Intrinsics {
                    focal_length_px: two(&focal),
                    center_px: two(&center),
                    radial: [k[0], k[1], k[2]],
                    tangential: two(&tangential),
                    width_px: width.value(i),
                    height_px: height.value(i),
                },
                extrinsics,
            });
        }
    }
    Ok(out)
}
