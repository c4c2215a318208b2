//! Stick figures: 3D poses seen from a chosen viewpoint, and 2D keypoints.

use crate::{Canvas, Rgb};

/// Where the viewer stands: rotation about the vertical axis (degrees, 0 =
/// the camera's own view) and elevation (degrees, positive = from above).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub azimuth_deg: f64,
    pub elevation_deg: f64,
}

impl Default for View {
    fn default() -> Self {
        View { azimuth_deg: 0.0, elevation_deg: 0.0 }
    }
}

impl View {
    /// Orthographic projection of a camera-frame point (x right, y down,
    /// z forward) to (right, down) on the image plane of the view.
    pub fn project(&self, p: [f64; 3]) -> (f64, f64) {
        let (a, e) = (self.azimuth_deg.to_radians(), self.elevation_deg.to_radians());
        // Turn about the vertical (y) axis, then tilt about the horizontal one.
        let x = p[0] * a.cos() - p[2] * a.sin();
        let z = p[0] * a.sin() + p[2] * a.cos();
        let y = p[1] * e.cos() - z * e.sin();
        (x, y)
    }
}

/// Draw the bones `(child, parent)` of `points` (already in pixels).
pub fn draw_bones(canvas: &mut Canvas, points: &[(f64, f64)], bones: &[(usize, usize)], colour: Rgb, thickness: u32) {
    for &(c, p) in bones {
        if let (Some(a), Some(b)) = (points.get(c), points.get(p)) {
            canvas.line(*a, *b, colour, thickness);
        }
    }
    for q in points {
        canvas.disc(*q, f64::from(thickness) + 1.0, colour);
    }
}

/// Fit several point sets (same units) into a `size`-pixel square panel with
/// a margin; returns them in pixels. One scale for all, so they compare.
pub fn fit_to_panel(sets: &[Vec<(f64, f64)>], size: u32, margin: f64) -> Vec<Vec<(f64, f64)>> {
    let all = sets.iter().flatten().filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return sets.to_vec();
    }
    let span = (x1 - x0).max(y1 - y0).max(1e-9);
    let scale = (f64::from(size) - 2.0 * margin) / span;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let half = f64::from(size) / 2.0;
    sets.iter().map(|s| s.iter().map(|&(x, y)| (half + (x - cx) * scale, half + (y - cy) * scale)).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_turn_and_tilt() {
        let front = View::default();
        assert_eq!(front.project([1.0, 2.0, 3.0]), (1.0, 2.0));
        let side = View { azimuth_deg: 90.0, elevation_deg: 0.0 };
        let (x, y) = side.project([1.0, 2.0, 3.0]);
        assert!((x + 3.0).abs() < 1e-12 && (y - 2.0).abs() < 1e-12);
        let sets = fit_to_panel(&[vec![(0.0, 0.0), (10.0, 20.0)]], 100, 10.0);
        assert_eq!(sets[0], vec![(30.0, 10.0), (70.0, 90.0)]);
    }
}
