//! Pictures with no system dependency: an RGB [`Canvas`] with anti-alias-free
//! lines, discs and a built-in 5×7 font, written as PNG, and [`LinePlot`]
//! for training curves. Enough for curves and skeletons; no fonts, no
//! fontconfig, nothing to install.

mod font;
pub mod plot;
pub mod skeleton;

use std::path::{Path, PathBuf};

pub use plot::{LinePlot, Series};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Write(#[from] dak_io::Error),
    #[error("{path}: PNG encoding: {reason}")]
    Png { path: PathBuf, reason: String },
}

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [200, 200, 200];
/// Distinct line colours (Tableau 10).
pub const PALETTE: [Rgb; 6] =
    [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];

#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        // usize: a u32 byte count wraps past ~1.4 G pixels.
        let pixels = background.iter().copied().cycle().take(width as usize * height as usize * 3).collect();
        Canvas { width, height, pixels }
    }

    pub fn pixel(&self, x: u32, y: u32) -> Rgb {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Set a pixel; coordinates off the canvas are ignored.
    pub fn put(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && x < i64::from(self.width) && y < i64::from(self.height) {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line `thickness` pixels wide (square brush), Bresenham-style.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: Rgb, thickness: u32) {
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return;
        }
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as i64).clamp(1, 1 << 16);
        let r = i64::from(thickness.max(1)) / 2;
        let lo = -r;
        let hi = i64::from(thickness.max(1)) - 1 - r;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
            for dy in lo..=hi {
                for dx in lo..=hi {
                    self.put(x + dx, y + dy, c);
                }
            }
        }
    }

    pub fn disc(&mut self, (cx, cy): (f64, f64), radius: f64, c: Rgb) {
        if !cx.is_finite() || !cy.is_finite() {
            return;
        }
        let r = radius.ceil() as i64;
        let (x0, y0) = (cx.round() as i64, cy.round() as i64);
        for dy in -r..=r {
            for dx in -r..=r {
                if ((dx * dx + dy * dy) as f64) <= radius * radius {
                    self.put(x0 + dx, y0 + dy, c);
                }
            }
        }
    }

    pub fn rect(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            for x in x0.min(x1)..=x0.max(x1) {
                self.put(x, y, c);
            }
        }
    }

    /// Text in the 5×7 font scaled by `scale`, top-left at (x, y). Lower case
    /// is drawn as upper case; unknown characters as a box.
    pub fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb, scale: u32) {
        let s = i64::from(scale.max(1));
        for (k, ch) in text.chars().enumerate() {
            let rows = font::glyph(ch);
            let ox = x + k as i64 * 6 * s;
            for (ry, bits) in rows.iter().enumerate() {
                for rx in 0..5 {
                    if bits & (0b10000 >> rx) != 0 {
                        self.rect(
                            (ox + rx * s, y + ry as i64 * s),
                            (ox + rx * s + s - 1, y + ry as i64 * s + s - 1),
                            c,
                        );
                    }
                }
            }
        }
    }

    /// Width in pixels of `text` at `scale`.
    pub fn text_width(text: &str, scale: u32) -> i64 {
        text.chars().count() as i64 * 6 * i64::from(scale.max(1))
    }

    /// Copy `other` with its top-left corner at (x, y).
    pub fn blit(&mut self, other: &Canvas, x: i64, y: i64) {
        for oy in 0..other.height {
            for ox in 0..other.width {
                self.put(x + i64::from(ox), y + i64::from(oy), other.pixel(ox, oy));
            }
        }
    }

    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(|e| e.to_string())?;
            w.write_image_data(&self.pixels).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// Write a PNG through a temporary name, so a killed run leaves no half picture.
    pub fn save_png(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.encode_png().map_err(|reason| Error::Png { path: path.to_path_buf(), reason })?;
        dak_io::atomic::write_atomic(path, &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_and_round_trips_through_png() {
        let mut c = Canvas::new(40, 20, WHITE);
        c.line((0.0, 0.0), (39.0, 19.0), BLACK, 1);
        c.text(2, 2, "A1", PALETTE[0], 1);
        assert_eq!(c.pixel(0, 0), BLACK);
        assert_eq!(c.pixel(39, 19), BLACK);
        assert_eq!(c.pixel(39, 0), WHITE);
        // 'A' has its apex in the middle of its first row.
        assert_eq!(c.pixel(4, 2), PALETTE[0]);
        let bytes = c.encode_png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (40, 20));
        assert_eq!(&buf[..3], &BLACK);
    }
}
