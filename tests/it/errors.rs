//! docs/errors.md is a catalogue of the errors users meet; every console
//! block in it is run here and its message checked, so the catalogue stays
//! true and each error keeps naming the file and the problem.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{binary, ok, workspace_root};

struct Case {
    line: usize,
    commands: Vec<String>,
    expected: String,
}

fn cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line) {
            (None, "```console") => current = Some(Case { line: i + 1, commands: vec![], expected: String::new() }),
            (Some(_), "```") => out.push(current.take().expect("in a block")),
            (Some(case), l) if l.starts_with("$ ") => case.commands.push(l[2..].to_string()),
            (Some(case), l) if l.starts_with("error: ") => case.expected = l.to_string(),
            (Some(case), l) => panic!("docs/errors.md:{}: unexpected line in a console block: {l}", case.line),
            _ => {}
        }
    }
    out
}

/// A small demo shard directory shared by the cases (read-only for them).
fn demo() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DEMO
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("demo");
            ok(&Command::new(binary("dak"))
                .args(["prep", "synth", "--frames", "30", "-q", "--out"])
                .arg(&out)
                .output()
                .unwrap());
            (dir, out)
        })
        .1
}

/// `…` matches any text; the pieces must appear in order.
fn matches(expected: &str, actual: &str) -> bool {
    let mut rest = actual;
    for piece in expected.split('…').filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn every_documented_error_is_what_users_see() {
    let text = std::fs::read_to_string(workspace_root().join("docs/errors.md")).unwrap();
    let cases = cases(&text);
    assert!(cases.len() >= 30, "the catalogue lost entries: {}", cases.len());
    let fx = crate::convert::fixtures().map(|(dir, _)| dir.display().to_string()).unwrap_or_default();
    let fx = Some(fx).filter(|f| !f.is_empty());
    let bin_dir = binary("dak").parent().unwrap().to_path_buf();
    let path =
        std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())))
            .unwrap();
    for case in &cases {
        assert!(
            !case.commands.is_empty() && case.expected.starts_with("error: "),
            "docs/errors.md:{}: a block needs commands and an error line",
            case.line
        );
        // Without the project's Python (never under CI) the converter cases skip.
        if case.commands.iter().any(|c| c.contains("{fx}")) && fx.is_none() {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (last, setup) = case.commands.split_last().unwrap();
        let run = |command: &str| {
            let command = command
                .replace("{fx}", fx.as_deref().unwrap_or_default())
                .replace("{demo}", &demo().display().to_string());
            Command::new("sh").arg("-c").arg(&command).current_dir(tmp.path()).env("PATH", &path).output().unwrap()
        };
        for command in setup {
            let out = run(command);
            assert!(
                out.status.success(),
                "docs/errors.md:{}: setup `{command}` failed: {}",
                case.line,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = run(last);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "docs/errors.md:{}: `{last}` succeeded", case.line);
        let line = stderr.lines().rev().find(|l| l.starts_with("error: ")).unwrap_or_default();
        let expected = case
            .expected
            .replace("{fx}", fx.as_deref().unwrap_or_default())
            .replace("{demo}", &demo().display().to_string());
        assert!(
            matches(&expected, line),
            "docs/errors.md:{}: `{last}`\n  expected: {expected}\n  got:      {line}",
            case.line
        );
    }
}
