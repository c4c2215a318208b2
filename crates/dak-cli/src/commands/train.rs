//! `dak-train`: the DAK-Pose estimator from source and synthetic shards.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use dak_augment::source::{check_dirs, SourceFilter};
use dak_io::Reporter;
use dak_train::checkpoint::TrainInputs;
use dak_train::run::{self, RunObserver};
use dak_train::{
    checkpoint, Ablation, Backward, EpochRecord, Input2d, Losses, Precision, SyntheticSet, TrainConfig, TrainData,
    Trainer, VideoSet,
};

use crate::progress::Bars;

fn parse_ablation(name: &str) -> Result<Ablation, String> {
    Ablation::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Ablation::ALL.iter().map(|a| a.name()).collect();
        format!("unknown ablation `{name}`; one of {}", names.join(", "))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    Fp32,
    Bf16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Input2dArg {
    /// The dataset's 2D annotation (or projection of its 3D).
    Gt,
    /// Detector 2D (CPN on Human3.6M).
    Detected,
}

/// Flags override the `--config` file, which overrides the defaults (the
/// paper's: L=4, K=6, C=512, T=27, Adam lr 5e-5 ×0.99/epoch, batch 64,
/// λ_pe 10, λ_fd 4, λ_dg 4, λ_str 1, λ_dyn 2, λ_grl 1, n_w 50).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Source shard directories (from `dak-prep`); repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub shards: Vec<PathBuf>,
    /// Synthetic SMA clip shards (`dak-augment --mode sma`), for sa-* and full.
    #[arg(long, value_delimiter = ',')]
    pub sma: Vec<PathBuf>,
    /// Synthetic DMA clip shards (`dak-augment --mode dma`), for da-* and full.
    #[arg(long, value_delimiter = ',')]
    pub dma: Vec<PathBuf>,
    /// Run directory: config.json, metrics.jsonl, checkpoints, export/, curves.png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Training configuration: TOML with any of the fields of a run's
    /// config.json (those it leaves out keep their defaults; unknown ones
    /// are refused).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The `--config` file's text, read once: the settings, the resume
    /// check and the epochs all see the same file.
    #[arg(skip)]
    config_read: std::cell::OnceCell<Option<String>>,
    /// Which row of paper Table 5 to train: baseline (L_pe only), sa-direct,
    /// da-direct (synthetic pairs supervise G), sa-adg, da-adg (adversarial
    /// alignment through G′ or G″), full [default: full].
    #[arg(long, value_parser = parse_ablation)]
    pub ablation: Option<Ablation>,
    /// Training epochs [default: 120].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Clips per step [default: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 5e-5].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate factor per epoch [default: 0.99].
    #[arg(long)]
    pub lr_decay: Option<f64>,
    /// Clip length T in frames [default: 27].
    #[arg(long)]
    pub frames: Option<usize>,
    /// Feature width C [default: 512].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Encoder blocks L (both encoders together: L/2 each) [default: 4].
    #[arg(long)]
    pub encoder_layers: Option<usize>,
    /// Decoder spatial→temporal block pairs K [default: 6].
    #[arg(long)]
    pub decoder_layers: Option<usize>,
    /// Attention heads per block (must divide C) [default: 8].
    #[arg(long)]
    pub heads: Option<usize>,
    /// Dropout in attention and MLP layers [default: 0].
    #[arg(long)]
    pub dropout: Option<f64>,
    /// Weight of the pose loss L_pe (Eq. 8) [default: 10].
    #[arg(long)]
    pub lambda_pe: Option<f64>,
    /// Weight of the cross-reconstruction loss L_fd [default: 4].
    #[arg(long)]
    pub lambda_fd: Option<f64>,
    /// Weight of the domain-generalisation (adversarial) losses L_dg [default: 4].
    #[arg(long)]
    pub lambda_dg: Option<f64>,
    /// Weight of the structural critic's loss within L_dg [default: 1].
    #[arg(long)]
    pub lambda_str: Option<f64>,
    /// Weight of the dynamic critic's loss within L_dg [default: 2].
    #[arg(long)]
    pub lambda_dyn: Option<f64>,
    /// Final gradient-reversal weight λ_grl [default: 1].
    #[arg(long)]
    pub grl_lambda: Option<f64>,
    /// Epochs of the linear GRL warm-up n_w [default: 50].
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// No horizontal-flip augmentation and no test-time flip averaging.
    #[arg(long)]
    pub no_flip: bool,
    /// The 2D the network learns from [default: gt].
    #[arg(long, value_enum)]
    pub input_2d: Option<Input2dArg>,
    /// Stride of training windows [default: T].
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub stride: Option<usize>,
    /// Training datasets (all when empty).
    #[arg(long, value_delimiter = ',')]
    pub train_dataset: Vec<String>,
    /// Training splits [default: train].
    #[arg(long, value_delimiter = ',')]
    pub train_split: Vec<String>,
    /// Training subjects, e.g. S1 for the h36m-s1 protocol (all when empty).
    #[arg(long, value_delimiter = ',')]
    pub train_subjects: Vec<String>,
    /// Held-out datasets evaluated every epoch (all when empty).
    #[arg(long, value_delimiter = ',')]
    pub eval_dataset: Vec<String>,
    /// Held-out splits [default: test].
    #[arg(long, value_delimiter = ',')]
    pub eval_split: Vec<String>,
    /// Held-out subjects (all when empty).
    #[arg(long, value_delimiter = ',')]
    pub eval_subjects: Vec<String>,
    /// Seed of the initial weights, batch order and augmentation draws [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// fp32, or bf16 (bf16 weights and activations, fp32 master weights) [default: fp32].
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Activation checkpointing: keep only each transformer block's input
    /// and recompute the block during the backward, CLIPS clips at a time
    /// (16 when no number is given; fewer holds less). Same gradients, a
    /// fraction of the activation memory, ~1/3 more compute; needs dropout 0.
    /// How a step runs, not what it computes: a run may be resumed with or
    /// without it.
    #[arg(long, value_name = "CLIPS", num_args = 0..=1, default_missing_value = "16")]
    pub checkpoint_activations: Option<usize>,
    /// One backward per step over the summed objective, as a PyTorch script
    /// does, instead of one per part: every pass's activations alive at once
    /// (full method: ~3.5x the default's memory), and so each auxiliary
    /// estimator takes its real and synthetic clips in one pass (larger
    /// matrix products: full-method steps 2-5 % shorter on an H200). Same
    /// gradients at dropout 0 (the default; with dropout the joined pass
    /// draws other masks); a run may be resumed with or without it. G alone
    /// (--ablation baseline), one pass either way, runs so unless checkpointed.
    #[arg(long, conflicts_with = "checkpoint_activations")]
    pub one_backward: bool,
    /// Continue the run in --out from its last checkpoint, with its own
    /// configuration (a flag or --config setting that differs is refused;
    /// only --epochs may grow), on the same shards as before: without
    /// --shards, --sma and --dma, the directories the run recorded.
    #[arg(long)]
    pub resume: bool,
    /// Start over in an --out that holds another run. With --resume: resume
    /// if the flags and shards are the run's own, else start over.
    #[arg(long)]
    pub force: bool,
    /// Print the parameter count of every module and exit.
    #[arg(long)]
    pub print_params: bool,
    /// Time training steps instead of training: G alone and the
    /// full method at --batch-size (default 64), T = 27 and 81, fp32 (and
    /// bf16 on CUDA), on random data; with --shards also the windows/s the
    /// loader delivers. --frames, --precision and --ablation each narrow the
    /// grid to one value; --checkpoint-activations and --one-backward time
    /// such steps instead. Prints one JSON line per measurement.
    #[arg(long)]
    pub bench: bool,
    /// Timed steps per measurement (after --bench-warmup untimed ones).
    #[arg(long, default_value_t = 20, requires = "bench")]
    pub bench_steps: usize,
    /// Untimed warm-up steps before each measurement (allocator caches,
    /// cuBLAS and autotuning start-up). Lower it for slow CPU runs where
    /// only the peak memory is wanted.
    #[arg(long, default_value_t = 5, requires = "bench")]
    pub bench_warmup: usize,
}

