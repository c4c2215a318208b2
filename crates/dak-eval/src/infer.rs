//! 3D poses for a new video from its 2D keypoints.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, FixedSizeListBuilder, Float32Builder, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use dak_core::camera::normalize_screen_f32;
use dak_core::{Intrinsics, NUM_JOINTS};
use dak_train::data::Video;
use dak_train::trainer::predict_videos;
use dak_train::VideoSet;
use tch::Device;

use crate::error::{Error, Result};
use crate::keypoints::{fill, FillReport, KeypointTrack};
use crate::model::LoadedModel;

/// Root-relative 3D per frame (mm, camera axes: x right, y down, z forward).
#[derive(Debug, Clone)]
pub struct Inference {
    pub poses_mm: Vec<[f32; NUM_JOINTS * 3]>,
    /// Joints whose 2D was interpolated (missing frame or low confidence).
    pub filled: Vec<[bool; NUM_JOINTS]>,
    pub fill: FillReport,
    /// The 2D input after filling (pixels), for pictures.
    pub input_px: Vec<[[f32; 2]; NUM_JOINTS]>,
    /// Each frame's name in the input ([`KeypointTrack::labels`]).
    pub input_frames: Vec<String>,
}

pub fn infer(
    model: &LoadedModel,
    track: &KeypointTrack,
    width: u32,
    height: u32,
    min_confidence: f32,
    flip: bool,
    device: Device,
) -> Result<Inference> {
    if width == 0 || height == 0 {
        return Err(Error::Data {
            path: track.source.clone(),
            reason: "image width and height must be positive".into(),
        });
    }
    let (px, filled, report) = fill(track, min_confidence)?;
    check_image_size(track, &px, &filled, width, height)?;
    let mut inputs = Vec::with_capacity(px.len() * NUM_JOINTS * 2);
    for frame in &px {
        let flat: Vec<f32> = frame.iter().flatten().copied().collect();
        normalize_screen_f32(&flat, width, height, &mut inputs);
    }
    let n = px.len();
    // The network needs no camera: only the image size normalises the 2D.
    let video = Video {
        dataset: "video".into(),
        subject: String::new(),
        action: String::new(),
        action_changes: Vec::new(),
        sequence: track.source.display().to_string(),
        camera: String::new(),
        first_frame: 0,
        intrinsics: Intrinsics::pinhole(f64::from(width), width, height),
        inputs,
        poses_mm: vec![0.0; n * NUM_JOINTS * 3],
        valid: vec![true; n],
    };
    let set = VideoSet { videos: vec![video], inputs: vec![track.source.clone()], held: Default::default() };
    let predictions = predict_videos(&model.g, &set, model.config.frames, flip, device);
    crate::check_finite(&set, &predictions, &model.provenance)?;
    let poses_mm = predictions[0].chunks_exact(NUM_JOINTS * 3).map(|c| c.try_into().expect("51 values")).collect();
    Ok(Inference { poses_mm, filled, fill: report, input_px: px, input_frames: track.labels.clone() })
}

/// Keypoints are normalised by the image size, so a wrong (or swapped)
/// `--width`/`--height`, or coordinates normalised already, give plausible
/// but wrong 3D without any other sign: refuse detections that do not fit
/// the image.
fn check_image_size(
    track: &KeypointTrack,
    px: &[[[f32; 2]; NUM_JOINTS]],
    filled: &[[bool; NUM_JOINTS]],
    width: u32,
    height: u32,
) -> Result<()> {
    let seen: Vec<[f32; 2]> =
        px.iter().zip(filled).flat_map(|(p, f)| p.iter().zip(f).filter(|(_, f)| !**f).map(|(p, _)| *p)).collect();
    let (w, h) = (width as f32, height as f32);
    let span = |i: usize| {
        let (lo, hi) = seen.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), p| (lo.min(p[i]), hi.max(p[i])));
        format!("{lo:.1}..{hi:.1}")
    };
    let fail = |reason: String| Err(Error::Data { path: track.source.clone(), reason });
    if width.max(height) > 16 && seen.iter().all(|p| p[0].abs() <= 1.5 && p[1].abs() <= 1.5) {
        return fail(format!(
            "the keypoints span x {}, y {}: they look normalised already, and pixels of the {width}×{height} \
             video are expected",
            span(0),
            span(1)
        ));
    }
    // Detectors place a few joints just past the border; a tenth of the
    // image on each side is allowed.
    let outside =
        seen.iter().filter(|p| p[0] < -0.1 * w || p[0] > 1.1 * w || p[1] < -0.1 * h || p[1] > 1.1 * h).count();
    if outside * 5 > seen.len() {
        return fail(format!(
            "{}% of the detected keypoints lie outside the {width}×{height} image (they span x {}, y {} px): \
             are --width and --height the video's, and not swapped?",
            outside * 100 / seen.len(),
            span(0),
            span(1)
        ));
    }
    Ok(())
}

