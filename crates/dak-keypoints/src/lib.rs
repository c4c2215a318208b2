//! 2D keypoints of a user's video, as detectors write them, mapped to our
//! Human3.6M-17 joints.
//!
//! - COCO results JSON (mmpose, detectron2, the COCO API): a list of
//!   `{"image_id", "keypoints": [x, y, score] × 17, "score"}`, several people
//!   per image possible; frames are the distinct image ids in order (numbers
//!   by value with gaps as missing frames, names in natural order).
//! - An OpenPose `--write_json` folder: one `*_keypoints.json` per frame with
//!   `people[].pose_keypoints_2d` (BODY_25 or COCO-18), frames in natural
//!   file-name order (`frame_2` before `frame_10`).
//! - A NumPy `.npy` or CSV (`.csv`, `.txt`) array `(F, 17, 2|3)` already in
//!   our joint order; NaN marks a joint (or a whole frame) not detected.
//!
//! Per frame the most confident person is kept. Joints H36M has and the
//! detectors lack are derived by the maps of [`dak_core::joint_maps`], the
//! same that convert 3DPW's detections for training: pelvis = mid-hips;
//! thorax = mid-shoulders (COCO) or OpenPose's neck; spine = mid(pelvis,
//! thorax); neck/nose = nose; head = mid-ears, which sits lower than H36M's
//! head-top marker (a bias of a few cm, seen by the network as a shorter
//! neck–head bone). Seen from the side the far ear is often not detected:
//! where only one ear clears the confidence threshold, the head is that ear
//! (both ears project to nearly one point in a side view), so a profile
//! video needs no hours of interpolated heads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dak_core::joint_maps::{map_detections, BODY25_TO_H36M17, COCO17_TO_H36M17, OPENPOSE18_TO_H36M17};
use dak_core::NUM_JOINTS;

/// A keypoint file that cannot be read as what it claims to be.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// dak-formats' errors name the file themselves; kept apart so it is named once.
impl From<dak_formats::Error> for Error {
    fn from(e: dak_formats::Error) -> Self {
        match e {
            dak_formats::Error::Io { path, source } => Error::Io { path, source },
            dak_formats::Error::Malformed { path, problem } => Error::Data { path, reason: problem },
            other => Error::Data { path: other.path().to_path_buf(), reason: other.to_string() },
        }
    }
}

/// One joint: pixel position and confidence in [0, 1].
pub type Keypoint = [f32; 3];
/// Our 17 joints of one frame in pixels.
pub type Frame2d = [[f32; 2]; NUM_JOINTS];
/// One flag per joint of a frame.
pub type JointFlags = [bool; NUM_JOINTS];

/// Our 17 joints per frame; `None` where the detector found nobody.
#[derive(Debug, Clone, PartialEq)]
pub struct KeypointTrack {
    pub frames: Vec<Option<[Keypoint; NUM_JOINTS]>>,
    /// What names each frame in the input: the COCO image id, the OpenPose
    /// file name, the array row.
    pub labels: Vec<String>,
    pub source: PathBuf,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data { path: path.to_path_buf(), reason: reason.into() }
}

/// Detector keypoints through a weighted joint map
/// ([`dak_core::joint_maps::map_detections`]: a derived joint is as
/// confident as its least confident source, except the head, which is the
/// one ear seen when the other is not).
fn map_detector(map: &[&[(usize, f64)]; NUM_JOINTS], k: &[Keypoint], min_confidence: f32) -> [Keypoint; NUM_JOINTS] {
    let xy: Vec<[f64; 2]> = k.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
    let confidence: Vec<f64> = k.iter().map(|p| f64::from(p[2])).collect();
    let (points, confidence) = map_detections(map, &xy, &confidence, f64::from(min_confidence));
    std::array::from_fn(|j| [points[j][0] as f32, points[j][1] as f32, confidence[j] as f32])
}

/// COCO-17 order: nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist,
/// l/r hip, l/r knee, l/r ankle. `min_confidence` as in [`fill`].
pub fn from_coco17(k: &[Keypoint; 17], min_confidence: f32) -> [Keypoint; NUM_JOINTS] {
    map_detector(&COCO17_TO_H36M17, k, min_confidence)
}

