//! Whether a stage is up to date: a stamp beside its output records the
//! command and the fingerprints of its inputs and of the output it left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Files that mark a directory finished and change whenever its content
/// does: shard manifests (they hold every file's SHA-256), training
/// checkpoints' index, fitted models, evaluation and inference results.
const MARKERS: &[&str] =
    &["manifest.json", "checkpoint.json", "model.json", "weights.safetensors", "results.json", "poses.json"];

/// Files above this size are fingerprinted by size and modification time.
const HASH_LIMIT: u64 = 256 << 20;

const STAMP_NAME: &str = ".dak-stage.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub stage: String,
    pub command: Vec<String>,
    /// Input path → fingerprint when the stage ran.
    pub inputs: BTreeMap<String, String>,
    /// Fingerprint of the output it left.
    pub output: String,
}

/// Where the stamp of an output lives: inside an output directory, beside
/// an output file; an output not made yet is taken for a file if its name
/// has an extension.
pub fn stamp_path(output: &Path) -> PathBuf {
    let is_file = if output.exists() { !output.is_dir() } else { output.extension().is_some() };
    if is_file {
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        output.with_file_name(format!(".{name}{STAMP_NAME}"))
    } else {
        output.join(STAMP_NAME)
    }
}

pub fn read_stamp(output: &Path) -> Option<Stamp> {
    let text = std::fs::read(stamp_path(output)).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn write_stamp(output: &Path, stamp: &Stamp) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(stamp)?;
    dak_io::atomic::write_atomic(&stamp_path(output), &text)?;
    Ok(())
}

pub fn remove_stamp(output: &Path) -> anyhow::Result<()> {
    Ok(dak_io::atomic::remove_if_present(&stamp_path(output))?)
}

/// Held while a stage makes its output: a second run that reaches the same
/// output stops with a clear error instead of writing it at the same time.
/// `.NAME.dak-lock` beside the output holds the holder's process id; a
/// lock whose process is gone (a killed run) is taken over.
#[derive(Debug)]
pub struct StageLock {
    path: PathBuf,
}

impl StageLock {
    pub fn path_for(output: &Path) -> PathBuf {
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        output.with_file_name(format!(".{name}.dak-lock"))
    }

    pub fn acquire(output: &Path, stage: &str) -> anyhow::Result<StageLock> {
        let path = Self::path_for(output);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Written whole under a name of its own, then linked: a link fails
        // if the lock exists, so no reader ever sees a lock without its id.
        let pid = std::process::id();
        let draft = dak_io::atomic::tmp_path_for(&path);
        std::fs::write(&draft, format!("{pid}\n")).with_context(|| format!("writing {}", draft.display()))?;
        let taken = (|| {
            for _ in 0..2 {
                match std::fs::hard_link(&draft, &path) {
                    Ok(()) => return Ok(StageLock { path: path.clone() }),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                        match holder {
                            Some(holder) if holder != pid && process_is_running(holder) => anyhow::bail!(
                                "stage `{stage}`: {} is being made by another run (process {holder}); wait for it \
                                 to finish, or delete {} if no run is going",
                                output.display(),
                                path.display()
                            ),
                            // Left by a run that is gone: take it over.
                            _ => dak_io::atomic::remove_if_present(&path)?,
                        }
                    }
                    Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
                }
            }
            anyhow::bail!("stage `{stage}`: could not take {} (another run keeps taking it)", path.display())
        })();
        let _ = std::fs::remove_file(&draft);
        taken
    }
}

impl Drop for StageLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists (on Linux; elsewhere, assumed so).
fn process_is_running(pid: u32) -> bool {
    !cfg!(target_os = "linux") || Path::new(&format!("/proc/{pid}")).exists()
}

/// A digest of what `path` holds now; `None` when it does not exist.
pub fn fingerprint(path: &Path) -> anyhow::Result<Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // What the digest covers, hashed once at the end.
    let mut facts = Vec::new();
    if meta.is_file() {
        file_digest(&mut facts, path, &meta)?;
    } else {
        let markers: Vec<PathBuf> = MARKERS.iter().map(|m| path.join(m)).filter(|p| p.is_file()).collect();
        if markers.is_empty() {
            // Raw data or an unfinished output: names, sizes and times of every file.
            listing_digest(&mut facts, path, path, &mut Vec::new())?;
        }
        for m in markers {
            facts.extend_from_slice(m.file_name().unwrap_or_default().as_encoded_bytes());
            file_digest(&mut facts, &m, &std::fs::metadata(&m)?)?;
        }
    }
    Ok(Some(dak_io::atomic::sha256_hex(&facts)))
}