/// `poses.parquet` (frame, input_frame, joints_3d_mm f32[51], interpolated bool[17]) and
/// `poses.json` (the same plus joint names and provenance), atomically.
pub fn write(out: &Path, inference: &Inference, provenance: serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io { path: out.to_path_buf(), source })?;
    let n = inference.poses_mm.len();
    let mut joints = FixedSizeListBuilder::new(Float32Builder::with_capacity(n * 51), 51)
        .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    let mut filled = FixedSizeListBuilder::new(BooleanBuilder::with_capacity(n * 17), 17)
        .with_field(Arc::new(Field::new("item", DataType::Boolean, false)));
    for (p, f) in inference.poses_mm.iter().zip(&inference.filled) {
        joints.values().append_slice(p);
        joints.append(true);
        for &b in f {
            filled.values().append_value(b);
        }
        filled.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(0..n as u32)),
        Arc::new(StringArray::from_iter_values(&inference.input_frames)),
        Arc::new(joints.finish()),
        Arc::new(filled.finish()),
    ];
    let schema = Schema::new(vec![
        Field::new("frame", DataType::UInt32, false),
        Field::new("input_frame", DataType::Utf8, false),
        Field::new("joints_3d_mm", columns[2].data_type().clone(), false),
        Field::new("interpolated", columns[3].data_type().clone(), false),
    ])
    .with_metadata(
        [
            ("skeleton".to_string(), "h36m-17".to_string()),
            ("units.3d".to_string(), "mm, root-relative, camera axes".to_string()),
            ("joint_names".to_string(), dak_core::skeleton::JOINT_NAMES.join(",")),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<String, String>>(),
    );
    let batch = RecordBatch::try_new(Arc::new(schema), columns)
        .map_err(|e| Error::Data { path: out.to_path_buf(), reason: e.to_string() })?;
    let parquet_path = out.join("poses.parquet");
    let mut bytes = Vec::new();
    {
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None)
            .map_err(|e| Error::Data { path: parquet_path.clone(), reason: e.to_string() })?;
        writer.write(&batch).map_err(|e| Error::Data { path: parquet_path.clone(), reason: e.to_string() })?;
        writer.close().map_err(|e| Error::Data { path: parquet_path.clone(), reason: e.to_string() })?;
    }
    dak_io::atomic::write_atomic(&parquet_path, &bytes)?;
    let frames: Vec<serde_json::Value> = inference
        .poses_mm
        .iter()
        .zip(&inference.filled)
        .zip(&inference.input_px)
        .zip(&inference.input_frames)
        .enumerate()
        .map(|(i, (((p, f), px), name))| {
            let joints: Vec<[f32; 3]> = p.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
            serde_json::json!({
                "frame": i,
                "input_frame": name,
                "joints_3d_mm": joints,
                "keypoints_2d_px": px,
                "interpolated": f,
            })
        })
        .collect();
    let json = serde_json::json!({
        "joint_names": dak_core::skeleton::JOINT_NAMES,
        "units": "mm, root-relative (pelvis at the origin), camera axes x right, y down, z forward",
        "fill": inference.fill,
        "model": provenance,
        "frames": frames,
    });
    dak_io::atomic::write_atomic(&out.join("poses.json"), serde_json::to_string(&json).expect("json").as_bytes())?;
    Ok(())
}
