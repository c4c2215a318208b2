//! Reference clips: the source 3D motion the augmentors start from, read
//! from source shards and cut into runs of consecutive valid frames.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dak_core::skeleton::pose_from_flat;
use dak_core::{Pose3, NUM_JOINTS};
use dak_io::{CameraRecord, ShardSet, Table, Verify};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which source frames to use (all of them when a field is empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceFilter {
    pub datasets: Vec<String>,
    pub splits: Vec<String>,
    pub subjects: Vec<String>,
}

/// "datasets demo-target, any split, subjects T1, T2": for messages.
impl std::fmt::Display for SourceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |what: &str, list: &[String]| match list {
            [] => format!("any {what}"),
            _ => format!("{what}s {}", list.join(", ")),
        };
        write!(
            f,
            "{}, {}, {}",
            part("dataset", &self.datasets),
            part("split", &self.splits),
            part("subject", &self.subjects)
        )
    }
}

impl SourceFilter {
    pub fn keeps(&self, dataset: &str, split: &str, subject: &str) -> bool {
        let ok = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        ok(&self.datasets, dataset) && ok(&self.splits, split) && ok(&self.subjects, subject)
    }
}

/// A run of consecutive, valid frames of one camera's view of one sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSequence {
    pub dataset: String,
    pub subject: String,
    pub sequence: String,
    pub camera: String,
    /// Frame number of `poses[0]` in the source.
    pub first_frame: u32,
    /// Camera coordinates, mm, 51 values per frame (f32 as stored).
    poses: Vec<[f32; NUM_JOINTS * 3]>,
}

impl SourceSequence {
    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    pub fn pose(&self, i: usize) -> Pose3 {
        pose_from_flat(&self.poses[i])
    }

    /// `subject/sequence`, the name written into synthetic shards.
    pub fn name(&self) -> String {
        format!("{}/{}", self.subject, self.sequence)
    }
}

/// A window of a source sequence.
#[derive(Debug, Clone)]
pub struct ReferenceClip {
    pub sequence: usize,
    pub start: usize,
    pub poses: Vec<Pose3>,
}

/// All usable source sequences of some shard directories, plus their cameras.
#[derive(Debug, Clone)]
pub struct SourceLibrary {
    sequences: Vec<SourceSequence>,
    cameras: Vec<CameraRecord>,
    inputs: Vec<PathBuf>,
}

type RunKey = (String, String, String, String);

impl SourceLibrary {
    /// Read the source frames of `dirs` that pass `filter`, and the cameras
    /// that filmed them. Invalid frames and gaps in the frame numbers split a
    /// sequence into separate runs.
    pub fn load(dirs: &[PathBuf], filter: &SourceFilter) -> Result<Self> {
        let mut runs: BTreeMap<RunKey, Vec<(u32, [f32; NUM_JOINTS * 3])>> = BTreeMap::new();
        let mut cameras = Vec::new();
        for dir in dirs {
            let set = ShardSet::open(dir, Verify::Checksums)?;
            if set.table() != Some(Table::SourceFrames) {
                return Err(Error::Source {
                    path: dir.clone(),
                    reason: format!("holds `{}` shards, not source frames", set.manifest().schema),
                });
            }
            cameras.extend(set.cameras()?);
            for batch in set.source_frames() {
                let b = batch?;
                for i in 0..b.len() {
                    if !b.valid.value(i) || !filter.keeps(b.dataset.value(i), b.split.value(i), b.subject.value(i)) {
                        continue;
                    }
                    let flat: [f32; NUM_JOINTS * 3] =
                        b.joints_3d_camera_mm(i).try_into().expect("schema fixes 51 values");
                    let key = (
                        b.dataset.value(i).to_string(),
                        b.subject.value(i).to_string(),
                        b.sequence.value(i).to_string(),
                        b.camera.value(i).to_string(),
                    );
                    runs.entry(key).or_default().push((b.frame.value(i), flat));
                }
            }
        }
        // Cameras carry no split: keep those that filmed a kept frame, so that
        // a target domain's test cameras, stored beside the source, never
        // project synthetic clips.
        let filmed: std::collections::BTreeSet<(&str, &str, &str)> =
            runs.keys().map(|(d, s, _, c)| (d.as_str(), s.as_str(), c.as_str())).collect();
        cameras.retain(|c| filmed.contains(&(c.dataset.as_str(), c.subject.as_str(), c.camera.as_str())));
        let mut sequences = Vec::new();
        for ((dataset, subject, sequence, camera), mut frames) in runs {
            frames.sort_by_key(|(f, _)| *f);
            let numbers: Vec<u32> = frames.iter().map(|(f, _)| *f).collect();
            for run in dak_core::gaps::consecutive_runs(&numbers) {
                sequences.push(SourceSequence {
                    dataset: dataset.clone(),
                    subject: subject.clone(),
                    sequence: sequence.clone(),
                    camera: camera.clone(),
                    first_frame: frames[run.start].0,
                    poses: frames[run].iter().map(|(_, p)| *p).collect(),
                });
            }
        }
        Ok(SourceLibrary { sequences, cameras, inputs: dirs.to_vec() })
    }

