//! Hot paths of the geometry core and shard IO. `cargo bench -p dak-bench`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dak_core::metrics::{mpjpe, p_mpjpe};
use dak_core::skeleton::{Pose3, NUM_JOINTS};
use dak_core::Intrinsics;
use dak_datasets::synth::{self, SynthConfig};
use nalgebra::Vector3;

fn poses(n: usize, shift: f64) -> Vec<Pose3> {
    (0..n)
        .map(|f| {
            std::array::from_fn(|j| {
                let a = (f * NUM_JOINTS + j) as f64;
                Vector3::new(
                    (a * 0.37).sin() * 400.0 + shift,
                    (a * 0.11).cos() * 700.0,
                    4500.0 + (a * 0.05).sin() * 200.0,
                )
            })
        })
        .collect()
}

fn metrics(c: &mut Criterion) {
    let gt = poses(4096, 0.0);
    let pred = poses(4096, 12.0);
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(gt.len() as u64));
    g.bench_function("mpjpe/4096 frames", |b| b.iter(|| mpjpe(black_box(&pred), black_box(&gt)).unwrap()));
    g.bench_function("p_mpjpe/4096 frames", |b| b.iter(|| p_mpjpe(black_box(&pred), black_box(&gt)).unwrap()));
    g.finish();
}

fn projection(c: &mut Criterion) {
    let cam = Intrinsics {
        focal_length_px: [1145.0, 1143.8],
        center_px: [512.5, 515.5],
        radial: [-0.207, 0.248, -0.003],
        tangential: [-0.001, -0.0014],
        width_px: 1000,
        height_px: 1002,
    };
    let frames = poses(4096, 0.0);
    let mut g = c.benchmark_group("projection");
    g.throughput(Throughput::Elements((frames.len() * NUM_JOINTS) as u64));
    g.bench_function("project/4096 frames", |b| {
        b.iter(|| frames.iter().flat_map(|p| p.iter()).map(|x| cam.project(black_box(x)).x).sum::<f64>())
    });
    g.finish();
}

fn synth_write(c: &mut Criterion) {
    let config = SynthConfig { frames: 50, ..SynthConfig::default() };
    let rows = 10 * 8 * 4 * config.frames as u64;
    let mut g = c.benchmark_group("shards");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rows));
    g.bench_function("synth+write/16k frames", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            synth::generate(&config, dir.path(), false, vec![], Default::default(), &dak_io::Silent).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, metrics, projection, synth_write);
criterion_main!(benches);
