//! One output split over several processes (cluster array jobs).
//!
//! Writers lay an output out in numbered groups, one file per group
//! (`part-NNNNN.parquet`), whose bytes depend only on the group. Shard I of N
//! writes the groups k with k mod N = I and records them in
//! `manifest.shard-IIIII-of-NNNNN.json`; [`merge`] joins the shard manifests
//! into `manifest.json`. A single process is shard 0 of 1 and goes through
//! the same [`merge_manifests`], so its manifest equals the merged one byte
//! for byte.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::remove_if_present;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::{CAMERAS_FILE, MANIFEST_FILE};

/// Which part of an output this process writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    index: usize,
    count: usize,
}

impl Default for ShardSpec {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl ShardSpec {
    /// The whole output in one process.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::BadShard { index, count });
        }
        Ok(ShardSpec { index, count })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// Round-robin, so shards get similar work when groups grow in order.
    pub fn owns(&self, group: usize) -> bool {
        group % self.count == self.index
    }

    pub fn owned(&self, groups: usize) -> Vec<usize> {
        (self.index..groups).step_by(self.count).collect()
    }

    /// Shard 0 also writes the files every shard would write alike (the camera table).
    pub fn writes_shared_files(&self) -> bool {
        self.index == 0
    }

    pub fn manifest_name(&self) -> String {
        if self.is_whole() {
            MANIFEST_FILE.to_string()
        } else {
            format!("manifest.shard-{:05}-of-{:05}.json", self.index, self.count)
        }
    }
}

/// `(index, count)` of a shard manifest's file name.
fn parse_shard_manifest_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("manifest.shard-")?.strip_suffix(".json")?;
    let (i, n) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// Every shard manifest in `dir`, as (index, count, path).
