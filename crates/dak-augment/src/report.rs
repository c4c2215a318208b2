//! What a run produced, measured against its source (issue: the paper's
//! claims made measurable): bone lengths constant within a clip (SMA),
//! smoothness in time (DMA), diversity of proportions and orientations.

use dak_core::bones::bone_lengths_and_directions;
use dak_core::{Pose3, NUM_JOINTS};
use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

/// Joint-angle limits: the bend at `joint` between its parent bone and the
/// bone to `child` may not exceed `max_deg` (0° = straight). Generous
/// anatomical ranges; a violation is a frame no human can hold.
pub const ANGLE_LIMITS: [(&str, usize, usize, f64); 6] = [
    ("r_knee", 2, 3, 160.0),
    ("l_knee", 5, 6, 160.0),
    ("r_elbow", 15, 16, 165.0),
    ("l_elbow", 12, 13, 165.0),
    ("spine", 7, 8, 70.0),
    ("neck", 9, 10, 100.0),
];

/// Statistics of a set of clips (all lengths in mm, per frame where timed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClipStatistics {
    pub clips: u64,
    pub frames: u64,
    /// Std of each bone's length across the frames of a clip, averaged over
    /// bones and clips (0 = rigid bones).
    pub bone_length_std_within_clip_mm: f64,
    /// The largest such std of any bone in any clip.
    pub bone_length_std_within_clip_max_mm: f64,
    /// Mean joint speed |x(t+1) − x(t)|.
    pub velocity_mm_per_frame: f64,
    /// Mean |second difference|.
    pub acceleration_mm_per_frame2: f64,
    /// Mean |third difference|: low means smooth.
    pub jerk_mm_per_frame3: f64,
    /// Fraction of checked (frame, joint) bends beyond [`ANGLE_LIMITS`].
    pub angle_limit_violation_rate: f64,
    /// Coefficient of variation of clip-mean bone lengths across clips,
    /// averaged over bones: the spread of body proportions.
    pub bone_length_spread_cv: f64,
    /// Circular std (degrees) of the body's facing direction about the
    /// camera's vertical axis, first frame of each clip.
    pub root_yaw_spread_deg: f64,
    /// Std (degrees) of the torso's tilt from the camera's vertical axis.
    pub root_tilt_spread_deg: f64,
}

/// Streams clips into [`ClipStatistics`].
#[derive(Debug, Clone, Default)]
pub struct StatisticsAccumulator {
    clips: u64,
    frames: u64,
    bone_std_sum: f64,
    bone_std_max: f64,
    diffs: [(f64, u64); 3],
    angle_checks: u64,
    angle_violations: u64,
    bone_mean_sum: [f64; NUM_JOINTS],
    bone_mean_sq_sum: [f64; NUM_JOINTS],
    yaw_cos: f64,
    yaw_sin: f64,
    tilt_sum: f64,
    tilt_sq_sum: f64,
}

impl StatisticsAccumulator {
    pub fn add(&mut self, clip: &[Pose3]) {
        if clip.is_empty() {
            return;
        }
        self.clips += 1;
        self.frames += clip.len() as u64;
        let bones: Vec<_> = clip.iter().map(bone_lengths_and_directions).collect();
        for j in 1..NUM_JOINTS {
            let n = bones.len() as f64;
            let mean = bones.iter().map(|(l, _)| l[j]).sum::<f64>() / n;
            let var = bones.iter().map(|(l, _)| (l[j] - mean).powi(2)).sum::<f64>() / n;
            let std = var.sqrt();
            self.bone_std_sum += std / (NUM_JOINTS - 1) as f64;
            self.bone_std_max = self.bone_std_max.max(std);
            self.bone_mean_sum[j] += mean;
            self.bone_mean_sq_sum[j] += mean * mean;
        }
        let mut level: Vec<Pose3> = clip.to_vec();
        for d in &mut self.diffs {
            level = level.windows(2).map(|w| std::array::from_fn(|j| w[1][j] - w[0][j])).collect();
            for p in &level {
                d.0 += p.iter().map(|v| v.norm()).sum::<f64>();
                d.1 += NUM_JOINTS as u64;
            }
        }
        for (_, dirs) in &bones {
            for &(_, joint, child, max_deg) in &ANGLE_LIMITS {
                let bend = dirs[joint].dot(&dirs[child]).clamp(-1.0, 1.0).acos().to_degrees();
                self.angle_checks += 1;
                if bend > max_deg {
                    self.angle_violations += 1;
                }
            }
        }
        let (yaw, tilt) = orientation(&clip[0]);
        self.yaw_cos += yaw.cos();
        self.yaw_sin += yaw.sin();
        self.tilt_sum += tilt;
        self.tilt_sq_sum += tilt * tilt;
    }

