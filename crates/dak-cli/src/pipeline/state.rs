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

/// Suffix of [`StageLock`] files (never part of a fingerprint).
const LOCK_SUFFIX: &str = ".dak-lock";

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
        stamp_beside(output)
    } else {
        output.join(STAMP_NAME)
    }
}

fn stamp_beside(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!(".{name}{STAMP_NAME}"))
}

pub fn read_stamp(output: &Path) -> Option<Stamp> {
    let read = |path: PathBuf| serde_json::from_slice(&std::fs::read(path).ok()?).ok();
    // A claim may lie beside a dotted directory made after it (see write_stamp).
    read(stamp_path(output)).or_else(|| output.is_dir().then(|| read(stamp_beside(output))).flatten())
}

pub fn write_stamp(output: &Path, stamp: &Stamp) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(stamp)?;
    let path = stamp_path(output);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    dak_io::atomic::write_atomic(&path, &text)?;
    // A claim made while a dotted directory (`runs/v1.5`) did not exist yet
    // went beside it, taken for a file.
    if output.is_dir() {
        dak_io::atomic::remove_if_present(&stamp_beside(output))?;
    }
    Ok(())
}

/// Marks `output` as being made by `stage` (a stamp without an output
/// fingerprint): a run stopped half-way is this pipeline's to redo, while
/// a finished output without any stamp is someone else's.
pub fn claim(output: &Path, stage: &str, command: &[String]) -> anyhow::Result<()> {
    let claim =
        Stamp { stage: stage.into(), command: command.to_vec(), inputs: BTreeMap::new(), output: String::new() };
    write_stamp(output, &claim)
}

/// The file that makes `output` a finished output, if any (one of the
/// markers its fingerprint reads, or the output itself when a file).
pub fn finished_output(output: &Path) -> Option<PathBuf> {
    if output.is_file() {
        return Some(output.to_path_buf());
    }
    MARKERS.iter().map(|m| output.join(m)).find(|p| p.is_file())
}

/// Held while a stage makes its output: a second run that reaches the same
/// output stops with a clear error instead of writing it at the same time.
/// An advisory lock (`flock`) on `.NAME.dak-lock` beside the output, which
/// names the holder's process: the system lets go of it when that process
/// ends, however it ends, so a killed run leaves nothing to clear by hand.
/// It is the pipeline process's: a stage command left running after its
/// pipeline was killed holds none.
#[derive(Debug)]
pub struct StageLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl StageLock {
    pub fn path_for(output: &Path) -> PathBuf {
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        output.with_file_name(format!(".{name}{LOCK_SUFFIX}"))
    }

    pub fn acquire(output: &Path, stage: &str) -> anyhow::Result<StageLock> {
        use std::io::Write;
        let path = Self::path_for(output);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let context = || format!("locking {}", path.display());
        for _ in 0..8 {
            let opened = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
            let (mut file, ours) = match opened {
                Ok(file) => (file, true),
                // Another user's (shared storage): it can be locked read-only,
                // and if nobody holds it, replaced.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    (std::fs::File::open(&path).with_context(context)?, false)
                }
                Err(e) => return Err(e).with_context(context),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = match holder.trim() {
                        "" => "another run".to_string(),
                        pid => format!("another run (process {pid})"),
                    };
                    anyhow::bail!(
                        "stage `{stage}`: {} is being made by {holder}; wait for it to finish",
                        output.display()
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(context),
            }
            // A holder that was letting go removed the file after we opened
            // it: a lock on a removed file guards nothing, so start over.
            if !is_the_file_at(&file, &path) {
                continue;
            }
            if !ours {
                // Left by another user's run that has ended: make our own.
                std::fs::remove_file(&path).with_context(context)?;
                continue;
            }
            file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())).with_context(context)?;
            return Ok(StageLock { path, _file: file });
        }
        anyhow::bail!("stage `{stage}`: could not lock {} (other runs keep taking it)", path.display())
    }
}

impl Drop for StageLock {
    /// The file goes while still locked, the lock with the handle after.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn is_the_file_at(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_the_file_at(_: &std::fs::File, path: &Path) -> bool {
    path.exists()
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

/// A file of `output` that its marker lists (a manifest's shards, a
/// checkpoint's weights) and that is gone or not of the size written there:
/// an output damaged by hand after its stamp, which the markers' own
/// fingerprint cannot see. Stat calls only.
pub fn damaged_file(output: &Path) -> Option<PathBuf> {
    let read = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(output.join(name)).ok()?).ok()
    };
    let mut listed: Vec<(String, Option<u64>)> = Vec::new();
    if let Some(manifest) = read("manifest.json") {
        for f in manifest["files"].as_array().into_iter().flatten() {
            listed.extend(f["path"].as_str().map(|p| (p.to_string(), f["bytes"].as_u64())));
        }
    }
    if let Some(checkpoint) = read("checkpoint.json") {
        listed.extend(checkpoint["file"].as_str().map(|p| (p.to_string(), checkpoint["bytes"].as_u64())));
    }
    listed
        .into_iter()
        .map(|(name, bytes)| (output.join(name), bytes))
        .find(|(path, bytes)| match std::fs::metadata(path) {
            Ok(meta) => bytes.is_some_and(|b| b != meta.len()),
            Err(_) => true,
        })
        .map(|(path, _)| path)
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