/// OpenPose BODY_25 (or COCO-18 when `body25` is false).
pub fn from_openpose(k: &[Keypoint], body25: bool, min_confidence: f32) -> [Keypoint; NUM_JOINTS] {
    map_detector(if body25 { &BODY25_TO_H36M17 } else { &OPENPOSE18_TO_H36M17 }, k, min_confidence)
}

/// Orders names as people number frames: digit runs by value, so
/// `frame_2` comes before `frame_10` (zero-padded names sort as before).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn number(run: &str) -> Option<&str> {
        run.starts_with(|c: char| c.is_ascii_digit()).then(|| run.trim_start_matches('0'))
    }
    fn split_run(s: &str) -> (&str, &str) {
        let digits = s.starts_with(|c: char| c.is_ascii_digit());
        s.split_at(s.find(|c: char| c.is_ascii_digit() != digits).unwrap_or(s.len()))
    }
    let (mut x, mut y) = (a, b);
    loop {
        match (x.is_empty(), y.is_empty()) {
            (true, true) => return a.cmp(b),
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        let ((rx, tx), (ry, ty)) = (split_run(x), split_run(y));
        let order = match (number(rx), number(ry)) {
            (Some(nx), Some(ny)) => nx.len().cmp(&ny.len()).then_with(|| nx.cmp(ny)),
            _ => rx.cmp(ry),
        };
        if order.is_ne() {
            return order;
        }
        (x, y) = (tx, ty);
    }
}

/// Keep the higher-scoring detection of a frame.
fn keep_best<K: Ord>(
    frames: &mut BTreeMap<K, (f32, [Keypoint; NUM_JOINTS])>,
    key: K,
    score: f32,
    k: [Keypoint; NUM_JOINTS],
) {
    if frames.get(&key).is_none_or(|(s, _)| score > *s) {
        frames.insert(key, (score, k));
    }
}

fn triples(path: &Path, what: &str, v: &serde_json::Value, n: usize) -> Result<Vec<Keypoint>> {
    let values = v.as_array().ok_or_else(|| bad(path, format!("{what}: not a list")))?;
    if values.len() != n * 3 {
        return Err(bad(
            path,
            format!("{what}: {} values where {} ({n} joints × x, y, score) are expected", values.len(), n * 3),
        ));
    }
    let mut out = Vec::with_capacity(n);
    for (j, c) in values.chunks_exact(3).enumerate() {
        let mut t = [0.0f32; 3];
        for (i, x) in c.iter().enumerate() {
            let x = x.as_f64().ok_or_else(|| bad(path, format!("{what}: joint {j} has a non-number {x}")))?;
            if !x.is_finite() {
                return Err(bad(path, format!("{what}: joint {j} is {x}")));
            }
            t[i] = x as f32;
        }
        // COCO visibility flags are 0/1/2; scores of detectors are in [0, 1].
        t[2] = t[2].clamp(0.0, 1.0);
        out.push(t);
    }
    Ok(out)
}

fn mean_score(k: &[Keypoint]) -> f32 {
    k.iter().map(|p| p[2]).sum::<f32>() / k.len().max(1) as f32
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not JSON: {e}")))
}

