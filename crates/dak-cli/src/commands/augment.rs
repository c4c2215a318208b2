//! `dak-augment`: fit SMA and DMA on source shards, and materialize
//! synthetic clips (sma, dma, structure) with their 2D projections.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use dak_augment::output::{write_report, Opened, SyntheticWriter};
use dak_augment::sampling::{CpuProjector, Generator, Projector, SamplingRun, StructureGenerator};
use dak_augment::source::{check_dirs, SourceFilter, SourceLibrary};
use dak_augment::{CameraJitter, CameraPool, DmaOffsets, Report, StructureConfig};
use dak_io::Reporter;
use dak_nn::dma::{Dma, DmaConfig, DmaFitSettings};
use dak_nn::generators::{DmaGenerator, SmaGenerator, TchProjector};
use dak_nn::sma::{Sma, SmaConfig, SmaFitSettings};
use tch::Device;

use crate::progress::Bars;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Structure-prioritized motion augmentor (needs a model from `fit --mode sma`).
    Sma,
    /// Dynamic-prioritized motion augmentor (needs a model from `fit --mode dma`).
    Dma,
    /// Structure augmentation of source clips: limb scaling and joint perturbation.
    Structure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitMode {
    Sma,
    Dma,
}

/// Which source frames to read.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Source shard directories (from `dak-prep`); repeat or separate with commas.
    #[arg(long, required = true, value_delimiter = ',')]
    pub shards: Vec<PathBuf>,
    /// Only these datasets (e.g. demo-source, h36m); all when empty.
    #[arg(long, value_delimiter = ',')]
    pub dataset: Vec<String>,
    /// Only these splits; augmentors learn from training data.
    #[arg(long, value_delimiter = ',', default_value = "train")]
    pub split: Vec<String>,
    /// Only these subjects (e.g. S1 for the h36m-s1 protocol); all when empty.
    #[arg(long, value_delimiter = ',')]
    pub subjects: Vec<String>,
}

impl SourceArgs {
    fn load(&self) -> anyhow::Result<SourceLibrary> {
        check_dirs(&self.shards)?;
        let filter = SourceFilter {
            datasets: self.dataset.clone(),
            splits: self.split.clone(),
            subjects: self.subjects.clone(),
        };
        let library = SourceLibrary::load(&self.shards, &filter)?;
        if library.sequences().is_empty() {
            let list = |flag: &str, v: &[String]| {
                if v.is_empty() {
                    String::new()
                } else {
                    format!(" {flag} {}", v.join(","))
                }
            };
            bail!(
                "no valid source frame in {} passes{}{}{}",
                self.shards.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                list("--dataset", &self.dataset),
                list("--split", &self.split),
                list("--subjects", &self.subjects)
            );
        }
        tracing::info!(
            "source: {} frames in {} runs of consecutive valid frames, {} cameras",
            library.frames(),
            library.sequences().len(),
            library.cameras().len()
        );
        Ok(library)
    }

    fn describe(&self) -> serde_json::Value {
        let manifests = dak_io::manifest::describe_dirs(&self.shards);
        serde_json::json!({ "shards": manifests, "datasets": self.dataset, "splits": self.split, "subjects": self.subjects })
    }
}

/// Structure augmentation parameters (DESIGN.md defaults).
#[derive(Debug, Args)]
pub struct StructureArgs {
    /// Std of the per-limb-group scale factor F_l ~ N(1, σ).
    #[arg(long, default_value_t = 0.2)]
    pub local_std: f64,
    /// Std of the whole-body scale factor F_g ~ N(1, σ).
    #[arg(long, default_value_t = 0.3)]
    pub global_std: f64,
    /// Both factors are truncated to 1 ± k·σ.
    #[arg(long, default_value_t = 2.0)]
    pub truncation_sigmas: f64,
    /// Thorax and hips move along their parent bone by u·|bone|, u ~ U(−r, r).
    #[arg(long, default_value_t = 0.1)]
    pub perturb_range: f64,
}

