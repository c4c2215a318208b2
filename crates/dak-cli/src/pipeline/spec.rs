//! Checking a pipeline file's stages: each command line must parse as the
//! `dak` subcommand it names, and every input must exist or be written by an
//! earlier stage. The file format and its first checks live in `dak-pipeline`.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
pub use dak_pipeline::SpecError;
use dak_pipeline::{Document, RawStage};

use super::io::{stage_io, StageIo};
use crate::app::Dak;

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub file: PathBuf,
    pub name: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    /// Name, line and the dak command line as the file gives them.
    pub raw: RawStage,
    /// Whether the command takes `--force` (the runner passes it when a
    /// stage must run over an existing output).
    pub takes_force: bool,
    pub io: StageIo,
}

impl Stage {
    /// The arguments the runner gives `dak` for this stage. `--force` where
    /// the command takes it (the stage runs over an existing output) and
    /// `--quiet` when asked, each only once. A stage forced by `--from` is
    /// to be redone: it drops `--resume`, which would otherwise continue
    /// (or, finished, merely re-export) the run it is asked to redo.
    pub fn command_args(&self, forced_by_from: bool, quiet: bool) -> Vec<String> {
        let mut args: Vec<String> =
            self.raw.argv.iter().filter(|a| !(forced_by_from && *a == "--resume")).cloned().collect();
        if self.takes_force && !args.iter().any(|a| a == "--force") {
            args.push("--force".into());
        }
        if quiet && !args.iter().any(|a| a == "--quiet" || a == "-q") {
            args.push("--quiet".into());
        }
        args
    }
}

/// Read and check `file`; `overrides` replace `[vars]` entries (`--set`).
pub fn load(file: &Path, overrides: &[(String, String)]) -> Result<Pipeline, SpecError> {
    check(dak_pipeline::load_document(file, overrides)?)
}

#[cfg(test)]
pub fn parse(file: &Path, text: &str, overrides: &[(String, String)]) -> Result<Pipeline, SpecError> {
    check(dak_pipeline::parse_document(file, text, overrides)?)
}

fn check(doc: Document) -> Result<Pipeline, SpecError> {
    let err = |line: usize, message: String| SpecError { file: doc.file.clone(), line, message };
    let mut stages = Vec::with_capacity(doc.stages.len());
    for raw in doc.stages.iter().cloned() {
        let name = raw.name.clone();
        let command = raw.words.join(" ");
        let parsed =
            Dak::try_parse_from(std::iter::once("dak".to_string()).chain(raw.argv.iter().cloned())).map_err(|e| {
                // Point at the key clap complains about, else at the stage.
                let named = match e.get(ContextKind::InvalidArg) {
                    Some(ContextValue::String(s)) => Some(s.clone()),
                    Some(ContextValue::Strings(v)) => v.first().cloned(),
                    _ => None,
                };
                let flag = named.as_deref().and_then(|s| s.split_whitespace().next()).unwrap_or_default().to_string();
                let rendered = e.render().to_string();
                let first = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                let key = flag.trim_start_matches("--").replace('-', "_");
                let what = if flag.is_empty() { String::new() } else { format!(", key `{key}`") };
                err(raw.line_of_flag(&flag), format!("stage `{name}`{what}: {first} (see `dak {command} --help`)"))
            })?;
        let io = stage_io(&parsed.command).map_err(|m| err(raw.line, format!("stage `{name}`: {m}")))?;
        let takes_force = raw
            .words
            .iter()
            .try_fold(Dak::command(), |c, w| c.find_subcommand(w).cloned())
            .is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some("force")));
        // Remember where each input came from for missing-path errors.
        let mut io = io.locate(|flag| raw.line_of_flag(flag));
        for input in &mut io.inputs {
            input.produced = stages.iter().any(|s: &Stage| super::io::within(&input.path, &s.io.output));
        }
        stages.push(Stage { raw, takes_force, io });
    }
    let pipeline = Pipeline { file: doc.file, name: doc.name, stages };
    check_inputs(&pipeline)?;
    Ok(pipeline)
}