    pub fn merge(&mut self, other: &StatisticsAccumulator) {
        self.clips += other.clips;
        self.frames += other.frames;
        self.bone_std_sum += other.bone_std_sum;
        self.bone_std_max = self.bone_std_max.max(other.bone_std_max);
        for (a, b) in self.diffs.iter_mut().zip(&other.diffs) {
            a.0 += b.0;
            a.1 += b.1;
        }
        self.angle_checks += other.angle_checks;
        self.angle_violations += other.angle_violations;
        for j in 0..NUM_JOINTS {
            self.bone_mean_sum[j] += other.bone_mean_sum[j];
            self.bone_mean_sq_sum[j] += other.bone_mean_sq_sum[j];
        }
        self.yaw_cos += other.yaw_cos;
        self.yaw_sin += other.yaw_sin;
        self.tilt_sum += other.tilt_sum;
        self.tilt_sq_sum += other.tilt_sq_sum;
    }

    /// Every field as exact 64-bit words (floats by their bits), so partial
    /// sums written by shards merge to the single-process result bit for bit.
    pub fn to_words(&self) -> Vec<u64> {
        let mut w = vec![self.clips, self.frames, self.angle_checks, self.angle_violations];
        w.extend(self.diffs.iter().map(|d| d.1));
        let floats =
            [self.bone_std_sum, self.bone_std_max, self.yaw_cos, self.yaw_sin, self.tilt_sum, self.tilt_sq_sum];
        w.extend(floats.iter().chain(self.diffs.iter().map(|d| &d.0)).map(|f| f.to_bits()));
        w.extend(self.bone_mean_sum.iter().chain(&self.bone_mean_sq_sum).map(|f| f.to_bits()));
        w
    }

    pub fn from_words(w: &[u64]) -> Option<Self> {
        if w.len() != 4 + 3 + 6 + 3 + 2 * NUM_JOINTS {
            return None;
        }
        let f = |i: usize| f64::from_bits(w[i]);
        Some(StatisticsAccumulator {
            clips: w[0],
            frames: w[1],
            angle_checks: w[2],
            angle_violations: w[3],
            diffs: std::array::from_fn(|d| (f(13 + d), w[4 + d])),
            bone_std_sum: f(7),
            bone_std_max: f(8),
            yaw_cos: f(9),
            yaw_sin: f(10),
            tilt_sum: f(11),
            tilt_sq_sum: f(12),
            bone_mean_sum: std::array::from_fn(|j| f(16 + j)),
            bone_mean_sq_sum: std::array::from_fn(|j| f(16 + NUM_JOINTS + j)),
        })
    }

