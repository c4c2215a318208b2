//! A shard written by Rust reads back in Python (pyarrow and polars) with
//! identical values.

use std::collections::BTreeMap;
use std::process::Command;

use dak_datasets::synth::{self, SynthConfig};
use dak_io::{ShardSet, Silent, Verify};
use serde_json::Value;

use crate::support::{python, workspace_root};

fn floats(v: &Value) -> Option<Vec<f32>> {
    // JSON numbers from Python floats are the exact f32 values widened to f64.
    v.as_array().map(|a| a.iter().map(|x| x.as_f64().expect("number") as f32).collect())
}

#[test]
fn python_reads_rust_shards_with_identical_values() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig { seed: 11, frames: 6, ..SynthConfig::default() };
    synth::generate(&config, dir.path(), false, vec![], Default::default(), &Silent).unwrap();

    let output = Command::new(python)
        .arg(workspace_root().join("tests/python/read_shards.py"))
        .arg(dir.path())
        .arg(workspace_root().join("schemas"))
        .output()
        .unwrap();
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = read["rows"].as_array().unwrap();

    let set = ShardSet::open(dir.path(), Verify::Checksums).unwrap();
    let mut n = 0;
    let mut per_subject: BTreeMap<(String, String), u64> = BTreeMap::new();
    for batch in set.source_frames() {
        let b = batch.unwrap();
        for i in 0..b.len() {
            let row = &rows[n];
            assert_eq!(row["dataset"], b.dataset.value(i));
            assert_eq!(row["sequence"], b.sequence.value(i));
            assert_eq!(row["camera"], b.camera.value(i));
            assert_eq!(row["frame"].as_u64().unwrap(), u64::from(b.frame.value(i)));
            assert_eq!(row["valid"].as_bool().unwrap(), b.valid.value(i));
            assert_eq!(floats(&row["joints_3d_camera_mm"]).unwrap(), b.joints_3d_camera_mm(i));
            assert_eq!(floats(&row["joints_3d_world_mm"]).as_deref(), b.joints_3d_world_mm(i));
            assert_eq!(floats(&row["joints_2d_px"]).unwrap(), b.joints_2d_px(i));
            assert_eq!(floats(&row["detected_2d_px"]).as_deref(), b.detected_2d_px(i));
            assert_eq!(floats(&row["detected_2d_confidence"]).as_deref(), b.detected_2d_confidence(i));
            *per_subject.entry((b.dataset.value(i).into(), b.subject.value(i).into())).or_default() += 1;
            n += 1;
        }
    }
    assert_eq!(n, rows.len());
    assert_eq!(read["polars_rows"].as_u64().unwrap() as usize, n);
    let from_polars: BTreeMap<(String, String), u64> = read["per_subject"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (r["dataset"].as_str().unwrap().into(), r["subject"].as_str().unwrap().into()),
                r["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(from_polars, per_subject);
}