/// COCO results JSON; `min_confidence` as in [`fill`] (it picks the head's ear).
pub fn read_coco(path: &Path, min_confidence: f32) -> Result<KeypointTrack> {
    let json = read_json(path)?;
    let list =
        json.as_array().ok_or_else(|| bad(path, "expected a list of COCO results ({image_id, keypoints, score})"))?;
    // Numeric ids are frame numbers; string ids are names, in natural order.
    let mut best: BTreeMap<(i64, String), (f32, [Keypoint; NUM_JOINTS])> = BTreeMap::new();
    let mut names: BTreeMap<String, (f32, [Keypoint; NUM_JOINTS])> = BTreeMap::new();
    for (i, r) in list.iter().enumerate() {
        let id = &r["image_id"];
        // json.dump of NumPy floats writes ids as 3.0.
        let whole = id.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15).map(|x| x as i64);
        let key = match (id.as_i64().or(whole), id.as_str()) {
            (Some(n), _) => (n, String::new()),
            (None, Some(s)) => (i64::MIN, s.to_string()),
            (None, None) if id.is_number() => {
                return Err(bad(path, format!("result {i}: image_id {id} is not a whole number")))
            }
            _ => return Err(bad(path, format!("result {i}: image_id is missing or neither a number nor a string"))),
        };
        if key.0 == i64::MIN && !best.is_empty() || key.0 != i64::MIN && !names.is_empty() {
            return Err(bad(path, format!("result {i}: image ids mix numbers and names ({id})")));
        }
        let k = triples(path, &format!("result {i} (image_id {id}) keypoints"), &r["keypoints"], 17)?;
        let score = r["score"].as_f64().map_or_else(|| mean_score(&k), |s| s as f32);
        let mapped = from_coco17(&k.try_into().expect("17 joints"), min_confidence);
        if key.0 == i64::MIN {
            keep_best(&mut names, key.1, score, mapped);
        } else {
            keep_best(&mut best, key, score, mapped);
        }
    }
    if !names.is_empty() {
        let mut named: Vec<(String, (f32, [Keypoint; NUM_JOINTS]))> = names.into_iter().collect();
        named.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        let (labels, frames) = named.into_iter().map(|(name, (_, k))| (name, Some(k))).unzip();
        return Ok(KeypointTrack { frames, labels, source: path.to_path_buf() });
    }
    let (Some(((lo, _), _)), Some(((hi, _), _))) = (best.first_key_value(), best.last_key_value()) else {
        return Err(bad(path, "no detections"));
    };
    // Numeric image ids are frame numbers: an id without detections is a
    // missing frame, not a frame that never was. Frames before the first
    // detection and after the last are not known to exist; the labels keep
    // each frame's image id.
    let (lo, hi) = (*lo, *hi);
    if hi - lo > 10_000_000 {
        return Err(bad(path, format!("image ids span {lo}..{hi}: too many frames")));
    }
    let frames = (lo..=hi).map(|id| best.get(&(id, String::new())).map(|(_, k)| *k)).collect();
    let labels = (lo..=hi).map(|id| id.to_string()).collect();
    Ok(KeypointTrack { frames, labels, source: path.to_path_buf() })
}

/// An OpenPose output folder; `min_confidence` as in [`fill`].
pub fn read_openpose(dir: &Path, min_confidence: f32) -> Result<KeypointTrack> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_keypoints.json")))
        .collect();
    let name = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    files.sort_by(|a, b| natural_cmp(&name(a), &name(b)));
    if files.is_empty() {
        return Err(bad(dir, "no *_keypoints.json files (OpenPose --write_json output)"));
    }
    let mut frames = Vec::with_capacity(files.len());
    for file in &files {
        let json = read_json(file)?;
        let people = json["people"].as_array().ok_or_else(|| bad(file, "no `people` list"))?;
        let mut best: Option<(f32, [Keypoint; NUM_JOINTS])> = None;
        for (i, person) in people.iter().enumerate() {
            let values = &person["pose_keypoints_2d"];
            if values.is_null() {
                let old = if person.get("pose_keypoints").is_some() {
                    " (this file has `pose_keypoints`, the key of OpenPose before 1.2: rerun it with a newer OpenPose)"
                } else {
                    ""
                };
                return Err(bad(file, format!("person {i}: no `pose_keypoints_2d`{old}")));
            }
            let n = values.as_array().map_or(0, Vec::len) / 3;
            let body25 = match n {
                25 => true,
                18 => false,
                _ => {
                    return Err(bad(
                        file,
                        format!(
                            "person {i}: pose_keypoints_2d has {} values; BODY_25 (75) or COCO-18 (54) expected",
                            n * 3
                        ),
                    ))
                }
            };
            let k = triples(file, &format!("person {i} pose_keypoints_2d"), values, n)?;
            let score = mean_score(&k);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, from_openpose(&k, body25, min_confidence)));
            }
        }
        frames.push(best.map(|(_, k)| k));
    }
    if frames.iter().all(Option::is_none) {
        return Err(bad(dir, format!("no person detected in any of its {} *_keypoints.json files", files.len())));
    }
    let labels = files.iter().map(name).collect();
    Ok(KeypointTrack { frames, labels, source: dir.to_path_buf() })
}

