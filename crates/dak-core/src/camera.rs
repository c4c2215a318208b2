//! The Human3.6M camera model as VideoPose3D implements it
//! (`common/camera.py`, `common/quaternion.py`).
//!
//! Pitfall kept on purpose: the tangential coefficients are in VideoPose3D's
//! order, which is swapped relative to the original release's `metadata.xml`.
//! Projection clips the normalised image coordinates to [-1, 1] before the
//! distortion polynomial, exactly like the reference, so far-off-axis points
//! match it too.

use nalgebra::{Matrix3, Quaternion, Rotation3, UnitQuaternion, Vector2, Vector3};
use serde::{Deserialize, Serialize};

/// Pinhole intrinsics with Human3.6M's distortion model, as VideoPose3D
/// applies it: radial k1..k3, and a tangential term x·(p·x) + p·r² that is
/// *not* OpenCV's Brown–Conrady (2p1·xy + p2(r² + 2x²)); OpenCV
/// coefficients need converting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intrinsics {
    pub focal_length_px: [f64; 2],
    pub center_px: [f64; 2],
    pub radial: [f64; 3],
    pub tangential: [f64; 2],
    pub width_px: u32,
    pub height_px: u32,
}

/// Where the camera is in the world: the rotation taking camera axes to world
/// axes (quaternion w,x,y,z) and the camera centre in world coordinates (mm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extrinsics {
    pub world_from_camera_wxyz: [f64; 4],
    pub center_world_mm: [f64; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub id: String,
    pub intrinsics: Intrinsics,
    pub extrinsics: Extrinsics,
}

impl Intrinsics {
    /// Distortion-free intrinsics.
    pub fn pinhole(focal_px: f64, width_px: u32, height_px: u32) -> Self {
        Intrinsics {
            focal_length_px: [focal_px, focal_px],
            center_px: [f64::from(width_px) / 2.0, f64::from(height_px) / 2.0],
            radial: [0.0; 3],
            tangential: [0.0; 2],
            width_px,
            height_px,
        }
    }

    /// Camera-frame point (mm) to pixel, with distortion, as VideoPose3D's
    /// `project_to_2d`. Points at or behind the image plane give non-finite
    /// or meaningless pixels, as in the reference; callers keep Z > 0.
    #[inline]
    pub fn project(&self, point_in_camera: &Vector3<f64>) -> Vector2<f64> {
        let z = point_in_camera.z;
        let xx = Vector2::new((point_in_camera.x / z).clamp(-1.0, 1.0), (point_in_camera.y / z).clamp(-1.0, 1.0));
        self.distort_normalised(&xx)
    }

    /// Normalised (x/z, y/z) image coordinates to pixels through the distortion model.
    #[inline]
    pub fn distort_normalised(&self, xx: &Vector2<f64>) -> Vector2<f64> {
        let [k1, k2, k3] = self.radial;
        let p = Vector2::new(self.tangential[0], self.tangential[1]);
        let r2 = xx.norm_squared();
        let radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2;
        let tan = p.dot(xx);
        let d = xx * (radial + tan) + p * r2;
        Vector2::new(
            self.focal_length_px[0] * d.x + self.center_px[0],
            self.focal_length_px[1] * d.y + self.center_px[1],
        )
    }

    /// Pixel to undistorted normalised coordinates (x/z, y/z): the inverse of
    /// [`Self::distort_normalised`] by fixed-point iteration. It converges
    /// for the mild distortion of real lenses within their image (exact for
    /// pinhole cameras); `None` where it does not (far outside the image,
    /// where the polynomial folds over, or beyond [`Self::project`]'s clamp).
    pub fn undistort_pixel(&self, pixel: &Vector2<f64>) -> Option<Vector2<f64>> {
        let d = Vector2::new(
            (pixel.x - self.center_px[0]) / self.focal_length_px[0],
            (pixel.y - self.center_px[1]) / self.focal_length_px[1],
        );
        let [k1, k2, k3] = self.radial;
        let p = Vector2::new(self.tangential[0], self.tangential[1]);
        let mut xx = d;
        for _ in 0..50 {
            let r2 = xx.norm_squared();
            let radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2;
            let next = (d - p * r2) / (radial + p.dot(&xx));
            let done = (next - xx).norm() < 1e-15;
            xx = next;
            if done {
                break;
            }
        }
        let residual = self.distort_normalised(&xx) - pixel;
        (xx.iter().all(|v| v.is_finite()) && residual.norm() < 1e-6).then_some(xx)
    }

