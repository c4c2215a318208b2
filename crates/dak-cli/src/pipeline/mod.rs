//! `dak pipeline run|plan FILE`: a whole run described in TOML (prep,
//! augment, train, eval), executed stage by stage as `dak` subprocesses.
//! A stage whose stamp matches its command and its inputs' fingerprints,
//! and whose output is as it left it, is skipped; so re-running after a
//! change redoes only what the change reaches.

mod io;
mod spec;
mod state;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

pub use spec::{load, Pipeline, SpecError, Stage};
use state::{fingerprint, read_stamp, write_stamp, StageLock, Stamp};

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run the stages in order, skipping those that are up to date.
    Run(PipelineArgs),
    /// Print what `run` would do and why, without running anything.
    Plan(PipelineArgs),
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Pipeline file (pipelines/*.toml). Paths in it are relative to the
    /// working directory.
    pub file: PathBuf,
    /// Run this stage and every later one even if up to date.
    #[arg(long)]
    pub from: Option<String>,
    /// Override an entry of the file's [vars] (repeatable): --set epochs=8.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))
}

/// Why a stage runs, or that it does not.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    UpToDate,
    Run(String),
}

impl PipelineCommand {
    pub fn run(self, quiet: bool) -> anyhow::Result<()> {
        match self {
            PipelineCommand::Run(args) => {
                let pipeline = load(&args.file, &args.set)?;
                let from = from_index(&pipeline, args.from.as_deref())?;
                run(&pipeline, from, quiet)
            }
            PipelineCommand::Plan(args) => {
                let pipeline = load(&args.file, &args.set)?;
                let from = from_index(&pipeline, args.from.as_deref())?;
                crate::print_stdout(&plan_text(&pipeline, from)?)?;
                Ok(())
            }
        }
    }
}

fn from_index(pipeline: &Pipeline, from: Option<&str>) -> anyhow::Result<Option<usize>> {
    let Some(name) = from else { return Ok(None) };
    match pipeline.stages.iter().position(|s| s.raw.name == name) {
        Some(i) => Ok(Some(i)),
        None => {
            let names: Vec<&str> = pipeline.stages.iter().map(|s| s.raw.name.as_str()).collect();
            bail!("--from {name}: {} has no such stage (stages: {})", pipeline.file.display(), names.join(", "))
        }
    }
}

/// Decide one stage. `rewritten`: outputs of earlier stages that will run
/// (for plans; a run decides after those stages have run).
pub fn decide(stage: &Stage, forced: bool, rewritten: &[(PathBuf, String)]) -> anyhow::Result<Decision> {
    if forced {
        return Ok(Decision::Run("forced by --from".into()));
    }
    for input in &stage.io.inputs {
        if let Some((_, by)) = rewritten.iter().find(|(out, _)| io::within(&input.path, out)) {
            return Ok(Decision::Run(format!("input {} is rewritten by stage `{by}`", input.path.display())));
        }
    }
    let output = &stage.io.output;
    let Some(stamp) = read_stamp(output) else {
        refuse_finished(stage)?;
        return Ok(Decision::Run(if output.exists() {
            format!("{} exists but holds nothing finished", output.display())
        } else {
            "not run yet".into()
        }));
    };
    if stamp.output.is_empty() {
        return Ok(Decision::Run("its last run did not finish".into()));
    }
    if what_it_computes(&stamp.command) != what_it_computes(&stage.raw.argv) {
        // Key order, `5e-4` against `0.0005`: the same settings.
        return Ok(Decision::Run("its settings changed".into()));
    }
    for input in &stage.io.inputs {
        let key = input.path.display().to_string();
        match (stamp.inputs.get(&key), fingerprint(&input.path)?) {
            // Raw data moved away or deleted once converted (licensed data
            // often is): the output made from it stands. Not so for an
            // earlier stage's output, which that stage no longer makes.
            (Some(_), None) if !input.produced => {
                tracing::info!("stage `{}`: input {key} is gone; keeping what it made", stage.raw.name)
            }
            (then, now) if then != now.as_ref() => return Ok(Decision::Run(format!("input {key} changed"))),
            _ => {}
        }
    }
    if fingerprint(output)?.as_ref() != Some(&stamp.output) {
        return Ok(Decision::Run(format!("{} is missing or was changed since", output.display())));
    }
    if let Some(file) = state::damaged_file(output) {
        return Ok(Decision::Run(format!("{} is gone or not the size its output records", file.display())));
    }
    Ok(Decision::UpToDate)
}

/// Stages run with --force: a finished output without a stamp (a run
/// copied there, a mistyped path), which this pipeline did not make, would
/// be deleted. Stat calls only.
fn refuse_unclaimed(stage: &Stage) -> anyhow::Result<()> {
    match read_stamp(&stage.io.output) {
        Some(_) => Ok(()),
        None => refuse_finished(stage),
    }
}

/// [`refuse_unclaimed`] for a stage already known to have no stamp.
fn refuse_finished(stage: &Stage) -> anyhow::Result<()> {
    let output = &stage.io.output;
    if let Some(marker) = state::finished_output(output) {
        bail!(
            "stage `{}`: {} is a finished output ({}) that no stamp says this pipeline made; move it \
             away, or give `--from {}` to replace it",
            stage.raw.name,
            output.display(),
            marker.display(),
            stage.raw.name
        );
    }
    Ok(())
}

/// A command line as what it computes, to compare two of them: less the
/// flags that say where it runs (moving a pipeline to another GPU, `--set
/// device=cuda:1`, must not refit the augmentors and so start a finished
/// training run over), its flags sorted (a stage's keys in another order),
/// numbers by value (`5e-4` is `0.0005`). The subcommand words and the
/// positional arguments keep their places.
pub(crate) fn what_it_computes(argv: &[String]) -> Vec<String> {
    // Integers as integers (seeds above 2^53 stay apart), decimals by value.
    let number = |v: &str| match (v.parse::<i64>(), v.parse::<f64>()) {
        (Ok(n), _) => n.to_string(),
        (_, Ok(x)) if x.is_finite() && v.contains(['.', 'e', 'E']) => format!("{x:?}"),
        _ => v.to_string(),
    };
    let lead = argv.iter().take_while(|a| !a.starts_with("--")).count();
    // Which flags take a value, from the command's own definition: a
    // switch before the positional arguments must not take one of them.
    // Built once: a pipeline decides two settings per stage.
    static APP: std::sync::OnceLock<clap::Command> = std::sync::OnceLock::new();
    let app = APP.get_or_init(|| {
        let mut app = <crate::app::Dak as clap::CommandFactory>::command();
        app.build();
        app
    });
    let command = argv[..lead].iter().try_fold(app, |c, w| c.find_subcommand(w));
    let takes_value = |flag: &str| -> bool {
        let long = flag.trim_start_matches("--");
        command
            .and_then(|c| c.get_arguments().find(|a| a.get_long() == Some(long)))
            .is_none_or(|a| a.get_action().takes_values())
    };
    let mut out: Vec<String> = argv[..lead].to_vec();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut rest = argv[lead..].iter().peekable();
    while let Some(a) = rest.next() {
        if !a.starts_with("--") {
            out.push(a.clone());
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let value = match inline {
            Some(v) => Some(v),
            None if takes_value(&flag) => rest.next_if(|v| !v.starts_with("--")).cloned(),
            None => None,
        };
        if flag != "--device" {
            flags.push((flag, value.as_deref().map(number)));
        }
    }
    flags.sort();
    out.extend(flags.into_iter().flat_map(|(f, v)| std::iter::once(f).chain(v)));
    out
}

/// What `run` would do, stage by stage, with the commands it would run.
pub fn plan(pipeline: &Pipeline, from: Option<usize>) -> anyhow::Result<Vec<Decision>> {
    let mut rewritten = Vec::new();
    let mut out = Vec::new();
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let decision = decide(stage, from.is_some_and(|f| i >= f), &rewritten)?;
        if decision != Decision::UpToDate {
            rewritten.push((stage.io.output.clone(), stage.raw.name.clone()));
        }
        out.push(decision);
    }
    Ok(out)
}

fn plan_text(pipeline: &Pipeline, from: Option<usize>) -> anyhow::Result<String> {
    let decisions = plan(pipeline, from)?;
    let forced = |i: usize| from.is_some_and(|f| i >= f);
    let runs = decisions.iter().filter(|d| **d != Decision::UpToDate).count();
    let width = pipeline.stages.iter().map(|s| s.raw.name.len()).max().unwrap_or(0);
    let mut text = format!(
        "pipeline `{}` ({}): {} stages, {runs} to run\n",
        pipeline.name,
        pipeline.file.display(),
        pipeline.stages.len()
    );
    for (i, (stage, decision)) in pipeline.stages.iter().zip(&decisions).enumerate() {
        match decision {
            Decision::UpToDate => text.push_str(&format!("  up to date  {:width$}\n", stage.raw.name)),
            Decision::Run(why) => {
                // The command `run` gives it (with --force, without a
                // --resume that --from undoes): copied, it does the same.
                let command = dak_pipeline::shell_line(&stage.command_args(forced(i), false));
                text.push_str(&format!("  run         {:width$}  ({why})\n", stage.raw.name));
                text.push_str(&format!("              $ {command}\n"));
            }
        }
    }
    Ok(text)
}

/// Run the stages in order as `dak` subprocesses; stop at the first failure.
pub fn run(pipeline: &Pipeline, from: Option<usize>, quiet: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the dak binary")?;
    // Refusals (an output the pipeline did not make) before any stage runs;
    // not the whole plan, which would fingerprint every input twice.
    for (i, stage) in pipeline.stages.iter().enumerate() {
        if from.is_none_or(|f| i < f) {
            refuse_unclaimed(stage)?;
        }
    }
    let (mut ran, mut skipped) = (0, 0);
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let forced = from.is_some_and(|f| i >= f);
        // Before deciding: an output another run is making is not up to date.
        let _lock = StageLock::acquire(&stage.io.output, &stage.raw.name)?;
        let why = match decide(stage, forced, &[])? {
            Decision::UpToDate => {
                tracing::info!("stage `{}`: up to date", stage.raw.name);
                skipped += 1;
                continue;
            }
            Decision::Run(why) => why,
        };
        let args = stage.command_args(forced, quiet);
        tracing::info!("stage `{}` ({why}): {}", stage.raw.name, dak_pipeline::shell_line(&args));
        // Inputs first: a missing one stops the run with the output and
        // its stamp as they were.
        let mut inputs = std::collections::BTreeMap::new();
        for input in &stage.io.inputs {
            let fp = fingerprint(&input.path)?.with_context(|| {
                format!("stage `{}`: input {} does not exist", stage.raw.name, input.path.display())
            })?;
            inputs.insert(input.path.display().to_string(), fp);
        }
        // A claim, not a stamp, while the stage runs: a crash leaves it to
        // be redone by this pipeline.
        state::claim(&stage.io.output, &stage.raw.name, &stage.raw.argv)?;
        let mut command = Command::new(&exe);
        command.args(&args).env(crate::PIPELINE_PARENT_ENV, std::process::id().to_string());
        let status = command.status().with_context(|| format!("starting stage `{}`", stage.raw.name))?;
        if !status.success() {
            bail!(
                "stage `{}` failed ({status}); the stages after it did not run. Its command: {}",
                stage.raw.name,
                dak_pipeline::shell_line(&args)
            );
        }
        let output = fingerprint(&stage.io.output)?.with_context(|| {
            format!("stage `{}` finished but {} does not exist", stage.raw.name, stage.io.output.display())
        })?;
        write_stamp(
            &stage.io.output,
            &Stamp { stage: stage.raw.name.clone(), command: stage.raw.argv.clone(), inputs, output },
        )?;
        ran += 1;
    }
    tracing::info!("pipeline `{}`: {ran} stages run, {skipped} up to date", pipeline.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_is_not_a_setting() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let cpu = argv("train --shards s --device cpu --epochs 3");
        assert_eq!(what_it_computes(&cpu), what_it_computes(&argv("train --shards s --device=cuda:1 --epochs 3")));
        assert_eq!(what_it_computes(&cpu), what_it_computes(&argv("train --shards s --epochs 3")));
        assert_ne!(what_it_computes(&cpu), what_it_computes(&argv("train --shards s --device cpu --epochs 4")));
    }

    /// Keys in another order and numbers written another way are the same
    /// settings; other values, flags or positional arguments are not.
    #[test]
    fn settings_compare_by_what_they_say() {
        let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let same = |a: &str, b: &str| what_it_computes(&argv(a)) == what_it_computes(&argv(b));
        assert!(same("augment fit --lr 5e-4 --force --steps 10", "augment fit --steps 10 --force --lr 0.0005"));
        assert!(!same("augment fit --steps 10", "augment fit --steps 10.0"), "integers stay integers");
        // A switch before a positional argument does not take it as its value.
        assert!(same("prep stats --quiet --json j.json shards/a", "prep stats --json j.json --quiet shards/a"));
        assert!(!same("prep stats --quiet shards/a", "prep stats --quiet shards/b"));
        assert!(!same("augment fit --seed 9007199254740993", "augment fit --seed 9007199254740992"));
        assert!(!same("augment fit --lr 5e-4", "augment fit --lr 5e-3"));
        assert!(!same("augment fit --lr 5e-4", "augment fit --lr 5e-4 --no-flip"));
        assert!(!same("prep merge a", "prep merge b"));
        assert!(!same("prep stats --subjects S1,S2", "prep stats --subjects S2,S1"), "lists keep their order");
    }
}