/// `(F, 17, 2|3)` from a `.npy` or a CSV with 34 or 51 values per row.
pub fn read_array(path: &Path) -> Result<KeypointTrack> {
    let (values, cols): (Vec<f64>, usize) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        let array = match dak_formats::npy::read(path)? {
            dak_formats::npy::Npy::Array(a) => a,
            dak_formats::npy::Npy::Object(_) => return Err(bad(path, "holds pickled objects, not a numeric array")),
        };
        let shape = array.shape.clone();
        if shape.len() != 3 || shape[1] != NUM_JOINTS || !(shape[2] == 2 || shape[2] == 3) {
            return Err(bad(
                path,
                format!("array of shape {shape:?}; (frames, 17, 2 or 3) in Human3.6M order expected"),
            ));
        }
        (array.data, shape[2])
    } else {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let mut values = Vec::new();
        let mut cols = 0;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let row: Vec<f64> = line
                .split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(path, format!("line {}: {e}", i + 1)))?;
            let c = match row.len() {
                34 => 2,
                51 => 3,
                n => {
                    return Err(bad(
                        path,
                        format!("line {}: {n} values; 34 (x, y) or 51 (x, y, score) per frame expected", i + 1),
                    ))
                }
            };
            if cols != 0 && c != cols {
                return Err(bad(
                    path,
                    format!("line {}: {} values where earlier lines had {}", i + 1, row.len(), cols * 17),
                ));
            }
            cols = c;
            values.extend(row);
        }
        (values, cols)
    };
    if values.is_empty() {
        return Err(bad(path, "no frames"));
    }
    // NaN is how NumPy users mark "not detected"; an infinity is a bug upstream.
    if let Some(i) = values.iter().position(|v| v.is_infinite()) {
        return Err(bad(path, format!("frame {}: value {} is not finite", i / (cols * NUM_JOINTS), values[i])));
    }
    let frames = values
        .chunks_exact(cols * NUM_JOINTS)
        .map(|f| {
            let joints: [Keypoint; NUM_JOINTS] = std::array::from_fn(|j| {
                let (x, y) = (f[j * cols], f[j * cols + 1]);
                let score = if cols == 3 { f[j * cols + 2] } else { 1.0 };
                if x.is_nan() || y.is_nan() || score.is_nan() {
                    [0.0, 0.0, 0.0]
                } else {
                    [x as f32, y as f32, score as f32]
                }
            });
            joints.iter().any(|k| k[2] > 0.0).then_some(joints)
        })
        .collect::<Vec<_>>();
    let labels = (0..frames.len()).map(|i| i.to_string()).collect();
    Ok(KeypointTrack { frames, labels, source: path.to_path_buf() })
}

/// Read `path` by its kind: a folder (OpenPose), `.json` (COCO), `.npy`,
/// `.csv`/`.txt`. `min_confidence` as in [`fill`] (it decides which ear
/// stands for the head).
pub fn read(path: &Path, min_confidence: f32) -> Result<KeypointTrack> {
    if path.is_dir() {
        return read_openpose(path, min_confidence);
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("json") => read_coco(path, min_confidence),
        Some("npy" | "csv" | "txt") => read_array(path),
        _ if !path.exists() => Err(Error::Io { path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() }),
        _ => Err(bad(
            path,
            "unknown keypoint format: COCO results .json, an OpenPose --write_json folder, \
             or a .npy / .csv / .txt array (frames, 17, 2|3) in Human3.6M order expected",
        )),
    }
}

/// What filling did to a track.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FillReport {
    pub missing_frames: usize,
    pub filled_joints: usize,
}

