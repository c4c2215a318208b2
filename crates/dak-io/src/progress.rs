//! Progress reporting for long library work. Libraries call a [`Reporter`];
//! only the CLI renders it (indicatif), so tests and pipelines stay quiet.

/// Receives progress of a long-running job.
pub trait Reporter: Sync {
    /// A new phase with a known number of units (frames, sequences, clips).
    fn start(&self, label: &str, total: u64);
    fn advance(&self, units: u64);
    fn finish(&self);
}

/// Discards progress.
pub struct Silent;

impl Reporter for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
