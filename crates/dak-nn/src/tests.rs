//! Tests of the network augmentors on small motion from the demo dataset's
//! generator (tiny networks, a few fitting steps, CPU).

use dak_augment::sampling::{CpuProjector, Generator, Projector};
use dak_augment::source::SourceLibrary;
use dak_augment::{DmaOffsets, StructureConfig};
use dak_core::bones::bone_lengths;
use dak_core::{Intrinsics, Pose3, NUM_JOINTS};
use dak_datasets::synth::{self, motion::Action, SynthConfig};
use nalgebra::Vector3;
use tch::Device;

use crate::dma::{Dma, DmaConfig, DmaFitSettings};
use crate::generators::{DmaGenerator, SmaGenerator, TchProjector};
use crate::sma::{Sma, SmaConfig, SmaFitSettings};

/// Demo motion seen by a level camera 4.5 m in front (world z up → camera y down).
pub fn library(frames: usize) -> SourceLibrary {
    let config = SynthConfig { frames, ..SynthConfig::default() };
    let sequences = synth::level_camera_sequences(&config, 2, &[Action::Walk, Action::Squat, Action::Wave]);
    let camera = dak_io::CameraRecord {
        dataset: "memory".into(),
        subject: "S0".into(),
        camera: "0".into(),
        intrinsics: Intrinsics::pinhole(1100.0, 1000, 1000),
        extrinsics: None,
    };
    SourceLibrary::from_sequences(sequences, vec![camera])
}

fn tiny_sma(t: usize) -> SmaConfig {
    SmaConfig { clip_frames: t, hidden: 32, noise_dim: 4, ..SmaConfig::default() }
}

