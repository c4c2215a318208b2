//! `dak-infer`: 3D poses from the 2D keypoints of a new video.

use std::path::PathBuf;

use clap::Args;
use dak_eval::infer;
use dak_eval::keypoints;
use dak_eval::LoadedModel;
use dak_render::skeleton::View;

#[derive(Debug, Args)]
pub struct InferArgs {
    /// A dak-train run directory or an export directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// COCO results JSON (mmpose/detectron2), an OpenPose --write_json
    /// folder, or a .npy / .csv of (frames, 17, 2|3) in Human3.6M order.
    #[arg(long)]
    pub keypoints: PathBuf,
    /// Image width of the video (pixels).
    #[arg(long)]
    pub width: u32,
    /// Image height of the video (pixels).
    #[arg(long)]
    pub height: u32,
    /// Where poses.parquet, poses.json (and frames/) go.
    #[arg(long)]
    pub out: PathBuf,
    /// Joints below this detector confidence are interpolated over time.
    #[arg(long, default_value_t = 0.3)]
    pub min_confidence: f32,
    /// No test-time flip averaging.
    #[arg(long)]
    pub no_flip: bool,
    /// Write frames/frame-NNNNN.png (2D input next to the 3D pose) for every
    /// N-th frame; 0 writes none.
    #[arg(long, default_value_t = 0)]
    pub render: usize,
    /// Viewpoint of the rendered 3D: azimuth in degrees (0 = the camera's view).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub azimuth: f64,
    /// Viewpoint elevation in degrees (positive = from above).
    #[arg(long, default_value_t = 10.0, allow_hyphen_values = true)]
    pub elevation: f64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn infer(args: InferArgs, quiet: bool) -> anyhow::Result<()> {
    let device = dak_nn::parse_device(&args.device)?;
    let model = LoadedModel::load(&args.checkpoint, device)?;
    let track = keypoints::read(&args.keypoints)?;
    let flip = model.trained_with_flip && !args.no_flip;
    let result = infer::infer(&model, &track, args.width, args.height, args.min_confidence, flip, device)?;
    infer::write(&args.out, &result, model.provenance.clone())?;
    let mut rendered = 0;
    if args.render > 0 {
        let view = View { azimuth_deg: args.azimuth, elevation_deg: args.elevation };
        rendered = dak_eval::render::render_video(&args.out.join("frames"), &result, view, args.render)?.len();
    }
    if !quiet {
        crate::print_stdout(&format!(
            "dak-infer: {} frames ({} missing, {} joints interpolated) → {}{}\n",
            result.poses_mm.len(),
            result.fill.missing_frames,
            result.fill.filled_joints,
            args.out.join("poses.parquet").display(),
            if rendered > 0 { format!(", {rendered} pictures in frames/") } else { String::new() }
        ))?;
    }
    Ok(())
}
