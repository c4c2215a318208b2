//! Reading a pipeline file: TOML with spans, so every problem is reported
//! with the file, line and key before anything runs.
//!
//! ```toml
//! [pipeline]
//! name = "demo"
//! [vars]                       # ${name} in any string; --set name=value overrides
//! shards = "shards/demo"
//! [[stage]]
//! name = "prep"                # unique; --from prep reruns from here
//! run = "prep synth"           # a dak subcommand
//! out = "${shards}"            # every other key is that command's --flag
//! seed = 0                     # numbers and strings become the flag's value,
//! no_flip = true               # true a bare flag, arrays comma-separated,
//! args = ["a", "b"]            # `args` positional arguments
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::io::{stage_io, StageIo};
use crate::app::Dak;

/// A problem in a pipeline file, located.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", file.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not on one line (e.g. a `--set`).
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub file: PathBuf,
    pub name: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    pub line: usize,
    /// The dak command line without the program name, as the user wrote it.
    pub argv: Vec<String>,
    /// Whether the command takes `--force` (the runner passes it when a
    /// stage must run over an existing output).
    pub takes_force: bool,
    pub io: StageIo,
}

impl Stage {
    /// The command as a shell line, for plans and logs.
    pub fn shell_line(&self) -> String {
        std::iter::once("dak".to_string()).chain(self.argv.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Line (1-based) of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, message: impl Into<String>) -> SpecError {
        SpecError { file: self.file.to_path_buf(), line: line_of(self.text, offset), message: message.into() }
    }
}

type Entry<'i> = (&'i Spanned<toml::de::DeString<'i>>, &'i Spanned<DeValue<'i>>);

/// Commands a stage may run (sharded runs and merges belong to cluster jobs).
const STAGE_COMMANDS: &[&str] = &[
    "prep synth",
    "prep h36m",
    "prep 3dhp",
    "prep 3dpw",
    "prep stats",
    "augment fit",
    "augment sample",
    "train",
    "eval",
    "infer",
];

/// Read and check `file`; `overrides` replace `[vars]` entries (`--set`).
pub fn load(file: &Path, overrides: &[(String, String)]) -> Result<Pipeline, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(file, &text, overrides)
}

pub fn parse(file: &Path, text: &str, overrides: &[(String, String)]) -> Result<Pipeline, SpecError> {
    let ctx = Ctx { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        ctx.err(offset, format!("not valid TOML: {}", e.message().trim()))
    })?;
    let (mut name, mut vars, mut stages) = (None, BTreeMap::new(), None);
    for (key, value) in doc.get_ref().iter() {
        match key.get_ref().as_ref() {
            "pipeline" => {
                let table = as_table(&ctx, (key, value))?;
                for (k, v) in table.iter() {
                    match k.get_ref().as_ref() {
                        "name" => name = Some(as_string(&ctx, (k, v))?),
                        "description" => {
                            as_string(&ctx, (k, v))?;
                        }
                        other => {
                            return Err(ctx.err(
                                k.span().start,
                                format!("unknown key `pipeline.{other}` (expected name, description)"),
                            ))
                        }
                    }
                }
            }
            "vars" => {
                for (k, v) in as_table(&ctx, (key, value))?.iter() {
                    vars.insert(k.get_ref().to_string(), scalar_text(&ctx, (k, v))?);
                }
            }
            "stage" => stages = Some(value),
            other => {
                return Err(ctx.err(
                    key.span().start,
                    format!("unknown top-level key `{other}` (expected pipeline, vars, stage)"),
                ))
            }
        }
    }
    for (k, v) in overrides {
        if !vars.contains_key(k) {
            let known = vars.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(SpecError {
                file: file.to_path_buf(),
                line: 0,
                message: format!("--set {k}: no such entry in [vars] (have: {known})"),
            });
        }
        vars.insert(k.clone(), v.clone());
    }
    let stages_value = stages.ok_or_else(|| ctx.err(0, "no [[stage]] tables"))?;
    let DeValue::Array(items) = stages_value.get_ref() else {
        return Err(ctx.err(stages_value.span().start, "`stage` must be an array of tables: write [[stage]]"));
    };
    let mut out: Vec<Stage> = Vec::new();
    for item in items.iter() {
        let DeValue::Table(table) = item.get_ref() else {
            return Err(ctx.err(item.span().start, "each stage must be a table: write [[stage]]"));
        };
        let stage = parse_stage(&ctx, item.span().start, table, &vars)?;
        if out.iter().any(|s| s.name == stage.name) {
            return Err(ctx.err(item.span().start, format!("stage name `{}` is used twice", stage.name)));
        }
        out.push(stage);
    }
    if out.is_empty() {
        return Err(ctx.err(stages_value.span().start, "no stages"));
    }
    let pipeline = Pipeline {
        file: file.to_path_buf(),
        name: name.unwrap_or_else(|| file.file_stem().unwrap_or_default().to_string_lossy().into_owned()),
        stages: out,
    };
    check_inputs(&ctx, &pipeline)?;
    Ok(pipeline)
}