impl TrainArgs {
    fn backward(&self) -> Backward {
        match (self.one_backward, self.checkpoint_activations) {
            (true, _) => Backward::Whole,
            (false, Some(clips)) => Backward::Checkpointed(clips),
            (false, None) => Backward::Parts,
        }
    }

    /// The `--config` file's text (`None` without one).
    fn config_text(&self) -> anyhow::Result<Option<String>> {
        if let Some(text) = self.config_read.get() {
            return Ok(text.clone());
        }
        let text = match &self.config {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?),
            None => None,
        };
        Ok(self.config_read.get_or_init(|| text).clone())
    }

    /// The flags over the `--config` file over the defaults.
    fn config(&self) -> anyhow::Result<TrainConfig> {
        let base = match (self.config_text()?, &self.config) {
            // Parsed from the text, so that errors point at the line.
            (Some(text), Some(path)) => {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            _ => TrainConfig::default(),
        };
        self.config_over(base)
    }

    /// What the command asks of a run being resumed: the `--config` file's
    /// keys over the run's own configuration (a key it leaves out is the
    /// run's, not the default), then the flags.
    fn config_over_run(&self, run: &TrainConfig) -> anyhow::Result<TrainConfig> {
        let Some(text) = self.config_text()? else { return self.config_over(run.clone()) };
        fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
            match (base, over) {
                (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
                    for (k, v) in o {
                        merge(b.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
                (b, o) => *b = o,
            }
        }
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", self.config_display()))?;
        let mut merged = serde_json::to_value(run)?;
        merge(&mut merged, serde_json::to_value(table)?);
        let config = serde_json::from_value(merged).map_err(|e| anyhow::anyhow!("{}: {e}", self.config_display()))?;
        self.config_over(config)
    }

    /// The epochs a flag or the `--config` file asks for, if any.
    fn epochs_given(&self) -> anyhow::Result<Option<usize>> {
        if self.epochs.is_some() {
            return Ok(self.epochs);
        }
        let Some(text) = self.config_text()? else { return Ok(None) };
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", self.config_display()))?;
        Ok(table.get("epochs").and_then(toml::Value::as_integer).map(|e| e.max(0) as usize))
    }

    fn config_display(&self) -> String {
        self.config.as_ref().map_or(String::new(), |p| p.display().to_string())
    }

    /// The flags given over `c`.
    fn config_over(&self, mut c: TrainConfig) -> anyhow::Result<TrainConfig> {
        set(&mut c.epochs, self.epochs);
        set(&mut c.batch_size, self.batch_size);
        set(&mut c.model.frames, self.frames);
        set(&mut c.model.channels, self.channels);
        set(&mut c.model.encoder_layers, self.encoder_layers);
        set(&mut c.model.decoder_layers, self.decoder_layers);
        set(&mut c.model.heads, self.heads);
        set(&mut c.learning_rate, self.lr);
        set(&mut c.lr_decay, self.lr_decay);
        set(&mut c.model.dropout, self.dropout);
        set(&mut c.losses.pe, self.lambda_pe);
        set(&mut c.losses.fd, self.lambda_fd);
        set(&mut c.losses.dg, self.lambda_dg);
        set(&mut c.losses.adv_str, self.lambda_str);
        set(&mut c.losses.adv_dyn, self.lambda_dyn);
        set(&mut c.grl.lambda_max, self.grl_lambda);
        set(&mut c.grl.warmup_epochs, self.warmup_epochs);
        set(&mut c.seed, self.seed);
        if let Some(a) = self.ablation {
            c.ablation = a;
        }
        if let Some(p) = self.precision {
            c.precision = match p {
                PrecisionArg::Fp32 => Precision::Fp32,
                PrecisionArg::Bf16 => Precision::Bf16,
            };
        }
        if let Some(i) = self.input_2d {
            c.input_2d = match i {
                Input2dArg::Gt => Input2d::Gt,
                Input2dArg::Detected => Input2d::Detected,
            };
        }
        if self.no_flip {
            c.flip = false;
        }
        if self.stride.is_some() {
            c.stride = self.stride;
        }
        let filter = |dst: &mut SourceFilter, datasets: &[String], splits: &[String], subjects: &[String]| {
            if !datasets.is_empty() {
                dst.datasets = datasets.to_vec();
            }
            if !splits.is_empty() {
                dst.splits = splits.to_vec();
            }
            if !subjects.is_empty() {
                dst.subjects = subjects.to_vec();
            }
        };
        filter(&mut c.train, &self.train_dataset, &self.train_split, &self.train_subjects);
        filter(&mut c.eval, &self.eval_dataset, &self.eval_split, &self.eval_subjects);
        c.validate()?;
        Ok(c)
    }
}

/// A flag given on the command line overrides the configuration's value.
fn set<T>(dst: &mut T, flag: Option<T>) {
    if let Some(v) = flag {
        *dst = v;
    }
}

fn print_params(config: &TrainConfig) -> anyhow::Result<()> {
    let nets = dak_train::nets::Nets::new(&config.model, config.ablation, Precision::Fp32, tch::Device::Cpu);
    let mut text = format!(
        "parameters (T={}, C={}, L={}, K={}, ablation {}):\n",
        config.model.frames,
        config.model.channels,
        config.model.encoder_layers,
        config.model.decoder_layers,
        config.ablation.name()
    );
    for (name, n) in dak_model::parameter_counts(&nets.vs, 2) {
        text.push_str(&format!("  {name:<24} {:>10.3} M\n", n as f64 / 1e6));
    }
    for (name, n) in dak_model::parameter_counts(&nets.vs, 1) {
        text.push_str(&format!("{name:<26} {:>10.3} M\n", n as f64 / 1e6));
    }
    crate::print_stdout(&text)?;
    Ok(())
}

struct Progress<'a> {
    bars: &'a Bars,
    quiet: bool,
    epochs: usize,
    /// "epoch k/N", kept in the bar beside the running loss.
    label: String,
    last: Losses,
}

impl RunObserver for Progress<'_> {
    fn epoch_started(&mut self, epoch: usize, steps: usize) {
        self.label = format!("epoch {}/{}", epoch + 1, self.epochs);
        self.bars.start(&self.label, steps as u64);
    }

    fn step(&mut self, losses: &Losses, _samples: usize) {
        self.last = *losses;
        self.bars.advance(1);
        self.bars.message(format!("{} loss {:.4}", self.label, losses.total));
    }

    fn epoch_finished(&mut self, r: &EpochRecord) {
        self.bars.finish();
        if self.quiet {
            return;
        }
        let eval = r
            .eval
            .map_or(String::new(), |e| format!(", held-out MPJPE {:.1} mm P-MPJPE {:.1} mm", e.mpjpe_mm, e.p_mpjpe_mm));
        tracing::info!(
            "epoch {}: loss {:.4} (pe {:.4} fd {:.4} adv_str {:.4} adv_dyn {:.4}), λ_grl {:.3}, lr {:.2e}, {:.0} samples/s{eval}",
            r.epoch + 1,
            r.losses.total,
            r.losses.pe,
            r.losses.fd,
            r.losses.adv_str,
            r.losses.adv_dyn,
            r.grl_lambda,
            r.learning_rate,
            r.samples_per_s
        );
    }
}

