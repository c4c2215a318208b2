//! Write∘read round trips and the refusal of damaged or foreign shards.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use dak_core::{Extrinsics, Intrinsics};
use parquet::arrow::ArrowWriter;
use proptest::prelude::*;

use crate::*;

fn frame_values(i: usize, width: usize, scale: f32) -> Vec<f32> {
    (0..width).map(|k| (i * width + k) as f32 * scale - 100.0).collect()
}

/// Frames with every nullable column both present and absent.
fn write_frames(dir: &Path, n: usize, options: WriterOptions) -> Vec<FileEntry> {
    let mut builder = SourceFrameBuilder::with_capacity(n);
    for i in 0..n {
        let w = frame_values(i, 51, 0.5);
        let c = frame_values(i, 51, -0.25);
        let p = frame_values(i, 34, 1.5);
        let d = frame_values(i, 34, 1.25);
        let conf: Vec<f32> = (0..17).map(|k| ((i + k) % 10) as f32 / 10.0).collect();
        let with_det = i % 3 != 0;
        builder
            .push(&SourceFrameRow {
                dataset: "demo-source",
                split: if i % 2 == 0 { "train" } else { "test" },
                subject: "S1",
                action: "walk",
                sequence: "S1/walk",
                camera: "cam0",
                frame: i as u32,
                fps: 50.0,
                joints_3d_world_mm: (i % 4 != 0).then_some(&w[..]),
                joints_3d_camera_mm: &c,
                joints_2d_px: &p,
                joints_2d_source: TwoDSource::Projection,
                detected_2d_px: with_det.then_some(&d[..]),
                detected_2d_confidence: with_det.then_some(&conf[..]),
                detector: with_det.then_some("synthetic-noise"),
                valid: i % 5 != 0,
            })
            .unwrap();
    }
    let mut writer = ShardWriter::new(dir, Table::SourceFrames, "part", options);
    writer.write(&builder.finish()).unwrap();
    let mut files = writer.finish().unwrap();
    files.extend(write_camera_table(dir, &[camera_record()]).unwrap());
    Manifest::new(Table::SourceFrames, files.clone(), vec!["test".into()], Some(1)).write(dir).unwrap();
    files
}

fn camera_record() -> CameraRecord {
    CameraRecord {
        dataset: "demo-source".into(),
        subject: "S1".into(),
        camera: "cam0".into(),
        intrinsics: Intrinsics {
            focal_length_px: [1145.0, 1143.5],
            center_px: [512.5, 515.25],
            radial: [-0.2, 0.25, -0.003],
            tangential: [-0.001, -0.0014],
            width_px: 1000,
            height_px: 1002,
        },
        extrinsics: Some(Extrinsics {
            world_from_camera_wxyz: [0.5, 0.5, -0.5, 0.5],
            center_world_mm: [1.0, 2.0, 3.0],
        }),
    }
}

#[test]
fn source_frames_round_trip_with_nulls_and_rolling_files() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        WriterOptions { rows_per_file: 40, row_group_rows: 16, ..WriterOptions::for_table(Table::SourceFrames) };
    let files = write_frames(dir.path(), 100, options);
    assert_eq!(files.iter().filter(|f| f.schema == "source_frames").count(), 3);
    let set = ShardSet::open(dir.path(), Verify::Checksums).unwrap();
    assert_eq!(set.manifest().total_rows, 100);
    let mut i = 0;
    for batch in set.source_frames() {
        let batch = batch.unwrap();
        for r in 0..batch.len() {
            assert_eq!(batch.frame.value(r) as usize, i);
            assert_eq!(batch.joints_3d_camera_mm(r), &frame_values(i, 51, -0.25)[..]);
            assert_eq!(batch.joints_2d_px(r), &frame_values(i, 34, 1.5)[..]);
            assert_eq!(batch.joints_3d_world_mm(r).is_some(), i % 4 != 0);
            if let Some(w) = batch.joints_3d_world_mm(r) {
                assert_eq!(w, &frame_values(i, 51, 0.5)[..]);
            }
            assert_eq!(batch.detected_2d_px(r).is_some(), i % 3 != 0);
            assert_eq!(batch.valid.value(r), i % 5 != 0);
            assert_eq!(batch.split.value(r), if i % 2 == 0 { "train" } else { "test" });
            i += 1;
        }
    }
    assert_eq!(i, 100);
    assert_eq!(set.cameras().unwrap(), vec![camera_record()]);
}

