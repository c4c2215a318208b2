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

/// Applies a weighted joint map to one pose.
pub fn map_weighted(map: &[&[(usize, f64)]; NUM_JOINTS], joints: &[Vector3<f64>]) -> [Vector3<f64>; NUM_JOINTS] {
    std::array::from_fn(|i| map[i].iter().map(|&(j, w)| joints[j] * w).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skeleton::{LEFT_JOINTS, RIGHT_JOINTS};

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
