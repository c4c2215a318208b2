//! Shared plumbing of the dak-* binaries: logging, progress bars, error exit.
//! Each binary is a thin clap front end over the library crates.

pub mod app;
pub mod commands;
pub mod pipeline;
pub mod progress;

use std::process::ExitCode;

/// What every binary does first: malloc tuning for commands whose work is
/// libtorch's (re-executing costs a second start-up, ~0.3 s, which the
/// file-only commands need not pay), then logging.
pub fn init(quiet: bool, runs_libtorch: bool) {
    if runs_libtorch {
        tune_malloc();
        report_out_of_memory();
    }
    init_logging(quiet);
    if let Some(tunables) = std::env::var_os("GLIBC_TUNABLES") {
        tracing::debug!("GLIBC_TUNABLES={}", tunables.to_string_lossy());
    }
    stop_with_the_pipeline();
}

/// Set by `dak pipeline run` in its stages' environment: the pipeline
/// run's process id.
pub const PIPELINE_PARENT_ENV: &str = "DAK_PIPELINE_PARENT";

/// A pipeline stage stops when the run that started it is gone. The run's
/// lock on the output ends with the run: killed alone (`kill PID`, a
/// timeout, systemd), it would leave its stage writing while the next run
/// starts another maker of the same output. (Ctrl-C reaches the whole
/// process group anyway.) What the stage wrote is atomic, so stopping
/// anywhere leaves temporaries, never a half-written file.
fn stop_with_the_pipeline() {
    let Some(pipeline) = std::env::var(PIPELINE_PARENT_ENV).ok().and_then(|v| v.parse::<u32>().ok()) else {
        return;
    };
    // Processes this stage starts are not the pipeline's stages.
    std::env::remove_var(PIPELINE_PARENT_ENV);
    #[cfg(unix)]
    {
        let check = move || {
            if std::os::unix::process::parent_id() != pipeline {
                eprintln!("error: the pipeline run that started this stage (process {pipeline}) is gone; stopping");
                std::process::exit(143);
            }
        };
        check();
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(250));
            check();
        });
    }
}

/// glibc malloc settings the training, augmentation, evaluation and
/// inference commands run with, unless the user set
/// `GLIBC_TUNABLES` (or `DAK_KEEP_MALLOC=1`): allocations up to 32 MiB come
/// from the heap and up to 1 GiB of freed heap is kept. libtorch allocates
/// and frees every activation each step; with glibc's start-up thresholds
/// each of those was a fresh mmap or a heap trim, paid again in page faults:
/// a CPU training step had 2.9x the page faults of the same step in PyTorch
/// and ~20 % more wall time (benches/RESULTS.md).
pub const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824";

/// glibc reads its tunables only at start-up, so the process re-executes
/// itself once with them set (a few milliseconds); where that cannot be
/// done it goes on as it is.
fn tune_malloc() {
    if !cfg!(all(target_os = "linux", target_env = "gnu"))
        || std::env::var_os("GLIBC_TUNABLES").is_some()
        || std::env::var_os("DAK_KEEP_MALLOC").is_some()
    {
        return;
    }
    #[cfg(unix)]
    if let Ok(exe) = std::env::current_exe() {
        use std::os::unix::process::CommandExt;
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        // Only returns on failure.
        let _ = std::process::Command::new(exe).arg0(argv0).args(args).env("GLIBC_TUNABLES", MALLOC_TUNABLES).exec();
    }
}

/// tch turns a libtorch allocation failure into a panic with the whole C++
/// backtrace; running out of GPU (or host) memory is a setting to change,
/// not a bug, so it gets one `error:` line with what to change instead.
fn report_out_of_memory() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(summary) = dak_io::panic_text(info.payload()).and_then(out_of_memory_summary) {
            if CATCHING_OUT_OF_MEMORY.get() {
                return;
            }
            eprintln!("error: {summary}");
            std::process::exit(1);
        }
        default(info);
    }));
}

