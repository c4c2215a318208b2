//! How other datasets' joints become our Human3.6M-17 joints. The single
//! place where these mappings live; the converters and `dak-infer` use them.

use nalgebra::Vector3;

use crate::skeleton::NUM_JOINTS;

/// VideoPose3D keeps these 17 of the 32 Human3.6M mocap joints, in our order.
pub const H36M32_KEPT: [usize; NUM_JOINTS] = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27];

/// MPI-INF-3DHP: the 17 evaluation joints among the 28 annotated ones, in the
/// dataset's own 17-joint order (head_top, neck, r_sho, r_elb, r_wri, l_sho,
/// l_elb, l_wri, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, pelvis, spine, head).
pub const MPI3DHP28_TO_3DHP17: [usize; NUM_JOINTS] = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6];

/// Our joint `i` is 3DHP-17 joint `MPI3DHP17_TO_H36M17[i]`. Approximations:
/// 3DHP's neck stands in for our thorax, its head for our neck/nose and its
/// head top for our head.
pub const MPI3DHP17_TO_H36M17: [usize; NUM_JOINTS] = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4];

/// Our joint `i` from the 28 annotated 3DHP joints.
pub fn mpi3dhp28_index(i: usize) -> usize {
    MPI3DHP28_TO_3DHP17[MPI3DHP17_TO_H36M17[i]]
}

/// SMPL-24 joints → ours as weighted sums (every row sums to 1, so the map
/// commutes with rigid transforms). Follows Split-and-Recombine-Net's
/// `get_3dpw.py`, with the left/right legs on their correct sides.
///
/// Known bias against real Human3.6M joints: SMPL's hips sit higher and wider
/// than the mocap markers' hip centres; spine is interpolated between SMPL's
/// pelvis and neck; head is extrapolated from SMPL neck→head (≈ 2 cm error);
/// neck/nose is SMPL's head joint, i.e. behind the nose. Expect 10–20 mm
/// of systematic MPJPE from the mapping alone.
pub const SMPL24_TO_H36M17: [&[(usize, f64)]; NUM_JOINTS] = [
    &[(1, 0.5), (2, 0.5)],    // pelvis: mid-hips
    &[(2, 1.0)],              // r_hip
    &[(5, 1.0)],              // r_knee
    &[(8, 1.0)],              // r_ankle
    &[(1, 1.0)],              // l_hip
    &[(4, 1.0)],              // l_knee
    &[(7, 1.0)],              // l_ankle
    &[(0, 0.7), (12, 0.3)],   // spine
    &[(12, 1.0)],             // thorax: SMPL neck
    &[(15, 1.0)],             // neck/nose: SMPL head
    &[(15, 2.0), (12, -1.0)], // head: extrapolated
    &[(16, 1.0)],             // l_shoulder
    &[(18, 1.0)],             // l_elbow
    &[(20, 1.0)],             // l_wrist
    &[(17, 1.0)],             // r_shoulder
    &[(19, 1.0)],             // r_elbow
    &[(21, 1.0)],             // r_wrist
];

pub const SMPL_JOINTS: usize = 24;

/// OpenPose COCO-18 keypoints (nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb,
/// l_wri, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, r_eye, l_eye, r_ear,
/// l_ear) → ours. Approximations: pelvis = mid-hips; spine = halfway between
/// mid-hips and neck; thorax = OpenPose neck; neck/nose = nose; head = mid-ears (the one ear seen, in [`map_detections`]).
/// Detector hips sit lower and wider than mocap hip centres, and mid-ears is
/// below the Human3.6M head joint, so 2D from detectors carries that offset.
pub const OPENPOSE18_TO_H36M17: [&[(usize, f64)]; NUM_JOINTS] = [
    &[(8, 0.5), (11, 0.5)],
    &[(8, 1.0)],
    &[(9, 1.0)],
    &[(10, 1.0)],
    &[(11, 1.0)],
    &[(12, 1.0)],
    &[(13, 1.0)],
    &[(8, 0.25), (11, 0.25), (1, 0.5)],
    &[(1, 1.0)],
    &[(0, 1.0)],
    &[(16, 0.5), (17, 0.5)],
    &[(5, 1.0)],
    &[(6, 1.0)],
    &[(7, 1.0)],
    &[(2, 1.0)],
    &[(3, 1.0)],
    &[(4, 1.0)],
];

pub const OPENPOSE_JOINTS: usize = 18;