impl StructureArgs {
    fn config(&self) -> anyhow::Result<StructureConfig> {
        let c = StructureConfig {
            local_std: self.local_std,
            global_std: self.global_std,
            truncation_sigmas: self.truncation_sigmas,
            perturb_range: self.perturb_range,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Materialize synthetic clips with their 2D projections as shards.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Which augmentor makes the clips.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Fitted model directory (sma and dma modes).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output shard directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of synthetic clips.
    #[arg(long, default_value_t = 1000)]
    pub clips: u64,
    /// Random seed: the same seed gives the same clips. Each mode mixes its
    /// name in, so the modes' clips of one seed are drawn independently.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Clip length T (default: the SMA or DMA model's, else 27).
    #[arg(long)]
    pub clip_frames: Option<usize>,
    #[command(flatten)]
    pub structure: StructureArgs,
    /// DMA: smallest offset m (frames) of the clip inside [reference ; prediction].
    #[arg(long, default_value_t = 30)]
    pub m_min: usize,
    /// DMA: largest offset m in frames (both are clipped so the clip fits).
    #[arg(long, default_value_t = 50)]
    pub m_max: usize,
    /// Relative std of a random focal-length change of the drawn camera.
    #[arg(long, default_value_t = 0.0)]
    pub focal_jitter: f64,
    /// Std of a random principal-point shift of the drawn camera, px.
    #[arg(long, default_value_t = 0.0)]
    pub center_jitter_px: f64,
    /// Where the networks and the projection run: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Clips generated per step (memory vs. overhead). The same clips come out
    /// for any value, bit for bit on the CPU path and up to float rounding
    /// where a network batches them.
    #[arg(long, default_value_t = 512)]
    pub chunk: usize,
    /// Source windows measured for the report's comparison.
    #[arg(long, default_value_t = 2000)]
    pub source_stats_clips: u64,
    /// Replace a finished output made with other settings.
    #[arg(long)]
    pub force: bool,
    /// Clips per output file; shards split the work by files.
    #[arg(long, default_value_t = dak_io::write::DEFAULT_CLIPS_PER_FILE as u64)]
    pub clips_per_file: u64,
    #[command(flatten)]
    pub shard: crate::ShardArgs,
}

pub fn sample(args: SampleArgs, quiet: bool) -> anyhow::Result<()> {
    let device = dak_nn::parse_device(&args.device)?;
    let structure = args.structure.config()?;
    let jitter = CameraJitter { focal_rel_std: args.focal_jitter, center_std_px: args.center_jitter_px };
    if !(jitter.focal_rel_std >= 0.0 && jitter.center_std_px >= 0.0) {
        bail!("--focal-jitter and --center-jitter-px must be ≥ 0");
    }
    if args.clips == 0 {
        bail!("--clips 0: nothing to sample; give at least 1");
    }
    let offsets = DmaOffsets { m_min: args.m_min, m_max: args.m_max };
    let model_dir = || -> anyhow::Result<&Path> {
        args.model.as_deref().with_context(|| {
            format!("--mode {} needs --model DIR (from `dak-augment fit`)", format!("{:?}", args.mode).to_lowercase())
        })
    };
    // Load the model first: a wrong path fails before reading any shards.
    let sma = match args.mode {
        Mode::Sma => Some(Sma::load(model_dir()?, device)?),
        _ => None,
    };
    let dma = match args.mode {
        Mode::Dma => Some(Dma::load(model_dir()?, device)?),
        _ => None,
    };
    let clip_frames = match (&sma, args.clip_frames) {
        (Some(s), Some(t)) if t != s.config.clip_frames => {
            bail!(
                "--clip-frames {t}, but the SMA model in {} makes clips of {}",
                model_dir()?.display(),
                s.config.clip_frames
            )
        }
        (Some(s), _) => s.config.clip_frames,
        // A DMA model serves the T it was fitted for unless told otherwise.
        (None, t) => match (t, &dma) {
            (Some(t), _) => t,
            (None, Some(_)) => dma_fitted_clip_frames(model_dir()?)?.unwrap_or(27),
            (None, None) => 27,
        },
    };
    let settings = serde_json::json!({
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "clips": args.clips,
        "seed": args.seed,
        "clip_frames": clip_frames,
        "structure": structure,
        "dma_offsets": offsets,
        "camera_jitter": jitter,
        "model": args.model.as_ref().map(|m| model_fingerprint(m)).transpose()?,
        "source": args.source.describe(),
        "chunk": args.chunk,
        "clips_per_file": args.clips_per_file,
    });
    let shard = args.shard.spec()?;
    let mode_name = settings["mode"].as_str().unwrap_or_default().to_string();
    let open = |force: bool| SyntheticWriter::open(&args.out, &mode_name, settings.clone(), force, shard);
    // Without --force an up-to-date output returns before any shard is read.
    // With it, the old output is only cleared once the sources, the cameras
    // and the generator are in hand: a mistyped filter must not cost it.
    let mut writer = match args.force {
        true => None,
        false => match open(false)? {
            Opened::UpToDate(m) => {
                tracing::info!("{} is up to date ({} clips); --force regenerates it", args.out.display(), m.total_rows);
                return Ok(());
            }
            Opened::Fresh(w) => Some(w),
        },
    };
    let library = args.source.load()?;
    let cameras = CameraPool::from_records(library.cameras())?;
    let seed = dak_augment::mode_seed(args.seed, &mode_name);
    let run = SamplingRun {
        library: &library,
        cameras: &cameras,
        jitter,
        clips: args.clips,
        clip_frames,
        seed,
        chunk: args.chunk,
        clips_per_file: args.clips_per_file,
        shard,
    };
    let mut generator: Box<dyn Generator> = match args.mode {
        Mode::Structure => {
            Box::new(StructureGenerator { windows: library.windows(clip_frames)?, config: structure, seed })
        }
        Mode::Sma => Box::new(SmaGenerator {
            sma: sma.as_ref().expect("loaded above"),
            windows: library.windows(clip_frames)?,
            structure,
            seed,
        }),
        Mode::Dma => {
            let dma = dma.as_ref().expect("loaded above");
            let generator = DmaGenerator {
                dma,
                windows: library.windows(dma.config.reference_frames)?,
                offsets,
                clip_frames,
                seed,
            };
            let range = generator.offset_range()?;
            tracing::info!(
                "dma: {} reference + {} predicted frames, clips of {clip_frames} start at m ∈ [{}, {}]",
                dma.config.reference_frames,
                dma.config.predicted_frames,
                range.start(),
                range.end()
            );
            Box::new(generator)
        }
    };
    let mut projector: Box<dyn Projector> = match device {
        Device::Cpu => Box::new(CpuProjector),
        _ => Box::new(TchProjector { device }),
    };
    let mut writer = match writer.take() {
        Some(w) => w,
        None => match open(true)? {
            Opened::Fresh(w) => w,
            Opened::UpToDate(_) => unreachable!("--force never finds an output up to date"),
        },
    };
    let bars = Bars::new(quiet);
    let outcome = run.run(generator.as_mut(), projector.as_mut(), &mut writer, &bars)?;
    let source = run.source_statistics(args.source_stats_clips, args.seed)?;
    let report = Report {
        mode: mode_name,
        clips: args.clips,
        clip_frames,
        seed: args.seed,
        device: projector.device(),
        seconds: Some(outcome.seconds),
        clips_per_second: Some(args.clips as f64 / outcome.seconds.max(1e-9)),
        source,
        synthetic: outcome.synthetic,
        settings,
    };
    if shard.is_whole() {
        write_report(writer.path(), &report)?;
    }
    // Timing varies run to run; the manifest keeps only what is reproducible.
    let mut recorded = serde_json::to_value(&report)?;
    for volatile in ["seconds", "clips_per_second", "settings"] {
        recorded.as_object_mut().expect("report is an object").remove(volatile);
    }
    let manifest = writer.finish(crate::command_line(), args.seed, recorded, &outcome.groups, outcome.group_count)?;
    if shard.is_whole() {
        tracing::info!(
            "wrote {} clips in {} files to {}",
            manifest.total_rows,
            manifest.files.len(),
            args.out.display()
        );
        if !quiet {
            crate::print_stdout(&report.summary())?;
        }
    } else {
        tracing::info!(
            "shard {} of {}: wrote {} clips in {} files to {}; `dak-prep merge {}` joins the shards",
            shard.index(),
            shard.count(),
            manifest.total_rows,
            manifest.files.len(),
            args.out.display(),
            args.out.display()
        );
    }
    Ok(())
}

/// What identifies a fitted model: its configuration file's checksum.
fn model_fingerprint(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = dir.join(dak_nn::model_dir::MODEL_FILE);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::json!({ "dir": dir, "model_sha256": dak_io::atomic::sha256_hex(&text) }))
}

/// Fit an augmentor on source 3D clips.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// sma (structure-prioritized: bone angles, rotation–translation,
    /// motion between two key poses) or dma (dynamic-prioritized: a
    /// stochastic motion predictor).
    #[arg(long, value_enum)]
    pub mode: FitMode,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Model directory to write (model.json, weights.safetensors, fit.jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Clip length T the model serves.
    #[arg(long, default_value_t = 27)]
    pub clip_frames: usize,
    /// Optimisation steps (default: 2000 for sma, 1500 for dma).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Clips per step (default: 64 for sma, 32 references × K for dma).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam learning rate (default: 2e-4 for sma, 5e-4 for dma).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight of the diversity term (default: 0.5 for sma, 0.02 for dma).
    #[arg(long)]
    pub diversity_weight: Option<f64>,
    /// Seed of the initial weights, the batches and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Width of the networks' hidden layers.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// SMA: noise size of each generator.
    #[arg(long, default_value_t = 16)]
    pub noise_dim: usize,
    /// SMA: bound on each axis-angle component of a bone's rotation by the BA
    /// generator (the angle itself reaches at most √3 × this).
    #[arg(long, default_value_t = 20.0)]
    pub max_bone_angle_deg: f64,
    /// SMA: largest global rotation about the camera's x, y (vertical), z axes.
    #[arg(long, value_name = "X,Y,Z", default_value = "15,60,15")]
    pub max_rotation_deg: Xyz,
    /// SMA: largest root translation along x, y, z (mm).
    #[arg(long, value_name = "X,Y,Z", default_value = "300,100,500")]
    pub max_translation_mm: Xyz,
    /// SMA: bound on each axis-angle component of the per-bone correction the
    /// motion generator adds between the ends.
    #[arg(long, default_value_t = 10.0)]
    pub max_motion_residual_deg: f64,
    /// SMA: largest root correction of the motion generator (mm).
    #[arg(long, default_value_t = 50.0)]
    pub max_root_residual_mm: f64,
    /// SMA: clips are pushed back until every joint is this deep (mm).
    #[arg(long, default_value_t = 1000.0)]
    pub min_depth_mm: f64,
    /// DMA: predicted frames P (default 27 for T ≤ 54, else 40).
    #[arg(long)]
    pub predict_frames: Option<usize>,
    /// DMA: reference frames R (default m_max + T − P, so every offset fits).
    #[arg(long)]
    pub reference_frames: Option<usize>,
    /// DMA: the m_max the default reference length is made for.
    #[arg(long, default_value_t = 50)]
    pub m_max: usize,
    /// DMA: futures per reference for best-of-K.
    #[arg(long, default_value_t = 8)]
    pub samples: usize,
    /// DMA: size of the latent code.
    #[arg(long, default_value_t = 32)]
    pub latent_dim: usize,
    /// Where the networks train: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Refit even if the model directory holds a model fitted with the same settings.
    #[arg(long)]
    pub force: bool,
}

pub fn fit(args: FitArgs, quiet: bool) -> anyhow::Result<()> {
    if args.steps == Some(0) {
        tracing::warn!("--steps 0: the model is written as initialised (seeded by --seed), untrained");
    }
    let device = dak_nn::parse_device(&args.device)?;
    let bars = Bars::new(quiet);
    match args.mode {
        FitMode::Sma => {
            let config = SmaConfig {
                clip_frames: args.clip_frames,
                noise_dim: args.noise_dim,
                hidden: args.hidden,
                max_bone_angle_deg: args.max_bone_angle_deg,
                max_rotation_deg: args.max_rotation_deg.0,
                max_translation_mm: args.max_translation_mm.0,
                max_motion_residual_deg: args.max_motion_residual_deg,
                max_root_residual_mm: args.max_root_residual_mm,
                min_depth_mm: args.min_depth_mm,
                base_motion: dak_nn::sma::BaseMotion::Slerp,
            };
            let d = SmaFitSettings::default();
            let settings = SmaFitSettings {
                steps: args.steps.unwrap_or(d.steps),
                batch: args.batch.unwrap_or(d.batch),
                learning_rate: args.lr.unwrap_or(d.learning_rate),
                diversity_weight: args.diversity_weight.unwrap_or(d.diversity_weight),
                seed: args.seed,
                ..d
            };
            let fit = serde_json::json!({ "settings": settings, "source": args.source.describe() });
            if up_to_date::<SmaConfig>(&args.out, "sma", &config, &fit, args.force)? {
                return Ok(());
            }
            let library = args.source.load()?;
            let windows = library.windows(config.clip_frames)?;
            // The initial weights come from libtorch's generator: seed it
            // here, or --seed would change the fit but never the start.
            tch::manual_seed(settings.seed as i64);
            let mut sma = Sma::new(config, device)?;
            let (g, d) = sma.parameters();
            tracing::info!("sma: {g} generator and {d} discriminator parameters, {} steps", settings.steps);
            let mut log = Vec::with_capacity(settings.steps);
            bars.start("fitting sma", settings.steps as u64);
            let last = sma.fit(&windows, &settings, |step, l| {
                log.push(serde_json::json!({ "step": step, "losses": l }));
                bars.message(format!("sma D {:.3} G {:.3}", l.discriminator, l.adversarial));
                bars.advance(1);
            })?;
            bars.finish();
            finish_fit(&args.out, &log, |fit| sma.save(&args.out, fit), fit, serde_json::to_value(last)?)
        }
        FitMode::Dma => {
            let predicted =
                args.predict_frames.unwrap_or_else(|| DmaOffsets::default_predicted_frames(args.clip_frames));
            let offsets = DmaOffsets { m_max: args.m_max, ..DmaOffsets::default() };
            let reference =
                args.reference_frames.unwrap_or_else(|| offsets.default_reference_frames(args.clip_frames, predicted));
            let config = DmaConfig {
                reference_frames: reference,
                predicted_frames: predicted,
                latent_dim: args.latent_dim,
                hidden: args.hidden,
            };
            if reference + predicted < args.clip_frames {
                bail!(
                    "reference ({reference}) + predicted ({predicted}) frames cannot hold a clip of {}",
                    args.clip_frames
                );
            }
            let d = DmaFitSettings::default();
            let settings = DmaFitSettings {
                steps: args.steps.unwrap_or(d.steps),
                batch: args.batch.unwrap_or(d.batch),
                samples: args.samples,
                learning_rate: args.lr.unwrap_or(d.learning_rate),
                diversity_weight: args.diversity_weight.unwrap_or(d.diversity_weight),
                seed: args.seed,
                ..d
            };
            let fit = serde_json::json!({ "settings": settings, "clip_frames": args.clip_frames, "source": args.source.describe() });
            if up_to_date::<DmaConfig>(&args.out, "dma", &config, &fit, args.force)? {
                return Ok(());
            }
            let library = args.source.load()?;
            let windows = library.windows(reference + predicted)?;
            tch::manual_seed(settings.seed as i64);
            let mut dma = Dma::new(config, device)?;
            tracing::info!(
                "dma: {} parameters, {reference} reference + {predicted} predicted frames, {} steps",
                dma.parameters(),
                settings.steps
            );
            let mut log = Vec::with_capacity(settings.steps);
            bars.start("fitting dma", settings.steps as u64);
            let last = dma.fit(&windows, &settings, |step, l| {
                log.push(serde_json::json!({ "step": step, "losses": l }));
                bars.message(format!("dma best-of-K {:.1} mm", l.best_mpjpe_mm));
                bars.advance(1);
            })?;
            bars.finish();
            finish_fit(&args.out, &log, |fit| dma.save(&args.out, fit), fit, serde_json::to_value(last)?)
        }
    }
}

/// Three values given as `x,y,z` (one argument, as pipelines pass lists).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Xyz(pub [f64; 3]);

impl std::str::FromStr for Xyz {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let values: Vec<f64> = s
            .split(',')
            .map(|v| v.trim().parse::<f64>().map_err(|e| format!("`{v}` is not a number: {e}")))
            .collect::<Result<_, _>>()?;
        match values[..] {
            [x, y, z] if values.iter().all(|v| v.is_finite()) => Ok(Xyz([x, y, z])),
            [_, _, _] => Err("values must be finite".into()),
            _ => Err(format!("needs three values x,y,z; got {}", values.len())),
        }
    }
}

