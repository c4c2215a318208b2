//! The command tree every binary shares: `dak prep|augment|train|eval|infer|pipeline`.
//! `dak-prep` and `dak-augment` are these subtrees as their own programs.

use clap::{Parser, Subcommand};

use crate::commands::{augment, convert, eval, infer, merge, stats, synth, train};
use crate::pipeline;

/// One entry point for the whole DAK-Pose workflow.
///
/// Each subcommand is also its own binary (`dak prep` = `dak-prep`, ...).
/// `dak pipeline run pipelines/demo.toml` runs a declarative pipeline and
/// skips every stage that is up to date.
#[derive(Debug, Parser)]
#[command(
    name = "dak",
    version,
    about = "DAK-Pose: dataset prep, augmentation, training, evaluation, inference, pipelines"
)]
pub struct Dak {
    /// Only warnings and errors; no progress bars or summaries.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: DakCommand,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum DakCommand {
    /// Convert datasets into Parquet shards, inspect and merge them (= dak-prep).
    #[command(subcommand)]
    Prep(PrepCommand),
    /// Fit SMA/DMA and materialize synthetic clips (= dak-augment).
    #[command(subcommand)]
    Augment(AugmentCommand),
    /// Train the estimator (= dak-train).
    Train(train::TrainArgs),
    /// Evaluate under the paper's protocols (= dak-eval).
    Eval(eval::EvalArgs),
    /// 3D poses from a video's 2D keypoints (= dak-infer).
    Infer(infer::InferArgs),
    /// Run or plan a declarative pipeline (pipelines/*.toml).
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
}

#[derive(Debug, Subcommand)]
pub enum PrepCommand {
    Synth(synth::SynthArgs),
    H36m(convert::H36mArgs),
    #[command(name = "3dhp")]
    Mpi3dhp(convert::Mpi3dhpArgs),
    #[command(name = "3dpw")]
    Pw3d(convert::Pw3dArgs),
    Stats(stats::StatsArgs),
    Merge(merge::MergeArgs),
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum AugmentCommand {
    /// Fit SMA (generators + discriminator) or DMA (motion predictor) on source 3D clips.
    Fit(augment::FitArgs),
    /// Materialize synthetic clips (the default: `dak-augment --mode ...`).
    Sample(augment::SampleArgs),
}

impl DakCommand {
    /// Whether the work is libtorch's (see [`crate::init`]); a pipeline's
    /// stages are processes that decide for themselves.
    pub fn runs_libtorch(&self) -> bool {
        matches!(self, Self::Augment(_) | Self::Train(_) | Self::Eval(_) | Self::Infer(_))
    }
}

impl PrepCommand {
    pub fn run(self, quiet: bool) -> anyhow::Result<()> {
        match self {
            PrepCommand::Synth(args) => synth::run(args, quiet),
            PrepCommand::H36m(args) => convert::h36m(args, quiet),
            PrepCommand::Mpi3dhp(args) => convert::mpi3dhp(args, quiet),
            PrepCommand::Pw3d(args) => convert::pw3d(args, quiet),
            PrepCommand::Stats(args) => stats::run(args),
            PrepCommand::Merge(args) => merge::run(args),
        }
    }
}

impl AugmentCommand {
    pub fn run(self, quiet: bool) -> anyhow::Result<()> {
        match self {
            AugmentCommand::Fit(args) => augment::fit(args, quiet),
            AugmentCommand::Sample(args) => augment::sample(args, quiet),
        }
    }
}

impl DakCommand {
    pub fn run(self, quiet: bool) -> anyhow::Result<()> {
        match self {
            DakCommand::Prep(c) => c.run(quiet),
            DakCommand::Augment(c) => c.run(quiet),
            DakCommand::Train(args) => train::train(args, quiet),
            DakCommand::Eval(args) => eval::eval(args, quiet),
            DakCommand::Infer(args) => infer::infer(args, quiet),
            DakCommand::Pipeline(c) => c.run(quiet),
        }
    }
}
