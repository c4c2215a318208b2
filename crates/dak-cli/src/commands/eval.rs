//! `dak-eval`: a protocol of paper Tables 1–4 on a trained estimator.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use dak_augment::source::check_dirs;
use dak_eval::{EvalOptions, EvalReport, LoadedModel, Protocol};
use dak_train::Input2d;

use crate::commands::train::Input2dArg;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A dak-train run directory (its current checkpoint) or an export
    /// directory (model.json + model.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Source shard directories holding the protocol's test frames.
    #[arg(long, required = true, value_delimiter = ',')]
    pub shards: Vec<PathBuf>,
    /// h36m-s1 (S5–S8), h36m-full (S9, S11), 3dhp (TS1–TS6, valid frames),
    /// 3dpw (test split), demo (the demo's target domain), demo-source (its
    /// source domain's held-out subjects).
    #[arg(long, value_parser = Protocol::parse)]
    pub protocol: Protocol,
    /// The 2D fed to the model [default: what it was trained on]. Given,
    /// it names the default --out (eval-PROTOCOL-gt, eval-PROTOCOL-detected)
    /// so that both inputs' results are kept.
    #[arg(long, value_enum)]
    pub input_2d: Option<Input2dArg>,
    /// No test-time flip averaging (default: on when the model was trained with flips).
    #[arg(long)]
    pub no_flip: bool,
    /// Where results.json, table.md, table.csv (and render.png) go
    /// [default: CHECKPOINT/eval-PROTOCOL, or eval-PROTOCOL-INPUT_2D with --input-2d].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw prediction against ground truth for N frames spread over the
    /// test set (render.png, 8 frames a row; at most 64).
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=dak_eval::render::MAX_FRAMES as u64))]
    pub render: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl EvalArgs {
    /// `--out`, else `eval-PROTOCOL[-INPUT_2D]` beside the checkpoint (inside a run directory).
    pub fn output_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            // A run directory may have a dot in its name (`runs/v1.5`) and
            // not exist yet when a pipeline is checked; files are these two.
            let file = self.checkpoint.extension().is_some_and(|e| e == "json" || e == "safetensors");
            let base = if self.checkpoint.is_dir() || !file {
                self.checkpoint.clone()
            } else {
                self.checkpoint.parent().unwrap_or(&self.checkpoint).to_path_buf()
            };
            let input = match self.input_2d {
                None => "",
                Some(Input2dArg::Gt) => "-gt",
                Some(Input2dArg::Detected) => "-detected",
            };
            base.join(format!("eval-{}{input}", self.protocol.name()))
        })
    }
}

pub fn eval(args: EvalArgs, quiet: bool) -> anyhow::Result<()> {
    let device = dak_nn::parse_device(&args.device)?;
    check_dirs(&args.shards)?;
    let model = LoadedModel::load(&args.checkpoint, device)?;
    let options = EvalOptions {
        protocol: args.protocol,
        input_2d: match args.input_2d {
            Some(Input2dArg::Gt) => Input2d::Gt,
            Some(Input2dArg::Detected) => Input2d::Detected,
            None => model.trained_input_2d,
        },
        flip: model.trained_with_flip && !args.no_flip,
    };
    let videos = dak_eval::load_videos(&args.shards, &options)?;
    tracing::info!("{}: {} frames in {} videos", options.protocol.name(), videos.frames(), videos.videos.len());
    let (table, predictions) = dak_eval::evaluate(&model, &videos, &options, device)?;
    let report = EvalReport {
        options,
        table,
        model: model.provenance.clone(),
        shards: dak_io::manifest::describe_dirs(&args.shards),
        command: crate::command_line(),
    };
    let out = args.output_dir();
    dak_eval::write_report(&out, &report)?;
    if args.render > 0 {
        let frames = dak_eval::render::sample_frames(&videos, args.render);
        if frames.is_empty() {
            bail!("nothing to render: no valid frames");
        }
        let path = out.join("render.png");
        let (w, h) = dak_eval::render::render(&path, &videos, &predictions, &frames)?;
        tracing::info!("rendered {} frames to {} ({w}×{h})", frames.len(), path.display());
    }
    if !quiet {
        crate::print_stdout(&format!(
            "{}\n{}\nresults in {}\n",
            report.table.markdown(),
            report.summary(),
            out.display()
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        eval: EvalArgs,
    }

    fn out_of(checkpoint: &str) -> PathBuf {
        out_with(checkpoint, &[])
    }

    fn out_with(checkpoint: &str, more: &[&str]) -> PathBuf {
        let args = ["dak-eval", "--checkpoint", checkpoint, "--shards", "s", "--protocol", "demo"];
        Cli::parse_from(args.iter().chain(more)).eval.output_dir()
    }

    /// The default `--out` is inside a run directory, even one named with a
    /// dot that does not exist yet (a pipeline is checked before it runs),
    /// and beside an export's files.
    #[test]
    fn default_out_is_inside_the_run_or_beside_the_export() {
        assert_eq!(out_of("runs/v1.5"), PathBuf::from("runs/v1.5/eval-demo"));
        assert_eq!(out_of("runs/a"), PathBuf::from("runs/a/eval-demo"));
        assert_eq!(out_of("runs/a/export/model.json"), PathBuf::from("runs/a/export/eval-demo"));
        assert_eq!(out_of("runs/a/export/model.safetensors"), PathBuf::from("runs/a/export/eval-demo"));
    }

    /// Evaluating one model on both inputs keeps both results.
    #[test]
    fn an_input_2d_given_names_the_default_out() {
        assert_eq!(out_with("runs/a", &["--input-2d", "detected"]), PathBuf::from("runs/a/eval-demo-detected"));
        assert_eq!(out_with("runs/a", &["--input-2d", "gt"]), PathBuf::from("runs/a/eval-demo-gt"));
        assert_eq!(out_with("runs/a", &["--input-2d", "gt", "--out", "o"]), PathBuf::from("o"));
    }
}