thread_local! {
    static CATCHING_OUT_OF_MEMORY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`; if libtorch runs out of memory inside it, return the one-line
/// report instead of ending the process (a benchmark grid goes on with its
/// next configuration: unwinding frees the failed one's tensors). Any other
/// panic goes on as a panic.
pub fn catch_out_of_memory<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let before = CATCHING_OUT_OF_MEMORY.replace(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING_OUT_OF_MEMORY.set(before);
    result.map_err(|payload| match dak_io::panic_text(payload.as_ref()).and_then(out_of_memory_summary) {
        Some(summary) => summary,
        None => std::panic::resume_unwind(payload),
    })
}

/// The one-line report for a libtorch out-of-memory message, `None` for
/// anything else.
pub fn out_of_memory_summary(message: &str) -> Option<String> {
    let (start, what) = match message.find("CUDA out of memory") {
        Some(i) => (i, "the GPU ran out of memory"),
        None => (message.find("DefaultCPUAllocator: can't allocate memory")?, "out of host memory"),
    };
    let detail = &message[start..];
    // libtorch's first sentences say how much was asked for and what is free;
    // the rest is allocator advice and a backtrace.
    let end = [" Including non-PyTorch", " If reserved", "\\n", "\n"]
        .iter()
        .filter_map(|cut| detail.find(cut))
        .min()
        .unwrap_or(detail.len());
    Some(format!(
        "{what} ({}); lower --batch-size, or use --precision bf16, --frames 27 or a smaller --channels \
         (benches/RESULTS.md lists what each configuration needs)",
        detail[..end].trim_end().trim_end_matches('.')
    ))
}

/// Set up `tracing` (RUST_LOG overrides; `-q` keeps only warnings).
pub fn init_logging(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal: Slurm logs and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The process's peak resident memory in MiB, where the OS tells it (Linux).
pub fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024)
}

/// ` (peak memory N MiB)`, or nothing where it is not known.
pub fn peak_memory_note() -> String {
    peak_memory_mib().map(|m| format!(" (peak memory {m} MiB)")).unwrap_or_default()
}

/// Print an error with its chain of causes, one line, and pick the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Messages often embed their cause ("{path}: {source}"); print each once.
            let mut line = String::new();
            for cause in err.chain().map(ToString::to_string) {
                if !line.ends_with(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// The command line as the manifest records it, in one form for one
/// output: without the shard flags (every shard of a run, and a single
/// process, record the same command), the program as `dak SUBCOMMAND`
/// whichever binary or path ran it, and without `--quiet`/`--force`, which
/// change nothing in the files. A shard rerun by hand merges with the rest.
pub fn command_line() -> Vec<String> {
    recorded_command(std::env::args())
}

fn recorded_command(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = without_shard_flags(args);
    if let Some(program) = args.first().cloned() {
        let name = std::path::Path::new(&program).file_name().map(|n| n.to_string_lossy().into_owned());
        let program: Vec<String> = match name.as_deref().and_then(|n| n.strip_prefix("dak-")) {
            Some(sub) => vec!["dak".into(), sub.into()],
            None if name.as_deref() == Some("dak") => vec!["dak".into()],
            None => vec![program],
        };
        args.splice(..1, program);
    }
    args.retain(|a| !matches!(a.as_str(), "-q" | "--quiet" | "--force"));
    args
}

fn without_shard_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let flag = arg.split('=').next().unwrap_or_default();
        if matches!(flag, "--shard-index" | "--num-shards") {
            skip_value = !arg.contains('=');
            continue;
        }
        out.push(arg);
    }
    out
}

/// `--shard-index I --num-shards N`: run one part of a prep or augment
/// command (a cluster array task); `dak-prep merge` joins the parts.
#[derive(Debug, Clone, clap::Args)]
pub struct ShardArgs {
    /// This process's part of the output, 0-based (e.g. $SLURM_ARRAY_TASK_ID
    /// or $JOB_COMPLETION_INDEX); writes manifest.shard-I-of-N.json instead of manifest.json.
    #[arg(long, default_value_t = 0, requires = "num_shards")]
    pub shard_index: usize,
    /// Number of processes the output is split over; `dak-prep merge OUT` joins them.
    #[arg(long, default_value_t = 1)]
    pub num_shards: usize,
}

impl ShardArgs {
    pub fn spec(&self) -> anyhow::Result<dak_io::ShardSpec> {
        Ok(dak_io::ShardSpec::new(self.shard_index, self.num_shards)?)
    }
}

/// Writes to stdout; a closed pipe (`dak-prep stats | head`) ends output quietly.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    /// Every flag of every command says what it does in --help.
    #[test]
    fn every_flag_is_explained() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&crate::app::Dak::command(), "dak", &mut missing);
        assert!(missing.is_empty(), "flags without help:\n{}", missing.join("\n"));
    }

    #[test]
    fn shard_flags_are_not_recorded() {
        let args = ["dak-prep", "h36m", "--shard-index", "2", "--out", "o", "--num-shards=3", "--force"];
        let kept = super::without_shard_flags(args.iter().map(|s| s.to_string()));
        assert_eq!(kept, ["dak-prep", "h36m", "--out", "o", "--force"]);
    }

    /// One output, one recorded command, however it was started.
    #[test]
    fn the_recorded_command_has_one_form() {
        let record = |s: &str| super::recorded_command(s.split(' ').map(String::from));
        let want = ["dak", "prep", "h36m", "--out", "o"];
        assert_eq!(record("dak-prep h36m --out o"), want);
        assert_eq!(record("/opt/dak/bin/dak-prep -q h36m --out o --force --shard-index 1 --num-shards 4"), want);
        assert_eq!(record("./target/release/dak prep h36m --quiet --out o"), want);
        assert_eq!(record("dak prep h36m --out o2"), ["dak", "prep", "h36m", "--out", "o2"]);
    }

    #[test]
    fn out_of_memory_panics_become_one_line() {
        // As tch's unwrap prints it (Debug: newlines escaped), from an H200.
        let cuda = r#"called `Result::unwrap()` on an `Err` value: Torch("CUDA out of memory. Tried to allocate 690.00 MiB. GPU 0 has a total capacity of 139.80 GiB of which 333.12 MiB is free. Including non-PyTorch memory, this process has 139.47 GiB memory in use.\nException raised from malloc at /pytorch/c10/cuda/CUDACachingAllocator.cpp:1574")"#;
        let line = super::out_of_memory_summary(cuda).unwrap();
        assert!(
            line.starts_with("the GPU ran out of memory (CUDA out of memory. Tried to allocate 690.00 MiB. GPU 0 has a total capacity of 139.80 GiB of which 333.12 MiB is free); lower --batch-size"),
            "{line}"
        );
        assert!(!line.contains('\n') && !line.contains("Exception"), "{line}");
        let cpu = "Torch(\"DefaultCPUAllocator: can't allocate memory: you tried to allocate 68000000000000 bytes. Error code 12 (Cannot allocate memory)\\nException raised from";
        let line = super::out_of_memory_summary(cpu).unwrap();
        assert!(line.starts_with("out of host memory (DefaultCPUAllocator: can't allocate memory: you tried to allocate 68000000000000 bytes. Error code 12 (Cannot allocate memory));"), "{line}");
        assert_eq!(super::out_of_memory_summary("index out of range"), None);
    }

    #[test]
    fn only_out_of_memory_is_caught() {
        let caught = super::catch_out_of_memory(|| -> u8 {
            panic!("Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB.\")")
        });
        assert!(caught.unwrap_err().contains("Tried to allocate 2.00 GiB"));
        assert_eq!(super::catch_out_of_memory(|| 7), Ok(7));
        let other = std::panic::catch_unwind(|| super::catch_out_of_memory(|| -> u8 { panic!("index out of range") }));
        assert!(other.is_err(), "a panic that is not out-of-memory must go on");
    }
}
