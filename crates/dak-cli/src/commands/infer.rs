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
    #[arg(long, required_unless_present = "bench")]
    pub checkpoint: Option<PathBuf>,
    /// COCO results JSON (mmpose/detectron2), an OpenPose --write_json
    /// folder, or a .npy / .csv of (frames, 17, 2|3) in Human3.6M order.
    #[arg(long, required_unless_present = "bench")]
    pub keypoints: Option<PathBuf>,
    /// Image width of the video (pixels).
    #[arg(long, required_unless_present = "bench")]
    pub width: Option<u32>,
    /// Image height of the video (pixels).
    #[arg(long, required_unless_present = "bench")]
    pub height: Option<u32>,
    /// Where poses.parquet, poses.json (and frames/) go.
    #[arg(long, required_unless_present = "bench")]
    pub out: Option<PathBuf>,
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
    /// Time inference instead: frames/s of G for batch 1, 64 and 1024, at
    /// the T of --checkpoint's model, else T = 81 with the default
    /// configuration and random weights. One JSON line per batch size.
    #[arg(long)]
    pub bench: bool,
    /// Timed calls per batch size in --bench (after --bench-warmup untimed ones).
    #[arg(long, default_value_t = 20, requires = "bench")]
    pub bench_steps: usize,
    /// Untimed calls before each batch size's timed ones in --bench.
    #[arg(long, default_value_t = 5, requires = "bench")]
    pub bench_warmup: usize,
}

pub fn infer(args: InferArgs, quiet: bool) -> anyhow::Result<()> {
    let device = dak_nn::parse_device(&args.device)?;
    if args.bench {
        return bench(&args, device);
    }
    let (Some(checkpoint), Some(input), Some(width), Some(height), Some(out)) =
        (&args.checkpoint, &args.keypoints, args.width, args.height, &args.out)
    else {
        anyhow::bail!("--checkpoint, --keypoints, --width, --height and --out are required");
    };
    if width == 0 || height == 0 {
        anyhow::bail!("--width {width} --height {height}: the video's image size in pixels must be positive");
    }
    if !(0.0..=1.0).contains(&args.min_confidence) {
        anyhow::bail!("--min-confidence {}: detector scores lie in [0, 1]", args.min_confidence);
    }
    // The user's file first: its mistakes show before the model loads.
    let track = keypoints::read(input, args.min_confidence)?;
    let model = LoadedModel::load(checkpoint, device)?;
    let flip = model.trained_with_flip && !args.no_flip;
    let result = infer::infer(&model, &track, width, height, args.min_confidence, flip, device)?;
    infer::write(out, &result, model.provenance.clone())?;
    let mut rendered = 0;
    if args.render > 0 {
        let view = View { azimuth_deg: args.azimuth, elevation_deg: args.elevation };
        rendered = dak_eval::render::render_video(&out.join("frames"), &result, view, args.render)?.len();
    }
    if !quiet {
        crate::print_stdout(&format!(
            "dak-infer: {} frames ({} missing, {} joints interpolated) → {}{}\n",
            result.poses_mm.len(),
            result.fill.missing_frames,
            result.fill.filled_joints,
            out.join("poses.parquet").display(),
            if rendered > 0 { format!(", {rendered} pictures in frames/") } else { String::new() }
        ))?;
    }
    Ok(())
}

fn bench(args: &InferArgs, device: tch::Device) -> anyhow::Result<()> {
    let loaded;
    let (_vs, fresh);
    let g = match &args.checkpoint {
        Some(path) => {
            loaded = LoadedModel::load(path, device)?;
            &loaded.g
        }
        None => {
            let config = dak_model::ModelConfig { frames: 81, ..dak_model::ModelConfig::default() };
            _vs = tch::nn::VarStore::new(device);
            fresh = dak_model::Estimator::new(&_vs.root(), &config);
            &fresh
        }
    };
    for batch in [1, 64, 1024] {
        let record = dak_train::bench::inference(g, device, batch, args.bench_warmup, args.bench_steps);
        crate::print_stdout(&format!("{}\n", serde_json::to_string(&record)?))?;
    }
    Ok(())
}
