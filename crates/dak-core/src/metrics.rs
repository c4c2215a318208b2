//! Pose metrics as the reference code bases compute them (VideoPose3D
//! `common/loss.py`, the official MPI-INF-3DHP PCK/AUC scripts).
//!
//! Every function takes poses already made root-relative by the caller when
//! the protocol asks for it ([`crate::skeleton::root_relative`]); per-frame
//! values are averaged over joints, summaries over frames.

use nalgebra::{Matrix3, Vector3};

use crate::skeleton::{Pose3, NUM_JOINTS};
use crate::GeometryError;

/// PCK threshold of the 3DHP protocol (mm).
pub const PCK_THRESHOLD_MM: f64 = 150.0;
/// AUC thresholds 0, 5, ..., 150 mm.
pub fn auc_thresholds_mm() -> impl Iterator<Item = f64> {
    (0..=30).map(|i| f64::from(i) * 5.0)
}

fn check_same_len(a: &[Pose3], b: &[Pose3]) -> Result<(), GeometryError> {
    if a.len() != b.len() {
        return Err(GeometryError::FrameCountMismatch { left: a.len(), right: b.len() });
    }
    Ok(())
}

/// Mean joint distance of one frame.
pub fn frame_mpjpe(pred: &Pose3, gt: &Pose3) -> f64 {
    pred.iter().zip(gt).map(|(p, g)| (p - g).norm()).sum::<f64>() / NUM_JOINTS as f64
}

/// Per-frame MPJPE (mm).
pub fn mpjpe_per_frame(pred: &[Pose3], gt: &[Pose3]) -> Result<Vec<f64>, GeometryError> {
    check_same_len(pred, gt)?;
    Ok(pred.iter().zip(gt).map(|(p, g)| frame_mpjpe(p, g)).collect())
}

/// MPJPE over all frames and joints (Protocol #1).
pub fn mpjpe(pred: &[Pose3], gt: &[Pose3]) -> Result<f64, GeometryError> {
    Ok(mean(&mpjpe_per_frame(pred, gt)?))
}

/// The prediction after the similarity transform (rotation, uniform scale,
/// translation) that best aligns it to the ground truth, per VideoPose3D
/// `p_mpjpe`, reflection-corrected so the result is a proper rotation.
pub fn procrustes_align(pred: &Pose3, gt: &Pose3) -> Pose3 {
    let mu_gt = centroid(gt);
    let mu_pred = centroid(pred);
    let gt0: Vec<Vector3<f64>> = gt.iter().map(|g| g - mu_gt).collect();
    let pred0: Vec<Vector3<f64>> = pred.iter().map(|p| p - mu_pred).collect();
    let norm_gt = frobenius(&gt0);
    let norm_pred = frobenius(&pred0);
    if norm_gt < 1e-12 || norm_pred < 1e-12 {
        // Degenerate (all joints coincide): the best similarity maps to the centroid.
        return [mu_gt; NUM_JOINTS];
    }
    // H = X0ᵀ Y0 with rows as joints, X = gt, Y = pred (reference naming).
    let mut h = Matrix3::zeros();
    for (x, y) in gt0.iter().zip(&pred0) {
        h += (x / norm_gt) * (y / norm_pred).transpose();
    }
    let svd = h.svd(true, true);
    let u = svd.u.expect("svd computed with u");
    let mut v = svd.v_t.expect("svd computed with v_t").transpose();
    let mut s = svd.singular_values;
    // R maps pred (row vectors) onto gt: Y R ≈ X, R = V Uᵀ.
    let mut r = v * u.transpose();
    if r.determinant() < 0.0 {
        // The smallest singular value's direction flips: nalgebra's 3×3 SVD
        // does not promise them sorted.
        let smallest = s.imin();
        v.column_mut(smallest).neg_mut();
        s[smallest] = -s[smallest];
        r = v * u.transpose();
    }
    let trace = s.sum();
    let a = trace * norm_gt / norm_pred;
    // Row-vector form y·R is Rᵀ·y in column form.
    let rt = r.transpose();
    let t = mu_gt - a * (rt * mu_pred);
    std::array::from_fn(|j| a * (rt * pred[j]) + t)
}

/// P-MPJPE (Protocol #2): MPJPE after similarity Procrustes alignment per frame.
pub fn p_mpjpe_per_frame(pred: &[Pose3], gt: &[Pose3]) -> Result<Vec<f64>, GeometryError> {
    check_same_len(pred, gt)?;
    Ok(pred.iter().zip(gt).map(|(p, g)| frame_mpjpe(&procrustes_align(p, g), g)).collect())
}

