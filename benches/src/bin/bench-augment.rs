//! Augmentation throughput (issue 4), one run, same inputs for everyone:
//!
//! 1. structure augmentation + projection on CPU (rayon) against the numpy
//!    reference `benches/reference/augment_structure.py`, run as a child
//!    process on the same reference clips (saved as .npy);
//! 2. SMA and DMA sampling (networks of the default size; throughput does
//!    not depend on training) on the CPU and, when libtorch sees one, CUDA.
//!
//! Usage: `bench-augment [--clips N] [--frames T] [--python PATH] [--json OUT]`
//! Prints a Markdown table for benches/RESULTS.md.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use dak_augment::sampling::{CpuProjector, Generator, Projector, StructureGenerator};
use dak_augment::source::SourceLibrary;
use dak_augment::{DmaOffsets, StructureConfig};
use dak_core::{Intrinsics, Pose3, NUM_JOINTS};
use dak_datasets::synth::{self, SynthConfig};
use dak_nn::dma::{Dma, DmaConfig};
use dak_nn::generators::{DmaGenerator, SmaGenerator, TchProjector};
use dak_nn::sma::{Sma, SmaConfig};
use tch::Device;

struct Options {
    clips: u64,
    frames: usize,
    python: PathBuf,
    json: Option<PathBuf>,
}