    /// Pixels to the networks' screen coordinates: x in [-1, 1], y scaled by
    /// the same factor (VideoPose3D `normalize_screen_coordinates`).
    pub fn pixel_to_screen(&self, pixel: &Vector2<f64>) -> Vector2<f64> {
        normalize_screen(pixel, self.width_px, self.height_px)
    }

    pub fn screen_to_pixel(&self, screen: &Vector2<f64>) -> Vector2<f64> {
        image_coordinates(screen, self.width_px, self.height_px)
    }
}

/// VideoPose3D `normalize_screen_coordinates`: `X / w * 2 - [1, h / w]`.
pub fn normalize_screen(pixel: &Vector2<f64>, width_px: u32, height_px: u32) -> Vector2<f64> {
    let w = f64::from(width_px);
    let h = f64::from(height_px);
    Vector2::new(pixel.x / w * 2.0 - 1.0, pixel.y / w * 2.0 - h / w)
}

/// [`normalize_screen`] for a run of f32 `(x, y)` pixel pairs, appended
/// to `out` (the form batch assembly and inference need).
pub fn normalize_screen_f32(px: &[f32], width_px: u32, height_px: u32, out: &mut Vec<f32>) {
    let (w, h) = (width_px as f32, height_px as f32);
    for p in px.chunks_exact(2) {
        out.push(p[0] / w * 2.0 - 1.0);
        out.push(p[1] / w * 2.0 - h / w);
    }
}

/// VideoPose3D `image_coordinates`, the inverse of [`normalize_screen`].
pub fn image_coordinates(screen: &Vector2<f64>, width_px: u32, height_px: u32) -> Vector2<f64> {
    let w = f64::from(width_px);
    let h = f64::from(height_px);
    Vector2::new((screen.x + 1.0) * w / 2.0, (screen.y + h / w) * w / 2.0)
}

impl Extrinsics {
    pub fn new(world_from_camera: UnitQuaternion<f64>, center_world_mm: Vector3<f64>) -> Self {
        let q = world_from_camera.quaternion();
        Extrinsics { world_from_camera_wxyz: [q.w, q.i, q.j, q.k], center_world_mm: center_world_mm.into() }
    }

    /// From a world→camera rigid transform `x_cam = R x_world + t` (mm), the
    /// form of 3DHP's `camera.calibration` and 3DPW's `cam_poses`. `R` must
    /// be a rotation: the nearest rotation of anything else (a mirrored
    /// axis) would be some unrelated camera, silently.
    pub fn from_camera_from_world(
        rotation: &Matrix3<f64>,
        translation_mm: &Vector3<f64>,
    ) -> Result<Self, crate::GeometryError> {
        let determinant = rotation.determinant();
        let deviation = (rotation.transpose() * rotation - Matrix3::identity()).norm();
        if !(deviation < 1e-3 && determinant > 0.0) {
            return Err(crate::GeometryError::NotARotation { determinant, deviation });
        }
        let camera_from_world = Rotation3::from_matrix(rotation);
        let world_from_camera = UnitQuaternion::from_rotation_matrix(&camera_from_world.inverse());
        let center = -(camera_from_world.inverse() * translation_mm);
        Ok(Extrinsics::new(world_from_camera, center))
    }

    pub fn world_from_camera(&self) -> UnitQuaternion<f64> {
        let [w, x, y, z] = self.world_from_camera_wxyz;
        UnitQuaternion::from_quaternion(Quaternion::new(w, x, y, z))
    }

    pub fn center_world(&self) -> Vector3<f64> {
        Vector3::from(self.center_world_mm)
    }