pub fn p_mpjpe(pred: &[Pose3], gt: &[Pose3]) -> Result<f64, GeometryError> {
    Ok(mean(&p_mpjpe_per_frame(pred, gt)?))
}

/// N-MPJPE of one frame: MPJPE after the optimal scale of the prediction
/// (VideoPose3D `n_mpjpe`: s = Σ gt·pred / Σ pred·pred).
pub fn frame_n_mpjpe(pred: &Pose3, gt: &Pose3) -> f64 {
    let num: f64 = pred.iter().zip(gt).map(|(p, g)| p.dot(g)).sum();
    let den: f64 = pred.iter().map(|p| p.norm_squared()).sum();
    let s = if den > 0.0 { num / den } else { 0.0 };
    let scaled: Pose3 = std::array::from_fn(|j| pred[j] * s);
    frame_mpjpe(&scaled, gt)
}

/// N-MPJPE: MPJPE after the optimal per-frame scale of the prediction.
pub fn n_mpjpe(pred: &[Pose3], gt: &[Pose3]) -> Result<f64, GeometryError> {
    check_same_len(pred, gt)?;
    Ok(mean(&pred.iter().zip(gt).map(|(p, g)| frame_n_mpjpe(p, g)).collect::<Vec<_>>()))
}

/// MPJVE: mean error of the first differences (per-frame velocities), mm/frame.
pub fn mpjve(pred: &[Pose3], gt: &[Pose3]) -> Result<f64, GeometryError> {
    check_same_len(pred, gt)?;
    if pred.len() < 2 {
        return Err(GeometryError::TooFewFrames { needed: 2, found: pred.len() });
    }
    let mut total = 0.0;
    for t in 1..pred.len() {
        for j in 0..NUM_JOINTS {
            let vp = pred[t][j] - pred[t - 1][j];
            let vg = gt[t][j] - gt[t - 1][j];
            total += (vp - vg).norm();
        }
    }
    Ok(total / ((pred.len() - 1) * NUM_JOINTS) as f64)
}

/// Fraction of the given joints closer than `threshold_mm` to the ground
/// truth, over all frames (strictly closer, as the 3DHP protocol's
/// `mpii_compute_3d_pck.m` counts `error < t`).
pub fn pck(pred: &[Pose3], gt: &[Pose3], joints: &[usize], threshold_mm: f64) -> Result<f64, GeometryError> {
    check_same_len(pred, gt)?;
    let mut hits = 0usize;
    let mut total = 0usize;
    for (p, g) in pred.iter().zip(gt) {
        for &j in joints {
            total += 1;
            if (p[j] - g[j]).norm() < threshold_mm {
                hits += 1;
            }
        }
    }
    Ok(if total == 0 { 0.0 } else { hits as f64 / total as f64 })
}

/// AUC: mean PCK over the thresholds 0:5:150 mm.
pub fn auc(pred: &[Pose3], gt: &[Pose3], joints: &[usize]) -> Result<f64, GeometryError> {
    let mut sum = 0.0;
    let mut n = 0;
    for t in auc_thresholds_mm() {
        sum += pck(pred, gt, joints, t)?;
        n += 1;
    }
    Ok(sum / f64::from(n))
}

/// One frame's errors: every summary metric is the mean of these over
/// frames (PCK and AUC as hit counts over the frames' joints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameErrors {
    pub mpjpe: f64,
    pub p_mpjpe: f64,
    pub n_mpjpe: f64,
    /// Of the PCK joints, how many are closer than [`PCK_THRESHOLD_MM`].
    pub pck_hits: usize,
    /// The same, summed over the AUC thresholds.
    pub auc_hits: usize,
    /// How many PCK joints the frame has.
    pub joints: usize,
}

impl FrameErrors {
    pub fn of(pred: &Pose3, gt: &Pose3, joints: &[usize]) -> FrameErrors {
        let distances: Vec<f64> = joints.iter().map(|&j| (pred[j] - gt[j]).norm()).collect();
        let hits = |t: f64| distances.iter().filter(|&&d| d < t).count();
        FrameErrors {
            mpjpe: frame_mpjpe(pred, gt),
            p_mpjpe: frame_mpjpe(&procrustes_align(pred, gt), gt),
            n_mpjpe: frame_n_mpjpe(pred, gt),
            pck_hits: hits(PCK_THRESHOLD_MM),
            auc_hits: auc_thresholds_mm().map(hits).sum(),
            joints: joints.len(),
        }
    }
}

