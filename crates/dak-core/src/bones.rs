//! Bone vectors, lengths and directions, and forward kinematics back to joints.
//!
//! A bone is named by its child joint: bone `j` runs from `PARENTS[j]` to `j`.
//! Index 0 (the root) carries no bone and is kept zero so arrays stay 17 long.

use nalgebra::Vector3;

use crate::skeleton::{Pose3, NUM_JOINTS, PARENTS};

/// Bone lengths in mm, indexed by child joint; entry 0 is unused (zero).
pub type BoneLengths = [f64; NUM_JOINTS];
/// Unit bone directions, indexed by child joint; entry 0 is unused (zero).
pub type BoneDirections = [Vector3<f64>; NUM_JOINTS];

/// `joint - parent` for every non-root joint.
pub fn bone_vectors(pose: &Pose3) -> [Vector3<f64>; NUM_JOINTS] {
    std::array::from_fn(|j| match PARENTS[j] {
        Some(p) => pose[j] - pose[p],
        None => Vector3::zeros(),
    })
}

pub fn bone_lengths(pose: &Pose3) -> BoneLengths {
    let v = bone_vectors(pose);
    std::array::from_fn(|j| v[j].norm())
}

/// Lengths and unit directions. A zero-length bone gets the direction +y so
/// that forward kinematics stays finite (its length is zero anyway).
pub fn bone_lengths_and_directions(pose: &Pose3) -> (BoneLengths, BoneDirections) {
    let v = bone_vectors(pose);
    let lengths = std::array::from_fn(|j| v[j].norm());
    let dirs = std::array::from_fn(|j| {
        if PARENTS[j].is_none() {
            Vector3::zeros()
        } else {
            v[j].try_normalize(1e-12).unwrap_or_else(Vector3::y)
        }
    });
    (lengths, dirs)
}

/// Rebuild joints from the root position, bone lengths and unit directions.
pub fn forward_kinematics(root: Vector3<f64>, lengths: &BoneLengths, directions: &BoneDirections) -> Pose3 {
    let mut pose = [Vector3::zeros(); NUM_JOINTS];
    pose[0] = root;
    for j in 1..NUM_JOINTS {
        let p = PARENTS[j].expect("only the root has no parent");
        pose[j] = pose[p] + directions[j] * lengths[j];
    }
    pose
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_pose() -> impl Strategy<Value = Pose3> {
        proptest::collection::vec(-1000.0f64..1000.0, NUM_JOINTS * 3)
            .prop_map(|v| std::array::from_fn(|j| Vector3::new(v[3 * j], v[3 * j + 1], v[3 * j + 2])))
    }

    proptest! {
        #[test]
        fn fk_of_bones_is_identity(pose in arb_pose()) {
            let (len, dir) = bone_lengths_and_directions(&pose);
            let rebuilt = forward_kinematics(pose[0], &len, &dir);
            for j in 0..NUM_JOINTS {
                prop_assert!((rebuilt[j] - pose[j]).norm() < 1e-8, "joint {} off by {}", j, (rebuilt[j]-pose[j]).norm());
            }
        }

        #[test]
        fn directions_are_unit(pose in arb_pose()) {
            let (_, dir) = bone_lengths_and_directions(&pose);
            for d in &dir[1..] {
                prop_assert!((d.norm() - 1.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn zero_length_bone_stays_finite() {
        let pose = [Vector3::new(1.0, 2.0, 3.0); NUM_JOINTS];
        let (len, dir) = bone_lengths_and_directions(&pose);
        let rebuilt = forward_kinematics(pose[0], &len, &dir);
        assert!(rebuilt.iter().all(|p| (p - pose[0]).norm() < 1e-12));
    }
}