/// Replace joints below `min_confidence` (or at 0, undetected) and missing frames by linear
/// interpolation over time between the nearest confident observations of
/// that joint (held constant before the first and after the last). Returns
/// pixels `(F, 17, 2)` and which joints were filled.
pub fn fill(track: &KeypointTrack, min_confidence: f32) -> Result<(Vec<Frame2d>, Vec<JointFlags>, FillReport)> {
    let n = track.frames.len();
    let mut out = vec![[[0.0f32; 2]; NUM_JOINTS]; n];
    let mut filled = vec![[false; NUM_JOINTS]; n];
    let mut report =
        FillReport { missing_frames: track.frames.iter().filter(|f| f.is_none()).count(), filled_joints: 0 };
    for j in 0..NUM_JOINTS {
        let seen: Vec<(usize, [f32; 2])> = track
            .frames
            .iter()
            .enumerate()
            // Confidence 0 is "not detected" (OpenPose writes 0, 0, 0) whatever the threshold.
            .filter_map(|(f, k)| {
                k.as_ref().filter(|k| k[j][2] >= min_confidence && k[j][2] > 0.0).map(|k| (f, [k[j][0], k[j][1]]))
            })
            .collect();
        if seen.is_empty() {
            let weak = track.frames.iter().flatten().filter(|k| k[j][2] > 0.0).count();
            return Err(bad(
                &track.source,
                format!(
                    "joint {} is never seen with confidence ≥ {min_confidence} in {n} frames ({weak} have it \
                     below that{}); the 3D needs every joint somewhere in the video",
                    dak_core::skeleton::JOINT_NAMES[j],
                    if weak > 0 { ": a lower --min-confidence would use them" } else { "" }
                ),
            ));
        }
        let mut k = 0;
        for (f, p) in dak_core::gaps::interpolate_track(&seen, n).into_iter().enumerate() {
            out[f][j] = p;
            if seen.get(k).is_some_and(|&(s, _)| s == f) {
                k += 1;
            } else {
                filled[f][j] = true;
                report.filled_joints += 1;
            }
        }
    }
    Ok((out, filled, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dak_core::joint_maps::HEAD;

    fn coco() -> [Keypoint; 17] {
        std::array::from_fn(|i| [i as f32 * 10.0, i as f32 * 20.0, 0.9])
    }

    #[test]
    fn coco_maps_to_h36m_with_documented_approximations() {
        let k = coco();
        let h = from_coco17(&k, 0.3);
        assert_eq!(h[0], [115.0, 230.0, 0.9]); // pelvis = mid(l_hip 11, r_hip 12)
        assert_eq!(h[1], k[12]);
        assert_eq!(h[3], k[16]);
        assert_eq!(h[4], k[11]);
        assert_eq!(h[8], [55.0, 110.0, 0.9]); // thorax = mid-shoulders
        assert_eq!(h[7], [85.0, 170.0, 0.9]); // spine = mid(pelvis, thorax)
        assert_eq!(h[9], k[0]);
        assert_eq!(h[10], [35.0, 70.0, 0.9]); // head = mid-ears (3, 4)
        assert_eq!(h[13], k[9]);
        assert_eq!(h[16], k[10]);
    }

    #[test]
    fn openpose_body25_and_coco18_map_the_same_body() {
        let body25: Vec<Keypoint> = (0..25).map(|i| [i as f32, 0.0, 1.0]).collect();
        let h = from_openpose(&body25, true, 0.3);
        assert_eq!(h[0][0], 8.0);
        assert_eq!(h[1][0], 9.0);
        assert_eq!(h[6][0], 14.0);
        assert_eq!(h[8][0], 1.0);
        assert_eq!(h[10][0], 17.5); // mid-ears (17, 18)
        assert_eq!(h[14][0], 2.0);
        let coco18: Vec<Keypoint> = (0..18).map(|i| [i as f32, 0.0, 1.0]).collect();
        let h = from_openpose(&coco18, false, 0.3);
        assert_eq!(h[0][0], 9.5); // mid(r_hip 8, l_hip 11)
        assert_eq!(h[3][0], 10.0);
        assert_eq!(h[10][0], 16.5); // mid-ears (16, 17)
    }

    #[test]
    fn frame_names_sort_as_numbered() {
        let mut names = vec!["frame_10", "frame_2", "frame_1", "a", "frame_02b", "frame_0010x", "frame_9"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["a", "frame_1", "frame_2", "frame_02b", "frame_9", "frame_10", "frame_0010x"]);
        let mut padded = ["v_000000000012_keypoints.json", "v_000000000003_keypoints.json"];
        padded.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(padded[0], "v_000000000003_keypoints.json");
    }

    #[test]
    fn gaps_and_weak_joints_are_interpolated() {
        let frame = |x: f32, c: f32| Some(std::array::from_fn(|_| [x, 2.0 * x, c]));
        let track = KeypointTrack {
            frames: vec![frame(0.0, 1.0), None, frame(99.0, 0.1), frame(30.0, 1.0), frame(7.0, 0.0)],
            labels: (0..5).map(|i| i.to_string()).collect(),
            source: "t".into(),
        };
        let (px, filled, report) = fill(&track, 0.3).unwrap();
        assert_eq!(px[1][5], [10.0, 20.0]);
        assert_eq!(px[2][5], [20.0, 40.0]);
        assert_eq!(px[4][5], [30.0, 60.0]);
        assert_eq!((filled[1][0], filled[3][0], filled[4][0]), (true, false, true));
        assert_eq!(report, FillReport { missing_frames: 1, filled_joints: 3 * 17 });
        let none = KeypointTrack { frames: vec![frame(1.0, 0.0)], labels: vec!["0".into()], source: "t".into() };
        assert!(fill(&none, 0.3).unwrap_err().to_string().contains("never seen"));
    }

    /// Seen from the side one ear is not detected: the head is the other
    /// ear, not an interpolation over the whole video (nor an error).
    #[test]
    fn the_head_is_the_one_ear_seen() {
        let mut k = coco();
        let both = from_coco17(&k, 0.3)[HEAD];
        assert_eq!(both, [35.0, 70.0, 0.9]);
        k[4][2] = 0.1; // right ear weak
        assert_eq!(from_coco17(&k, 0.3)[HEAD], k[3]);
        assert_eq!(from_coco17(&k, 0.05)[HEAD], [35.0, 70.0, 0.1], "both clear a lower threshold");
        k[3][2] = 0.0;
        assert_eq!(from_coco17(&k, 0.3)[HEAD][2], 0.0, "neither ear: the head is unseen");
        let mut body25: Vec<Keypoint> = (0..25).map(|i| [i as f32, 0.0, 1.0]).collect();
        body25[18][2] = 0.0;
        assert_eq!(from_openpose(&body25, true, 0.3)[HEAD], body25[17]);
    }

    /// NaN in an array is a joint not detected, a row of NaN a frame
    /// without detection; an infinity is refused; unknown kinds are named.
    #[test]
    fn arrays_mark_missing_detections_with_nan() {
        let dir = tempfile::tempdir().unwrap();
        let row = |f: usize| (0..34).map(|i| format!("{}", f * 100 + i)).collect::<Vec<_>>();
        let mut rows: Vec<Vec<String>> = (0..3).map(row).collect();
        rows[1] = vec!["nan".to_string(); 34];
        rows[2][26] = "NaN".into(); // joint 13's x
        let csv = dir.path().join("k.csv");
        std::fs::write(&csv, rows.iter().map(|r| r.join(",")).collect::<Vec<_>>().join("\n")).unwrap();
        let track = read(&csv, 0.3).unwrap();
        assert!(track.frames[1].is_none());
        let last = track.frames[2].unwrap();
        assert_eq!((last[13][2], last[12]), (0.0, [224.0, 225.0, 1.0]));
        let (_, filled, report) = fill(&track, 0.3).unwrap();
        assert_eq!((report.missing_frames, filled[2][13], filled[2][12]), (1, true, false));

        rows[0][5] = "inf".into();
        std::fs::write(&csv, rows[0].join(",")).unwrap();
        assert!(read(&csv, 0.3).unwrap_err().to_string().contains("not finite"));
        let npz = dir.path().join("k.npz");
        std::fs::write(&npz, b"PK").unwrap();
        let err = read(&npz, 0.3).unwrap_err().to_string();
        assert!(err.contains("k.npz") && err.contains("unknown keypoint format"), "{err}");
    }

    #[test]
    fn a_bad_npy_is_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.npy");
        let err = read(&missing, 0.3).unwrap_err().to_string();
        assert_eq!(err.matches("nope.npy").count(), 1, "{err}");
        let junk = dir.path().join("junk.npy");
        std::fs::write(&junk, b"not numpy").unwrap();
        let err = read(&junk, 0.3).unwrap_err().to_string();
        assert_eq!(err.matches("junk.npy").count(), 1, "{err}");
        assert!(err.len() > "junk.npy: ".len() + 5, "{err}");
    }
}