fn lengths_std_max(clip: &[Pose3]) -> f64 {
    let all: Vec<_> = clip.iter().map(bone_lengths).collect();
    (1..NUM_JOINTS)
        .map(|j| {
            let mean = all.iter().map(|l| l[j]).sum::<f64>() / all.len() as f64;
            (all.iter().map(|l| (l[j] - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt()
        })
        .fold(0.0, f64::max)
}

#[test]
fn sma_clips_keep_bone_lengths_and_start_at_the_reference() {
    let lib = library(120);
    tch::manual_seed(0);
    let sma = Sma::new(tiny_sma(27), Device::Cpu).unwrap();
    let structure = StructureConfig::default();
    let mut generator = SmaGenerator { sma: &sma, windows: lib.windows(27).unwrap(), structure, seed: 9 };
    let clips = generator.generate(0..16).unwrap();
    assert_eq!(clips.len(), 16);
    let windows = lib.windows(27).unwrap();
    for (id, g) in clips.iter().enumerate() {
        assert_eq!(g.poses.len(), 27);
        assert!(lengths_std_max(&g.poses) < 1e-3, "clip {id}: bone lengths vary by {} mm", lengths_std_max(&g.poses));
        // Frame 0 is the reference's first frame with the clip's bone lengths:
        // same root, same bone directions.
        let reference =
            windows.sample(&mut dak_augment::item_rng(9, dak_augment::sampling::streams::REFERENCE, id as u64));
        let (want, got) = (&reference.poses[0], &g.poses[0]);
        let depth_shift = got[0].z - want[0].z;
        assert!((got[0] - want[0] - Vector3::new(0.0, 0.0, depth_shift)).norm() < 1e-3);
        let (_, dw) = dak_core::bones::bone_lengths_and_directions(want);
        let (_, dg) = dak_core::bones::bone_lengths_and_directions(got);
        for j in 1..NUM_JOINTS {
            assert!((dw[j] - dg[j]).norm() < 1e-4, "clip {id} bone {j} turned in frame 0");
        }
        // The last frame differs from the reference (BA + RT moved it).
        assert!((g.poses[26][13] - reference.poses[26][13]).norm() > 1.0);
    }
    // Same ids, same clips, whatever the chunking (up to float rounding of
    // differently sized matrix products).
    let again = generator.generate(8..16).unwrap();
    for (a, b) in again[0].poses.iter().zip(&clips[8].poses) {
        for j in 0..NUM_JOINTS {
            assert!((a[j] - b[j]).norm() < 1e-2);
        }
    }
}

#[test]
fn sma_fit_runs_finite_and_the_model_reloads_identically() {
    let lib = library(80);
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(1);
    let mut sma = Sma::new(tiny_sma(9), Device::Cpu).unwrap();
    let settings = SmaFitSettings { steps: 12, batch: 8, ..SmaFitSettings::default() };
    let mut seen = Vec::new();
    let losses = sma.fit(&lib.windows(9).unwrap(), &settings, |_, l| seen.push(*l)).unwrap();
    assert_eq!(seen.len(), 12);
    assert!(seen.iter().all(|l| l.discriminator.is_finite() && l.adversarial.is_finite() && l.diversity.is_finite()));
    assert!(losses.diversity > 0.0 && losses.diversity < 1.0);
    sma.save(dir.path(), serde_json::json!({"steps": 12})).unwrap();
    let loaded = Sma::load(dir.path(), Device::Cpu).unwrap();
    let structure = StructureConfig::default();
    let a = SmaGenerator { sma: &sma, windows: lib.windows(9).unwrap(), structure, seed: 3 }.generate(0..4).unwrap();
    let b = SmaGenerator { sma: &loaded, windows: lib.windows(9).unwrap(), structure, seed: 3 }.generate(0..4).unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.poses, y.poses);
    }
    // A model.json from before `base_motion` samples on the base it was fitted on.
    let header = dir.path().join("model.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&header).unwrap()).unwrap();
    assert_eq!(json["config"]["base_motion"], "slerp");
    json["config"].as_object_mut().unwrap().remove("base_motion");
    std::fs::write(&header, json.to_string()).unwrap();
    let old = Sma::load(dir.path(), Device::Cpu).unwrap();
    assert_eq!(old.config.base_motion, crate::sma::BaseMotion::Lerp);
    let c = SmaGenerator { sma: &old, windows: lib.windows(9).unwrap(), structure, seed: 3 }.generate(0..4).unwrap();
    let apart = |f: usize| (0..NUM_JOINTS).map(|j| (c[0].poses[f][j] - a[0].poses[f][j]).norm()).fold(0.0, f64::max);
    assert!(apart(0) < 1e-3, "both start at the reference: {} mm apart", apart(0));
    // (Mid-clip, t = ½, the two agree by symmetry; a quarter in, they do not.)
    assert!(apart(2) > 1e-2, "the frames between differ: {} mm apart", apart(2));
    // The wrong kind of model is refused, naming the file.
    let err = Dma::load(dir.path(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("model.json") && err.contains("`sma` model"), "{err}");
    // A damaged weights file is refused too.
    std::fs::write(dir.path().join("weights.safetensors"), b"not weights").unwrap();
    let err = Sma::load(dir.path(), Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("weights.safetensors"), "{err}");
}

fn tiny_dma(r: usize, p: usize) -> DmaConfig {
    DmaConfig { reference_frames: r, predicted_frames: p, latent_dim: 4, hidden: 32 }
}

#[test]
fn dma_clips_start_at_the_sampled_offset_and_have_length_t() {
    let lib = library(150);
    let offsets = DmaOffsets::default();
    let (t, p) = (27, 27);
    let r = offsets.default_reference_frames(t, p);
    tch::manual_seed(0);
    let dma = Dma::new(tiny_dma(r, p), Device::Cpu).unwrap();
    let mut generator = DmaGenerator { dma: &dma, windows: lib.windows(r).unwrap(), offsets, clip_frames: t, seed: 4 };
    assert_eq!(generator.offset_range().unwrap(), 30..=50);
    let clips = generator.generate(0..20).unwrap();
    let windows = lib.windows(r).unwrap();
    let mut offsets_seen = std::collections::BTreeSet::new();
    for (id, g) in clips.iter().enumerate() {
        assert_eq!(g.poses.len(), t);
        let reference =
            windows.sample(&mut dak_augment::item_rng(4, dak_augment::sampling::streams::REFERENCE, id as u64));
        let seq = &lib.sequences()[reference.sequence];
        let m = (g.start_frame - seq.first_frame) as usize - reference.start;
        assert!((30..=50).contains(&m), "offset {m}");
        offsets_seen.insert(m);
        // Frames before R are the reference's own frames m, m+1, ...
        for (k, pose) in g.poses.iter().enumerate().take(r - m) {
            assert!((pose[5] - reference.poses[m + k][5]).norm() < 1e-3);
        }
        // Predicted frames keep the reference's bones (f32 maths on metres).
        assert!(lengths_std_max(&g.poses) < 0.05, "bone lengths drift by {} mm", lengths_std_max(&g.poses));
    }
    assert!(offsets_seen.len() > 3, "offsets are drawn, not fixed: {offsets_seen:?}");
}

#[test]
fn dma_best_of_k_fit_learns() {
    let lib = library(100);
    tch::manual_seed(2);
    let mut dma = Dma::new(tiny_dma(10, 5), Device::Cpu).unwrap();
    let windows = lib.windows(15).unwrap();
    let settings = DmaFitSettings { steps: 60, batch: 16, samples: 4, learning_rate: 3e-3, ..Default::default() };
    let mut history = Vec::new();
    dma.fit(&windows, &settings, |_, l| history.push(*l)).unwrap();
    let first: f64 = history[..5].iter().map(|l| l.best_mpjpe_mm).sum::<f64>() / 5.0;
    let last: f64 = history[55..].iter().map(|l| l.best_mpjpe_mm).sum::<f64>() / 5.0;
    assert!(history.iter().all(|l| l.best_of_k.is_finite() && l.diversity.is_finite()));
    assert!(last < first * 0.9, "best-of-K error went from {first:.1} to {last:.1} mm");
    // Different latent codes give different futures.
    let reference = crate::geometry::clips_to_tensor(&[&windows.get(0).poses[..10]], Device::Cpu);
    let two = reference.repeat([2, 1, 1, 1]);
    let z = tch::Tensor::from_slice(&[1.0f32, -1.0, 0.5, 2.0, -2.0, 1.0, -0.5, 0.0]).view([2, 4]);
    let futures = tch::no_grad(|| dma.predict(&two, &z));
    let gap = f64::try_from((futures.get(0) - futures.get(1)).abs().mean(tch::Kind::Double)).unwrap();
    assert!(gap > 0.1, "futures differ by {gap} mm");
}

#[test]
fn tensor_projection_equals_the_cpu_projection() {
    let lib = library(40);
    let windows = lib.windows(10).unwrap();
    let clips: Vec<Vec<Pose3>> = (0..8).map(|k| windows.get(k * 7).poses).collect();
    let k = Intrinsics {
        focal_length_px: [1145.0, 1143.8],
        center_px: [512.5, 515.5],
        radial: [-0.2, 0.24, -0.003],
        tangential: [-0.0009, -0.0014],
        width_px: 1000,
        height_px: 1002,
    };
    let views: Vec<(Intrinsics, &[Pose3])> = clips.iter().map(|c| (k, &c[..])).collect();
    let cpu = CpuProjector.project(&views).unwrap();
    let tensor = TchProjector { device: Device::Cpu }.project(&views).unwrap();
    let worst = cpu.iter().flatten().zip(tensor.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "{worst} px apart");
}

#[test]
fn a_failed_weights_write_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should go: the rename fails after the write.
    let path = dir.path().join("w.safetensors");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"x").unwrap();
    let t = tch::Tensor::zeros([4], (tch::Kind::Float, tch::Device::Cpu));
    assert!(crate::model_dir::write_safetensors(&path, &[("t".into(), t)]).is_err());
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["w.safetensors"], "only the obstacle is left");
    assert!(
        crate::model_dir::is_temporary(".w.safetensors.tmp.safetensors")
            && crate::model_dir::is_temporary(".w.safetensors.p4242-7.tmp.safetensors")
            && !crate::model_dir::is_temporary("w.safetensors")
    );
}