/// COCO-17 keypoints (mmpose, detectron2: nose, l/r eye, l/r ear, l/r
/// shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee, l/r ankle) → ours,
/// with [`OPENPOSE18_TO_H36M17`]'s approximations (thorax = mid-shoulders,
/// as COCO has no neck point).
pub const COCO17_TO_H36M17: [&[(usize, f64)]; NUM_JOINTS] = [
    &[(11, 0.5), (12, 0.5)],
    &[(12, 1.0)],
    &[(14, 1.0)],
    &[(16, 1.0)],
    &[(11, 1.0)],
    &[(13, 1.0)],
    &[(15, 1.0)],
    &[(11, 0.25), (12, 0.25), (5, 0.25), (6, 0.25)],
    &[(5, 0.5), (6, 0.5)],
    &[(0, 1.0)],
    &[(3, 0.5), (4, 0.5)],
    &[(5, 1.0)],
    &[(7, 1.0)],
    &[(9, 1.0)],
    &[(6, 1.0)],
    &[(8, 1.0)],
    &[(10, 1.0)],
];

/// OpenPose BODY_25 keypoints (nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb,
/// l_wri, mid_hip, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, r_eye, l_eye,
/// r_ear, l_ear, then six foot points) → ours, with
/// [`OPENPOSE18_TO_H36M17`]'s approximations (pelvis = its mid-hip).
pub const BODY25_TO_H36M17: [&[(usize, f64)]; NUM_JOINTS] = [
    &[(8, 1.0)],
    &[(9, 1.0)],
    &[(10, 1.0)],
    &[(11, 1.0)],
    &[(12, 1.0)],
    &[(13, 1.0)],
    &[(14, 1.0)],
    &[(8, 0.5), (1, 0.5)],
    &[(1, 1.0)],
    &[(0, 1.0)],
    &[(17, 0.5), (18, 0.5)],
    &[(5, 1.0)],
    &[(6, 1.0)],
    &[(7, 1.0)],
    &[(2, 1.0)],
    &[(3, 1.0)],
    &[(4, 1.0)],
];

/// Maps detected 2D keypoints with confidences; a derived joint is as
/// confident as its least confident source.
pub fn map_keypoints(
    map: &[&[(usize, f64)]; NUM_JOINTS],
    xy: &[[f64; 2]],
    confidence: &[f64],
) -> ([[f64; 2]; NUM_JOINTS], [f64; NUM_JOINTS]) {
    let points = std::array::from_fn(|i| {
        map[i].iter().fold([0.0, 0.0], |acc, &(j, w)| [acc[0] + w * xy[j][0], acc[1] + w * xy[j][1]])
    });
    let conf = std::array::from_fn(|i| map[i].iter().map(|&(j, _)| confidence[j]).fold(f64::INFINITY, f64::min));
    (points, conf)
}

/// Our head joint, which every detector map derives from the two ears.
pub const HEAD: usize = 10;

/// [`map_keypoints`] for a detector's keypoints, where a point counts as
/// seen at confidence ≥ `min_confidence` (and above 0: 0 is "not
/// detected"). The head is the one ear seen when the other is not: in a
/// profile view the far ear goes undetected, and both ears project to
/// nearly one point there anyway; mid-ears would put the head halfway to an
/// undetected ear's (0, 0) or leave it unseen for the whole video.
pub fn map_detections(
    map: &[&[(usize, f64)]; NUM_JOINTS],
    xy: &[[f64; 2]],
    confidence: &[f64],
    min_confidence: f64,
) -> ([[f64; 2]; NUM_JOINTS], [f64; NUM_JOINTS]) {
    let (mut points, mut conf) = map_keypoints(map, xy, confidence);
    if let [(a, _), (b, _)] = map[HEAD] {
        let seen = |i: usize| confidence[i] >= min_confidence && confidence[i] > 0.0;
        let ear = match (seen(*a), seen(*b)) {
            (true, false) => Some(*a),
            (false, true) => Some(*b),
            _ => None,
        };
        if let Some(ear) = ear {
            (points[HEAD], conf[HEAD]) = (xy[ear], confidence[ear]);
        }
    }
    (points, conf)
}

