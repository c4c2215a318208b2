//! Geometry core of dak-pose: the Human3.6M-17 skeleton, bone vectors and
//! forward kinematics, the Human3.6M camera model, and the pose metrics of the
//! DAK-Pose paper (MPJPE, P-MPJPE, N-MPJPE, MPJVE, PCK, AUC).
//!
//! Everything here is in millimetres and pixels, `f64` (but for the `f32`
//! helpers the network inputs use: `gaps`, `normalize_screen_f32`), and free
//! of IO so that converters, augmentation and evaluation agree on one set of
//! numbers.

pub mod bones;
pub mod camera;
pub mod gaps;
pub mod joint_maps;
pub mod metrics;
pub mod skeleton;
#[doc(hidden)]
pub mod testing;

pub use bones::{bone_lengths, bone_vectors, forward_kinematics, BoneDirections, BoneLengths};
pub use camera::{Camera, Extrinsics, Intrinsics, WorldToCamera};
pub use skeleton::{LimbGroup, Pose3, NUM_JOINTS};

/// Errors from geometry routines that can meet degenerate input.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum GeometryError {
    #[error("pose arrays differ in length: {left} vs {right} frames")]
    FrameCountMismatch { left: usize, right: usize },
    #[error("need at least {needed} frames, got {found}")]
    TooFewFrames { needed: usize, found: usize },
    #[error("flat joint buffer of {len} values is not a whole number of {per_frame}-value frames")]
    RaggedBuffer { len: usize, per_frame: usize },
    #[error("not a rotation matrix (determinant {determinant:.4}, ‖RᵀR − I‖ = {deviation:.2e}): a mirrored or damaged calibration")]
    NotARotation { determinant: f64, deviation: f64 },
}
