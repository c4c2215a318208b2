//! A run directory: `config.json`, `metrics.jsonl` (one line per epoch),
//! checkpoints, and at the end the exported G.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::trainer::{EpochRecord, Trainer};

pub const METRICS: &str = "metrics.jsonl";
pub const CONFIG: &str = "config.json";

/// What a caller sees while a run goes on.
pub trait RunObserver {
    fn epoch_started(&mut self, _epoch: usize, _steps: usize) {}
    fn step(&mut self, _losses: &crate::Losses, _samples: usize) {}
    fn epoch_finished(&mut self, _record: &EpochRecord) {}
}

pub struct NoObserver;
impl RunObserver for NoObserver {}

/// Read `metrics.jsonl` (missing file: no records).
pub fn read_metrics(run: &Path) -> Result<Vec<EpochRecord>> {
    let path = run.join(METRICS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    // Records are appended a line at a time; a last line without its
    // newline is an append a kill interrupted, and is dropped.
    let complete = match text.rfind('\n') {
        Some(end) if !text.ends_with('\n') => {
            tracing::warn!("{}: dropping an interrupted last record", path.display());
            &text[..=end]
        }
        None if !text.is_empty() => "",
        _ => &text[..],
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::Data { path: path.clone(), reason: format!("line {}: {e}", i + 1) })
        })
        .collect()
}

fn write_metrics(run: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).expect("records serialise"));
        text.push('\n');
    }
    let path = run.join(METRICS);
    dak_io::atomic::write_atomic(&path, text.as_bytes()).map_err(|e| Error::Data { path, reason: e.to_string() })?;
    Ok(())
}

/// Train until `trainer.config.epochs`, evaluating and checkpointing after
/// every epoch. A trainer restored from `run`'s checkpoint continues where
/// it stopped; metrics of epochs after the checkpoint (from a run that was
/// killed mid-epoch) are dropped and recomputed.
pub fn train(run: &Path, trainer: &mut Trainer, observer: &mut dyn RunObserver) -> Result<Vec<EpochRecord>> {
    std::fs::create_dir_all(run).map_err(Error::io(run))?;
    let config_path = run.join(CONFIG);
    let config_json = serde_json::to_string_pretty(&trainer.config).expect("config serialises");
    dak_io::atomic::write_atomic(&config_path, config_json.as_bytes())
        .map_err(|e| Error::Data { path: config_path.clone(), reason: e.to_string() })?;
    let mut records: Vec<EpochRecord> = read_metrics(run)?.into_iter().filter(|r| r.epoch < trainer.epoch).collect();
    write_metrics(run, &records)?;
    while trainer.epoch < trainer.config.epochs {
        observer.epoch_started(trainer.epoch, trainer.steps_per_epoch());
        let mut record = trainer.train_epoch(|l, n| observer.step(l, n))?;
        if let Some(eval) = &trainer.data.eval {
            record.eval = Some(trainer.evaluate(eval)?);
        }
        // Metrics first: a kill between the two leaves a record past the
        // checkpoint, which the resumed run drops and recomputes.
        append_metrics(run, &record)?;
        checkpoint::save(run, trainer)?;
        records.push(record.clone());
        observer.epoch_finished(&record);
    }
    Ok(records)
}

fn append_metrics(run: &Path, record: &EpochRecord) -> Result<()> {
    let path = run.join(METRICS);
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(Error::io(&path))?;
    writeln!(f, "{}", serde_json::to_string(record).expect("records serialise")).map_err(Error::io(&path))?;
    f.sync_all().map_err(Error::io(&path))
}

/// The exported estimator's directory inside a run.
pub fn export_dir(run: &Path) -> PathBuf {
    run.join("export")
}