fn file_digest(facts: &mut Vec<u8>, path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    if meta.len() > HASH_LIMIT {
        facts.extend_from_slice(size_and_time(meta).as_bytes());
    } else {
        let (_, sha) = dak_io::atomic::sha256_file(path)?;
        facts.extend_from_slice(sha.as_bytes());
    }
    Ok(())
}

fn size_and_time(meta: &std::fs::Metadata) -> String {
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    format!("{}:{}", meta.len(), mtime.as_nanos())
}

/// Raw data often links to files or folders kept elsewhere: links are
/// followed (a changed target changes the digest), each folder once.
fn listing_digest(facts: &mut Vec<u8>, root: &Path, dir: &Path, seen: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let canonical = std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    if seen.contains(&canonical) {
        return Ok(());
    }
    seen.push(canonical);
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name() == STAMP_NAME || entry.file_name().to_string_lossy().ends_with(".dak-lock") {
            continue;
        }
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // A dangling link counts as itself.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => entry.metadata()?,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if meta.is_dir() {
            listing_digest(facts, root, &path, seen)?;
        } else {
            facts.extend_from_slice(path.strip_prefix(root).unwrap_or(&path).as_os_str().as_encoded_bytes());
            facts.extend_from_slice(size_and_time(&meta).as_bytes());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_markers_not_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(fingerprint(&d.join("absent")).unwrap(), None);
        std::fs::write(d.join("manifest.json"), "a").unwrap();
        let a = fingerprint(d).unwrap().unwrap();
        // A nested stage's output (eval-*/) does not change the run's fingerprint.
        std::fs::create_dir(d.join("eval-demo")).unwrap();
        std::fs::write(d.join("eval-demo/results.json"), "x").unwrap();
        assert_eq!(fingerprint(d).unwrap().unwrap(), a);
        std::fs::write(d.join("manifest.json"), "b").unwrap();
        assert_ne!(fingerprint(d).unwrap().unwrap(), a);
        assert_eq!(stamp_path(Path::new("x/stats.json")), Path::new("x/.stats.json.dak-stage.json"));
        assert_eq!(stamp_path(d), d.join(STAMP_NAME));
        // An existing output file without an extension has its stamp beside it.
        std::fs::write(d.join("stats"), "{}").unwrap();
        assert_eq!(stamp_path(&d.join("stats")), d.join(".stats.dak-stage.json"));
    }

    /// One holder at a time; the lock goes with its holder, and one left
    /// by a process that is gone is taken over.
    #[test]
    fn a_stage_lock_has_one_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("shards/demo");
        let lock = StageLock::acquire(&out, "prep").unwrap();
        let path = StageLock::path_for(&out);
        assert_eq!(path, dir.path().join("shards/.demo.dak-lock"));
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        drop(lock);
        assert!(!path.exists());
        // Held by a running process (pid 1 is always there).
        std::fs::write(&path, "1\n").unwrap();
        let err = StageLock::acquire(&out, "prep").unwrap_err().to_string();
        assert!(err.contains("being made by another run (process 1)") && err.contains(".demo.dak-lock"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1\n", "left to its holder");
        // Left by a process that has ended, or unreadable: taken over.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        for content in [format!("{gone}\n"), String::new()] {
            std::fs::write(&path, content).unwrap();
            let lock = StageLock::acquire(&out, "prep").unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
            drop(lock);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("shards")).unwrap().collect();
        assert!(names.is_empty(), "no drafts left: {names:?}");
    }

    /// Raw data linked from elsewhere: a change of the target is a change,
    /// and a link back up the tree ends.
    #[cfg(unix)]
    #[test]
    fn listings_follow_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let (data, elsewhere) = (dir.path().join("data"), dir.path().join("elsewhere"));
        std::fs::create_dir_all(data.join("S1")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("annot.mat"), "a").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("annot.mat"), data.join("S1/annot.mat")).unwrap();
        std::os::unix::fs::symlink(&data, data.join("S1/loop")).unwrap();
        let before = fingerprint(&data).unwrap().unwrap();
        std::fs::write(elsewhere.join("annot.mat"), "a longer file").unwrap();
        assert_ne!(fingerprint(&data).unwrap().unwrap(), before);
        std::os::unix::fs::symlink(dir.path().join("gone"), data.join("dangling")).unwrap();
        assert!(fingerprint(&data).unwrap().is_some());
    }
}