#[test]
fn same_rows_give_byte_identical_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let fa = write_frames(a.path(), 50, WriterOptions::for_table(Table::SourceFrames));
    let fb = write_frames(b.path(), 50, WriterOptions::for_table(Table::SourceFrames));
    assert_eq!(fa, fb);
    assert_eq!(
        std::fs::read(a.path().join("part-00000.parquet")).unwrap(),
        std::fs::read(b.path().join("part-00000.parquet")).unwrap()
    );
}

#[test]
fn statistics_kept_for_scalar_columns_only() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 50, WriterOptions::for_table(Table::SourceFrames));
    let file = std::fs::File::open(dir.path().join("part-00000.parquet")).unwrap();
    let meta = SerializedFileReader::new(file).unwrap().metadata().row_group(0).clone();
    let with_stats = |name: &str| {
        let column = meta.columns().iter().find(|c| c.column_path().string().starts_with(name)).unwrap();
        column.statistics().is_some()
    };
    assert!(with_stats("frame"));
    assert!(with_stats("subject"));
    for coordinates in ["joints_3d_world_mm", "joints_3d_camera_mm", "joints_2d_px", "detected_2d_confidence"] {
        assert!(!with_stats(coordinates), "{coordinates} has statistics");
    }
}

#[test]
fn truncated_shard_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 30, WriterOptions::for_table(Table::SourceFrames));
    let part = dir.path().join("part-00000.parquet");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();

    let err = ShardSet::open(dir.path(), Verify::Sizes).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("part-00000.parquet"), "{err}");
    // Opened directly, without the manifest, the broken footer is caught.
    let err = ShardReader::open(&part, Table::SourceFrames).err().unwrap();
    assert!(matches!(err, Error::Parquet { .. }), "{err}");
    assert!(err.to_string().contains("part-00000.parquet"), "{err}");
}

#[test]
fn flipped_byte_is_caught_by_checksum() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 30, WriterOptions::for_table(Table::SourceFrames));
    let part = dir.path().join("part-00000.parquet");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&part, &bytes).unwrap();
    ShardSet::open(dir.path(), Verify::Sizes).unwrap();
    let err = ShardSet::open(dir.path(), Verify::Checksums).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("part-00000.parquet"));
}

fn write_plain_parquet(path: &Path, metadata: &[(&str, &str)]) {
    let schema = Arc::new(Schema::new_with_metadata(
        vec![Field::new("x", DataType::Int32, false)],
        metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::HashMap<_, _>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1, 2]))]).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn foreign_wrong_table_and_wrong_version_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.parquet");
    write_plain_parquet(&foreign, &[]);
    let err = ShardReader::open(&foreign, Table::SourceFrames).err().unwrap();
    assert!(matches!(err, Error::NotAShard { .. }), "{err}");

    let future = dir.path().join("future.parquet");
    write_plain_parquet(&future, &[("dak.schema", "source_frames"), ("dak.schema_version", "2")]);
    let err = ShardReader::open(&future, Table::SourceFrames).err().unwrap();
    assert!(matches!(err, Error::UnsupportedVersion { .. }), "{err}");
    assert!(err.to_string().contains("future.parquet") && err.to_string().contains("version 2"));

    let misshapen = dir.path().join("misshapen.parquet");
    write_plain_parquet(&misshapen, &[("dak.schema", "source_frames"), ("dak.schema_version", "1")]);
    let err = ShardReader::open(&misshapen, Table::SourceFrames).err().unwrap();
    assert!(matches!(err, Error::ColumnMismatch { .. }), "{err}");

    write_frames(dir.path(), 5, WriterOptions::for_table(Table::SourceFrames));
    let err = ShardReader::open(&dir.path().join(CAMERAS_FILE), Table::SourceFrames).err().unwrap();
    assert!(matches!(err, Error::WrongTable { .. }), "{err}");
    assert_eq!(read::table_of(&dir.path().join(CAMERAS_FILE)).unwrap(), Table::Cameras);
}

#[test]
fn output_dir_keeps_finished_runs_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 5, WriterOptions::for_table(Table::SourceFrames));
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    // Another tool's Parquet file: ours are part-NNNNN.parquet only.
    std::fs::write(dir.path().join("train-00000-of-00003.parquet"), b"theirs").unwrap();
    assert!(matches!(OutputDir::prepare(dir.path(), Table::SourceFrames, false).unwrap(), Prepared::Existing(_)));
    let Prepared::Fresh(out) = OutputDir::prepare(dir.path(), Table::SourceFrames, true).unwrap() else {
        panic!("forced")
    };
    assert!(!dir.path().join(MANIFEST_FILE).exists());
    assert!(!dir.path().join("part-00000.parquet").exists());
    assert!(!dir.path().join(CAMERAS_FILE).exists());
    assert!(dir.path().join("notes.txt").exists(), "files we did not write are kept");
    assert!(dir.path().join("train-00000-of-00003.parquet").exists(), "other tools' shards too");
    assert_eq!(out.path(), dir.path());
}

