//! Filling the frames where a 2D joint was not seen, shared by user
//! keypoints (`dak-keypoints`) and detected 2D in shards (`dak-train`), and
//! cutting a sequence at gaps in its frame numbers (`dak-train`,
//! `dak-augment`).

/// Index ranges of the runs of consecutive frame numbers in `frames`
/// (ascending): a gap starts another run. None for no frames.
pub fn consecutive_runs(frames: &[u32]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=frames.len() {
        if i == frames.len() || frames[i] != frames[i - 1] + 1 {
            runs.push(start..i);
            start = i;
        }
    }
    runs
}

/// The point of every frame `0..len` from the frames where it was seen
/// (`seen`: (frame, point), frames ascending, at least one): seen frames
/// keep their point, frames between two seen ones are interpolated
/// linearly, frames before the first and after the last hold its point.
pub fn interpolate_track(seen: &[(usize, [f32; 2])], len: usize) -> Vec<[f32; 2]> {
    assert!(!seen.is_empty(), "a track needs a frame where the point was seen");
    debug_assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "seen frames in order");
    let mut out = Vec::with_capacity(len);
    let mut k = 0;
    for f in 0..len {
        while k + 1 < seen.len() && seen[k + 1].0 <= f {
            k += 1;
        }
        let (f0, p0) = seen[k];
        out.push(match seen.get(k + 1) {
            Some(&(f1, p1)) if f0 < f => {
                let t = (f - f0) as f32 / (f1 - f0) as f32;
                [p0[0] + (p1[0] - p0[0]) * t, p0[1] + (p1[1] - p0[1]) * t]
            }
            _ => p0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaps_are_interpolated_and_ends_held() {
        let track = super::interpolate_track(&[(1, [10.0, 0.0]), (4, [40.0, 3.0])], 6);
        assert_eq!(track, [[10.0, 0.0], [10.0, 0.0], [20.0, 1.0], [30.0, 2.0], [40.0, 3.0], [40.0, 3.0]]);
    }

    #[test]
    fn runs_break_at_gaps() {
        assert_eq!(super::consecutive_runs(&[0, 1, 2, 5, 6, 9]), [0..3, 3..5, 5..6]);
        assert_eq!(super::consecutive_runs(&[4]), vec![std::ops::Range { start: 0, end: 1 }]);
        assert!(super::consecutive_runs(&[]).is_empty());
    }
}