/// Applies a weighted joint map to one pose.
pub fn map_weighted(map: &[&[(usize, f64)]; NUM_JOINTS], joints: &[Vector3<f64>]) -> [Vector3<f64>; NUM_JOINTS] {
    std::array::from_fn(|i| map[i].iter().map(|&(j, w)| joints[j] * w).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skeleton::{LEFT_JOINTS, RIGHT_JOINTS};

    /// One body seen by the three detector layouts maps to the same 17
    /// joints (mid-hips as BODY_25's mid-hip, mid-shoulders as the neck), so
    /// training on converted detections and inference on a user's agree.
    #[test]
    fn detector_maps_agree_on_one_body() {
        // Named points: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
        let p = |x: f64, y: f64| [x, y];
        let (nose, l_eye, r_eye, l_ear, r_ear) =
            (p(0.0, -10.0), p(2.0, -11.0), p(-2.0, -11.0), p(4.0, -10.5), p(-4.0, -10.5));
        let (l_sho, r_sho, l_elb, r_elb, l_wri, r_wri) =
            (p(6.0, -6.0), p(-6.0, -6.0), p(8.0, -2.0), p(-8.0, -2.0), p(9.0, 2.0), p(-9.0, 2.0));
        let (l_hip, r_hip, l_knee, r_knee, l_ank, r_ank) =
            (p(3.0, 4.0), p(-3.0, 4.0), p(3.5, 10.0), p(-3.5, 10.0), p(4.0, 16.0), p(-4.0, 16.0));
        let neck = p(0.0, -6.0);
        let mid_hip = p(0.0, 4.0);
        let coco17 = [
            nose, l_eye, r_eye, l_ear, r_ear, l_sho, r_sho, l_elb, r_elb, l_wri, r_wri, l_hip, r_hip, l_knee, r_knee,
            l_ank, r_ank,
        ];
        let coco18 = [
            nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, r_eye,
            l_eye, r_ear, l_ear,
        ];
        let mut body25 = vec![
            nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri, mid_hip, r_hip, r_knee, r_ank, l_hip, l_knee, l_ank,
            r_eye, l_eye, r_ear, l_ear,
        ];
        body25.extend([p(99.0, 99.0); 6]);
        let map = |m: &[&[(usize, f64)]; NUM_JOINTS], xy: &[[f64; 2]]| map_keypoints(m, xy, &vec![1.0; xy.len()]).0;
        let want = map(&OPENPOSE18_TO_H36M17, &coco18);
        assert_eq!(map(&COCO17_TO_H36M17, &coco17), want);
        assert_eq!(map(&BODY25_TO_H36M17, &body25), want);
        assert_eq!(want[10], [0.0, -10.5], "head = mid-ears");
        assert_eq!((want[1], want[4], want[14], want[11]), (r_hip, l_hip, r_sho, l_sho));
        for m in [&COCO17_TO_H36M17, &OPENPOSE18_TO_H36M17, &BODY25_TO_H36M17] {
            for row in m.iter() {
                assert!((row.iter().map(|&(_, w)| w).sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn index_maps_are_permutations_of_distinct_joints() {
        let mut kept = H36M32_KEPT.to_vec();
        kept.dedup();
        assert_eq!(kept.len(), NUM_JOINTS);
        let mut m: Vec<usize> = (0..NUM_JOINTS).map(mpi3dhp28_index).collect();
        m.sort_unstable();
        m.dedup();
        assert_eq!(m.len(), NUM_JOINTS);
        assert_eq!(mpi3dhp28_index(0), 4, "our pelvis is 3DHP's pelvis (28-index 4)");
        assert_eq!(mpi3dhp28_index(10), 7, "our head is 3DHP's head top");
    }

    #[test]
    fn smpl_rows_sum_to_one_and_sides_match() {
        for row in SMPL24_TO_H36M17 {
            assert!((row.iter().map(|(_, w)| w).sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // SMPL: odd hips/knees/ankles and even shoulders/elbows/wrists from 16 on are left.
        let smpl_left = [1, 4, 7, 16, 18, 20];
        for &j in &LEFT_JOINTS {
            assert!(smpl_left.contains(&SMPL24_TO_H36M17[j][0].0), "our left joint {j}");
        }
        for &j in &RIGHT_JOINTS {
            assert!(!smpl_left.contains(&SMPL24_TO_H36M17[j][0].0), "our right joint {j}");
        }
    }

    #[test]
    fn openpose_rows_sum_to_one_and_confidence_is_the_weakest_source() {
        for row in OPENPOSE18_TO_H36M17 {
            assert!((row.iter().map(|(_, w)| w).sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let xy: Vec<[f64; 2]> = (0..OPENPOSE_JOINTS).map(|j| [j as f64, 1.0]).collect();
        let mut conf = vec![0.9; OPENPOSE_JOINTS];
        conf[11] = 0.2;
        let (p, c) = map_keypoints(&OPENPOSE18_TO_H36M17, &xy, &conf);
        assert_eq!(p[0], [9.5, 1.0], "pelvis between hips 8 and 11");
        assert_eq!((c[0], c[1], c[4]), (0.2, 0.9, 0.2));
    }

    #[test]
    fn weighted_map_commutes_with_translation() {
        let joints: Vec<Vector3<f64>> = (0..SMPL_JOINTS).map(|j| Vector3::new(j as f64, 2.0 * j as f64, 1.0)).collect();
        let shift = Vector3::new(10.0, -5.0, 3.0);
        let moved: Vec<_> = joints.iter().map(|p| p + shift).collect();
        let (a, b) = (map_weighted(&SMPL24_TO_H36M17, &joints), map_weighted(&SMPL24_TO_H36M17, &moved));
        for (p, q) in a.iter().zip(&b) {
            assert!((q - p - shift).norm() < 1e-12);
        }
    }
}