fn options() -> anyhow::Result<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Options { clips: 20_000, frames: 27, python: root.join(".venv/bin/python"), json: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--clips" => o.clips = value()?.parse()?,
            "--frames" => o.frames = value()?.parse()?,
            "--python" => o.python = value()?.into(),
            "--json" => o.json = Some(value()?.into()),
            "-h" | "--help" => {
                println!("bench-augment [--clips N] [--frames T] [--python PATH] [--json OUT]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(o)
}

/// Demo motion of the source domain, seen by a level camera (world z up → camera y down).
fn library() -> SourceLibrary {
    let config = SynthConfig { frames: 300, ..SynthConfig::default() };
    let sequences = synth::level_camera_sequences(&config, 5, &synth::motion::Action::ALL);
    let camera = dak_io::CameraRecord {
        dataset: "bench".into(),
        subject: "S0".into(),
        camera: "0".into(),
        intrinsics: Intrinsics {
            focal_length_px: [1145.05, 1143.78],
            center_px: [512.54, 515.45],
            radial: [-0.2071, 0.2479, -0.0031],
            tangential: [-0.0009, -0.0013],
            width_px: 1000,
            height_px: 1002,
        },
        extrinsics: None,
    };
    SourceLibrary::from_sequences(sequences, vec![camera])
}

/// A little-endian f64 .npy file.
fn write_npy(path: &std::path::Path, shape: &[usize], data: &[f64]) -> anyhow::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({},), }}", dims.join(", "));
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in data {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

/// Clips/s of generate + project for `clips` ids, in chunks of `chunk`.
fn throughput(
    generator: &mut dyn Generator,
    projector: &mut dyn Projector,
    k: Intrinsics,
    clips: u64,
    chunk: u64,
) -> anyhow::Result<f64> {
    let (_, seconds) = time(|| -> anyhow::Result<()> {
        let mut next = 0;
        while next < clips {
            let ids = next..(next + chunk).min(clips);
            let generated = generator.generate(ids.clone())?;
            let views: Vec<(Intrinsics, &[Pose3])> = generated.iter().map(|g| (k, &g.poses[..])).collect();
            std::hint::black_box(projector.project(&views)?);
            next = ids.end;
        }
        Ok(())
    });
    Ok(clips as f64 / seconds)
}

fn main() -> anyhow::Result<()> {
    let o = options()?;
    let lib = library();
    let k = lib.cameras()[0].intrinsics;
    let t = o.frames;
    let threads = rayon::current_num_threads();
    let mut rows: Vec<(String, f64)> = Vec::new();

    // 1. Structure augmentation + projection, Rust vs numpy, same reference clips.
    let windows = lib.windows(t)?;
    let references: Vec<Vec<Pose3>> = (0..o.clips).map(|i| windows.get(i * 7919).poses).collect();
    let work = std::env::temp_dir().join(format!("dak-bench-augment-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let npy = work.join("clips.npy");
    let flat: Vec<f64> = references.iter().flatten().flat_map(|p| p.iter().flat_map(|v| [v.x, v.y, v.z])).collect();
    write_npy(&npy, &[o.clips as usize, t, NUM_JOINTS, 3], &flat)?;

    let config = StructureConfig::default();
    let structure = {
        let mut generator = StructureGenerator { windows: lib.windows(t)?, config, seed: 0 };
        throughput(&mut generator, &mut CpuProjector, k, o.clips, 4096)?
    };
    rows.push((format!("structure + projection, Rust (rayon, {threads} threads)"), structure));

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference/augment_structure.py");
    let mut numpy = Vec::new();
    for mode in ["per-clip", "batched"] {
        let out = Command::new(&o.python)
            .arg(&script)
            .arg(&npy)
            .args(["--mode", mode])
            .output()
            .with_context(|| format!("running {}", o.python.display()))?;
        if !out.status.success() {
            bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let rate = report["clips_per_s"].as_f64().context("clips_per_s in the reference's output")?;
        rows.push((format!("structure + projection, numpy {mode} (1 process)"), rate));
        numpy.push(rate);
    }
    std::fs::remove_dir_all(&work).ok();

    // 2. SMA / DMA sampling, default network sizes.
    let mut devices = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        devices.push(Device::Cuda(0));
    }
    let offsets = DmaOffsets::default();
    let p = DmaOffsets::default_predicted_frames(t);
    let r = offsets.default_reference_frames(t, p);
    for device in devices {
        let name = dak_nn::device::device_name(device);
        tch::manual_seed(0);
        let sma = Sma::new(SmaConfig { clip_frames: t, ..SmaConfig::default() }, device)?;
        let dma =
            Dma::new(DmaConfig { reference_frames: r, predicted_frames: p, latent_dim: 32, hidden: 256 }, device)?;
        let n = if device == Device::Cpu { o.clips.min(4096) } else { o.clips };
        let mut projector: Box<dyn Projector> =
            if device == Device::Cpu { Box::new(CpuProjector) } else { Box::new(TchProjector { device }) };
        let mut g = SmaGenerator { sma: &sma, windows: lib.windows(t)?, structure: config, seed: 0 };
        throughput(&mut g, projector.as_mut(), k, 512, 512)?; // warm-up
        rows.push((
            format!("SMA sampling + projection ({name}, chunk 512)"),
            throughput(&mut g, projector.as_mut(), k, n, 512)?,
        ));
        let mut g = DmaGenerator { dma: &dma, windows: lib.windows(r)?, offsets, clip_frames: t, seed: 0 };
        throughput(&mut g, projector.as_mut(), k, 512, 512)?;
        rows.push((
            format!("DMA sampling + projection ({name}, chunk 512)"),
            throughput(&mut g, projector.as_mut(), k, n, 512)?,
        ));
    }

    println!("{} reference clips of {t} frames; {threads} rayon threads\n", o.clips);
    println!("| work | clips/s |\n|---|---:|");
    for (name, rate) in &rows {
        println!("| {name} | {rate:.0} |");
    }
    println!(
        "\nstructure + projection speed-up: {:.1}x over numpy per-clip, {:.1}x over numpy batched",
        structure / numpy[0],
        structure / numpy[1]
    );
    if let Some(path) = o.json {
        let rows: Vec<_> = rows.iter().map(|(n, r)| serde_json::json!({ "work": n, "clips_per_s": r })).collect();
        std::fs::write(
            path,
            serde_json::to_string_pretty(
                &serde_json::json!({ "clips": o.clips, "frames": t, "threads": threads, "rows": rows }),
            )?,
        )?;
    }
    Ok(())
}