/// Running sums of [`FrameErrors`] and of velocity errors: the summary of
/// any number of frames in constant memory (Human3.6M's test set is
/// millions of frames), each frame's Procrustes solved once however many
/// tables it is counted in.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ErrorSums {
    pub frames: usize,
    mpjpe: f64,
    p_mpjpe: f64,
    n_mpjpe: f64,
    pck_hits: usize,
    auc_hits: usize,
    joints: usize,
    velocity: f64,
    velocity_pairs: usize,
}

impl ErrorSums {
    pub fn add(&mut self, e: &FrameErrors) {
        self.merge(&ErrorSums {
            frames: 1,
            mpjpe: e.mpjpe,
            p_mpjpe: e.p_mpjpe,
            n_mpjpe: e.n_mpjpe,
            pck_hits: e.pck_hits,
            auc_hits: e.auc_hits,
            joints: e.joints,
            ..ErrorSums::default()
        });
    }

    /// One pair of consecutive frames' MPJVE ([`mpjve`] of the two).
    pub fn add_velocity(&mut self, mm_per_frame: f64) {
        self.velocity += mm_per_frame;
        self.velocity_pairs += 1;
    }

    pub fn merge(&mut self, other: &ErrorSums) {
        self.frames += other.frames;
        self.mpjpe += other.mpjpe;
        self.p_mpjpe += other.p_mpjpe;
        self.n_mpjpe += other.n_mpjpe;
        self.pck_hits += other.pck_hits;
        self.auc_hits += other.auc_hits;
        self.joints += other.joints;
        self.velocity += other.velocity;
        self.velocity_pairs += other.velocity_pairs;
    }

    fn per_frame(&self, sum: f64) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            sum / self.frames as f64
        }
    }

    pub fn mpjpe(&self) -> f64 {
        self.per_frame(self.mpjpe)
    }

    pub fn p_mpjpe(&self) -> f64 {
        self.per_frame(self.p_mpjpe)
    }

    pub fn n_mpjpe(&self) -> f64 {
        self.per_frame(self.n_mpjpe)
    }

    /// PCK@150 as a fraction.
    pub fn pck(&self) -> f64 {
        if self.joints == 0 {
            0.0
        } else {
            self.pck_hits as f64 / self.joints as f64
        }
    }

    /// AUC as a fraction.
    pub fn auc(&self) -> f64 {
        let thresholds = auc_thresholds_mm().count();
        if self.joints == 0 {
            0.0
        } else {
            self.auc_hits as f64 / (self.joints * thresholds) as f64
        }
    }

    /// Mean velocity error; none without a pair of consecutive frames.
    pub fn mpjve(&self) -> Option<f64> {
        (self.velocity_pairs > 0).then(|| self.velocity / self.velocity_pairs as f64)
    }
}

/// The 14 joints of the official 3DHP PCK, in our H36M-17 indexing: the
/// protocol's `mpii_get_pck_auc_joint_groups.m` counts 3DHP-17 joints 1–14
/// (head top, neck, shoulders, elbows, wrists, hips, knees, ankles) and
/// leaves out pelvis, spine and 3DHP's "head". Through
/// [`crate::joint_maps::MPI3DHP17_TO_H36M17`] its head top is our head (10)
/// and its neck our thorax (8); our neck/nose (9) is its excluded head.
pub const PCK_JOINTS_3DHP: [usize; 14] = [1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16];

fn centroid(pose: &Pose3) -> Vector3<f64> {
    pose.iter().sum::<Vector3<f64>>() / NUM_JOINTS as f64
}

