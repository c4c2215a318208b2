//! Pictures of predictions against ground truth (paper Fig. 5): for N
//! frames spread over the test set, the 3D skeletons seen from the front
//! and from the side, ground truth in black, prediction in colour.

use std::path::Path;

use dak_core::skeleton::PARENTS;
use dak_render::skeleton::{draw_bones, fit_to_panel, View};
use dak_render::{Canvas, BLACK, PALETTE, WHITE};
use dak_train::VideoSet;

use crate::error::Result;

pub const PANEL: u32 = 200;
/// Frames per row of `render.png`; more frames start further rows.
pub const COLUMNS: usize = 8;
/// The most frames `render.png` shows (8 rows of 8, ~1600 × 3300 pixels).
pub const MAX_FRAMES: usize = 64;

fn bones() -> Vec<(usize, usize)> {
    PARENTS.iter().enumerate().filter_map(|(c, p)| p.map(|p| (c, p))).collect()
}

/// `(video, frame)` of `n` valid frames spread evenly over the set.
pub fn sample_frames(videos: &VideoSet, n: usize) -> Vec<(usize, usize)> {
    let valid: Vec<(usize, usize)> = videos
        .videos
        .iter()
        .enumerate()
        .flat_map(|(v, video)| (0..video.len()).filter(move |&f| video.valid[f]).map(move |f| (v, f)))
        .collect();
    if valid.is_empty() || n == 0 {
        return Vec::new();
    }
    let n = n.min(valid.len());
    (0..n).map(|i| valid[(2 * i + 1) * valid.len() / (2 * n)]).collect()
}

/// Draw ground truth and prediction of `frames`; returns the picture's size.
pub fn render(
    path: &Path,
    videos: &VideoSet,
    predictions: &[Vec<f32>],
    frames: &[(usize, usize)],
) -> Result<(u32, u32)> {
    let bones = bones();
    let views = [View::default(), View { azimuth_deg: 90.0, elevation_deg: 0.0 }];
    if frames.len() > MAX_FRAMES {
        return Err(crate::Error::Data {
            path: path.to_path_buf(),
            reason: format!("{} frames to draw; at most {MAX_FRAMES}", frames.len()),
        });
    }
    let label_h = 16;
    let band = label_h + PANEL * views.len() as u32;
    let width = PANEL * frames.len().clamp(1, COLUMNS) as u32;
    let height = band * frames.len().div_ceil(COLUMNS).max(1) as u32;
    let mut canvas = Canvas::new(width, height, WHITE);
    for (k, &(v, f)) in frames.iter().enumerate() {
        let video = &videos.videos[v];
        let gt = &video.poses_mm[f * 51..(f + 1) * 51];
        let pred = &predictions[v][f * 51..(f + 1) * 51];
        let root = [gt[0], gt[1], gt[2]];
        let x0 = i64::from((k % COLUMNS) as u32 * PANEL);
        let y0 = i64::from((k / COLUMNS) as u32 * band);
        let label = format!("{} {}", video.action_at(f), video.first_frame as usize + f);
        canvas.text(x0 + 4, y0 + 4, &label.chars().take(30).collect::<String>(), BLACK, 1);
        for (row, view) in views.iter().enumerate() {
            let points = |flat: &[f32], offset: [f32; 3]| -> Vec<(f64, f64)> {
                flat.chunks_exact(3)
                    .map(|p| {
                        view.project([
                            f64::from(p[0] - offset[0]),
                            f64::from(p[1] - offset[1]),
                            f64::from(p[2] - offset[2]),
                        ])
                    })
                    .collect()
            };
            let fitted = fit_to_panel(&[points(gt, root), points(pred, [0.0; 3])], PANEL, 16.0);
            let mut panel = Canvas::new(PANEL, PANEL, WHITE);
            draw_bones(&mut panel, &fitted[0], &bones, BLACK, 2);
            draw_bones(&mut panel, &fitted[1], &bones, PALETTE[3], 1);
            canvas.blit(&panel, x0, y0 + i64::from(label_h + row as u32 * PANEL));
        }
    }
    canvas.save_png(path)?;
    Ok((width, height))
}

/// `dir/frame-NNNNN.png` for every `every`-th frame of an inference: the 2D
/// input (interpolated joints in grey) next to the 3D pose seen from
/// `view`. Returns the files written.
pub fn render_video(
    dir: &Path,
    inference: &crate::infer::Inference,
    view: View,
    every: usize,
) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io { path: dir.to_path_buf(), source })?;
    // A rerun with fewer frames or another N must not leave old pictures among the new.
    for entry in std::fs::read_dir(dir).map_err(|source| crate::Error::Io { path: dir.to_path_buf(), source })? {
        let path = entry.map_err(|source| crate::Error::Io { path: dir.to_path_buf(), source })?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with("frame-") && name.ends_with(".png") {
            std::fs::remove_file(&path).map_err(|source| crate::Error::Io { path: path.clone(), source })?;
        }
    }
    let bones = bones();
    let mut written = Vec::new();
    for f in (0..inference.poses_mm.len()).step_by(every.max(1)) {
        let mut canvas = Canvas::new(2 * PANEL, PANEL, WHITE);
        let input: Vec<(f64, f64)> = inference.input_px[f].iter().map(|p| (f64::from(p[0]), f64::from(p[1]))).collect();
        let fitted = fit_to_panel(&[input], PANEL, 16.0).remove(0);
        draw_bones(&mut canvas, &fitted, &bones, PALETTE[0], 2);
        for (j, p) in fitted.iter().enumerate() {
            if inference.filled[f][j] {
                canvas.disc(*p, 3.0, dak_render::GREY);
            }
        }
        let pose = &inference.poses_mm[f];
        let points: Vec<(f64, f64)> =
            pose.chunks_exact(3).map(|p| view.project([f64::from(p[0]), f64::from(p[1]), f64::from(p[2])])).collect();
        let mut panel = Canvas::new(PANEL, PANEL, WHITE);
        draw_bones(&mut panel, &fit_to_panel(&[points], PANEL, 16.0)[0], &bones, PALETTE[3], 2);
        canvas.blit(&panel, i64::from(PANEL), 0);
        canvas.text(4, 4, &format!("2D {f}"), BLACK, 1);
        canvas.text(i64::from(PANEL) + 4, 4, "3D", BLACK, 1);
        let path = dir.join(format!("frame-{f:05}.png"));
        canvas.save_png(&path)?;
        written.push(path);
    }
    Ok(written)
}