fn load_data(args: &TrainArgs, config: &TrainConfig) -> anyhow::Result<TrainData> {
    if args.shards.is_empty() {
        // --sma or --dma alone with --resume: the run's own are taken only
        // when no data is named at all.
        let hint = match args.resume && !(args.sma.is_empty() && args.dma.is_empty()) {
            true => " (--resume without any of --shards/--sma/--dma takes the run's own)",
            false => "",
        };
        bail!("--shards is required: source shard directories from dak-prep{hint}");
    }
    check_dirs(&args.shards)?;
    let mut sets = VideoSet::load_each(&args.shards, &[&config.train, &config.eval], config.input_2d)?;
    let (eval, train) = (sets.pop().expect("two filters"), sets.pop().expect("two filters"));
    // Without a valid frame the epoch's evaluation would fail after its
    // training, before the checkpoint, every epoch.
    // A held-out set named by dataset or subject that matches nothing is
    // a typo: a whole run without held-out numbers would follow.
    let named = !(config.eval.datasets.is_empty() && config.eval.subjects.is_empty());
    if named && eval.videos.is_empty() {
        bail!("no held-out frames pass --eval-* ({}); the shards hold {}", config.eval, eval.describe_held());
    }
    let eval = eval.videos.iter().any(|v| v.valid.contains(&true)).then_some(eval);
    if eval.is_none() {
        tracing::warn!("no valid held-out frames pass ({}): metrics.jsonl will have no errors", config.eval);
    }
    let synthetic = |dirs: &[PathBuf], flag: &str, used: bool| -> anyhow::Result<Option<SyntheticSet>> {
        if dirs.is_empty() {
            return Ok(None);
        }
        if !used {
            tracing::warn!("--{flag} is not used: ablation {} trains without {flag} clips", config.ablation.name());
            return Ok(None);
        }
        check_dirs(dirs)?;
        let set = SyntheticSet::load(dirs, config.model.frames)?;
        // Other modes may stand in (structure clips for a quick run), but
        // swapped --sma/--dma directories are more often a slip.
        if set.mode != flag {
            tracing::warn!("--{flag} {}: holds {} clips, not {flag} clips", dirs[0].display(), set.mode);
        }
        Ok(Some(set))
    };
    let data = TrainData {
        sma: synthetic(&args.sma, "sma", config.ablation.uses_sma())?,
        dma: synthetic(&args.dma, "dma", config.ablation.uses_dma())?,
        train,
        eval,
    };
    tracing::info!(
        "training on {} frames in {} videos{}{}{}",
        data.train.frames(),
        data.train.videos.len(),
        data.eval.as_ref().map_or(String::new(), |e| format!(", evaluating on {} frames", e.frames())),
        data.sma.as_ref().map_or(String::new(), |s| format!(", {} SMA clips", s.len())),
        data.dma.as_ref().map_or(String::new(), |s| format!(", {} DMA clips", s.len())),
    );
    Ok(data)
}

