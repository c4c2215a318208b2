//! One entry point per reader of files that come from outside: each takes
//! arbitrary bytes and must return (an error value is fine) without
//! panicking, hanging or allocating without bound. `fuzz/` drives them with
//! libFuzzer (`cargo fuzz`); the test below drives them on stable with a
//! deterministic mutation campaign over the corpus in `fuzz/corpus/`.

use std::path::{Path, PathBuf};

use dak_io::Table;

/// A fuzz entry point: arbitrary bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Name and entry point of every target (names match `fuzz/fuzz_targets/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("npy", npy),
    ("npz", npz),
    ("mat5", mat5),
    ("h5mat", h5mat),
    ("pickle", pickle),
    ("parquet_shard", parquet_shard),
    ("keypoints_json", keypoints_json),
    ("pipeline_toml", pipeline_toml),
];

/// Readers that take a path get the bytes in a file of their own per
/// process and thread (the fuzzer may run several).
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dak-fuzz-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

pub fn npy(data: &[u8]) {
    let _ = dak_formats::npy::parse(data);
}

/// Both ways an `.npz` is read: whole, and streamed with large buffers
/// spilled to a file (then every spilled array is read back).
pub fn npz(data: &[u8]) {
    let path = scratch_file("input.npz", data);
    if let Ok(mut npz) = dak_formats::npy::Npz::open(&path) {
        for name in npz.names() {
            let _ = npz.get(&name);
            let spill_file = std::fs::File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(path.with_extension("spill"))
                .expect("spill file");
            let spill = dak_formats::spill::Spill::new(spill_file, 16);
            if let Ok(dak_formats::npy::Npy::Object(value)) = npz.get_spilled(&name, &spill) {
                load_arrays(&value);
            }
        }
    }
}

fn load_arrays(value: &dak_formats::pickle::Value) {
    use dak_formats::pickle::Value;
    match value {
        Value::SpilledArray(a) => {
            let _ = a.load();
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) | Value::ObjectArray { items, .. } => {
            items.iter().for_each(load_arrays)
        }
        Value::Dict(items) => items.iter().for_each(|(k, v)| {
            load_arrays(k);
            load_arrays(v)
        }),
        _ => {}
    }
}

pub fn mat5(data: &[u8]) {
    let _ = dak_formats::mat::parse(data);
}

pub fn h5mat(data: &[u8]) {
    let path = scratch_file("input.mat", data);
    if let Ok(mat) = dak_formats::h5mat::H5Mat::open(&path) {
        for name in mat.names().unwrap_or_default() {
            let _ = mat.array(&name);
            let _ = mat.matlab_class(&name);
        }
    }
}

pub fn pickle(data: &[u8]) {
    let _ = dak_formats::pickle::from_bytes(data);
}

/// A Parquet file read as each of our tables, every value touched.
pub fn parquet_shard(data: &[u8]) {
    let path = scratch_file("part-00000.parquet", data);
    if let Ok(reader) = dak_io::ShardReader::open(&path, Table::SourceFrames) {
        for batch in reader.source_frames().map_while(Result::ok) {
            for i in 0..batch.len() {
                let _ = (batch.joints_3d_camera_mm(i), batch.joints_2d_px(i), batch.detected_2d_px(i));
            }
        }
    }
    if let Ok(reader) = dak_io::ShardReader::open(&path, Table::SyntheticClips) {
        for batch in reader.synthetic_clips().map_while(Result::ok) {
            let _ = batch.len();
        }
    }
    let _ = dak_io::read_camera_table(&path);
}

/// The same bytes as a COCO results file and as an OpenPose frame.
pub fn keypoints_json(data: &[u8]) {
    let path = scratch_file("results.json", data);
    let _ = dak_keypoints::read_coco(&path, 0.3);
    let dir = path.with_file_name("openpose");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    std::fs::write(dir.join("frame_000000000000_keypoints.json"), data).expect("scratch file");
    if let Ok(track) = dak_keypoints::read_openpose(&dir, 0.3) {
        let _ = dak_keypoints::fill(&track, 0.3);
    }
}

pub fn pipeline_toml(data: &[u8]) {
    let _ = dak_pipeline::parse_document(Path::new("fuzz.toml"), &String::from_utf8_lossy(data), &[]);
}

/// Deterministic mutations of a seed: bit flips, byte changes, truncation,
/// duplicated and deleted ranges, and "interesting" integers written over
/// length fields.
pub fn mutate(seed: &[u8], state: &mut u64) -> Vec<u8> {
    let mut next = || {
        // xorshift64*: fixed, portable, good enough to pick mutations.
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut out = seed.to_vec();
    for _ in 0..1 + next() % 4 {
        let len = out.len().max(1) as u64;
        let at = (next() % len) as usize;
        match next() % 6 {
            0 if !out.is_empty() => out[at] ^= 1 << (next() % 8),
            1 if !out.is_empty() => out[at] = next() as u8,
            2 => out.truncate(at),
            3 if !out.is_empty() => {
                let end = (at + 1 + (next() % 64) as usize).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 if !out.is_empty() => {
                let end = (at + 1 + (next() % 64) as usize).min(out.len());
                out.drain(at..end);
            }
            _ => {
                let values: [u32; 6] = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0x0001_0000];
                let v = values[(next() % values.len() as u64) as usize].to_le_bytes();
                for (i, b) in v.iter().enumerate() {
                    if let Some(slot) = out.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
        }
    }
    out
}

/// The seeds of `target` in `fuzz/corpus/TARGET/`.
pub fn corpus(root: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root.join("fuzz/corpus").join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("corpus file");
                    (p, bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    seeds.sort();
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("workspace root").to_path_buf()
    }

    /// Every target on every seed and on mutations of it: a panic fails the
    /// test and names the target and the input, which is kept for a
    /// reproduction. (cargo fuzz explores far more; this runs everywhere.)
    /// `regression-*` inputs replay as they are: some are slow by design
    /// (they hit a resource limit), and mutating them finds little.
    #[test]
    fn readers_survive_mutated_corpus_inputs() {
        let mutations_per_seed: usize =
            std::env::var("DAK_FUZZ_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        for &(target, run) in TARGETS {
            let seeds = corpus(&root(), target);
            assert!(!seeds.is_empty(), "no corpus for {target} in fuzz/corpus/{target}");
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ target.len() as u64;
            for (path, seed) in &seeds {
                let regression = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("regression-"));
                let mutations = if regression { 0 } else { mutations_per_seed };
                let inputs = std::iter::once(seed.clone()).chain((0..mutations).map(|_| mutate(seed, &mut state)));
                for input in inputs {
                    if std::panic::catch_unwind(|| run(&input)).is_err() {
                        let keep = std::env::temp_dir().join(format!("dak-fuzz-crash-{target}"));
                        std::fs::write(&keep, &input).unwrap();
                        panic!(
                            "{target} panicked on a mutation of {} (input kept in {})",
                            path.display(),
                            keep.display()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn mutations_are_deterministic_and_vary() {
        let seed = b"0123456789abcdef".repeat(4);
        let (mut a, mut b) = (7u64, 7u64);
        let xs: Vec<_> = (0..20).map(|_| mutate(&seed, &mut a)).collect();
        let ys: Vec<_> = (0..20).map(|_| mutate(&seed, &mut b)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().filter(|x| **x != seed).count() >= 15);
    }
}
