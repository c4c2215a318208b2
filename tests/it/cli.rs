//! The dak-prep binary as a user runs it.

use crate::support::run;

#[test]
fn synth_then_stats_prints_counts_and_bone_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let out_s = out.to_str().unwrap();
    let synth = run("dak-prep", &["-q", "synth", "--out", out_s, "--frames", "20", "--seed", "5"]);
    assert!(synth.status.success(), "{}", String::from_utf8_lossy(&synth.stderr));
    assert!(out.join("manifest.json").exists());

    let json = dir.path().join("stats.json");
    let stats = run("dak-prep", &["stats", out_s, "--json", json.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&stats.stdout);
    assert!(stats.status.success(), "{}", String::from_utf8_lossy(&stats.stderr));
    assert!(stdout.contains("demo-target") && stdout.contains("l_hip-l_knee"), "{stdout}");

    let parsed: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let counts = parsed[0]["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 10 * 8, "one row per subject and action");
    assert!(counts.iter().all(|r| r["frames"].as_f64() == Some(20.0) && r["cameras"].as_f64() == Some(4.0)));
    let thigh = |dataset: &str| {
        parsed[0]["bones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dataset"] == dataset && r["bone"] == "r_hip-r_knee")
            .and_then(|r| r["mean_mm"].as_f64())
            .unwrap()
    };
    assert!((380.0..520.0).contains(&thigh("demo-source")), "{}", thigh("demo-source"));
    assert!(thigh("demo-target") > thigh("demo-source"));
}

#[test]
fn stats_on_a_truncated_shard_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let out_s = out.to_str().unwrap();
    assert!(run("dak-prep", &["-q", "synth", "--out", out_s, "--frames", "5"]).status.success());
    let part = out.join("part-00000.parquet");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() - 100]).unwrap();
    let stats = run("dak-prep", &["stats", out_s]);
    let stderr = String::from_utf8_lossy(&stats.stderr);
    assert!(!stats.status.success());
    assert!(stderr.contains("part-00000.parquet") && stderr.contains("truncated"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
}

#[test]
fn stats_on_a_directory_without_manifest_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let stats = run("dak-prep", &["stats", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&stats.stderr);
    assert!(!stats.status.success());
    assert!(stderr.contains("no manifest.json"), "{stderr}");
}