    pub fn finish(&self) -> ClipStatistics {
        let n = self.clips.max(1) as f64;
        let ratio = |(s, c): (f64, u64)| if c == 0 { 0.0 } else { s / c as f64 };
        let cv = (1..NUM_JOINTS)
            .map(|j| {
                let mean = self.bone_mean_sum[j] / n;
                let var = (self.bone_mean_sq_sum[j] / n - mean * mean).max(0.0);
                if mean > 0.0 {
                    var.sqrt() / mean
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / (NUM_JOINTS - 1) as f64;
        let resultant = (self.yaw_cos.powi(2) + self.yaw_sin.powi(2)).sqrt() / n;
        let tilt_mean = self.tilt_sum / n;
        ClipStatistics {
            clips: self.clips,
            frames: self.frames,
            bone_length_std_within_clip_mm: self.bone_std_sum / n,
            bone_length_std_within_clip_max_mm: self.bone_std_max,
            velocity_mm_per_frame: ratio(self.diffs[0]),
            acceleration_mm_per_frame2: ratio(self.diffs[1]),
            jerk_mm_per_frame3: ratio(self.diffs[2]),
            angle_limit_violation_rate: if self.angle_checks == 0 {
                0.0
            } else {
                self.angle_violations as f64 / self.angle_checks as f64
            },
            bone_length_spread_cv: cv,
            root_yaw_spread_deg: if self.clips == 0 {
                0.0
            } else {
                (-2.0 * resultant.max(1e-300).ln()).max(0.0).sqrt().to_degrees()
            },
            root_tilt_spread_deg: (self.tilt_sq_sum / n - tilt_mean * tilt_mean).max(0.0).sqrt().to_degrees(),
        }
    }
}

/// Facing yaw about the camera's y axis (which points down in the image)
/// and tilt of the pelvis→thorax axis from −y, both in radians.
fn orientation(pose: &Pose3) -> (f64, f64) {
    let up = pose[8] - pose[0];
    let across = pose[4] - pose[1];
    let forward = across.cross(&up);
    let yaw = forward.x.atan2(forward.z);
    let tilt = up.try_normalize(1e-9).map_or(0.0, |u: Vector3<f64>| (-u.y).clamp(-1.0, 1.0).acos());
    (yaw, tilt)
}

pub fn statistics<'a>(clips: impl IntoIterator<Item = &'a [Pose3]>) -> ClipStatistics {
    let mut acc = StatisticsAccumulator::default();
    for c in clips {
        acc.add(c);
    }
    acc.finish()
}

/// `report.json` of a sampling run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mode: String,
    pub clips: u64,
    pub clip_frames: usize,
    pub seed: u64,
    pub device: String,
    /// Wall time of the run; `None` in a report merged from shards, each of
    /// which timed only its own part.
    pub seconds: Option<f64>,
    pub clips_per_second: Option<f64>,
    /// Reference windows of the same length drawn from the source.
    pub source: ClipStatistics,
    pub synthetic: ClipStatistics,
    pub settings: serde_json::Value,
}

impl Report {
    /// A side-by-side table of source and synthetic statistics.
    pub fn summary(&self) -> String {
        let (s, y) = (&self.source, &self.synthetic);
        let rows: [(&str, f64, f64, &str); 9] = [
            (
                "bone-length std within a clip (mm)",
                s.bone_length_std_within_clip_mm,
                y.bone_length_std_within_clip_mm,
                "{:.4}",
            ),
            ("  largest (mm)", s.bone_length_std_within_clip_max_mm, y.bone_length_std_within_clip_max_mm, "{:.4}"),
            ("velocity (mm/frame)", s.velocity_mm_per_frame, y.velocity_mm_per_frame, "{:.2}"),
            ("acceleration (mm/frame²)", s.acceleration_mm_per_frame2, y.acceleration_mm_per_frame2, "{:.2}"),
            ("jerk (mm/frame³)", s.jerk_mm_per_frame3, y.jerk_mm_per_frame3, "{:.2}"),
            ("joint-angle limit violations", s.angle_limit_violation_rate, y.angle_limit_violation_rate, "{:.4}"),
            ("bone-length spread (CV)", s.bone_length_spread_cv, y.bone_length_spread_cv, "{:.4}"),
            ("root yaw spread (deg)", s.root_yaw_spread_deg, y.root_yaw_spread_deg, "{:.1}"),
            ("root tilt spread (deg)", s.root_tilt_spread_deg, y.root_tilt_spread_deg, "{:.1}"),
        ];
        let timing = match (self.seconds, self.clips_per_second) {
            (Some(s), Some(rate)) => format!(" in {s:.1} s ({rate:.0} clips/s)"),
            _ => String::new(),
        };
        let mut out = format!(
            "{} clips of {} frames ({} mode, seed {}, {}){timing}\n{:<38} {:>12} {:>12}\n",
            self.clips, self.clip_frames, self.mode, self.seed, self.device, "", "source", self.mode
        );
        for (name, a, b, fmt) in rows {
            let f = |v: f64| match fmt {
                "{:.4}" => format!("{v:.4}"),
                "{:.2}" => format!("{v:.2}"),
                _ => format!("{v:.1}"),
            };
            out.push_str(&format!("{name:<38} {:>12} {:>12}\n", f(a), f(b)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::StructureConfig;
    use rand::SeedableRng;

    fn standing(x: f64) -> Pose3 {
        let mut p = [Vector3::new(x, 0.0, 4000.0); NUM_JOINTS];
        let offsets: [(f64, f64, f64); NUM_JOINTS] = [
            (0.0, 0.0, 0.0),
            (-130.0, 0.0, 0.0),
            (-130.0, 450.0, 0.0),
            (-130.0, 880.0, 0.0),
            (130.0, 0.0, 0.0),
            (130.0, 450.0, 0.0),
            (130.0, 880.0, 0.0),
            (0.0, -230.0, 0.0),
            (0.0, -480.0, 0.0),
            (0.0, -580.0, -30.0),
            (0.0, -690.0, 0.0),
            (170.0, -460.0, 0.0),
            (170.0, -180.0, 0.0),
            (170.0, 70.0, 0.0),
            (-170.0, -460.0, 0.0),
            (-170.0, -180.0, 0.0),
            (-170.0, 70.0, 0.0),
        ];
        for (q, o) in p.iter_mut().zip(offsets) {
            *q += Vector3::new(o.0, o.1, o.2);
        }
        p
    }

    #[test]
    fn rigid_translation_has_constant_bones_and_no_jerk() {
        let clip: Vec<Pose3> = (0..10).map(|f| standing(5.0 * f as f64)).collect();
        let s = statistics([&clip[..]]);
        assert_eq!(s.clips, 1);
        assert_eq!(s.frames, 10);
        assert!(s.bone_length_std_within_clip_max_mm < 1e-9);
        assert!((s.velocity_mm_per_frame - 5.0).abs() < 1e-9);
        assert!(s.acceleration_mm_per_frame2 < 1e-9 && s.jerk_mm_per_frame3 < 1e-9);
        assert_eq!(s.angle_limit_violation_rate, 0.0);
        assert!(s.root_yaw_spread_deg < 1e-6);
    }

    #[test]
    fn folded_knee_is_a_violation() {
        let mut p = standing(0.0);
        // Shank pointing straight back up the thigh: a 180° bend.
        p[3] = p[2] - (p[2] - p[1]) * 0.9;
        let s = statistics([&[p][..]]);
        assert!((s.angle_limit_violation_rate - 1.0 / ANGLE_LIMITS.len() as f64).abs() < 1e-12);
    }

    #[test]
    fn structure_augmentation_widens_the_proportion_spread_only() {
        let clip: Vec<Pose3> = (0..5).map(|f| standing(f as f64)).collect();
        let config = StructureConfig::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let augmented: Vec<Vec<Pose3>> = (0..200).map(|_| config.sample(&mut rng).apply_clip(&clip)).collect();
        let source = statistics(std::iter::repeat_n(&clip[..], 200));
        let synth = statistics(augmented.iter().map(|c| &c[..]));
        assert!(source.bone_length_spread_cv < 1e-9);
        assert!(synth.bone_length_spread_cv > 0.2, "{}", synth.bone_length_spread_cv);
        assert!(synth.bone_length_std_within_clip_max_mm < 1e-9, "bones stay rigid within a clip");
        let mut acc = StatisticsAccumulator::default();
        let mut other = StatisticsAccumulator::default();
        for (i, c) in augmented.iter().enumerate() {
            if i % 2 == 0 {
                acc.add(c)
            } else {
                other.add(c)
            }
        }
        acc.merge(&other);
        let merged = acc.finish();
        assert_eq!(merged.clips, synth.clips);
        assert!((merged.bone_length_spread_cv - synth.bone_length_spread_cv).abs() < 1e-9);
    }

    #[test]
    fn yaw_spread_sees_turned_bodies() {
        let p = standing(0.0);
        let turned: Vec<Vec<Pose3>> = (0..36)
            .map(|k| {
                let r = nalgebra::Rotation3::from_axis_angle(&Vector3::y_axis(), (k as f64 * 10.0).to_radians());
                vec![std::array::from_fn(|j| r * (p[j] - p[0]) + p[0])]
            })
            .collect();
        let s = statistics(turned.iter().map(|c| &c[..]));
        assert!(s.root_yaw_spread_deg > 100.0, "{}", s.root_yaw_spread_deg);
        assert!(s.root_tilt_spread_deg < 1e-6);
    }
}
