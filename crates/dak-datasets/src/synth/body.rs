//! A parametric body: rest bone directions and lengths, local joint rotations,
//! and forward kinematics to world joints with the feet on the floor.
//!
//! Body frame: x to the subject's left, y forward, z up (Human3.6M world is z-up).

use dak_core::skeleton::{Pose3, NUM_JOINTS, PARENTS};
use dak_core::LimbGroup;
use nalgebra::{Rotation3, Vector3};

/// Mean Human3.6M bone lengths (mm), indexed by child joint.
pub const MEAN_BONE_MM: [f64; NUM_JOINTS] = [
    0.0, 132.0, 442.0, 454.0, 132.0, 442.0, 454.0, 233.0, 257.0, 121.0, 115.0, 151.0, 279.0, 249.0, 151.0, 279.0, 249.0,
];

/// Height of the ankle joint above the floor (mm).
const ANKLE_HEIGHT_MM: f64 = 90.0;

fn rest_direction(child: usize) -> Vector3<f64> {
    let v = match child {
        1 => Vector3::new(-1.0, 0.0, -0.12),
        4 => Vector3::new(1.0, 0.0, -0.12),
        2 | 5 => Vector3::new(0.0, 0.0, -1.0),
        3 | 6 => Vector3::new(0.0, -0.06, -1.0),
        7 => Vector3::new(0.0, 0.05, 1.0),
        8 => Vector3::new(0.0, -0.03, 1.0),
        9 => Vector3::new(0.0, 0.28, 1.0),
        10 => Vector3::new(0.0, 0.12, 1.0),
        11 => Vector3::new(1.0, -0.05, -0.12),
        14 => Vector3::new(-1.0, -0.05, -0.12),
        12 => Vector3::new(0.06, 0.0, -1.0),
        15 => Vector3::new(-0.06, 0.0, -1.0),
        13 | 16 => Vector3::new(0.0, 0.08, -1.0),
        _ => Vector3::zeros(),
    };
    v.try_normalize(1e-12).unwrap_or_else(Vector3::zeros)
}

/// One subject's proportions.
#[derive(Debug, Clone)]
pub struct Body {
    pub bone_mm: [f64; NUM_JOINTS],
}

impl Body {
    /// Mean proportions scaled by a global factor and one factor per limb group.
    pub fn scaled(global: f64, group_factor: impl Fn(LimbGroup) -> f64) -> Body {
        let bone_mm = std::array::from_fn(|j| match LimbGroup::of_bone(j) {
            Some(g) => MEAN_BONE_MM[j] * global * group_factor(g),
            None => 0.0,
        });
        Body { bone_mm }
    }
}

/// Local rotation of one joint: flexion about x, abduction about y, twist about z (radians).
#[derive(Debug, Clone, Copy, Default)]
pub struct JointAngles {
    pub flex: f64,
    pub abd: f64,
    pub twist: f64,
}

impl JointAngles {
    pub fn flex(flex: f64) -> Self {
        JointAngles { flex, ..Default::default() }
    }

    fn rotation(&self) -> Rotation3<f64> {
        Rotation3::from_axis_angle(&Vector3::z_axis(), self.twist)
            * Rotation3::from_axis_angle(&Vector3::y_axis(), self.abd)
            * Rotation3::from_axis_angle(&Vector3::x_axis(), self.flex)
    }
}

/// Everything that fixes one frame's pose.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoseParams {
    /// Facing direction about world z (radians; 0 faces world +y).
    pub yaw: f64,
    /// Forward lean of the whole body (radians).
    pub lean: f64,
    /// Ground-plane position of the pelvis (mm).
    pub root_xy: [f64; 2],
    /// Height above standing with the lower foot on the floor (mm), e.g. flight.
    pub lift_mm: f64,
    /// Local rotation at each joint, applied to the bones of its children.
    pub joints: [JointAngles; NUM_JOINTS],
}

impl Body {
    /// World joints (mm) for the given parameters; the lower ankle rests at
    /// `ANKLE_HEIGHT_MM` above the floor plus `lift_mm`.
    pub fn pose(&self, params: &PoseParams) -> Pose3 {
        let mut global = [Rotation3::identity(); NUM_JOINTS];
        let mut pose: Pose3 = [Vector3::zeros(); NUM_JOINTS];
        global[0] = Rotation3::from_axis_angle(&Vector3::z_axis(), params.yaw)
            * Rotation3::from_axis_angle(&Vector3::x_axis(), params.lean)
            * params.joints[0].rotation();
        for j in 1..NUM_JOINTS {
            let p = PARENTS[j].expect("non-root");
            pose[j] = pose[p] + global[p] * (rest_direction(j) * self.bone_mm[j]);
            global[j] = global[p] * params.joints[j].rotation();
        }
        let floor = pose[3].z.min(pose[6].z);
        let shift = Vector3::new(params.root_xy[0], params.root_xy[1], ANKLE_HEIGHT_MM - floor + params.lift_mm);
        pose.map(|p| p + shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dak_core::bone_lengths;

    #[test]
    fn rest_pose_stands_upright_with_body_lengths() {
        let body = Body::scaled(1.1, |_| 1.0);
        let pose = body.pose(&PoseParams::default());
        let lengths = bone_lengths(&pose);
        for j in 1..NUM_JOINTS {
            assert!((lengths[j] - MEAN_BONE_MM[j] * 1.1).abs() < 1e-9);
        }
        assert!((pose[3].z - ANKLE_HEIGHT_MM).abs() < 1e-9);
        assert!(pose[10].z > 1600.0, "head at {}", pose[10].z);
        assert!(pose[4].x > pose[1].x, "left hip is on +x");
    }

    #[test]
    fn hip_flexion_moves_the_foot_forward_and_yaw_turns_it() {
        let body = Body::scaled(1.0, |_| 1.0);
        let mut params = PoseParams::default();
        params.joints[1] = JointAngles::flex(0.5);
        let pose = body.pose(&params);
        assert!(pose[3].y > pose[0].y + 100.0);
        params.yaw = std::f64::consts::FRAC_PI_2;
        let turned = body.pose(&params);
        assert!(turned[3].x < turned[0].x - 100.0, "facing -x after +90° yaw");
    }
}
