//! The canonical Human3.6M-17 skeleton every dataset is mapped into.

use nalgebra::Vector3;

pub const NUM_JOINTS: usize = 17;

/// One pose: 17 joint positions (mm unless a caller says otherwise).
pub type Pose3 = [Vector3<f64>; NUM_JOINTS];

/// Joint names in canonical order (Human3.6M-17 as VideoPose3D keeps it).
pub const JOINT_NAMES: [&str; NUM_JOINTS] = [
    "pelvis",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "spine",
    "thorax",
    "neck",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
];

/// Parent of each joint; the root (pelvis) has none. Parents precede children,
/// so a single forward pass over joint indices is a valid kinematic traversal.
pub const PARENTS: [Option<usize>; NUM_JOINTS] = [
    None,
    Some(0),
    Some(1),
    Some(2),
    Some(0),
    Some(4),
    Some(5),
    Some(0),
    Some(7),
    Some(8),
    Some(9),
    Some(8),
    Some(11),
    Some(12),
    Some(8),
    Some(14),
    Some(15),
];

pub const ROOT: usize = 0;
pub const LEFT_JOINTS: [usize; 6] = [4, 5, 6, 11, 12, 13];
pub const RIGHT_JOINTS: [usize; 6] = [1, 2, 3, 14, 15, 16];

/// Joint index permutation that swaps left and right (for horizontal flips).
pub const fn flip_permutation() -> [usize; NUM_JOINTS] {
    let mut perm = [0usize; NUM_JOINTS];
    let mut j = 0;
    while j < NUM_JOINTS {
        perm[j] = j;
        j += 1;
    }
    let mut i = 0;
    while i < LEFT_JOINTS.len() {
        perm[LEFT_JOINTS[i]] = RIGHT_JOINTS[i];
        perm[RIGHT_JOINTS[i]] = LEFT_JOINTS[i];
        i += 1;
    }
    perm
}

/// Look a joint up by its canonical name.
pub fn joint_index(name: &str) -> Option<usize> {
    JOINT_NAMES.iter().position(|n| *n == name)
}

/// Left/right symmetric limb groups of the structure augmentation (DESIGN.md).
/// A bone is named by its child joint; a group scales all its bones by one factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimbGroup {
    PelvisHips,
    Thighs,
    Shanks,
    Spine,
    ThoraxNeck,
    NeckHead,
    Shoulders,
    UpperArms,
    Forearms,
}

impl LimbGroup {
    pub const ALL: [LimbGroup; 9] = [
        LimbGroup::PelvisHips,
        LimbGroup::Thighs,
        LimbGroup::Shanks,
        LimbGroup::Spine,
        LimbGroup::ThoraxNeck,
        LimbGroup::NeckHead,
        LimbGroup::Shoulders,
        LimbGroup::UpperArms,
        LimbGroup::Forearms,
    ];

    /// Bones (child joint indices) in this group.
    pub fn bones(self) -> &'static [usize] {
        match self {
            LimbGroup::PelvisHips => &[1, 4],
            LimbGroup::Thighs => &[2, 5],
            LimbGroup::Shanks => &[3, 6],
            // pelvis→spine and spine→thorax form one torso segment.
            LimbGroup::Spine => &[7, 8],
            LimbGroup::ThoraxNeck => &[9],
            LimbGroup::NeckHead => &[10],
            LimbGroup::Shoulders => &[11, 14],
            LimbGroup::UpperArms => &[12, 15],
            LimbGroup::Forearms => &[13, 16],
        }
    }

    /// The group a bone (named by its child joint) belongs to; `None` for the root.
    pub fn of_bone(child: usize) -> Option<LimbGroup> {
        LimbGroup::ALL.into_iter().find(|g| g.bones().contains(&child))
    }

    pub fn name(self) -> &'static str {
        match self {
            LimbGroup::PelvisHips => "pelvis-hips",
            LimbGroup::Thighs => "thighs",
            LimbGroup::Shanks => "shanks",
            LimbGroup::Spine => "spine",
            LimbGroup::ThoraxNeck => "thorax-neck",
            LimbGroup::NeckHead => "neck-head",
            LimbGroup::Shoulders => "shoulders",
            LimbGroup::UpperArms => "upper-arms",
            LimbGroup::Forearms => "forearms",
        }
    }
}

/// Name of a bone, "parent-child", for reports.
pub fn bone_name(child: usize) -> String {
    match PARENTS[child] {
        Some(p) => format!("{}-{}", JOINT_NAMES[p], JOINT_NAMES[child]),
        None => JOINT_NAMES[child].to_string(),
    }
}

/// Read a pose from a flat `[x0,y0,z0,x1,...]` buffer of 51 values.
pub fn pose_from_flat(flat: &[f32]) -> Pose3 {
    // Always checked: a longer buffer would otherwise lose its tail silently.
    assert_eq!(flat.len(), NUM_JOINTS * 3, "a pose is 51 values");
    std::array::from_fn(|j| {
        Vector3::new(f64::from(flat[3 * j]), f64::from(flat[3 * j + 1]), f64::from(flat[3 * j + 2]))
    })
}

/// Write a pose into a flat buffer of 51 values.
pub fn pose_to_flat(pose: &Pose3, out: &mut [f32]) {
    assert_eq!(out.len(), NUM_JOINTS * 3, "a pose is 51 values");
    for (j, p) in pose.iter().enumerate() {
        out[3 * j] = p.x as f32;
        out[3 * j + 1] = p.y as f32;
        out[3 * j + 2] = p.z as f32;
    }
}

/// Subtract the root joint from every joint.
pub fn root_relative(pose: &Pose3) -> Pose3 {
    let root = pose[ROOT];
    std::array::from_fn(|j| pose[j] - root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_precede_children() {
        for (j, p) in PARENTS.iter().enumerate() {
            if let Some(p) = p {
                assert!(*p < j, "joint {j} has parent {p}");
            }
        }
    }

    #[test]
    fn parents_match_design_table() {
        let design = [-1i32, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15];
        let ours: Vec<i32> = PARENTS.iter().map(|p| p.map_or(-1, |p| p as i32)).collect();
        assert_eq!(ours, design);
    }

    #[test]
    fn flip_is_an_involution_that_swaps_sides() {
        let perm = flip_permutation();
        for j in 0..NUM_JOINTS {
            assert_eq!(perm[perm[j]], j);
        }
        for (l, r) in LEFT_JOINTS.iter().zip(RIGHT_JOINTS) {
            assert_eq!(perm[*l], r);
            assert!(JOINT_NAMES[*l].starts_with("l_"));
            assert!(JOINT_NAMES[r].starts_with("r_"));
        }
        assert_eq!(perm[ROOT], ROOT);
    }

    #[test]
    fn limb_groups_cover_every_bone_once_and_are_symmetric() {
        let perm = flip_permutation();
        let mut seen = [0; NUM_JOINTS];
        for g in LimbGroup::ALL {
            for &b in g.bones() {
                seen[b] += 1;
                // the mirrored bone lives in the same group
                assert!(g.bones().contains(&perm[b]), "{g:?} lacks mirror of {b}");
            }
        }
        assert_eq!(seen[ROOT], 0);
        assert!(seen[1..].iter().all(|&c| c == 1), "{seen:?}");
    }
}
