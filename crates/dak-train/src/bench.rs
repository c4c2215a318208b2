//! Timings for issue 9, the twin of `benches/reference/bench_torch.py`:
//! median step time after warm-up, with device synchronisation, on random
//! data of the configured shapes (no shards needed).

use std::time::Instant;

use dak_core::{Intrinsics, NUM_JOINTS};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::{Ablation, TrainConfig};
use crate::data::{root_relative_m, SyntheticSet, Video, VideoSet};
use crate::error::Result;
use crate::trainer::{Backward, TrainData, Trainer};

/// One measurement, one JSON line, with the fields `bench_torch.py` prints
/// (less its allocator peak, which libtorch does not expose through tch).
#[derive(Debug, Clone, Serialize)]
pub struct BenchRecord {
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    pub device: String,
    pub work: String,
    pub frames: usize,
    pub batch: usize,
    pub precision: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_per_s: Option<f64>,
    /// The optimizer's update alone (median, synchronised), the part of a
    /// step where tch lacks PyTorch's foreach kernels: set against the
    /// reference's `opt.step()`, it says whether a step-time gap is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_s: Option<f64>,
    /// The step's inputs alone: batch assembly, copies to the device and
    /// the random draws (the reference's data sit on the device already).
    /// A step makes the next one's once its own kernels are queued, so
    /// this is the host's work, off the device's critical path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs_s: Option<f64>,
    /// The objective's forward alone, without autograd (inputs included),
    /// set against the reference's: a gap there is in the forward, else in
    /// the backward. Always the one-graph forward (auxiliary passes
    /// joined, as the reference's), whatever backward the row's steps run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_per_s: Option<f64>,
    /// Why a configuration that does not fit in memory has no timing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_memory: Option<String>,
}

