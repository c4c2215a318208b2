//! Human3.6M calibration (intrinsics per camera, extrinsics per subject) as
//! VideoPose3D publishes it, kept as data in `data/h36m_cameras.json`.

use std::sync::OnceLock;

use dak_core::{Camera, Extrinsics, Intrinsics};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct CalibrationFile {
    cameras: Vec<CameraIntrinsics>,
    extrinsics: std::collections::BTreeMap<String, Vec<Extrinsics>>,
}

#[derive(Debug, Deserialize)]
struct CameraIntrinsics {
    id: String,
    intrinsics: Intrinsics,
    #[allow(dead_code)]
    azimuth_deg: f64,
}

fn calibration() -> &'static CalibrationFile {
    static CAL: OnceLock<CalibrationFile> = OnceLock::new();
    CAL.get_or_init(|| {
        serde_json::from_str(include_str!("../data/h36m_cameras.json")).expect("data/h36m_cameras.json is valid")
    })
}

/// Camera ids in the order of VideoPose3D's 2D arrays.
pub fn camera_ids() -> Vec<&'static str> {
    calibration().cameras.iter().map(|c| c.id.as_str()).collect()
}

/// Intrinsics of the four cameras, in camera order.
pub fn intrinsics() -> Vec<Intrinsics> {
    calibration().cameras.iter().map(|c| c.intrinsics).collect()
}

/// Subjects with published extrinsics (those with 3D ground truth).
pub fn subjects() -> Vec<&'static str> {
    calibration().extrinsics.keys().map(String::as_str).collect()
}

/// The four calibrated cameras of a subject, or `None` for subjects without extrinsics.
pub fn cameras_of(subject: &str) -> Option<Vec<Camera>> {
    let cal = calibration();
    let ext = cal.extrinsics.get(subject)?;
    Some(
        cal.cameras
            .iter()
            .zip(ext)
            .map(|(c, e)| Camera { id: c.id.clone(), intrinsics: c.intrinsics, extrinsics: *e })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn seven_subjects_four_cameras() {
        assert_eq!(subjects(), vec!["S1", "S11", "S5", "S6", "S7", "S8", "S9"]);
        assert_eq!(camera_ids(), vec!["54138969", "55011271", "58860488", "60457274"]);
        assert!(cameras_of("S2").is_none());
        assert_eq!(cameras_of("S9").unwrap().len(), 4);
    }

    /// Every camera of the rig looks at the capture area: the world origin at
    /// hip height projects inside the image, in front of the camera.
    #[test]
    fn rig_looks_at_the_capture_area() {
        for s in subjects() {
            for cam in cameras_of(s).unwrap() {
                let p = cam.extrinsics.world_to_camera(&Vector3::new(0.0, 0.0, 900.0));
                assert!(p.z > 3000.0 && p.z < 8000.0, "{s} {}: depth {}", cam.id, p.z);
                let px = cam.intrinsics.project(&p);
                assert!(px.x > 0.0 && px.x < 1000.0 && px.y > 0.0 && px.y < 1002.0, "{s} {}: {px:?}", cam.id);
            }
        }
    }
}
