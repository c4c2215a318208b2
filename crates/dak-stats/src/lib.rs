//! Dataset statistics over shard directories, computed with polars lazy scans:
//! frames per subject and action, and the bone-length distribution per
//! dataset — the structural domain gap DAK-Pose is about.

use std::path::{Path, PathBuf};

use dak_core::skeleton::{bone_name, NUM_JOINTS, PARENTS};
use dak_io::{ShardSet, Table, Verify};
use polars::prelude::*;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Shards(#[from] dak_io::Error),
    #[error("{dir}: polars could not scan the shards: {source}")]
    Polars { dir: PathBuf, source: PolarsError },
    #[error("{dir}: holds `{table}` shards; stats reads source_frames and synthetic_clips")]
    Unsupported { dir: PathBuf, table: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Statistics of one shard directory.
pub struct ShardStats {
    pub dir: PathBuf,
    pub table: Table,
    /// Source frames: dataset, split, subject, action, sequences, cameras,
    /// frames ((sequence, frame) pairs, whatever cameras saw them) and
    /// valid_frames (those valid in some camera).
    /// Synthetic clips: mode, source_dataset, clips, frames.
    pub counts: DataFrame,
    /// dataset (synthetic clips: mode), bone, mean/std/min/p05/p95/max of
    /// the length in mm, over valid frames.
    pub bones: DataFrame,
}

fn scan(dir: &Path, files: &[PathBuf]) -> Result<LazyFrame> {
    let frames = files
        .iter()
        .map(|p| {
            let path = PlRefPath::try_from_path(p).map_err(|source| Error::Polars { dir: dir.into(), source })?;
            LazyFrame::scan_parquet(path, ScanArgsParquet::default())
                .map_err(|source| Error::Polars { dir: dir.into(), source })
        })
        .collect::<Result<Vec<_>>>()?;
    concat(frames, UnionArgs::default()).map_err(|source| Error::Polars { dir: dir.into(), source })
}

/// Length of bone `child` from a flattened 17×3 array column.
fn bone_length_expr(column: &str, child: usize) -> Expr {
    let parent = PARENTS[child].expect("non-root bone");
    let coord = |joint: usize, c: usize| col(column).arr().get(lit((3 * joint + c) as i64), false);
    let squared = (0..3)
        .map(|c| {
            let d = coord(child, c) - coord(parent, c);
            d.clone() * d
        })
        .reduce(|a, b| a + b)
        .expect("three coordinates");
    squared.sqrt()
}

fn length_summary(long: LazyFrame, group: &str) -> LazyFrame {
    let len = || col("length_mm");
    long.group_by_stable([col(group), col("bone")]).agg([
        len().mean().alias("mean_mm"),
        len().std(1).alias("std_mm"),
        len().min().alias("min_mm"),
        len().quantile(lit(0.05), QuantileMethod::Linear).alias("p05_mm"),
        len().quantile(lit(0.95), QuantileMethod::Linear).alias("p95_mm"),
        len().max().alias("max_mm"),
    ])
}

/// Statistics of a finished shard directory (sizes are checked against its manifest).
pub fn shard_stats(dir: &Path) -> Result<ShardStats> {
    let set = ShardSet::open(dir, Verify::Sizes)?;
    let polars_err = |source| Error::Polars { dir: dir.into(), source };
    match set.table() {
        Some(Table::SourceFrames) => {
            let lf = scan(dir, &set.paths(Table::SourceFrames))?;
            let keys = || [col("dataset"), col("split"), col("subject"), col("action")];
            // A frame is a (sequence, frame) whatever cameras saw it (not
            // rows over cameras: sequences of one action may have other
            // cameras, 3DHP's do), valid when valid in some camera.
            let frames = lf
                .clone()
                .group_by([col("dataset"), col("split"), col("subject"), col("action"), col("sequence"), col("frame")])
                .agg([col("valid").max().alias("valid")])
                .group_by(keys())
                .agg([len().alias("frames"), col("valid").cast(DataType::UInt32).sum().alias("valid_frames")]);
            let counts = lf
                .clone()
                .group_by_stable(keys())
                .agg([col("sequence").n_unique().alias("sequences"), col("camera").n_unique().alias("cameras")])
                .join(frames, keys(), keys(), JoinArgs::new(JoinType::Left))
                .select([
                    col("dataset"),
                    col("split"),
                    col("subject"),
                    col("action"),
                    col("sequences"),
                    col("cameras"),
                    col("frames"),
                    col("valid_frames"),
                ])
                .sort(["dataset", "split", "subject", "action"], Default::default())
                .collect()
                .map_err(polars_err)?;
            // Bone lengths are camera-independent: one camera per sequence
            // suffices. Invalid frames may hold a neighbour's pose or none.
            let first_of_sequence =
                col("camera").first().over([col("dataset"), col("sequence")]).map_err(polars_err)?;
            let first_camera = col("camera").eq(first_of_sequence).and(col("valid"));
            let per_bone: Vec<LazyFrame> = (1..NUM_JOINTS)
                .map(|child| {
                    lf.clone().filter(first_camera.clone()).select([
                        col("dataset"),
                        lit(bone_name(child)).alias("bone"),
                        bone_length_expr("joints_3d_camera_mm", child).cast(DataType::Float64).alias("length_mm"),
                    ])
                })
                .collect();
            let long = concat(per_bone, UnionArgs::default()).map_err(polars_err)?;
            let bones = length_summary(long, "dataset").collect().map_err(polars_err)?;
            Ok(ShardStats { dir: dir.into(), table: Table::SourceFrames, counts, bones })
        }
        Some(Table::SyntheticClips) => {
            let lf = scan(dir, &set.paths(Table::SyntheticClips))?;
            let counts = lf
                .group_by_stable([col("mode"), col("source_dataset")])
                .agg([len().alias("clips"), col("num_frames").cast(DataType::UInt64).sum().alias("frames")])
                .collect()
                .map_err(polars_err)?;
            let bones = synthetic_bone_lengths(&set)?;
            Ok(ShardStats { dir: dir.into(), table: Table::SyntheticClips, counts, bones })
        }
        other => Err(Error::Unsupported {
            dir: dir.into(),
            table: other.map_or_else(|| set.manifest().schema.clone(), |t| t.name().to_string()),
        }),
    }
}

/// Clip arrays are variable-length lists: unpacked and summarised per
/// (mode, bone) in Rust, as [`length_summary`] does, keeping only the
/// lengths, as f32 (a row with its mode and bone names per bone and frame
/// came to several GB at 200 000 clips; now 4 bytes per bone and frame,
/// ~1 GB at 200 000 clips of 81 frames; f32 holds a length to 0.1 µm).
fn synthetic_bone_lengths(set: &ShardSet) -> Result<DataFrame> {
    let mut modes: Vec<String> = Vec::new();
    // lengths[mode][bone - 1]
    let mut lengths: Vec<Vec<Vec<f32>>> = Vec::new();
    for batch in set.synthetic_clips() {
        let batch = batch?;
        for i in 0..batch.len() {
            let mode = batch.mode.value(i);
            let m = match modes.iter().position(|x| x == mode) {
                Some(m) => m,
                None => {
                    modes.push(mode.to_string());
                    lengths.push(vec![Vec::new(); NUM_JOINTS - 1]);
                    modes.len() - 1
                }
            };
            for frame in batch.joints_3d_camera_mm(i).chunks_exact(NUM_JOINTS * 3) {
                let pose = dak_core::skeleton::pose_from_flat(frame);
                for (child, l) in dak_core::bone_lengths(&pose).iter().enumerate().skip(1) {
                    lengths[m][child - 1].push(*l as f32);
                }
            }
        }
    }
    let mut columns: [Vec<f64>; 6] = Default::default();
    let (mut mode_names, mut bone_names) = (Vec::new(), Vec::new());
    for (mode, per_bone) in modes.iter().zip(&mut lengths) {
        for (b, values) in per_bone.iter_mut().enumerate().filter(|(_, v)| !v.is_empty()) {
            values.sort_by(f32::total_cmp);
            let summary = summarise(values);
            for (column, value) in columns.iter_mut().zip(summary) {
                column.push(value);
            }
            mode_names.push(mode.clone());
            bone_names.push(bone_name(b + 1));
        }
    }
    let [mean, std, min, p05, p95, max] = columns;
    DataFrame::new_infer_height(vec![
        Column::new("mode".into(), mode_names),
        Column::new("bone".into(), bone_names),
        Column::new("mean_mm".into(), mean),
        // One value has no sample std: null, as polars gives it.
        Column::new("std_mm".into(), std.into_iter().map(|s| (!s.is_nan()).then_some(s)).collect::<Vec<_>>()),
        Column::new("min_mm".into(), min),
        Column::new("p05_mm".into(), p05),
        Column::new("p95_mm".into(), p95),
        Column::new("max_mm".into(), max),
    ])
    .map_err(|source| Error::Polars { dir: set.dir().into(), source })
}

/// Mean, sample std, min, 5th and 95th percentile (linear, as polars and
/// numpy) and max of sorted, non-empty values, in f64.
fn summarise(sorted: &[f32]) -> [f64; 6] {
    let n = sorted.len();
    let x = |i: usize| f64::from(sorted[i]);
    let mean = sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let std = if n > 1 {
        (sorted.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    let quantile = |q: f64| {
        let at = q * (n - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        x(lo) + (x(hi) - x(lo)) * (at - lo as f64)
    };
    [mean, std, x(0), quantile(0.05), quantile(0.95), x(n - 1)]
}

/// A data frame as a list of row objects, for `--json`.
pub fn to_json(df: &DataFrame) -> serde_json::Value {
    let rows = (0..df.height())
        .map(|i| {
            let mut obj = serde_json::Map::new();
            for column in df.columns() {
                let value = match column.get(i) {
                    Ok(AnyValue::Null) | Err(_) => serde_json::Value::Null,
                    Ok(AnyValue::String(s)) => serde_json::Value::from(s),
                    Ok(AnyValue::StringOwned(s)) => serde_json::Value::from(s.as_str()),
                    Ok(v) => v.extract::<f64>().map_or(serde_json::Value::Null, serde_json::Value::from),
                };
                obj.insert(column.name().to_string(), value);
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    serde_json::Value::Array(rows)
}

fn cell_text(value: AnyValue) -> String {
    match value {
        AnyValue::Null => "-".into(),
        AnyValue::String(s) => s.into(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float32(x) => format!("{x:.1}"),
        AnyValue::Float64(x) => format!("{x:.1}"),
        other => other.to_string(),
    }
}

/// A data frame as an aligned plain-text table with every row, so that the
/// output can be read in full and grepped (polars' own display elides rows).
pub fn to_text(df: &DataFrame) -> String {
    let header: Vec<String> = df.columns().iter().map(|c| c.name().to_string()).collect();
    let rows: Vec<Vec<String>> = (0..df.height())
        .map(|i| df.columns().iter().map(|c| c.get(i).map_or_else(|_| "-".into(), cell_text)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|j| rows.iter().map(|r| r[j].len()).chain([header[j].len()]).max().unwrap_or(0))
        .collect();
    let numeric: Vec<bool> = df.columns().iter().map(|c| c.dtype().is_primitive_numeric()).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(
                |(j, c)| if numeric[j] { format!("{c:>w$}", w = widths[j]) } else { format!("{c:<w$}", w = widths[j]) },
            )
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(&header);
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    for row in &rows {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {

    /// The Rust summary of synthetic bone lengths is polars' `length_summary`.
    #[test]
    fn summaries_agree_with_polars() {
        let values: Vec<f32> = (0..101).map(|i| ((i * 37) % 101) as f32 * 1.37 + 200.1).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("mode".into(), vec!["sma"; values.len()]),
            Column::new("bone".into(), vec!["knee"; values.len()]),
            Column::new("length_mm".into(), values.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()),
        ])
        .unwrap();
        let want = length_summary(df.lazy(), "mode").collect().unwrap();
        let mut sorted = values;
        sorted.sort_by(f32::total_cmp);
        let got = summarise(&sorted);
        for (k, name) in ["mean_mm", "std_mm", "min_mm", "p05_mm", "p95_mm", "max_mm"].iter().enumerate() {
            let w = want.column(name).unwrap().get(0).unwrap().extract::<f64>().unwrap();
            assert!((got[k] - w).abs() < 1e-9, "{name}: {} vs polars {w}", got[k]);
        }
        assert!(summarise(&[3.0])[1].is_nan());
    }

    use super::*;

    /// One action filmed by two cameras in one sequence and by one in
    /// another: frames count each (sequence, frame) once.
    #[test]
    fn frames_are_counted_once_whatever_cameras_saw_them() {
        use dak_io::write::{ShardWriter, WriterOptions};
        use dak_io::{Manifest, SourceFrameBuilder, SourceFrameRow, TwoDSource};
        let dir = tempfile::tempdir().unwrap();
        let (pose, px) = (vec![100.0f32; 51], vec![10.0f32; 34]);
        let mut builder = SourceFrameBuilder::with_capacity(10);
        // (sequence, camera, frames, invalid frame)
        for (sequence, camera, frames, invalid) in [("a", "c0", 3, 2), ("a", "c1", 3, 9), ("b", "c0", 4, 3)] {
            for frame in 0..frames {
                builder
                    .push(&SourceFrameRow {
                        dataset: "d",
                        split: "train",
                        subject: "S1",
                        action: "walk",
                        sequence,
                        camera,
                        frame,
                        fps: 50.0,
                        joints_3d_world_mm: None,
                        joints_3d_camera_mm: &pose,
                        joints_2d_px: &px,
                        joints_2d_source: TwoDSource::Projection,
                        detected_2d_px: None,
                        detected_2d_confidence: None,
                        detector: None,
                        valid: frame != invalid,
                    })
                    .unwrap();
            }
        }
        let mut writer =
            ShardWriter::new(dir.path(), Table::SourceFrames, "part", WriterOptions::for_table(Table::SourceFrames));
        writer.write(&builder.finish()).unwrap();
        let files = writer.finish().unwrap();
        Manifest::new(Table::SourceFrames, files, vec!["test".into()], None).write(dir.path()).unwrap();
        let counts = shard_stats(dir.path()).unwrap().counts;
        assert_eq!(counts.height(), 1);
        let value = |name: &str| counts.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().get(0);
        assert_eq!(value("sequences"), Some(2.0));
        assert_eq!(value("cameras"), Some(2.0));
        // 3 + 4, not 10 rows over 2 cameras; frame 2 of `a` is valid in c1.
        assert_eq!(value("frames"), Some(7.0));
        assert_eq!(value("valid_frames"), Some(6.0));
    }

    #[test]
    fn text_table_keeps_every_row_and_aligns_numbers() {
        let n = 40;
        let df = DataFrame::new_infer_height(vec![
            Column::new("bone".into(), (0..n).map(|i| format!("b{i}")).collect::<Vec<_>>()),
            Column::new("mean_mm".into(), (0..n).map(|i| i as f64 * 10.25).collect::<Vec<_>>()),
        ])
        .unwrap();
        let text = to_text(&df);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n + 2);
        assert_eq!(lines[0], "bone  mean_mm");
        assert_eq!(lines[2], "b0        0.0");
        assert_eq!(lines[41], "b39     399.8");
    }
}