/// Every input exists, is written by an earlier stage, or was there when
/// the stage made, with its present settings, the output it still has (raw
/// data removed once converted: [`super::decide`] keeps that output; only
/// a rerun would need the input).
fn check_inputs(pipeline: &Pipeline) -> Result<(), SpecError> {
    for stage in &pipeline.stages {
        let stamp = super::state::read_stamp(&stage.io.output).filter(|stamp| {
            stage.io.output.exists()
                && super::what_it_computes(&stamp.command) == super::what_it_computes(&stage.raw.argv)
        });
        for input in &stage.io.inputs {
            let made_from = stamp.as_ref().is_some_and(|s| s.inputs.contains_key(&input.path.display().to_string()));
            if !input.produced && !made_from && !input.path.exists() {
                return Err(SpecError {
                    file: pipeline.file.clone(),
                    line: input.line,
                    message: format!(
                        "stage `{}`, key `{}`: {} does not exist and no earlier stage writes it",
                        stage.raw.name,
                        input.key(),
                        input.path.display()
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Pipeline, SpecError> {
        parse(Path::new("p.toml"), text, &[])
    }

    const GOOD: &str = r#"
[pipeline]
name = "t"
[vars]
out = "target/pipeline-spec-test"
epochs = 3
[[stage]]
name = "prep"
run = "prep synth"
out = "${out}/shards"
frames = 40
[[stage]]
name = "train"
run = "train"
shards = ["${out}/shards"]
out = "${out}/run"
epochs = "${epochs}"
no_flip = true
resume = false
"#;

    #[test]
    fn stages_become_command_lines() {
        let p = parse_text(GOOD).unwrap();
        assert_eq!(p.name, "t");
        assert_eq!(
            p.stages[0].raw.argv,
            ["prep", "synth", "--out", "target/pipeline-spec-test/shards", "--frames", "40"]
        );
        let train = &p.stages[1];
        assert_eq!(
            train.raw.argv,
            [
                "train",
                "--shards",
                "target/pipeline-spec-test/shards",
                "--out",
                "target/pipeline-spec-test/run",
                "--epochs",
                "3",
                "--no-flip"
            ]
        );
        assert!(train.takes_force && train.raw.line == 12);
        assert_eq!(train.io.inputs[0].path, Path::new("target/pipeline-spec-test/shards"));
        // --set overrides a var.
        let p = parse(Path::new("p.toml"), GOOD, &[("epochs".into(), "9".into())]).unwrap();
        assert!(p.stages[1].raw.argv.contains(&"9".to_string()));
    }

    #[test]
    fn the_runner_adds_force_and_quiet_once_and_from_drops_resume() {
        let p = parse_text(&GOOD.replace("resume = false", "resume = true\nquiet = true")).unwrap();
        let train = &p.stages[1];
        let args = train.command_args(false, true);
        let count = |a: &str| args.iter().filter(|x| *x == a).count();
        assert_eq!((count("--resume"), count("--force"), count("--quiet")), (1, 1, 1), "{args:?}");
        // Redone from scratch when --from names it or an earlier stage.
        let args = train.command_args(true, false);
        assert!(!args.contains(&"--resume".to_string()) && args.contains(&"--force".to_string()), "{args:?}");
        // `prep synth` takes --force too; nothing else is added.
        let prep = p.stages[0].command_args(false, false);
        assert_eq!(prep[..prep.len() - 1], p.stages[0].raw.argv[..]);
    }

    fn error(text: &str) -> String {
        parse_text(text).unwrap_err().to_string()
    }

    #[test]
    fn problems_name_file_line_and_key() {
        let typo = GOOD.replace("frames = 40", "frams = 40");
        let e = error(&typo);
        assert!(e.starts_with("p.toml:11: stage `prep`, key `frams`"), "{e}");
        let wrong_type = GOOD.replace("frames = 40", "frames = \"many\"");
        let e = error(&wrong_type);
        assert!(e.starts_with("p.toml:11: stage `prep`, key `frames`") && e.contains("many"), "{e}");
        let missing = GOOD.replace("${out}/shards\"]", "nowhere/shards\"]");
        let e = error(&missing);
        assert!(e.starts_with("p.toml:15: stage `train`, key `shards`: nowhere/shards does not exist"), "{e}");
        let e = error(&GOOD.replace("[vars]", "[varz]"));
        assert!(e.starts_with("p.toml:4: unknown top-level key `varz`"), "{e}");
        let e = error(&GOOD.replace("run = \"train\"", "run = \"trian\""));
        assert!(e.starts_with("p.toml:14: stage `train`: `run = \"trian\"`"), "{e}");
        let e = error(&GOOD.replace("frames = 40", "frames = 40\nframes = 41"));
        assert!(e.starts_with("p.toml:12: not valid TOML"), "{e}");
        let e = error(&GOOD.replace("${epochs}", "${epoch}"));
        assert!(e.contains("`${epoch}` is not defined"), "{e}");
        let e = error(&GOOD.replace("resume = false", "shard_index = 1"));
        assert!(e.starts_with("p.toml:19: ") && e.contains("pipelines run whole"), "{e}");
        let e = error(&GOOD.replace("name = \"train\"", "name = \"prep\""));
        assert!(e.contains("used twice"), "{e}");
    }

    /// A TOML list reaches the command as one `a,b,c` argument; three-valued
    /// flags must take that form (clap counts values before it splits them).
    #[test]
    fn three_valued_flags_take_a_toml_list() {
        let text = r#"
[pipeline]
name = "t"
[[stage]]
name = "fit"
run = "augment fit"
mode = "sma"
shards = ["."]
out = "target/pipeline-spec-test/sma"
max_rotation_deg = [10, 20, 30]
max_translation_mm = [1.5, 2, 3]
"#;
        let p = parse_text(text).unwrap();
        let argv = &p.stages[0].raw.argv;
        assert!(argv.windows(2).any(|w| w == ["--max-rotation-deg", "10,20,30"]), "{argv:?}");
        let e = error(&text.replace("[10, 20, 30]", "[10, 20]"));
        assert!(e.contains("max_rotation_deg") && e.contains("three values"), "{e}");
        let e = error(&text.replace("[10, 20, 30]", "[10, \"x\", 30]"));
        assert!(e.contains("`x` is not a number"), "{e}");
    }
}
