//! indicatif progress bars behind the libraries' `Reporter` trait; hidden
//! under `-q`. When stderr is not a terminal (a batch job's log), a line
//! every `DAK_PROGRESS_SECONDS` (30) seconds says how far the work is.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dak_io::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    visible: bool,
    /// For a log instead of a terminal: how often, and when last.
    log_every: Option<Duration>,
    last_log: Mutex<Instant>,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let seconds = std::env::var("DAK_PROGRESS_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(30.0);
        Bars {
            visible: !quiet && terminal,
            log_every: (!quiet && !terminal && seconds.is_finite() && seconds >= 0.0)
                .then(|| Duration::from_secs_f64(seconds)),
            last_log: Mutex::new(Instant::now()),
            bar: Mutex::new(None),
        }
    }
}

impl Bars {
    /// Replace the label of the current bar (e.g. with the latest loss).
    pub fn message(&self, text: String) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_message(text);
        }
    }

    fn log_line(&self, bar: &ProgressBar) {
        let Some(every) = self.log_every else { return };
        let mut last = self.last_log.lock().expect("progress lock");
        if last.elapsed() < every {
            return;
        }
        *last = Instant::now();
        let (pos, len) = (bar.position(), bar.length().unwrap_or(0));
        tracing::info!(
            "{}: {pos}/{len} ({:.1}/s, about {} s left)",
            bar.message().trim(),
            bar.per_sec(),
            bar.eta().as_secs()
        );
    }
}

impl Reporter for Bars {
    fn start(&self, label: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if self.visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(
            ProgressStyle::with_template("{msg:>28} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        *self.last_log.lock().expect("progress lock") = Instant::now();
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(units);
            self.log_line(bar);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