    /// VideoPose3D `world_to_camera`: `qrot(qinverse(q), X - t)`.
    pub fn world_to_camera(&self, point_in_world: &Vector3<f64>) -> Vector3<f64> {
        self.world_from_camera().inverse_transform_vector(&(point_in_world - self.center_world()))
    }

    /// [`Self::world_to_camera`] for many points: the quaternion is normalised
    /// and turned into a matrix once instead of per point (converters map
    /// ~10^8 joints).
    pub fn world_to_camera_map(&self) -> WorldToCamera {
        WorldToCamera {
            camera_from_world: self.world_from_camera().inverse().to_rotation_matrix().into_inner(),
            center_world: self.center_world(),
        }
    }

    /// VideoPose3D `camera_to_world`: `qrot(q, X) + t`.
    pub fn camera_to_world(&self, point_in_camera: &Vector3<f64>) -> Vector3<f64> {
        self.world_from_camera().transform_vector(point_in_camera) + self.center_world()
    }
}

/// A camera's world → camera transform, precomputed: see
/// [`Extrinsics::world_to_camera_map`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldToCamera {
    camera_from_world: Matrix3<f64>,
    center_world: Vector3<f64>,
}

impl WorldToCamera {
    #[inline]
    pub fn apply(&self, point_in_world: &Vector3<f64>) -> Vector3<f64> {
        self.camera_from_world * (point_in_world - self.center_world)
    }
}