fn path_bytes<'a>(root: &Path, path: &'a Path) -> &'a [u8] {
    path.strip_prefix(root).unwrap_or(path).as_os_str().as_encoded_bytes()
}

/// Raw data often links to files or folders kept elsewhere: links are
/// followed (a changed target changes the digest), each folder once.
fn listing_digest(facts: &mut Vec<u8>, root: &Path, dir: &Path, seen: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let canonical = std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    if seen.contains(&canonical) {
        return Ok(());
    }
    seen.push(canonical);
    // A folder we may not read (a mount's root-owned lost+found) holds
    // nothing a converter reads either: it counts as unreadable, not as an error.
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && dir != root => {
            facts.extend_from_slice(path_bytes(root, dir));
            facts.extend_from_slice(b":unreadable");
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut entries: Vec<_> =
        listing.collect::<Result<_, _>>().with_context(|| format!("listing {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name() == STAMP_NAME || entry.file_name().to_string_lossy().ends_with(LOCK_SUFFIX) {
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
            facts.extend_from_slice(path_bytes(root, &path));
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

    /// A stage's claim on a directory named with a dot that does not exist
    /// yet (`runs/v1.5`) goes beside it; it is still found once the stage
    /// has made the directory, and the final stamp replaces it inside.
    #[test]
    fn a_claim_on_a_dotted_directory_is_found_and_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("runs/v1.5");
        claim(&out, "train", &["train".into()]).unwrap();
        assert!(dir.path().join("runs/.v1.5.dak-stage.json").is_file());
        std::fs::create_dir_all(&out).unwrap();
        let found = read_stamp(&out).unwrap();
        assert_eq!((found.stage.as_str(), found.output.as_str()), ("train", ""));
        let done = Stamp { output: "f".into(), ..found };
        write_stamp(&out, &done).unwrap();
        assert!(out.join(STAMP_NAME).is_file() && !dir.path().join("runs/.v1.5.dak-stage.json").exists());
        assert_eq!(read_stamp(&out).unwrap().output, "f");
        // A plain directory's claim is made inside it, the directory too.
        let plain = dir.path().join("shards/demo");
        claim(&plain, "prep", &[]).unwrap();
        assert!(plain.join(STAMP_NAME).is_file());
    }

    /// A shard or checkpoint file removed or replaced by hand is found from
    /// the sizes its manifest or checkpoint.json wrote down.
    #[test]
    fn files_damaged_after_the_stamp_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(damaged_file(d), None);
        std::fs::write(d.join("manifest.json"), r#"{"files": [{"path": "part-00000.parquet", "bytes": 3}]}"#).unwrap();
        std::fs::write(d.join("checkpoint.json"), r#"{"file": "checkpoint-e0001.safetensors", "bytes": 2}"#).unwrap();
        std::fs::write(d.join("part-00000.parquet"), "abc").unwrap();
        std::fs::write(d.join("checkpoint-e0001.safetensors"), "ab").unwrap();
        assert_eq!(damaged_file(d), None);
        std::fs::write(d.join("checkpoint-e0001.safetensors"), "a").unwrap();
        assert_eq!(damaged_file(d), Some(d.join("checkpoint-e0001.safetensors")));
        std::fs::write(d.join("checkpoint-e0001.safetensors"), "ab").unwrap();
        std::fs::remove_file(d.join("part-00000.parquet")).unwrap();
        assert_eq!(damaged_file(d), Some(d.join("part-00000.parquet")));
    }

    /// One holder at a time, another process's or this one's; the file
    /// goes with its holder, and a file no one locks is no lock.
    #[test]
    fn a_stage_lock_has_one_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("shards/demo");
        let lock = StageLock::acquire(&out, "prep").unwrap();
        let path = StageLock::path_for(&out);
        assert_eq!(path, dir.path().join("shards/.demo.dak-lock"));
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        let err = StageLock::acquire(&out, "prep").unwrap_err().to_string();
        let want =
            format!("stage `prep`: {} is being made by another run (process {})", out.display(), std::process::id());
        assert!(err.contains(&want), "{err}");
        drop(lock);
        assert!(!path.exists());
        // Left behind by a killed run: a file, but nobody's lock.
        std::fs::write(&path, "4242\n").unwrap();
        let lock = StageLock::acquire(&out, "prep").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
        drop(lock);
        // Another user's, read-only to us (as root: writable anyway).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(&path, "4343\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            let lock = StageLock::acquire(&out, "prep").unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), std::process::id().to_string());
            drop(lock);
        }
        assert_eq!(std::fs::read_dir(dir.path().join("shards")).unwrap().count(), 0);
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