pub fn train(mut args: TrainArgs, quiet: bool) -> anyhow::Result<()> {
    let device = dak_nn::parse_device(&args.device)?;
    if args.print_params {
        return print_params(&args.config()?);
    }
    if args.bench {
        return bench(&args, device);
    }
    let Some(out) = args.out.clone() else { bail!("--out is required: the run directory") };
    let existing = out.join(checkpoint::CHECKPOINT_JSON).exists();
    // Killed before its first checkpoint: there is nothing to resume.
    let mut resume = args.resume && existing;
    if args.resume && !existing {
        // Pipelines resume every time, a first run included; a path that
        // does not exist at all is more likely a typo.
        match out.exists() {
            true => tracing::info!("{}: no checkpoint yet; starting the run", out.display()),
            false => tracing::warn!("--resume: {} does not exist; starting a new run there", out.display()),
        }
    }
    // read_info hashes the checkpoint's weights: read it once.
    let mut resumable = None;
    // No data named: the run's own, as its checkpoint recorded them. Not
    // with --force, which starts over unless every flag is the run's own.
    let no_data = args.shards.is_empty() && args.sma.is_empty() && args.dma.is_empty();
    if resume && args.force && no_data {
        bail!(
            "--resume --force needs the run's --shards (and its flags): it starts the run over when they are not \
             the run's own; --resume alone continues {} on the data it recorded",
            out.display()
        );
    }
    // The directories taken from the run, listed for messages.
    let mut recorded = None;
    if resume && no_data {
        let (info, _) = checkpoint::read_info(&out)
            .with_context(|| format!("--resume without --shards takes {}'s own", out.display()))?;
        let Some(inputs) = &info.inputs else {
            bail!("{}: its checkpoint does not record its shards (an older run): give --shards", out.display())
        };
        (args.shards, args.sma, args.dma) = inputs.dirs();
        let all = args.shards.iter().chain(&args.sma).chain(&args.dma);
        let list = all.map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        tracing::info!("--resume on the run's own shards: {list}");
        recorded = Some(list);
        resumable = Some(info);
    }
    // The export is written last: without it, a run is not finished.
    let exported = run::export_dir(&out).join(checkpoint::EXPORT_JSON).exists();
    // A run learns from its data as much as from its configuration. The
    // directories are checked first: a mistyped path is not "other data".
    let inputs_for = |config: &TrainConfig| -> anyhow::Result<TrainInputs> {
        let uses = |on: bool, dirs: &[PathBuf]| if on { dirs.to_vec() } else { Vec::new() };
        let (sma, dma) = (uses(config.ablation.uses_sma(), &args.sma), uses(config.ablation.uses_dma(), &args.dma));
        check_dirs(&args.shards)?;
        for (flag, on, dirs) in
            [("--sma", config.ablation.uses_sma(), &sma), ("--dma", config.ablation.uses_dma(), &dma)]
        {
            if on && dirs.is_empty() {
                bail!("ablation {} needs {flag}: synthetic clip shards from dak-augment", config.ablation.name());
            }
            check_dirs_if_any(dirs)?;
        }
        Ok(TrainInputs::of(&args.shards, &sma, &dma)?)
    };
    let same_data = |info: &checkpoint::CheckpointInfo, config: &TrainConfig| -> anyhow::Result<bool> {
        let now = inputs_for(config)?;
        Ok(info.inputs.as_ref().is_none_or(|then| then.same_data(&now)))
    };
    if resume && args.force {
        // --resume --force (a pipeline re-running a resumable stage): resume
        // the same run if it can (epochs may grow), start over otherwise,
        // a damaged checkpoint included.
        match checkpoint::read_info(&out).map(|(info, _)| info) {
            Ok(info) => {
                let wanted = args.config()?;
                let same_config = TrainConfig { epochs: info.config.epochs, ..wanted.clone() } == info.config;
                let epochs = args.epochs_given()?.unwrap_or(info.config.epochs);
                if same_config && epochs >= info.epoch && same_data(&info, &wanted)? {
                    resumable = Some(info);
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
        resume = resumable.is_some();
        if !resume {
            tracing::info!("{}: not this run to resume; --force starts it over", out.display());
        }
    }
    let config = if resume {
        let info = match resumable {
            Some(info) => info,
            None => checkpoint::read_info(&out)?.0,
        };
        // The run goes on as it was configured: a flag (or a --config file)
        // that says otherwise is a mistake to name, not to drop in silence.
        let requested = args.config_over_run(&info.config)?;
        let differ = dak_io::manifest::value_differences(
            "",
            &serde_json::to_value(&info.config)?,
            &serde_json::to_value(TrainConfig { epochs: info.config.epochs, ..requested })?,
        );
        if !differ.is_empty() {
            bail!(
                "{}: --resume continues the run with its own configuration, and the command asks for other \
                 settings ({}; the run's in brackets): drop them, or --force to start over",
                out.display(),
                differ.join(", ")
            );
        }
        let epochs = args.epochs_given()?.unwrap_or(info.config.epochs);
        if epochs < info.epoch {
            bail!(
                "{}: {epochs} epochs asked for, but the run has finished {} epochs already",
                out.display(),
                info.epoch
            );
        }
        let c = TrainConfig { epochs, ..info.config.clone() };
        if !same_data(&info, &c)? {
            if let Some(list) = &recorded {
                bail!(
                    "{}: the directories it was trained on ({list}) hold other files now: give the run's own data \
                     with --shards/--sma/--dma, or start over on these with --force and --shards/--sma/--dma",
                    out.display()
                );
            }
            bail!(
                "{} was trained on other shards (their files differ from --shards/--sma/--dma now): \
                 give the run's own data to --resume, or --force to start over",
                out.display()
            );
        }
        c
    } else {
        if existing && !args.force {
            let wanted = args.config()?;
            let (info, _) = checkpoint::read_info(&out)?;
            if info.config == wanted && !same_data(&info, &wanted)? {
                bail!("{} holds a run on other shards: --force to retrain it on these", out.display());
            }
            if info.config == wanted && info.epoch >= wanted.epochs && exported {
                if !quiet {
                    crate::print_stdout(&format!(
                        "dak-train {}: {} is up to date ({} epochs of this configuration); --force retrains\n",
                        wanted.ablation.name(),
                        out.display(),
                        info.epoch
                    ))?;
                }
                return Ok(());
            }
            let what = if info.config == wanted { "an unfinished run of this configuration" } else { "another run" };
            bail!("{} holds {what}: --resume to continue it or --force to start over", out.display());
        }
        args.config()?
    };
    // The data and the networks first: a run is cleared for a new one only
    // once that one can start (a mistyped path must not cost a finished run).
    if !resume && existing {
        inputs_for(&config)?;
    }
    let data = load_data(&args, &config)?;
    let mut trainer = Trainer::new(config, data, device)?;
    trainer.set_backward(args.backward())?;
    if !resume && existing {
        clear_run(&out)?;
    }
    if resume {
        let info = checkpoint::restore(&mut trainer, &out)?;
        tracing::info!("resuming {} after epoch {} (step {})", out.display(), info.epoch, info.global_step);
        // Its export is of an earlier epoch: gone until the run is finished
        // again. Temporaries are what a killed run was writing.
        std::fs::remove_dir_all(run::export_dir(&out)).ok();
        for entry in std::fs::read_dir(&out)?.flatten() {
            if dak_nn::model_dir::is_temporary(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(entry.path()).ok();
            }
        }
    }
    let bars = Bars::new(quiet);
    let epochs = trainer.config.epochs;
    let mut progress = Progress { bars: &bars, quiet, epochs, label: String::new(), last: Losses::default() };
    let records = run::train(&out, &mut trainer, &mut progress)?;
    let export = checkpoint::export(&trainer, &run::export_dir(&out))?;
    let all = run::read_metrics(&out)?;
    let plot = out.join("curves.png");
    dak_train::plot::write_curves(&plot, &all).with_context(|| format!("writing {}", plot.display()))?;
    if !quiet {
        let last = all.last().or(records.last());
        let eval = last.and_then(|r| r.eval).map_or("no held-out split".to_string(), |e| {
            format!("held-out MPJPE {:.1} mm, P-MPJPE {:.1} mm over {} frames", e.mpjpe_mm, e.p_mpjpe_mm, e.frames)
        });
        crate::print_stdout(&format!(
            "dak-train {} ({} epochs): {eval}\n  run: {}\n  estimator: {}\n  curves: {}\n",
            trainer.config.ablation.name(),
            trainer.epoch,
            out.display(),
            export.display(),
            plot.display()
        ))?;
    }
    Ok(())
}

fn check_dirs_if_any(dirs: &[PathBuf]) -> anyhow::Result<()> {
    if !dirs.is_empty() {
        check_dirs(dirs)?;
    }
    Ok(())
}

/// Remove what a previous run wrote (only files dak-train writes).
fn clear_run(out: &Path) -> anyhow::Result<()> {
    std::fs::remove_file(out.join(checkpoint::CHECKPOINT_JSON)).ok();
    for entry in std::fs::read_dir(out)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("checkpoint-e")
            || dak_nn::model_dir::is_temporary(&name)
            || name == run::METRICS
            || name == run::CONFIG
            || name == "curves.png"
        {
            std::fs::remove_file(entry.path()).ok();
        }
    }
    std::fs::remove_dir_all(run::export_dir(out)).ok();
    Ok(())
}

fn bench(args: &TrainArgs, device: tch::Device) -> anyhow::Result<()> {
    use dak_train::bench;
    let base = args.config()?;
    let batch = args.batch_size.unwrap_or(64);
    // --frames, --precision and --ablation narrow the grid to one row each
    // (e.g. one configuration per process, for its peak GPU memory).
    let precisions = match args.precision {
        Some(_) => vec![base.precision],
        None if matches!(device, tch::Device::Cuda(_)) => vec![Precision::Fp32, Precision::Bf16],
        None => vec![Precision::Fp32],
    };
    let frame_counts = if args.frames.is_some() { vec![base.model.frames] } else { vec![27, 81] };
    let ablations = match args.ablation {
        Some(a) => vec![a],
        None => vec![Ablation::Baseline, Ablation::Full],
    };
    for &frames in &frame_counts {
        for &precision in &precisions {
            for &ablation in &ablations {
                let mut config = TrainConfig { ablation, precision, ..base.clone() };
                config.model.frames = frames;
                // A configuration that does not fit in memory is a result
                // too (T = 81 fp32 full method on one GPU); the grid goes on.
                let backward = args.backward();
                let record = match crate::catch_out_of_memory(|| {
                    bench::train_step(&config, device, batch, args.bench_warmup, args.bench_steps, backward)
                }) {
                    Ok(record) => record?,
                    Err(summary) => bench::BenchRecord {
                        out_of_memory: Some(summary),
                        ..bench::BenchRecord::train(&config, device, batch, backward)
                    },
                };
                let line = serde_json::to_string(&record)?;
                crate::print_stdout(&format!("{line}\n"))?;
            }
        }
    }
    if !args.shards.is_empty() {
        let videos = VideoSet::load(&args.shards, &base.train, base.input_2d)?;
        let rate = bench::loader(&videos, base.model.frames, batch, 3.0);
        let line = serde_json::json!({ "impl": "dak-pose", "work": "loader", "frames": base.model.frames, "batch": batch, "windows_per_s": rate });
        crate::print_stdout(&format!("{line}\n"))?;
    }
    Ok(())
}