fn as_table<'a, 'i>(ctx: &Ctx, (k, v): Entry<'a>) -> Result<&'a DeTable<'i>, SpecError>
where
    'a: 'i,
{
    match v.get_ref() {
        DeValue::Table(t) => Ok(t),
        _ => Err(ctx.err(k.span().start, format!("`{}` must be a table", k.get_ref()))),
    }
}

fn as_string(ctx: &Ctx, (k, v): Entry) -> Result<String, SpecError> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        _ => Err(ctx.err(k.span().start, format!("`{}` must be a string", k.get_ref()))),
    }
}

/// A scalar as command-line text.
fn scalar_text(ctx: &Ctx, (k, v): Entry) -> Result<String, SpecError> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => Ok(i.as_str().replace('_', "")),
        DeValue::Float(f) => Ok(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => Ok(b.to_string()),
        _ => Err(ctx.err(k.span().start, format!("`{}`: expected a string, number or boolean", k.get_ref()))),
    }
}

/// `${name}` replaced from `vars`.
fn substitute(ctx: &Ctx, offset: usize, s: &str, vars: &BTreeMap<String, String>) -> Result<String, SpecError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| ctx.err(offset, format!("unclosed `${{` in \"{s}\"")))?;
        let name = &rest[start + 2..start + end];
        let value = vars.get(name).ok_or_else(|| ctx.err(offset, format!("`${{{name}}}` is not defined in [vars]")))?;
        out.push_str(value);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_stage(ctx: &Ctx, at: usize, table: &DeTable, vars: &BTreeMap<String, String>) -> Result<Stage, SpecError> {
    let (mut name, mut run, mut positional) = (None, None, Vec::new());
    // (flag, key offset) for mapping clap's complaints back to a line.
    let mut flags: Vec<(String, usize)> = Vec::new();
    let mut argv_flags: Vec<String> = Vec::new();
    // In file order (the map is sorted by key).
    let mut entries: Vec<Entry> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (k, v) in entries {
        let key = k.get_ref().as_ref();
        let offset = k.span().start;
        match key {
            "name" => name = Some(as_string(ctx, (k, v))?),
            "run" => run = Some((as_string(ctx, (k, v))?, offset)),
            "args" => {
                let DeValue::Array(items) = v.get_ref() else {
                    return Err(ctx.err(offset, "`args` must be an array of strings"));
                };
                for item in items.iter() {
                    let DeValue::String(s) = item.get_ref() else {
                        return Err(ctx.err(item.span().start, "`args` must be an array of strings"));
                    };
                    positional.push(substitute(ctx, item.span().start, s, vars)?);
                }
            }
            "shard_index" | "num_shards" | "shard-index" | "num-shards" => {
                return Err(ctx.err(
                    offset,
                    format!("`{key}`: pipelines run whole; split a stage over a cluster with its command (see pipelines/slurm/)"),
                ))
            }
            _ => {
                let flag = format!("--{}", key.replace('_', "-"));
                let values: Vec<String> = match v.get_ref() {
                    DeValue::Boolean(true) => vec![],
                    DeValue::Boolean(false) => continue,
                    DeValue::Array(items) => {
                        let parts = items
                            .iter()
                            .map(|item| {
                                let text = scalar_text(ctx, (k, item))?;
                                substitute(ctx, item.span().start, &text, vars)
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        vec![parts.join(",")]
                    }
                    DeValue::Table(_) | DeValue::Datetime(_) => {
                        return Err(ctx.err(offset, format!("`{key}`: expected a string, number, boolean or array")))
                    }
                    _ => vec![substitute(ctx, v.span().start, &scalar_text(ctx, (k, v))?, vars)?],
                };
                argv_flags.push(flag.clone());
                argv_flags.extend(values);
                flags.push((flag, offset));
            }
        }
    }
    let name = name.ok_or_else(|| ctx.err(at, "stage without a `name`"))?;
    let (run, run_at) =
        run.ok_or_else(|| ctx.err(at, format!("stage `{name}` has no `run` (one of: {})", STAGE_COMMANDS.join(", "))))?;
    let words: Vec<String> = run.split_whitespace().map(str::to_string).collect();
    if !STAGE_COMMANDS.contains(&words.join(" ").as_str()) {
        return Err(ctx.err(
            run_at,
            format!("stage `{name}`: `run = \"{run}\"` is not a stage command (one of: {})", STAGE_COMMANDS.join(", ")),
        ));
    }
    let mut argv = words.clone();
    argv.extend(argv_flags);
    argv.extend(positional);
    let parsed = Dak::try_parse_from(std::iter::once("dak".to_string()).chain(argv.iter().cloned())).map_err(|e| {
        // Point at the key clap complains about, else at the stage.
        let named = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            Some(ContextValue::Strings(v)) => v.first().cloned(),
            _ => None,
        };
        let flag = named.as_deref().and_then(|s| s.split_whitespace().next()).unwrap_or_default().to_string();
        let offset = flags.iter().find(|(f, _)| *f == flag).map(|(_, o)| *o).unwrap_or(at);
        let first = e.render().to_string();
        let first = first.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        let key = flag.trim_start_matches("--").replace('-', "_");
        let what = if flag.is_empty() { String::new() } else { format!(", key `{key}`") };
        ctx.err(offset, format!("stage `{name}`{what}: {first} (see `dak {} --help`)", words.join(" ")))
    })?;
    let io = stage_io(&parsed.command).map_err(|m| ctx.err(at, format!("stage `{name}`: {m}")))?;
    let takes_force = words
        .iter()
        .try_fold(Dak::command(), |c, w| c.find_subcommand(w).cloned())
        .is_some_and(|c| c.get_arguments().any(|a| a.get_long() == Some("force")));
    // Remember where each input came from for missing-path errors.
    let io = io.locate(|flag| {
        flags.iter().find(|(f, _)| f == flag).map(|(_, o)| line_of(ctx.text, *o)).unwrap_or(line_of(ctx.text, at))
    });
    Ok(Stage { name, line: line_of(ctx.text, at), argv, takes_force, io })
}

/// Every input exists or is written by an earlier stage.
fn check_inputs(ctx: &Ctx, pipeline: &Pipeline) -> Result<(), SpecError> {
    for (i, stage) in pipeline.stages.iter().enumerate() {
        for input in &stage.io.inputs {
            let produced = pipeline.stages[..i].iter().any(|s| super::io::within(&input.path, &s.io.output));
            if !produced && !input.path.exists() {
                return Err(SpecError {
                    file: ctx.file.to_path_buf(),
                    line: input.line,
                    message: format!(
                        "stage `{}`, key `{}`: {} does not exist and no earlier stage writes it",
                        stage.name,
                        input.key,
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
        assert_eq!(p.stages[0].argv, ["prep", "synth", "--out", "target/pipeline-spec-test/shards", "--frames", "40"]);
        let train = &p.stages[1];
        assert_eq!(
            train.argv,
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
        assert!(train.takes_force && train.line == 12);
        assert_eq!(train.io.inputs[0].path, Path::new("target/pipeline-spec-test/shards"));
        // --set overrides a var.
        let p = parse(Path::new("p.toml"), GOOD, &[("epochs".into(), "9".into())]).unwrap();
        assert!(p.stages[1].argv.contains(&"9".to_string()));
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
}
