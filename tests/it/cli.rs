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

#[test]
fn libtorch_commands_run_with_raised_malloc_thresholds_unless_the_user_set_their_own() {
    let stderr = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(crate::support::binary("dak"));
        command
            .args(["eval", "--checkpoint", "/nonexistent/run", "--shards", "/nonexistent/shards", "--protocol", "demo"])
            .env("RUST_LOG", "debug")
            .env_remove("GLIBC_TUNABLES");
        for (k, v) in env {
            command.env(k, v);
        }
        String::from_utf8_lossy(&command.output().unwrap().stderr).into_owned()
    };
    let tuned = stderr(&[]);
    assert!(tuned.contains(&format!("GLIBC_TUNABLES={}", dak_cli::MALLOC_TUNABLES)), "{tuned}");
    // The same command still fails as it should after the re-exec.
    assert!(tuned.contains("error: /nonexistent/"), "{tuned}");
    let own = stderr(&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")]);
    assert!(own.contains("GLIBC_TUNABLES=glibc.malloc.arena_max=2"), "{own}");
    assert!(!stderr(&[("DAK_KEEP_MALLOC", "1")]).contains("GLIBC_TUNABLES="));
    // File-only commands start once.
    let prep = crate::support::run("dak-prep", &["stats", "/nonexistent/shards"]);
    assert!(!String::from_utf8_lossy(&prep.stderr).contains("GLIBC_TUNABLES="));
}

/// Without a terminal (a batch job's log) long work still says how far it
/// is: a line every DAK_PROGRESS_SECONDS; -q keeps the log quiet.
#[test]
fn progress_goes_to_the_log_when_stderr_is_no_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = |out: &str, quiet: bool| {
        let mut c = std::process::Command::new(crate::support::binary("dak-prep"));
        c.args(["synth", "--frames", "30", "--out"]).arg(tmp.path().join(out)).env("DAK_PROGRESS_SECONDS", "0");
        if quiet {
            c.arg("-q");
        }
        c.output().unwrap()
    };
    let out = synth("a", false);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains("synthesising sequences: 80/80"), "{log}");
    let out = synth("b", true);
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("synthesising"));
}
