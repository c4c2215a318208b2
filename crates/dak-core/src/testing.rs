//! Support for the workspace's tests (not part of the API).

/// Runs `name`, an ignored test of the calling test binary, in a process of
/// its own and asserts it passed: torch's random generator is global, and
/// the binary's other tests reseed and draw from it while they run.
pub fn run_alone(name: &str) {
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--ignored", "--exact", name, "--test-threads=1"])
        .output()
        .expect("the test binary starts");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && log.contains("1 passed"), "{name}:\n{log}");
}
