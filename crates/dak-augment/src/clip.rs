//! Clips (T consecutive poses, camera coordinates, mm) and the DMA window.

use std::ops::RangeInclusive;

use dak_core::Pose3;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// T consecutive poses in camera coordinates (mm).
pub type Clip = Vec<Pose3>;

/// Where a DMA clip may start inside X_com = [X_ref ; X_pred] (DESIGN.md:
/// m uniform in [m_min, m_max], defaults 30..50, clipped so the clip fits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmaOffsets {
    pub m_min: usize,
    pub m_max: usize,
}

impl Default for DmaOffsets {
    fn default() -> Self {
        DmaOffsets { m_min: 30, m_max: 50 }
    }
}

impl DmaOffsets {
    /// Predicted frames P for a clip length T: 27 for T=27 and 40 for T=81
    /// (the paper's settings); other T use the nearer of the two.
    pub fn default_predicted_frames(clip_frames: usize) -> usize {
        if clip_frames <= 54 {
            27
        } else {
            40
        }
    }

    /// Reference length R that lets every m in [m_min, m_max] fit:
    /// m_max + T ≤ R + P.
    pub fn default_reference_frames(&self, clip_frames: usize, predicted_frames: usize) -> usize {
        (self.m_max + clip_frames).saturating_sub(predicted_frames).max(3)
    }

    /// The offsets actually drawn from, clipped so that m + T ≤ R + P and
    /// that every clip holds at least one predicted frame (m + T > R): a
    /// clip of reference frames alone is a copy of the source, not DMA's.
    pub fn range(
        &self,
        reference_frames: usize,
        predicted_frames: usize,
        clip_frames: usize,
    ) -> Result<RangeInclusive<usize>> {
        if self.m_min > self.m_max {
            return Err(Error::Config {
                field: "m_min",
                reason: format!("{} is above m_max {}", self.m_min, self.m_max),
            });
        }
        let total = reference_frames + predicted_frames;
        let Some(last) = total.checked_sub(clip_frames) else {
            return Err(Error::Config {
                field: "reference_frames",
                reason: format!(
                    "reference ({reference_frames}) + predicted ({predicted_frames}) frames are fewer than the \
                     clip length {clip_frames}: this model serves --clip-frames {} to {total} (at --m-max {}), or \
                     fit a DMA model with --clip-frames {clip_frames} (its default --reference-frames fits every \
                     offset up to --m-max)",
                    (reference_frames + 1).saturating_sub(self.m_max).max(1),
                    self.m_max
                ),
            });
        };
        let (lo, hi) =
            (self.m_min.min(last).max((reference_frames + 1).saturating_sub(clip_frames)), self.m_max.min(last));
        if lo > hi {
            return Err(Error::Config {
                field: "m_max",
                reason: format!(
                    "clips of {clip_frames} frames starting at m ≤ {hi} end within the {reference_frames} reference \
                     frames, so none would hold a predicted frame: sample with the clip length the model was \
                     fitted for, or raise --m-min/--m-max above {}",
                    reference_frames - clip_frames
                ),
            });
        }
        Ok(lo..=hi)
    }
}

/// X_com[m : m+T].
pub fn dma_window(x_com: &[Pose3], m: usize, clip_frames: usize) -> Result<&[Pose3]> {
    x_com.get(m..m + clip_frames).ok_or_else(|| Error::Config {
        field: "m",
        reason: format!("window {m}..{} is outside the {} combined frames", m + clip_frames, x_com.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn default_lengths_fit_the_whole_offset_range() {
        let o = DmaOffsets::default();
        for t in [27, 81] {
            let p = DmaOffsets::default_predicted_frames(t);
            let r = o.default_reference_frames(t, p);
            assert_eq!(o.range(r, p, t).unwrap(), 30..=50, "T={t} P={p} R={r}");
        }
        assert_eq!(DmaOffsets::default_predicted_frames(27), 27);
        assert_eq!(DmaOffsets::default_predicted_frames(81), 40);
    }

    #[test]
    fn short_combinations_clip_the_range() {
        let o = DmaOffsets::default();
        assert_eq!(o.range(27, 27, 27).unwrap(), 27..=27);
        assert_eq!(o.range(40, 27, 27).unwrap(), 30..=40);
        assert!(o.range(10, 10, 27).is_err());
        assert!(DmaOffsets { m_min: 5, m_max: 4 }.range(100, 10, 27).is_err());
        let err = DmaOffsets { m_min: 0, m_max: 4 }.range(40, 27, 81).unwrap_err().to_string();
        assert!(
            err.contains("--clip-frames 37 to 67 (at --m-max 4)") && err.contains("with --clip-frames 81"),
            "{err}"
        );
        assert_eq!(DmaOffsets { m_min: 0, m_max: 4 }.range(40, 27, 37).unwrap(), 4..=4);
        assert!(DmaOffsets { m_min: 0, m_max: 4 }.range(40, 27, 36).is_err());
        // Every clip reaches past the reference into the prediction.
        assert_eq!(o.range(60, 27, 27).unwrap(), 34..=50);
        let err = o.range(91, 40, 27).unwrap_err().to_string(); // fitted for T = 81, sampled at 27
        assert!(err.contains("none would hold a predicted frame") && err.contains("above 64"), "{err}");
    }

    #[test]
    fn window_starts_at_m() {
        let com: Vec<Pose3> = (0..60).map(|f| [Vector3::new(f as f64, 0.0, 0.0); 17]).collect();
        let w = dma_window(&com, 33, 27).unwrap();
        assert_eq!(w.len(), 27);
        assert_eq!(w[0][0].x, 33.0);
        assert!(dma_window(&com, 34, 27).is_err());
    }
}