fn frobenius(points: &[Vector3<f64>]) -> f64 {
    points.iter().map(|p| p.norm_squared()).sum::<f64>().sqrt()
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Rotation3, UnitQuaternion};
    use proptest::prelude::*;

    fn arb_pose() -> impl Strategy<Value = Pose3> {
        proptest::collection::vec(-800.0f64..800.0, NUM_JOINTS * 3)
            .prop_map(|v| std::array::from_fn(|j| Vector3::new(v[3 * j], v[3 * j + 1], v[3 * j + 2])))
    }

    fn transform(pose: &Pose3, r: &Rotation3<f64>, s: f64, t: &Vector3<f64>) -> Pose3 {
        std::array::from_fn(|j| s * (r * pose[j]) + t)
    }

    proptest! {
        /// Summing frame by frame, in two halves merged, gives what the
        /// slice functions give for all the frames at once.
        #[test]
        fn error_sums_equal_the_metrics_of_all_frames(
            gt in proptest::collection::vec(arb_pose(), 3..7),
            noise in proptest::collection::vec(arb_pose(), 7),
        ) {
            let pred: Vec<Pose3> = gt.iter().zip(&noise).map(|(g, n)| std::array::from_fn(|j| g[j] + n[j] * 0.2)).collect();
            let joints = &PCK_JOINTS_3DHP;
            let (mut first, mut second) = (ErrorSums::default(), ErrorSums::default());
            for (f, (p, g)) in pred.iter().zip(&gt).enumerate() {
                let half = if f < 2 { &mut first } else { &mut second };
                half.add(&FrameErrors::of(p, g, joints));
                if f > 0 && f != 2 {
                    half.add_velocity(mpjve(&pred[f - 1..=f], &gt[f - 1..=f]).unwrap());
                }
            }
            let (whole, pairs) = (gt.len(), gt.len() - 1);
            first.merge(&second);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * (1.0 + b.abs());
            prop_assert_eq!(first.frames, whole);
            prop_assert!(close(first.mpjpe(), mpjpe(&pred, &gt).unwrap()));
            prop_assert!(close(first.p_mpjpe(), p_mpjpe(&pred, &gt).unwrap()));
            prop_assert!(close(first.n_mpjpe(), n_mpjpe(&pred, &gt).unwrap()));
            prop_assert!(close(first.pck(), pck(&pred, &gt, joints, PCK_THRESHOLD_MM).unwrap()));
            prop_assert!(close(first.auc(), auc(&pred, &gt, joints).unwrap()));
            // The pair 1 → 2 crosses the halves and is left out of both.
            let crossing = mpjve(&pred[1..=2], &gt[1..=2]).unwrap();
            let expected = (mpjve(&pred, &gt).unwrap() * pairs as f64 - crossing) / (pairs - 1) as f64;
            prop_assert!(close(first.mpjve().unwrap(), expected));
            prop_assert_eq!(ErrorSums::default().mpjve(), None);
        }

        #[test]
        fn p_mpjpe_invariant_to_similarity_of_prediction(
            gt in arb_pose(),
            noise in arb_pose(),
            angles in proptest::array::uniform3(-3.1f64..3.1),
            scale in 0.2f64..5.0,
            t in proptest::array::uniform3(-3000.0f64..3000.0),
        ) {
            let pred: Pose3 = std::array::from_fn(|j| gt[j] + noise[j] * 0.1);
            let r = Rotation3::from_euler_angles(angles[0], angles[1], angles[2]);
            let moved = transform(&pred, &r, scale, &Vector3::from(t));
            let a = p_mpjpe(&[pred], &[gt]).unwrap();
            let b = p_mpjpe(&[moved], &[gt]).unwrap();
            prop_assert!((a - b).abs() < 1e-6 * (1.0 + a), "{} vs {}", a, b);
        }

        #[test]
        fn p_mpjpe_is_zero_for_a_similar_copy(
            gt in arb_pose(),
            angles in proptest::array::uniform3(-3.1f64..3.1),
            scale in 0.2f64..5.0,
        ) {
            let r = Rotation3::from_euler_angles(angles[0], angles[1], angles[2]);
            let moved = transform(&gt, &r, scale, &Vector3::new(10.0, -20.0, 30.0));
            prop_assert!(p_mpjpe(&[moved], &[gt]).unwrap() < 1e-6);
        }

        /// Procrustes minimises the summed *squared* error (the mean
        /// distance can grow: one far-off joint pulls the alignment).
        #[test]
        fn alignment_never_increases_the_squared_error(gt in arb_pose(), pred in arb_pose()) {
            let squared = |p: &Pose3| p.iter().zip(&gt).map(|(a, b)| (a - b).norm_squared()).sum::<f64>();
            let before = squared(&pred);
            let after = squared(&procrustes_align(&pred, &gt));
            prop_assert!(after <= before * (1.0 + 1e-9) + 1e-9, "{} > {}", after, before);
        }
    }

    #[test]
    fn procrustes_refuses_reflections() {
        // A mirrored pose cannot be aligned by a proper rotation: the error stays > 0.
        let gt: Pose3 = std::array::from_fn(|j| {
            let f = j as f64;
            Vector3::new(f * 13.0 % 7.0 * 40.0, f * 100.0, (f * 29.0 % 11.0) * 30.0)
        });
        let mirrored: Pose3 = std::array::from_fn(|j| Vector3::new(-gt[j].x, gt[j].y, gt[j].z));
        let aligned = procrustes_align(&mirrored, &gt);
        // Aligned result is a rotated+scaled copy of `mirrored`: its handedness
        // must be preserved, so it cannot equal gt.
        assert!(frame_mpjpe(&aligned, &gt) > 1.0);
        let q = UnitQuaternion::from_euler_angles(0.1, 0.2, 0.3);
        let rotated: Pose3 = std::array::from_fn(|j| q * gt[j]);
        assert!(frame_mpjpe(&procrustes_align(&rotated, &gt), &gt) < 1e-9);
    }

    #[test]
    fn mpjpe_of_constant_offset_is_offset() {
        let gt = [Vector3::zeros(); NUM_JOINTS];
        let pred = [Vector3::new(3.0, 4.0, 0.0); NUM_JOINTS];
        assert!((mpjpe(&[pred], &[gt]).unwrap() - 5.0).abs() < 1e-12);
        assert!(mpjpe(&[pred], &[]).is_err());
    }

    #[test]
    fn n_mpjpe_removes_scale() {
        let gt: Pose3 = std::array::from_fn(|j| Vector3::new(j as f64, 1.0, -(j as f64)));
        let pred: Pose3 = std::array::from_fn(|j| gt[j] * 1.7);
        assert!(n_mpjpe(&[pred], &[gt]).unwrap() < 1e-9);
        assert!(mpjpe(&[pred], &[gt]).unwrap() > 1.0);
    }

    #[test]
    fn mpjve_of_constant_offset_is_zero_and_needs_two_frames() {
        let a: Pose3 = std::array::from_fn(|j| Vector3::new(j as f64, 0.0, 0.0));
        let b: Pose3 = std::array::from_fn(|j| Vector3::new(j as f64, 10.0, 0.0));
        let off = |p: &Pose3| -> Pose3 { std::array::from_fn(|j| p[j] + Vector3::new(5.0, 5.0, 5.0)) };
        assert!(mpjve(&[off(&a), off(&b)], &[a, b]).unwrap() < 1e-12);
        assert!((mpjve(&[a, a], &[a, b]).unwrap() - 10.0).abs() < 1e-12);
        assert_eq!(mpjve(&[a], &[a]), Err(GeometryError::TooFewFrames { needed: 2, found: 1 }));
    }

    #[test]
    fn pck_and_auc_on_known_errors() {
        let gt = [Vector3::zeros(); NUM_JOINTS];
        // joint j is off by 10*j mm
        let pred: Pose3 = std::array::from_fn(|j| Vector3::new(10.0 * j as f64, 0.0, 0.0));
        let all: Vec<usize> = (0..NUM_JOINTS).collect();
        // errors 0..160 step 10: those < 150 are joints 0..=14 → 15/17
        // (an error equal to the threshold does not count, as in the protocol)
        assert!((pck(&[pred], &[gt], &all, 150.0).unwrap() - 15.0 / 17.0).abs() < 1e-12);
        assert_eq!(pck(&[pred], &[gt], &all, 0.0).unwrap(), 0.0);
        // AUC = mean over t in 0:5:150 of #{j: 10j < t}/17
        let expected: f64 = auc_thresholds_mm()
            .map(|t| (0..NUM_JOINTS).filter(|&j| (10.0 * j as f64) < t).count() as f64 / 17.0)
            .sum::<f64>()
            / 31.0;
        assert!((auc(&[pred], &[gt], &all).unwrap() - expected).abs() < 1e-12);
        assert_eq!(auc_thresholds_mm().count(), 31);
    }

    /// The PCK joints are the official groups' 3DHP-17 joints 0..14 (0-based)
    /// carried through the joint map, not a list kept by hand.
    #[test]
    fn pck_joints_are_the_official_groups_in_our_indexing() {
        use crate::joint_maps::MPI3DHP17_TO_H36M17;
        let mut ours: Vec<usize> = (0..14)
            .map(|k| MPI3DHP17_TO_H36M17.iter().position(|&m| m == k).expect("every 3DHP joint is mapped"))
            .collect();
        ours.sort_unstable();
        assert_eq!(ours, PCK_JOINTS_3DHP);
        assert!(PCK_JOINTS_3DHP.contains(&10), "3DHP's head top is our head");
        assert!(!PCK_JOINTS_3DHP.contains(&9), "3DHP's head is out of the protocol");
    }
}
