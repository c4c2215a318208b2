//! What each stage command reads and writes, from its parsed arguments.

use std::path::{Component, Path, PathBuf};

use crate::app::{AugmentCommand, DakCommand, PrepCommand};

#[derive(Debug, Clone)]
pub struct Input {
    /// The flag it came from (`--shards`); empty for positional `args`.
    pub flag: &'static str,
    pub path: PathBuf,
    /// Line of that key in the pipeline file.
    pub line: usize,
    /// Written by an earlier stage of the pipeline (else raw data, or
    /// made outside it).
    pub produced: bool,
}

impl Input {
    /// The pipeline key of the flag (`shards`, `data_dir`, `args`).
    pub fn key(&self) -> String {
        if self.flag.is_empty() {
            "args".into()
        } else {
            self.flag.trim_start_matches("--").replace('-', "_")
        }
    }
}

#[derive(Debug, Clone)]
pub struct StageIo {
    pub inputs: Vec<Input>,
    /// The directory (or, for `prep stats`, the file) the stage writes.
    pub output: PathBuf,
}

impl StageIo {
    fn new(output: PathBuf) -> Self {
        StageIo { inputs: Vec::new(), output }
    }

    fn input(mut self, flag: &'static str, paths: impl IntoIterator<Item = PathBuf>) -> Self {
        self.inputs.extend(paths.into_iter().map(|path| Input { flag, path, line: 0, produced: false }));
        self
    }

    /// Fill each input's line from its flag.
    pub fn locate(mut self, line_of_flag: impl Fn(&str) -> usize) -> Self {
        for input in &mut self.inputs {
            input.line = line_of_flag(input.flag);
        }
        self
    }
}

/// Inputs and output of a stage command; an error names what is missing.
pub fn stage_io(command: &DakCommand) -> Result<StageIo, String> {
    Ok(match command {
        DakCommand::Prep(PrepCommand::Synth(a)) => StageIo::new(a.out.clone()),
        DakCommand::Prep(PrepCommand::H36m(a)) => converter(&a.common),
        DakCommand::Prep(PrepCommand::Mpi3dhp(a)) => converter(&a.common),
        DakCommand::Prep(PrepCommand::Pw3d(a)) => converter(&a.common),
        DakCommand::Prep(PrepCommand::Stats(a)) => {
            let json = a.json.clone().ok_or("a `prep stats` stage needs `json = \"FILE\"` as its output")?;
            StageIo::new(json).input("", a.shards.clone())
        }
        DakCommand::Prep(PrepCommand::Merge(_)) => return Err("`prep merge` joins cluster shards; not a stage".into()),
        DakCommand::Augment(AugmentCommand::Fit(a)) => {
            StageIo::new(a.out.clone()).input("--shards", a.source.shards.clone())
        }
        DakCommand::Augment(AugmentCommand::Sample(a)) => {
            StageIo::new(a.out.clone()).input("--shards", a.source.shards.clone()).input("--model", a.model.clone())
        }
        DakCommand::Train(a) => {
            if a.bench || a.print_params {
                return Err("`bench` and `print_params` are not pipeline stages".into());
            }
            let out = a.out.clone().ok_or("a `train` stage needs `out = \"runs/NAME\"`")?;
            StageIo::new(out)
                .input("--shards", a.shards.clone())
                .input("--sma", a.sma.clone())
                .input("--dma", a.dma.clone())
                .input("--config", a.config.clone())
        }
        DakCommand::Eval(a) => StageIo::new(a.output_dir())
            .input("--checkpoint", [a.checkpoint.clone()])
            .input("--shards", a.shards.clone()),
        DakCommand::Infer(a) => {
            let out = a.out.clone().ok_or("an `infer` stage needs `out`")?;
            StageIo::new(out).input("--checkpoint", a.checkpoint.clone()).input("--keypoints", a.keypoints.clone())
        }
        DakCommand::Pipeline(_) => return Err("a pipeline cannot run a pipeline".into()),
    })
}

fn converter(c: &crate::commands::convert::CommonArgs) -> StageIo {
    StageIo::new(c.out.clone()).input("--data-dir", [c.data_dir.clone()])
}

/// `path` with `.` and `dir/..` removed, lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `path` is `dir` or inside it.
pub fn within(path: &Path, dir: &Path) -> bool {
    normalize(path).starts_with(normalize(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compare_lexically() {
        assert!(within(Path::new("./runs/a/export"), Path::new("runs/a")));
        assert!(within(Path::new("runs/x/../a"), Path::new("runs/a/")));
        assert!(!within(Path::new("runs/ab"), Path::new("runs/a")));
    }
}
