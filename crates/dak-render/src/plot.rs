//! Line plots of a few series against a shared x axis (training curves).

use crate::{Canvas, Rgb, BLACK, GREY, PALETTE, WHITE};

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title, axis labels, series drawn in palette order.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
    /// Plot y on a log scale (losses spanning decades).
    pub log_y: bool,
}

fn nice_number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl LinePlot {
    /// Draw into a `width` × `height` canvas.
    pub fn render(&self, width: u32, height: u32) -> Canvas {
        let mut c = Canvas::new(width, height, WHITE);
        let (left, right, top, bottom) = (70i64, 16i64, 34i64, 44i64);
        let (w, h) = (i64::from(width) - left - right, i64::from(height) - top - bottom);
        c.text(left, 10, &self.title, BLACK, 2);
        let ty = |y: f64| if self.log_y { y.max(1e-12).log10() } else { y };
        let finite: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
            .map(|(x, y)| (x, ty(y)))
            .collect();
        c.line((left as f64, top as f64), (left as f64, (top + h) as f64), BLACK, 1);
        c.line((left as f64, (top + h) as f64), ((left + w) as f64, (top + h) as f64), BLACK, 1);
        c.text(left + w / 2 - Canvas::text_width(&self.x_label, 1) / 2, top + h + 28, &self.x_label, BLACK, 1);
        if finite.is_empty() {
            c.text(left + 10, top + 10, "NO DATA", BLACK, 1);
            return c;
        }
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in &finite {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        let (y0, y1) = (y0 - pad, y1 + pad);
        let px = |x: f64| left as f64 + (x - x0) / (x1 - x0) * w as f64;
        let py = |y: f64| (top + h) as f64 - (y - y0) / (y1 - y0) * h as f64;
        for k in 0..=4 {
            let v = y0 + (y1 - y0) * k as f64 / 4.0;
            let y = py(v);
            c.line((left as f64 + 1.0, y), ((left + w) as f64, y), GREY, 1);
            let label = nice_number(if self.log_y { 10f64.powf(v) } else { v });
            c.text(left - 6 - Canvas::text_width(&label, 1), y as i64 - 3, &label, BLACK, 1);
            let xv = x0 + (x1 - x0) * k as f64 / 4.0;
            let label = nice_number(xv);
            c.text(px(xv) as i64 - Canvas::text_width(&label, 1) / 2, top + h + 8, &label, BLACK, 1);
        }
        for (i, s) in self.series.iter().enumerate() {
            let colour: Rgb = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
                .map(|&(x, y)| (px(x), py(ty(y))))
                .collect();
            for pair in pts.windows(2) {
                c.line(pair[0], pair[1], colour, 2);
            }
            if pts.len() == 1 {
                c.disc(pts[0], 3.0, colour);
            }
            let ly = top + 6 + i as i64 * 12;
            let lx = left + w - 8 - Canvas::text_width(&s.label, 1) - 18;
            c.rect((lx, ly + 2), (lx + 12, ly + 4), colour);
            c.text(lx + 16, ly, &s.label, BLACK, 1);
        }
        c
    }
}

/// Panels side by side into one picture.
pub fn side_by_side(panels: &[Canvas]) -> Canvas {
    let width = panels.iter().map(|p| p.width).sum::<u32>().max(1);
    let height = panels.iter().map(|p| p.height).max().unwrap_or(1);
    let mut out = Canvas::new(width, height, WHITE);
    let mut x = 0;
    for p in panels {
        out.blit(p, x, 0);
        x += i64::from(p.width);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_land_inside_the_axes() {
        let plot = LinePlot {
            title: "loss".into(),
            x_label: "epoch".into(),
            series: vec![Series { label: "total".into(), points: vec![(0.0, 4.0), (1.0, 2.0), (2.0, 1.0)] }],
            log_y: true,
        };
        let c = plot.render(320, 240);
        let coloured =
            (0..c.height).flat_map(|y| (0..c.width).map(move |x| (x, y))).filter(|&(x, y)| c.pixel(x, y) == PALETTE[0]);
        let (mut n, mut min_x, mut max_x) = (0, u32::MAX, 0);
        for (x, _) in coloured {
            n += 1;
            min_x = min_x.min(x);
            max_x = max_x.max(x);
        }
        assert!(n > 100, "{n} curve pixels");
        // The curve spans the plot area from the y axis (x=70) to the right edge.
        assert!(min_x <= 71 && max_x >= 300, "{min_x}..{max_x}");
    }
}
