//! The embedded demo dataset: deterministic, plausible, with a real domain gap.

use dak_core::bone_lengths;
use dak_core::skeleton::{pose_from_flat, NUM_JOINTS};
use dak_datasets::synth::{self, SynthConfig};
use dak_io::{ShardSet, Silent, Verify};

fn small(seed: u64) -> SynthConfig {
    SynthConfig { seed, frames: 40, ..SynthConfig::default() }
}

fn generate(config: &SynthConfig) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = synth::generate(config, dir.path(), false, vec!["test".into()], Default::default(), &Silent).unwrap();
    assert!(out.written);
    dir
}

#[test]
fn same_seed_gives_byte_identical_shards_other_seed_does_not() {
    let a = generate(&small(7));
    let b = generate(&small(7));
    let c = generate(&small(8));
    let (fa, fb, fc) = (
        crate::support::parquet_files(a.path()),
        crate::support::parquet_files(b.path()),
        crate::support::parquet_files(c.path()),
    );
    assert_eq!(fa.len(), 4, "three files of up to 32 sequences and the camera table");
    assert!(fa == fb, "same seed must give identical bytes");
    assert!(fa[1].1 != fc[1].1, "another seed must change the data");
}

#[test]
fn rerun_is_a_no_op_and_a_changed_config_needs_force() {
    let dir = generate(&small(1));
    let before = crate::support::parquet_files(dir.path());
    let again = synth::generate(&small(1), dir.path(), false, vec![], Default::default(), &Silent).unwrap();
    assert!(!again.written);
    let err = synth::generate(&small(2), dir.path(), false, vec![], Default::default(), &Silent).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(crate::support::parquet_files(dir.path()), before, "a refused run changes nothing");
    assert!(synth::generate(&small(2), dir.path(), true, vec![], Default::default(), &Silent).unwrap().written);
}

#[test]
fn demo_has_subjects_actions_cameras_and_consistent_geometry() {
    let dir = generate(&small(3));
    let set = ShardSet::open(dir.path(), Verify::Checksums).unwrap();
    let cameras = set.cameras().unwrap();
    assert_eq!(cameras.len(), 10 * 4);
    let mut subjects = std::collections::BTreeSet::new();
    let mut actions = std::collections::BTreeSet::new();
    let mut worst_reprojection: f64 = 0.0;
    let mut rows = 0;
    for batch in set.source_frames() {
        let b = batch.unwrap();
        for i in 0..b.len() {
            rows += 1;
            subjects.insert((b.dataset.value(i).to_string(), b.subject.value(i).to_string()));
            actions.insert(b.action.value(i).to_string());
            assert!(b.valid.value(i));
            let cam = cameras
                .iter()
                .find(|c| {
                    c.dataset == b.dataset.value(i) && c.subject == b.subject.value(i) && c.camera == b.camera.value(i)
                })
                .and_then(|c| c.to_camera())
                .expect("every frame's camera is in the table");
            let world = pose_from_flat(b.joints_3d_world_mm(i).unwrap());
            let in_cam = pose_from_flat(b.joints_3d_camera_mm(i));
            let px = b.joints_2d_px(i);
            for j in 0..NUM_JOINTS {
                let moved = cam.extrinsics.world_to_camera(&world[j]);
                assert!((moved - in_cam[j]).norm() < 0.05, "camera coords follow the extrinsics");
                let p = cam.intrinsics.project(&in_cam[j]);
                worst_reprojection = worst_reprojection
                    .max((p.x - f64::from(px[2 * j])).abs())
                    .max((p.y - f64::from(px[2 * j + 1])).abs());
            }
        }
    }
    assert_eq!(rows, 10 * 8 * 4 * 40);
    assert_eq!(subjects.len(), 10);
    assert!(actions.len() >= 6, "{actions:?}");
    assert!(worst_reprojection < 1e-3, "2D is the projection of the 3D: {worst_reprojection} px");
}

/// Bone lengths are constant within a sequence and differ between domains.
#[test]
fn bones_are_rigid_and_the_target_domain_is_shifted() {
    let dir = generate(&small(4));
    let set = ShardSet::open(dir.path(), Verify::Sizes).unwrap();
    let (mut source_legs, mut target_legs) = (Vec::new(), Vec::new());
    let mut first: std::collections::HashMap<String, [f64; NUM_JOINTS]> = Default::default();
    for batch in set.source_frames() {
        let b = batch.unwrap();
        for i in 0..b.len() {
            let lengths = bone_lengths(&pose_from_flat(b.joints_3d_world_mm(i).unwrap()));
            let key = b.sequence.value(i).to_string() + b.dataset.value(i);
            let reference = first.entry(key).or_insert(lengths);
            for j in 1..NUM_JOINTS {
                assert!((reference[j] - lengths[j]).abs() < 0.05, "bone {j} changes within a sequence");
            }
            let thigh_over_spine = (lengths[2] + lengths[5]) / (lengths[7] + lengths[8]);
            if b.dataset.value(i) == synth::SOURCE_DATASET {
                source_legs.push(thigh_over_spine);
            } else {
                target_legs.push(thigh_over_spine);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&target_legs) > 1.15 * mean(&source_legs), "target has longer legs relative to the torso");
}