/// The clip length a DMA model was fitted for (its `fit` record).
fn dma_fitted_clip_frames(dir: &Path) -> anyhow::Result<Option<usize>> {
    let file = dak_nn::model_dir::read::<DmaConfig>(dir, dak_nn::dma::KIND)?;
    Ok(file.fit.get("clip_frames").and_then(serde_json::Value::as_u64).map(|t| t as usize))
}

/// Whether `out` holds a finished model with the same configuration and fit
/// settings. Another finished model there (other settings, another kind)
/// is only replaced with `--force`, as `sample` treats its outputs.
fn up_to_date<C: serde::de::DeserializeOwned + serde::Serialize>(
    out: &Path,
    kind: &str,
    config: &C,
    fit: &serde_json::Value,
    force: bool,
) -> anyhow::Result<bool> {
    if force || !out.join(dak_nn::model_dir::MODEL_FILE).exists() {
        return Ok(false);
    }
    let existing = match dak_nn::model_dir::read::<C>(out, kind) {
        Ok(existing) => existing,
        Err(e) => bail!("{e}; --force replaces it"),
    };
    let same_config = serde_json::to_value(&existing.config).ok() == serde_json::to_value(config).ok();
    let mut recorded = existing.fit.clone();
    if let Some(o) = recorded.as_object_mut() {
        o.remove("final_losses");
    }
    if same_config && &recorded == fit {
        tracing::info!("{} is up to date (same settings and inputs); --force refits it", out.display());
        return Ok(true);
    }
    bail!("{} holds a {kind} model fitted with other settings or inputs; --force refits it", out.display())
}

fn finish_fit(
    out: &Path,
    log: &[serde_json::Value],
    save: impl FnOnce(serde_json::Value) -> dak_nn::Result<()>,
    mut fit: serde_json::Value,
    last: serde_json::Value,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // The directory is unfinished from here until the new model.json: a
    // kill in between must not pair the old model with this fit's log.
    let model = out.join(dak_nn::model_dir::MODEL_FILE);
    if model.exists() {
        std::fs::remove_file(&model).with_context(|| format!("removing {}", model.display()))?;
    }
    let mut lines = String::new();
    for entry in log {
        lines.push_str(&entry.to_string());
        lines.push('\n');
    }
    dak_io::atomic::write_atomic(&out.join("fit.jsonl"), lines.as_bytes())?;
    fit["final_losses"] = last.clone();
    save(fit)?;
    tracing::info!("fitted model written to {} (final losses {last})", out.display());
    Ok(())
}