    /// A library from sequences already in memory (tests, benches).
    pub fn from_sequences(sequences: Vec<(String, Vec<Pose3>)>, cameras: Vec<CameraRecord>) -> Self {
        let sequences = sequences
            .into_iter()
            .map(|(name, poses)| SourceSequence {
                dataset: "memory".into(),
                subject: "S0".into(),
                sequence: name,
                camera: "0".into(),
                first_frame: 0,
                poses: poses
                    .iter()
                    .map(|p| {
                        let mut flat = [0.0; NUM_JOINTS * 3];
                        dak_core::skeleton::pose_to_flat(p, &mut flat);
                        flat
                    })
                    .collect(),
            })
            .collect();
        SourceLibrary { sequences, cameras, inputs: Vec::new() }
    }

    pub fn sequences(&self) -> &[SourceSequence] {
        &self.sequences
    }

    pub fn cameras(&self) -> &[CameraRecord] {
        &self.cameras
    }

    pub fn inputs(&self) -> &[PathBuf] {
        &self.inputs
    }

    pub fn frames(&self) -> usize {
        self.sequences.iter().map(SourceSequence::len).sum()
    }

    /// A sampler of windows of `len` frames, uniform over all windows.
    pub fn windows(&self, len: usize) -> Result<WindowSampler<'_>> {
        let mut cumulative = Vec::with_capacity(self.sequences.len());
        let mut total = 0u64;
        for s in &self.sequences {
            total += (s.len() + 1).saturating_sub(len) as u64;
            cumulative.push(total);
        }
        if len == 0 || total == 0 {
            let longest = self.sequences.iter().map(SourceSequence::len).max().unwrap_or(0);
            return Err(Error::NoClips(format!(
                "no run of {len} consecutive valid frames in {} source sequences (longest: {longest}){}",
                self.sequences.len(),
                describe_inputs(&self.inputs)
            )));
        }
        Ok(WindowSampler { library: self, len, cumulative, total })
    }
}

fn describe_inputs(inputs: &[PathBuf]) -> String {
    if inputs.is_empty() {
        String::new()
    } else {
        format!(" of {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
    }
}

/// Draws reference windows uniformly over every possible start.
#[derive(Debug)]
pub struct WindowSampler<'a> {
    library: &'a SourceLibrary,
    len: usize,
    cumulative: Vec<u64>,
    total: u64,
}

impl WindowSampler<'_> {
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `k`-th window in a fixed order (sequence, then start).
    pub fn get(&self, k: u64) -> ReferenceClip {
        let k = k % self.total;
        let sequence = self.cumulative.partition_point(|&c| c <= k);
        let before = if sequence == 0 { 0 } else { self.cumulative[sequence - 1] };
        let start = (k - before) as usize;
        let s = &self.library.sequences[sequence];
        ReferenceClip { sequence, start, poses: (start..start + self.len).map(|i| s.pose(i)).collect() }
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> ReferenceClip {
        self.get(rng.random_range(0..self.total))
    }

    pub fn sequence(&self, clip: &ReferenceClip) -> &SourceSequence {
        &self.library.sequences[clip.sequence]
    }
}

/// Check a directory list is non-empty and exists, naming the first bad one.
pub fn check_dirs(dirs: &[PathBuf]) -> Result<()> {
    if dirs.is_empty() {
        return Err(Error::Config { field: "shards", reason: "give at least one source shard directory".into() });
    }
    for d in dirs {
        let reason = match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => "a file, not a shard directory",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such directory",
            Err(_) => "not a readable directory",
        };
        return Err(Error::Source { path: d.clone(), reason: reason.into() });
    }
    // The same directory twice (or by another path) would put each of its
    // frames into its video twice: motion at half speed, every frame scored twice.
    let mut seen: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for d in dirs {
        let canonical = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        if seen.contains(&canonical) {
            return Err(Error::Source { path: d.clone(), reason: "given twice as a shard directory".into() });
        }
        seen.push(canonical);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;
    use rand::SeedableRng;

    fn seq(name: &str, frames: usize, offset: f64) -> (String, Vec<Pose3>) {
        (name.into(), (0..frames).map(|f| [Vector3::new(offset + f as f64, 0.0, 4000.0); NUM_JOINTS]).collect())
    }

    #[test]
    fn a_directory_given_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        check_dirs(&[a.clone(), b.clone()]).unwrap();
        let again = a.join("..").join("a");
        let err = check_dirs(&[a.clone(), b, again]).unwrap_err().to_string();
        assert!(err.contains("given twice") && err.contains("a"), "{err}");
    }

    #[test]
    fn windows_cover_every_start_once() {
        let lib = SourceLibrary::from_sequences(vec![seq("a", 5, 0.0), seq("b", 2, 100.0), seq("c", 4, 200.0)], vec![]);
        let w = lib.windows(3).unwrap();
        // 3 windows in a, none in b (too short), 2 in c.
        assert_eq!(w.total(), 5);
        let starts: Vec<(usize, usize)> = (0..5)
            .map(|k| {
                let c = w.get(k);
                (c.sequence, c.start)
            })
            .collect();
        assert_eq!(starts, vec![(0, 0), (0, 1), (0, 2), (2, 0), (2, 1)]);
        let c = w.get(4);
        assert_eq!(c.poses.len(), 3);
        assert_eq!(c.poses[0][0].x, 201.0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let c = w.sample(&mut rng);
            assert_ne!(c.sequence, 1);
        }
        assert!(lib.windows(6).unwrap_err().to_string().contains("longest: 5"));
    }
}
