//! dak-infer: 3D poses from the 2D keypoints of a new video.

use std::process::ExitCode;

use clap::Parser;
use dak_cli::commands::infer;

/// Lift the 2D keypoints of a video to 3D with a trained estimator. Reads
/// COCO results JSON, OpenPose JSON folders (BODY_25 or COCO-18) or arrays
/// in our 17-joint order; maps the detector's joints to Human3.6M-17
/// (pelvis = mid-hips, thorax = mid-shoulders or OpenPose's neck, spine =
/// their midpoint, head = mid-ears); interpolates missing frames and joints
/// below --min-confidence; runs T-frame windows over any length; writes
/// poses.parquet and poses.json (root-relative mm per frame).
///
/// Example: dak-infer --checkpoint runs/full --keypoints video.json --width 1920 --height 1080 --out out/ --render 10
#[derive(Debug, Parser)]
#[command(name = "dak-infer", version, about = "3D poses from the 2D keypoints of a new video")]
struct Cli {
    /// Only warnings and errors.
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    args: infer::InferArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dak_cli::init(cli.quiet, true);
    dak_cli::report(infer::infer(cli.args, cli.quiet))
}
