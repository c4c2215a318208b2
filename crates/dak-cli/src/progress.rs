//! indicatif progress bars behind the libraries' `Reporter` trait; hidden
//! under `-q` or when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use dak_io::Reporter;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    visible: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new(quiet: bool) -> Self {
        Bars { visible: !quiet && std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }
}

impl Bars {
    /// Replace the label of the current bar (e.g. with the latest loss).
    pub fn message(&self, text: String) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.set_message(text);
        }
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
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(units);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