/// A mistyped --out naming another kind of output is refused, --force or not.
#[test]
fn output_dir_refuses_another_kind_of_output_even_when_forced() {
    let dir = tempfile::tempdir().unwrap();
    write_frames(dir.path(), 5, WriterOptions::for_table(Table::SourceFrames));
    for force in [false, true] {
        let err = OutputDir::prepare(dir.path(), Table::SyntheticClips, force).unwrap_err().to_string();
        assert!(err.contains("holds `source_frames` shards, not synthetic_clips shards"), "{err}");
    }
    assert!(dir.path().join(MANIFEST_FILE).exists() && dir.path().join("part-00000.parquet").exists());
    // Another tool's config.json alone is no training run.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("config.json"), b"{}").unwrap();
    assert!(OutputDir::prepare(other.path(), Table::SourceFrames, false).is_ok());
    let run = tempfile::tempdir().unwrap();
    std::fs::write(run.path().join("checkpoint.json"), b"{}").unwrap();
    let err = OutputDir::prepare(run.path(), Table::SourceFrames, true).unwrap_err().to_string();
    assert!(err.contains("holds a training run"), "{err}");
}

#[test]
fn wrong_width_row_is_refused_before_appending() {
    let mut b = SourceFrameBuilder::with_capacity(1);
    let short = [0.0f32; 50];
    let ok2 = [0.0f32; 34];
    let err = b
        .push(&SourceFrameRow {
            dataset: "d",
            split: "train",
            subject: "S1",
            action: "a",
            sequence: "s",
            camera: "c",
            frame: 3,
            fps: 50.0,
            joints_3d_world_mm: None,
            joints_3d_camera_mm: &short,
            joints_2d_px: &ok2,
            joints_2d_source: TwoDSource::Annotation,
            detected_2d_px: None,
            detected_2d_confidence: None,
            detector: None,
            valid: true,
        })
        .unwrap_err();
    assert!(err.to_string().contains("joints_3d_camera_mm") && err.to_string().contains("frame 3"), "{err}");
    assert!(b.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn synthetic_clips_round_trip(
        lens in proptest::collection::vec(1usize..12, 1..6),
        seed in any::<u32>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let k = camera_record().intrinsics;
        let mut builder = SyntheticClipBuilder::with_capacity(lens.len());
        let clips: Vec<(Vec<f32>, Vec<f32>)> = lens.iter().enumerate().map(|(c, &t)| {
            let x: Vec<f32> = (0..t * 51).map(|v| (v as u32 ^ seed ^ c as u32) as f32 * 0.01).collect();
            let p: Vec<f32> = (0..t * 34).map(|v| (v as u32).wrapping_mul(seed) as f32 * 1e-6).collect();
            (x, p)
        }).collect();
        for (c, (x, p)) in clips.iter().enumerate() {
            builder.push(&SyntheticClipRow {
                clip_id: c as u64, mode: "sma", source_dataset: "demo-source", source_sequence: "S1/walk",
                source_start_frame: 7, camera: "cam0", intrinsics: &k, joints_3d_camera_mm: x, joints_2d_px: p,
            }).unwrap();
        }
        let mut writer = ShardWriter::new(dir.path(), Table::SyntheticClips, "part", WriterOptions::for_table(Table::SyntheticClips));
        writer.write(&builder.finish()).unwrap();
        let files = writer.finish().unwrap();
        Manifest::new(Table::SyntheticClips, files, vec![], None).write(dir.path()).unwrap();
        let set = ShardSet::open(dir.path(), Verify::Checksums).unwrap();
        let mut c = 0;
        for batch in set.synthetic_clips() {
            let batch = batch.unwrap();
            for r in 0..batch.len() {
                prop_assert_eq!(batch.num_frames.value(r) as usize, lens[c]);
                prop_assert_eq!(batch.joints_3d_camera_mm(r), &clips[c].0[..]);
                prop_assert_eq!(batch.joints_2d_px(r), &clips[c].1[..]);
                prop_assert_eq!(batch.intrinsics(r), k);
                c += 1;
            }
        }
        prop_assert_eq!(c, lens.len());
    }
}