pub fn shard_manifests(dir: &Path) -> Result<Vec<(usize, usize, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path: dir.to_path_buf(), source: e }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io(dir))?;
        if let Some((i, n)) = parse_shard_manifest_name(&entry.file_name().to_string_lossy()) {
            found.push((i, n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The file of group `k`: `part-NNNNN.parquet` (more digits past 99999).
pub fn group_file_name(group: usize) -> String {
    format!("part-{group:05}.parquet")
}

/// The group number of a [`group_file_name`]. Only our prefix: an output
/// folder may hold other tools' Parquet files (`train-00000-of-00003.parquet`),
/// which a run must never take for its own leftovers and delete.
pub(crate) fn group_of(name: &str) -> Option<usize> {
    let idx = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    (idx.len() >= 5 && idx.bytes().all(|b| b.is_ascii_digit())).then(|| idx.parse().ok()).flatten()
}

/// What a shard manifest records under `extra.shard`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    pub index: usize,
    pub count: usize,
    /// Groups of the whole output.
    pub groups: usize,
    /// Groups this shard wrote.
    pub owned: Vec<usize>,
    /// Producer-specific partial results that [`Finalize`] combines
    /// (e.g. per-group statistics); null when there are none.
    pub partial: serde_json::Value,
}

/// Combines the shards' partial results into the final `extra`; receives the
/// partials in shard order.
pub type Finalize<'a> = &'a dyn Fn(&mut serde_json::Value, &[serde_json::Value]) -> Result<()>;

/// Nothing to combine.
pub fn no_partials(_: &mut serde_json::Value, _: &[serde_json::Value]) -> Result<()> {
    Ok(())
}

/// `manifest` with its shard record attached under `extra.shard`.
pub fn with_record(mut manifest: Manifest, record: &ShardRecord) -> Manifest {
    if !manifest.extra.is_object() {
        manifest.extra = serde_json::json!({});
    }
    manifest.extra["shard"] = serde_json::to_value(record).expect("record serialises");
    manifest
}

/// What makes `other` an output of another run than `base`, as
/// `what: other's (base's)` lines: the schema, the seed, the command's
/// arguments one has and the other lacks, and every leaf of `extra` that
/// differs (by its path), at most eight in all.
fn differences(base: &Manifest, other: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    if (&base.schema, base.schema_version) != (&other.schema, other.schema_version) {
        out.push(format!(
            "schema: {} v{} ({} v{})",
            other.schema, other.schema_version, base.schema, base.schema_version
        ));
    }
    if base.seed != other.seed {
        let seed = |s: Option<u64>| s.map_or("none".to_string(), |s| s.to_string());
        out.push(format!("seed: {} ({})", seed(other.seed), seed(base.seed)));
    }
    if base.command != other.command {
        let lacking = |a: &[String], b: &[String]| -> String {
            a.iter().filter(|w| !b.contains(w)).map(String::as_str).collect::<Vec<_>>().join(" ")
        };
        let (more, fewer) = (lacking(&other.command, &base.command), lacking(&base.command, &other.command));
        out.push(if more.is_empty() && fewer.is_empty() {
            format!("command: the same arguments in another order: `{}`", other.command.join(" "))
        } else {
            format!("command: `{more}` (`{fewer}`)")
        });
    }
    out.extend(crate::manifest::value_differences("extra", &base.extra, &other.extra));
    out.truncate(8);
    out
}

/// Join shard manifests (each with `extra.shard`) into the whole output's
/// manifest. `where_` names the directory in errors.
pub fn merge_manifests(where_: &Path, shards: Vec<Manifest>, finalize: Finalize) -> Result<Manifest> {
    let mismatch = |what: String| Error::ShardMismatch { dir: where_.to_path_buf(), what };
    let mut parts = Vec::with_capacity(shards.len());
    for mut m in shards {
        let record = m
            .extra
            .as_object_mut()
            .and_then(|o| o.remove("shard"))
            .ok_or_else(|| mismatch("a shard manifest has no `extra.shard` record".into()))?;
        let record: ShardRecord =
            serde_json::from_value(record).map_err(|e| mismatch(format!("unreadable shard record: {e}")))?;
        parts.push((record, m));
    }
    parts.sort_by_key(|(r, _)| r.index);
    let Some((first, base)) = parts.first() else { return Err(mismatch("no shard manifests".into())) };
    let (count, groups) = (first.count, first.groups);
    let indices: Vec<usize> = parts.iter().map(|(r, _)| r.index).collect();
    let missing: Vec<usize> = (0..count).filter(|i| !indices.contains(i)).collect();
    if !missing.is_empty() || indices.len() != count {
        return Err(Error::MissingShards { dir: where_.to_path_buf(), count, missing });
    }
    let mut seen = BTreeSet::new();
    for (r, m) in &parts {
        if r.count != count || r.groups != groups {
            return Err(mismatch(format!(
                "shard {} is {} of {} with {} groups, shard 0 is of {count} with {groups}: outputs of different runs",
                r.index, r.index, r.count, r.groups
            )));
        }
        let differences = differences(base, m);
        if !differences.is_empty() {
            return Err(mismatch(format!(
                "shard {} was made with other settings, inputs or command than shard {}: {}",
                r.index,
                first.index,
                differences.join("; ")
            )));
        }
        for &g in &r.owned {
            if g >= groups || !seen.insert(g) {
                return Err(mismatch(format!("group {g} is claimed twice or out of range")));
            }
        }
    }
    if seen.len() != groups {
        return Err(mismatch(format!("{} of {groups} groups written", seen.len())));
    }
    let mut files: Vec<_> = parts.iter().flat_map(|(_, m)| m.files.iter().cloned()).collect();
    // Main table first, by name; then the rest (camera table) by name.
    files.sort_by(|a, b| (a.schema != base.schema, &a.path).cmp(&(b.schema != base.schema, &b.path)));
    files.dedup();
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(mismatch(format!("{} is listed by two shards with different contents", w[0].path)));
    }
    let partials: Vec<serde_json::Value> = parts.iter().map(|(r, _)| r.partial.clone()).collect();
    let mut extra = base.extra.clone();
    finalize(&mut extra, &partials)?;
    let total_rows = files.iter().filter(|f| f.schema == base.schema).map(|f| f.rows).sum();
    Ok(Manifest { files, total_rows, extra, ..base.clone() })
}

/// What [`merge`] did.
#[derive(Debug)]
pub enum Merged {
    /// Shard manifests joined into `manifest.json` (and then removed).
    Joined(Manifest),
    /// No shard manifests but a finished `manifest.json`: merged before.
    AlreadyMerged(Manifest),
}

/// Join the shard manifests in `dir` into its `manifest.json`: checks every
/// shard is there and consistent and every listed file has its size, removes
/// part files no shard lists (an earlier run's), writes the manifest, then
/// removes the shard manifests.
pub fn merge(dir: &Path, finalize: Finalize) -> Result<Merged> {
    let found = shard_manifests(dir)?;
    if found.is_empty() {
        return match Manifest::read(dir) {
            Ok(m) => Ok(Merged::AlreadyMerged(m)),
            Err(Error::MissingManifest { .. }) => Err(Error::NoShards { dir: dir.to_path_buf() }),
            Err(e) => Err(e),
        };
    }
    let counts: BTreeSet<usize> = found.iter().map(|(_, n, _)| *n).collect();
    if counts.len() > 1 {
        return Err(Error::ShardMismatch {
            dir: dir.to_path_buf(),
            what: format!("shard manifests of runs with different shard counts {counts:?}; remove the stale ones"),
        });
    }
    let shards = found.iter().map(|(_, _, p)| Manifest::read_file(p)).collect::<Result<Vec<_>>>()?;
    let manifest = merge_manifests(dir, shards, finalize)?;
    manifest.verify(dir, false)?;
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    crate::write::remove_our_parquet_files(dir, |name| !listed.contains(name))?;
    manifest.write(dir)?;
    for (_, _, path) in &found {
        std::fs::remove_file(path).map_err(Error::io(path))?;
    }
    Ok(Merged::Joined(manifest))
}

/// Remove shard manifests in `dir` for which `stale` holds.
pub(crate) fn remove_shard_manifests(dir: &Path, stale: impl Fn(usize, usize) -> bool) -> Result<()> {
    for (i, n, path) in shard_manifests(dir)? {
        if stale(i, n) {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

/// Whether `name` is a file shard `spec` writes (its groups, and the shared files for shard 0).
pub(crate) fn shard_writes(spec: ShardSpec, name: &str) -> bool {
    if name == CAMERAS_FILE {
        return spec.writes_shared_files();
    }
    group_of(name).is_some_and(|g| spec.owns(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileEntry;
    use crate::schema::Table;

    fn entry(path: &str, schema: &str, rows: u64) -> FileEntry {
        FileEntry { path: path.into(), schema: schema.into(), rows, bytes: 1, sha256: format!("{path}-sha") }
    }

    fn shard(index: usize, count: usize, owned: Vec<usize>, files: Vec<FileEntry>, partial: i64) -> Manifest {
        let mut m = Manifest::new(Table::SourceFrames, files, vec!["dak-prep".into()], None);
        m.extra = serde_json::json!({ "config": 1 });
        with_record(m, &ShardRecord { index, count, groups: 3, owned, partial: partial.into() })
    }

    fn sum_partials(extra: &mut serde_json::Value, partials: &[serde_json::Value]) -> Result<()> {
        extra["sum"] = partials.iter().map(|p| p.as_i64().unwrap()).sum::<i64>().into();
        Ok(())
    }

    #[test]
    fn spec_ownership_and_names() {
        let s = ShardSpec::new(1, 3).unwrap();
        assert_eq!(s.owned(8), vec![1, 4, 7]);
        assert!(s.owns(4) && !s.owns(5));
        assert_eq!(s.manifest_name(), "manifest.shard-00001-of-00003.json");
        assert_eq!(parse_shard_manifest_name(&s.manifest_name()), Some((1, 3)));
        assert_eq!(ShardSpec::WHOLE.manifest_name(), MANIFEST_FILE);
        assert!(ShardSpec::new(3, 3).is_err() && ShardSpec::new(0, 0).is_err());
        assert_eq!(group_of(&group_file_name(12)), Some(12));
        assert_eq!(group_of(&group_file_name(123_456)), Some(123_456), "past five digits");
        assert_eq!(group_of("cameras.parquet"), None);
        assert_eq!(group_of("train-00000-of-00003.parquet"), None, "another tool's file");
        assert_eq!(group_of("part-12.parquet"), None);
    }

    #[test]
    fn merge_orders_files_and_combines_partials() {
        let cams = entry("cameras.parquet", "cameras", 4);
        let a = shard(
            0,
            2,
            vec![0, 2],
            vec![
                entry("part-00000.parquet", "source_frames", 5),
                entry("part-00002.parquet", "source_frames", 7),
                cams,
            ],
            10,
        );
        let b = shard(1, 2, vec![1], vec![entry("part-00001.parquet", "source_frames", 6)], 32);
        let merged = merge_manifests(Path::new("d"), vec![b, a], &sum_partials).unwrap();
        let names: Vec<&str> = merged.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(names, ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "cameras.parquet"]);
        assert_eq!(merged.total_rows, 18);
        assert_eq!(merged.extra, serde_json::json!({ "config": 1, "sum": 42 }));
    }

    #[test]
    fn merge_refuses_missing_or_inconsistent_shards() {
        let a = shard(0, 2, vec![0, 2], vec![], 0);
        let err = merge_manifests(Path::new("out/x"), vec![a.clone()], &no_partials).unwrap_err().to_string();
        assert!(err.contains("out/x") && err.contains("missing shards [1]"), "{err}");
        let mut b = shard(1, 2, vec![1], vec![], 0);
        b.extra["config"] = 2.into();
        b.extra["report"] = serde_json::json!({ "device": "cuda" });
        b.command.push("--device=cuda".into());
        let err = merge_manifests(Path::new("d"), vec![a.clone(), b], &no_partials).unwrap_err().to_string();
        assert!(err.contains("shard 1 was made with other settings, inputs or command than shard 0: "), "{err}");
        assert!(err.contains("command: `--device=cuda` (``)"), "{err}");
        assert!(err.contains("extra.config: 2 (1); extra.report: {\"device\":\"cuda\"} (absent)"), "{err}");
        let mut nulled = shard(1, 2, vec![1], vec![], 0);
        nulled.extra["report"] = serde_json::Value::Null;
        let err = merge_manifests(Path::new("d"), vec![a.clone(), nulled], &no_partials).unwrap_err().to_string();
        assert!(err.ends_with("than shard 0: extra.report: null (absent)"), "{err}");
        let mut seeded = shard(1, 2, vec![1], vec![], 0);
        seeded.seed = Some(7);
        let err = merge_manifests(Path::new("d"), vec![a.clone(), seeded], &no_partials).unwrap_err().to_string();
        assert!(err.ends_with("than shard 0: seed: 7 (none)"), "{err}");
        let c = shard(1, 2, vec![2], vec![], 0);
        let err = merge_manifests(Path::new("d"), vec![a, c], &no_partials).unwrap_err().to_string();
        assert!(err.contains("group 2"), "{err}");
    }
}
