//! `dak-prep h36m|3dhp|3dpw`: the dataset converters.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use dak_datasets::convert::{ConvertOptions, ConvertOutcome, Layout, DEFAULT_SEQUENCES_PER_FILE};
use dak_datasets::{h36m, mpi3dhp, pw3d};

use crate::progress::Bars;
use crate::ShardArgs;

/// Options every converter takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Directory holding the dataset's files, laid out as distributed.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Output shard directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Only these subjects / sequences (comma-separated, e.g. S1,S5 or TS1).
    #[arg(long, value_delimiter = ',')]
    pub subjects: Vec<String>,
    /// Only these splits (comma-separated: train, validation, test).
    #[arg(long, value_delimiter = ',')]
    pub split: Vec<String>,
    /// Rewrite the output even if it is up to date with its inputs.
    #[arg(long)]
    pub force: bool,
    /// Sequences per output file; shards split the work by files.
    #[arg(long, default_value_t = DEFAULT_SEQUENCES_PER_FILE)]
    pub sequences_per_file: usize,
    #[command(flatten)]
    pub shard: ShardArgs,
}

impl CommonArgs {
    fn options(&self) -> anyhow::Result<ConvertOptions> {
        Ok(ConvertOptions {
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
            force: self.force,
            subjects: self.subjects.clone(),
            splits: self.split.clone(),
            command: crate::command_line(),
            layout: Layout { shard: self.shard.spec()?, sequences_per_file: self.sequences_per_file },
        })
    }
}

fn summarise(outcome: &ConvertOutcome, out: &std::path::Path) {
    let m = &outcome.manifest;
    if outcome.written && m.extra.get("shard").is_some() {
        tracing::info!(
            "wrote {} rows in {} files to {} (one shard; `dak-prep merge` joins them){}",
            m.total_rows,
            m.files.len(),
            out.display(),
            crate::peak_memory_note()
        );
    } else if outcome.written {
        let note = crate::peak_memory_note();
        tracing::info!("wrote {} rows in {} files to {}{note}", m.total_rows, m.files.len(), out.display());
    } else {
        tracing::info!("{} is up to date ({} rows); --force rewrites it", out.display(), m.total_rows);
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TwoD {
    /// data_2d_h36m_gt.npz as the ground-truth 2D.
    Gt,
    /// data_2d_h36m_cpn_ft_h36m_dbb.npz as detected 2D.
    Cpn,
    /// Both files, each where present.
    Both,
}

/// Convert Human3.6M from VideoPose3D's files.
///
/// Reads DATA_DIR/data_3d_h36m.npz (required; 3D in metres, world frame)
/// and, where present, data_2d_h36m_gt.npz and data_2d_h36m_cpn_ft_h36m_dbb.npz.
/// Keeps VideoPose3D's 17 of 32 joints, writes 3D in world and camera
/// coordinates (mm) for the 4 cameras with the public calibration, and 2D in
/// pixels (projected from 3D where no 2D file is used). 2D longer than the
/// mocap is trimmed; 2D-only sequences are skipped and listed in the manifest.
#[derive(Debug, Args)]
pub struct H36mArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Which 2D files to read.
    #[arg(long = "2d", value_enum, default_value = "both")]
    pub two_d: TwoD,
}

pub fn h36m(args: H36mArgs, quiet: bool) -> anyhow::Result<()> {
    let two_d = match args.two_d {
        TwoD::Gt => h36m::TwoDChoice::Gt,
        TwoD::Cpn => h36m::TwoDChoice::Cpn,
        TwoD::Both => h36m::TwoDChoice::Both,
    };
    let outcome = h36m::convert(&args.common.options()?, two_d, &Bars::new(quiet))
        .with_context(|| format!("converting Human3.6M into {}", args.common.out.display()))?;
    summarise(&outcome, &args.common.out);
    Ok(())
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Joints3d {
    /// annot3 for training, univ_annot3 for test (official evaluation).
    Auto,
    /// annot3 (mm, camera frame) everywhere.
    Annot3,
    /// univ_annot3 (rescaled to the Human3.6M height) everywhere.
    Univ,
}

/// Convert MPI-INF-3DHP: training S*/Seq*/annot.mat (MATLAB v5) with
/// camera.calibration, and the test set mpi_inf_3dhp_test_set/TS1..TS6/annot_data.mat
/// (MATLAB v7.3). Joints are mapped from 3DHP's 28 (train) or 17 (test) to
/// ours; valid_frame and the activity labels of the test set are kept.
#[derive(Debug, Args)]
pub struct Mpi3dhpArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Training cameras to convert (comma-separated, 0–13).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,4,5,6,7,8")]
    pub cameras: Vec<usize>,
    /// Which 3D annotation to write.
    #[arg(long, value_enum, default_value = "auto")]
    pub joints_3d: Joints3d,
    /// Keep every n-th training frame.
    #[arg(long, default_value_t = 1)]
    pub stride: usize,
}

pub fn mpi3dhp(args: Mpi3dhpArgs, quiet: bool) -> anyhow::Result<()> {
    let settings = mpi3dhp::Mpi3dhpSettings {
        cameras: args.cameras,
        joints_3d: match args.joints_3d {
            Joints3d::Auto => mpi3dhp::Joints3d::Auto,
            Joints3d::Annot3 => mpi3dhp::Joints3d::Annot3,
            Joints3d::Univ => mpi3dhp::Joints3d::Univ,
        },
        stride: args.stride,
    };
    let outcome = mpi3dhp::convert(&args.common.options()?, &settings, &Bars::new(quiet))
        .with_context(|| format!("converting MPI-INF-3DHP into {}", args.common.out.display()))?;
    summarise(&outcome, &args.common.out);
    Ok(())
}

/// Convert 3DPW: sequenceFiles/{train,validation,test}/*.pkl. Each actor's
/// SMPL joints are moved into the (moving) camera, mapped to our 17 joints
/// (approximations documented in dak-core's joint_maps) and projected;
/// campose_valid becomes the per-frame valid flag.
#[derive(Debug, Args)]
pub struct Pw3dArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn pw3d(args: Pw3dArgs, quiet: bool) -> anyhow::Result<()> {
    let outcome = pw3d::convert(&args.common.options()?, &Bars::new(quiet))
        .with_context(|| format!("converting 3DPW into {}", args.common.out.display()))?;
    summarise(&outcome, &args.common.out);
    Ok(())
}