impl BenchRecord {
    /// The record of training steps of `config` at `batch`, not yet timed.
    pub fn train(config: &TrainConfig, device: Device, batch: usize, backward: Backward) -> BenchRecord {
        BenchRecord {
            implementation: "dak-pose",
            device: dak_nn::device::device_name(device),
            work: train_work(config.ablation, backward),
            frames: config.model.frames,
            batch,
            precision: format!("{:?}", config.precision).to_lowercase(),
            step_s: None,
            samples_per_s: None,
            update_s: None,
            inputs_s: None,
            forward_s: None,
            frames_per_s: None,
            out_of_memory: None,
        }
    }
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Median of `steps` timed calls after `warmup` untimed ones.
pub fn median_time(device: Device, warmup: usize, steps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            sync(device);
            let t0 = Instant::now();
            f();
            sync(device);
            t0.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Random videos and synthetic clips with the shapes of a real batch.
pub fn random_data(frames: usize, batch: usize) -> TrainData {
    let camera = Intrinsics::pinhole(1145.0, 1000, 1002);
    let len = frames * 4;
    let videos = (0..batch.max(1))
        .map(|v| {
            let g = |n: usize, scale: f64, offset: f64| -> Vec<f32> {
                (0..n).map(|i| (((i * 7919 + v * 104_729) % 1000) as f64 / 1000.0 * scale + offset) as f32).collect()
            };
            let mut poses = g(len * NUM_JOINTS * 3, 400.0, -200.0);
            for p in poses.chunks_exact_mut(3) {
                p[2] += 4500.0;
            }
            Video {
                dataset: "bench".into(),
                subject: "S0".into(),
                action: "random".into(),
                action_changes: Vec::new(),
                sequence: format!("v{v}"),
                camera: "0".into(),
                first_frame: 0,
                intrinsics: camera,
                inputs: g(len * NUM_JOINTS * 2, 2.0, -1.0),
                poses_mm: poses,
                valid: vec![true; len],
            }
        })
        .collect();
    let synthetic = |mode: &str| {
        let n = 4 * batch.max(1) as i64;
        let (t, j) = (frames as i64, NUM_JOINTS as i64);
        let pose = Tensor::rand([n, t, j, 3], (Kind::Float, Device::Cpu)) * 400.0 + 4000.0;
        SyntheticSet {
            mode: mode.into(),
            x: Tensor::rand([n, t, j, 2], (Kind::Float, Device::Cpu)) * 2.0 - 1.0,
            target: root_relative_m(&pose),
            dirs: Vec::new(),
        }
    };
    TrainData {
        train: VideoSet { videos, inputs: Vec::new(), held: Default::default() },
        eval: None,
        sma: Some(synthetic("sma")),
        dma: Some(synthetic("dma")),
    }
}

/// The `work` of a training-step record: `train-g` for G alone (baseline),
/// else `train-<ablation>`; `-one-backward` with the whole objective's
/// backward in one call (as the PyTorch reference does), `-checkpointed`
/// with activation checkpointing (which the reference does not do).
pub fn train_work(ablation: Ablation, backward: Backward) -> String {
    let net = if ablation == Ablation::Baseline { "g" } else { ablation.name() };
    let how = match backward {
        Backward::Parts => "",
        Backward::Whole => "-one-backward",
        Backward::Checkpointed(_) => "-checkpointed",
    };
    format!("train-{net}{how}")
}

/// Training steps of `config.ablation` (baseline = G alone) at `batch`.
pub fn train_step(
    config: &TrainConfig,
    device: Device,
    batch: usize,
    warmup: usize,
    steps: usize,
    backward: Backward,
) -> Result<BenchRecord> {
    let record = BenchRecord::train(config, device, batch, backward);
    let config = TrainConfig { batch_size: batch, ..config.clone() };
    let frames = config.model.frames;
    let mut trainer = Trainer::new(config, random_data(frames, batch), device)?;
    trainer.set_backward(backward)?;
    let windows = trainer.epoch_batches(0).remove(0);
    // As in training, each step makes the next one's inputs while the
    // device runs it.
    let t = median_time(device, warmup, steps, || {
        trainer.train_step_before(&windows, Some(&windows), 0.5);
    });
    // The last step's gradients are still in place: update from them again.
    let lr = trainer.learning_rate(0);
    let update = median_time(device, 1, steps, || trainer.adam.step(lr));
    let inputs = median_time(device, 1, steps, || trainer.prepare_inputs(&windows, 0));
    let forward = tch::no_grad(|| median_time(device, 1, steps, || drop(trainer.losses(&windows, 0, 0.5))));
    Ok(BenchRecord {
        step_s: Some(t),
        samples_per_s: Some(batch as f64 / t),
        update_s: Some(update),
        inputs_s: Some(inputs),
        forward_s: Some(forward),
        ..record
    })
}

/// Inference of G alone on random input.
pub fn inference(g: &dak_model::Estimator, device: Device, batch: usize, warmup: usize, steps: usize) -> BenchRecord {
    let frames = g.config.frames;
    let x = (Tensor::rand([batch as i64, frames as i64, NUM_JOINTS as i64, 2], (Kind::Float, device)) * 2.0 - 1.0)
        .to_kind(g.kind());
    let t = tch::no_grad(|| {
        median_time(device, warmup, steps, || {
            let _ = g.forward(&x, false);
        })
    });
    BenchRecord {
        implementation: "dak-pose",
        device: dak_nn::device::device_name(device),
        work: "inference".into(),
        frames,
        batch,
        precision: format!("{:?}", g.kind()).to_lowercase(),
        step_s: Some(t),
        samples_per_s: None,
        update_s: None,
        inputs_s: None,
        forward_s: None,
        frames_per_s: Some((batch * frames) as f64 / t),
        out_of_memory: None,
    }
}

/// Windows per second that batch assembly (the loader) delivers on the CPU.
pub fn loader(videos: &VideoSet, frames: usize, batch: usize, seconds: f64) -> f64 {
    let windows = videos.windows(frames);
    if windows.is_empty() {
        return 0.0;
    }
    let t0 = Instant::now();
    let mut delivered = 0usize;
    let mut i = 0;
    while t0.elapsed().as_secs_f64() < seconds {
        let chunk: Vec<_> = (0..batch).map(|k| windows[(i + k) % windows.len()]).collect();
        let b = videos.batch(&chunk, frames, Device::Cpu);
        delivered += b.len();
        i += batch;
    }
    delivered as f64 / t0.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_steps_run_and_report_positive_rates() {
        let mut config = TrainConfig { ablation: Ablation::Full, ..TrainConfig::default() };
        config.model.frames = 9;
        config.model.channels = 16;
        config.model.encoder_layers = 2;
        config.model.decoder_layers = 1;
        config.model.heads = 2;
        for (backward, work) in [
            (Backward::Parts, "train-full"),
            (Backward::Whole, "train-full-one-backward"),
            (Backward::Checkpointed(2), "train-full-checkpointed"),
        ] {
            let r = train_step(&config, Device::Cpu, 4, 1, 2, backward).unwrap();
            assert_eq!(r.work, work);
            assert!(r.step_s.unwrap() > 0.0 && r.samples_per_s.unwrap() > 0.0);
            // The update is part of the step; the inputs and the forward are
            // timed apart (no order asserted: a loaded machine may invert
            // two-sample medians).
            assert!(r.update_s.unwrap() > 0.0 && r.update_s < r.step_s);
            assert!(r.inputs_s.unwrap() > 0.0 && r.forward_s.unwrap() > 0.0, "{work}");
        }
        assert_eq!(train_work(Ablation::Baseline, Backward::Parts), "train-g");
        // A configuration that does not fit: the same header, a reason, no timing.
        let oom = BenchRecord {
            out_of_memory: Some("CUDA out of memory".into()),
            ..BenchRecord::train(&config, Device::Cpu, 64, Backward::Checkpointed(16))
        };
        let row = serde_json::to_value(&oom).unwrap();
        assert_eq!(
            (row["work"].as_str(), row["frames"].as_u64(), row["batch"].as_u64()),
            (Some("train-full-checkpointed"), Some(9), Some(64))
        );
        assert_eq!(row["out_of_memory"], "CUDA out of memory");
        assert!(["step_s", "samples_per_s", "update_s", "inputs_s", "forward_s"].iter().all(|k| row.get(k).is_none()));
        let data = random_data(9, 4);
        assert!(loader(&data.train, 9, 4, 0.05) > 0.0);
    }
}