impl Camera {
    /// World point (mm) straight to pixels.
    pub fn project_world(&self, point_in_world: &Vector3<f64>) -> Vector2<f64> {
        self.intrinsics.project(&self.extrinsics.world_to_camera(point_in_world))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn f32_screen_normalisation_is_normalize_screen() {
        let px = [0.0f32, 0.0, 1000.0, 1002.0, 500.0, 501.0, 123.25, 987.5];
        let mut out = Vec::new();
        normalize_screen_f32(&px, 1000, 1002, &mut out);
        assert_eq!(out.len(), px.len());
        for (p, o) in px.chunks_exact(2).zip(out.chunks_exact(2)) {
            let want = normalize_screen(&Vector2::new(f64::from(p[0]), f64::from(p[1])), 1000, 1002);
            assert!((f64::from(o[0]) - want.x).abs() < 1e-6 && (f64::from(o[1]) - want.y).abs() < 1e-6, "{p:?}");
        }
    }

    /// Human3.6M camera 54138969 as VideoPose3D lists it.
    pub(crate) fn h36m_cam0() -> Intrinsics {
        Intrinsics {
            focal_length_px: [1145.0494384765625, 1143.7811279296875],
            center_px: [512.54150390625, 515.4514770507812],
            radial: [-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043],
            tangential: [-0.0009756988729350269, -0.00142447161488235],
            width_px: 1000,
            height_px: 1002,
        }
    }

    /// Far outside the image the distortion polynomial folds over and the
    /// iteration settles on no inverse: none, not a wrong ray.
    #[test]
    fn undistortion_that_does_not_converge_is_none() {
        let cam = h36m_cam0();
        let at = |x: f64, y: f64| {
            Vector2::new(cam.center_px[0] + cam.focal_length_px[0] * x, cam.center_px[1] + cam.focal_length_px[1] * y)
        };
        assert!(cam.undistort_pixel(&at(1.0, 0.8)).is_none());
        assert!(cam.undistort_pixel(&at(0.3, -0.2)).is_some());
    }

    #[test]
    fn optical_axis_projects_to_principal_point() {
        let cam = h36m_cam0();
        for z in [100.0, 4500.0, 1e6] {
            let px = cam.project(&Vector3::new(0.0, 0.0, z));
            assert!((px.x - cam.center_px[0]).abs() < 1e-12);
            assert!((px.y - cam.center_px[1]).abs() < 1e-12);
        }
    }

    #[test]
    fn projection_matches_hand_computed_reference() {
        // Computed with VideoPose3D's project_to_2d formula by hand.
        let cam = h36m_cam0();
        let p = Vector3::new(300.0, -200.0, 5000.0);
        let (x, y) = (0.06, -0.04);
        let r2: f64 = x * x + y * y;
        let [k1, k2, k3] = cam.radial;
        let [p1, p2] = cam.tangential;
        let radial = 1.0 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2;
        let tan = p1 * x + p2 * y;
        let u = cam.focal_length_px[0] * (x * (radial + tan) + p1 * r2) + cam.center_px[0];
        let v = cam.focal_length_px[1] * (y * (radial + tan) + p2 * r2) + cam.center_px[1];
        let px = cam.project(&p);
        assert!((px.x - u).abs() < 1e-9 && (px.y - v).abs() < 1e-9, "{px:?} vs {u},{v}");
    }

    #[test]
    fn screen_normalisation_round_trips_and_spans_width() {
        let cam = h36m_cam0();
        let left = cam.pixel_to_screen(&Vector2::new(0.0, 0.0));
        let right = cam.pixel_to_screen(&Vector2::new(1000.0, 1002.0));
        assert!((left.x + 1.0).abs() < 1e-12 && (right.x - 1.0).abs() < 1e-12);
        let px = Vector2::new(123.4, 876.5);
        assert!((cam.screen_to_pixel(&cam.pixel_to_screen(&px)) - px).norm() < 1e-9);
    }

    #[test]
    fn from_camera_from_world_agrees_with_quaternion_form() {
        let rot = Rotation3::from_euler_angles(0.3, -1.2, 2.0);
        let t = Vector3::new(100.0, -2000.0, 4500.0);
        let ext = Extrinsics::from_camera_from_world(rot.matrix(), &t).unwrap();
        let xw = Vector3::new(500.0, 300.0, 1700.0);
        let expected = rot * xw + t;
        assert!((ext.world_to_camera(&xw) - expected).norm() < 1e-9);
        // A mirrored axis or a scaled matrix is no camera orientation.
        let mirrored = rot.matrix() * Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, -1.0));
        let err = Extrinsics::from_camera_from_world(&mirrored, &t).unwrap_err();
        assert!(matches!(err, crate::GeometryError::NotARotation { determinant, .. } if determinant < 0.0), "{err}");
        assert!(Extrinsics::from_camera_from_world(&(rot.matrix() * 2.0), &t).is_err());
    }

    proptest! {
        #[test]
        fn world_camera_round_trip(
            angles in proptest::array::uniform3(-3.0f64..3.0),
            c in proptest::array::uniform3(-5000.0f64..5000.0),
            x in proptest::array::uniform3(-5000.0f64..5000.0),
        ) {
            let q = UnitQuaternion::from_euler_angles(angles[0], angles[1], angles[2]);
            let ext = Extrinsics::new(q, Vector3::from(c));
            let xw = Vector3::from(x);
            let back = ext.camera_to_world(&ext.world_to_camera(&xw));
            prop_assert!((back - xw).norm() < 1e-6);
        }

        #[test]
        fn world_to_camera_map_matches_the_quaternion(
            wxyz in proptest::array::uniform4(-1.0f64..1.0),
            c in proptest::array::uniform3(-5000.0f64..5000.0),
            x in proptest::array::uniform3(-5000.0f64..5000.0),
        ) {
            let norm = wxyz.iter().map(|v| v * v).sum::<f64>().sqrt();
            prop_assume!(norm > 0.1);
            // As stored in a calibration file: not exactly unit length.
            let ext = Extrinsics { world_from_camera_wxyz: wxyz, center_world_mm: c };
            let xw = Vector3::from(x);
            let want = ext.world_to_camera(&xw);
            let got = ext.world_to_camera_map().apply(&xw);
            prop_assert!((got - want).norm() < 1e-8, "{:?} vs {:?}", got, want);
        }

        #[test]
        fn unproject_inverts_projection(
            x in -0.6f64..0.6, y in -0.6f64..0.6, z in 500.0f64..9000.0,
        ) {
            let cam = h36m_cam0();
            let p = Vector3::new(x * z, y * z, z);
            let px = cam.project(&p);
            let ray = cam.undistort_pixel(&px).unwrap();
            prop_assert!((ray - Vector2::new(x, y)).norm() < 1e-9, "{:?} vs {},{}", ray, x, y);
        }
    }
}
