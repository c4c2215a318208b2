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

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A problem in a pipeline file, located.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", file.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not on one line (e.g. a `--set`).
    pub line: usize,
    pub message: String,
}

/// A pipeline file read into command lines, before the commands are checked.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: PathBuf,
    pub name: String,
    pub stages: Vec<RawStage>,
}

/// One `[[stage]]`: its command line and where each part came from.
#[derive(Debug, Clone)]
pub struct RawStage {
    pub name: String,
    /// Line of the stage (1-based).
    pub line: usize,
    pub run_line: usize,
    /// The subcommand words of `run` (`["augment", "fit"]`).
    pub words: Vec<String>,
    /// The command line without the program name, in file order.
    pub argv: Vec<String>,
    /// (`--flag`, line of its key) for every flag; `""` for `args`.
    pub flags: Vec<(String, usize)>,
}

impl RawStage {
    /// Line of the key behind `flag`, else the stage's.
    pub fn line_of_flag(&self, flag: &str) -> usize {
        self.flags.iter().find(|(f, _)| f == flag).map(|(_, l)| *l).unwrap_or(self.line)
    }

    /// The command as the file gives it, as a shell line.
    pub fn shell_line(&self) -> String {
        shell_line(&self.argv)
    }
}

/// `dak ARGS` as a shell line (quoted where needed), for plans and logs.
pub fn shell_line(args: &[String]) -> String {
    std::iter::once("dak".to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Line (1-based) of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
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
pub const STAGE_COMMANDS: &[&str] = &[
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

/// Read `file`; `overrides` replace `[vars]` entries (`--set`).
pub fn load_document(file: &Path, overrides: &[(String, String)]) -> Result<Document, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_document(file, &text, overrides)
}

pub fn parse_document(file: &Path, text: &str, overrides: &[(String, String)]) -> Result<Document, SpecError> {
    let ctx = Ctx { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        ctx.err(offset, format!("not valid TOML: {}", e.message().trim()))
    })?;
    let (mut name, mut vars, mut stages) = (None, BTreeMap::new(), None);
    // Where each var is defined, for errors in its value.
    let mut var_at: BTreeMap<String, usize> = BTreeMap::new();
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
                    var_at.insert(k.get_ref().to_string(), k.span().start);
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
    let vars = expand_vars(&ctx, vars, &var_at)?;
    let stages_value = stages.ok_or_else(|| ctx.err(0, "no [[stage]] tables"))?;
    let DeValue::Array(items) = stages_value.get_ref() else {
        return Err(ctx.err(stages_value.span().start, "`stage` must be an array of tables: write [[stage]]"));
    };
    let mut out: Vec<RawStage> = Vec::new();
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
    Ok(Document {
        file: file.to_path_buf(),
        name: name.unwrap_or_else(|| file.file_stem().unwrap_or_default().to_string_lossy().into_owned()),
        stages: out,
    })
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

/// `[vars]` values may name other vars (`runs = "${root}/runs"`), after a
/// `--set` too; each is expanded until none is left, and a cycle is an error.
fn expand_vars(
    ctx: &Ctx,
    mut vars: BTreeMap<String, String>,
    var_at: &BTreeMap<String, usize>,
) -> Result<BTreeMap<String, String>, SpecError> {
    for _ in 0..=vars.len() {
        if !vars.values().any(|v| v.contains("${")) {
            return Ok(vars);
        }
        let before = vars.clone();
        for (name, value) in vars.iter_mut() {
            *value = substitute(ctx, var_at.get(name).copied().unwrap_or(0), value, &before)?;
        }
    }
    let cyclic: Vec<&str> = vars.iter().filter(|(_, v)| v.contains("${")).map(|(k, _)| k.as_str()).collect();
    let at = cyclic.first().and_then(|k| var_at.get(*k)).copied().unwrap_or(0);
    Err(ctx.err(at, format!("[vars] {} refer to each other in a cycle", cyclic.join(", "))))
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

fn parse_stage(ctx: &Ctx, at: usize, table: &DeTable, vars: &BTreeMap<String, String>) -> Result<RawStage, SpecError> {
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
                // Positional arguments are located under the empty flag.
                flags.push((String::new(), offset));
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
                    // An empty list is no filter (every subject, split, ...),
                    // as leaving the key out; `--subjects ""` would match none.
                    DeValue::Array(items) if items.is_empty() => continue,
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
    let flags = flags.into_iter().map(|(f, o)| (f, line_of(ctx.text, o))).collect();
    Ok(RawStage { name, line: line_of(ctx.text, at), run_line: line_of(ctx.text, run_at), words, argv, flags })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str, set: &[(&str, &str)]) -> Result<Document, SpecError> {
        let set: Vec<(String, String)> = set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        parse_document(Path::new("p.toml"), text, &set)
    }

    const STAGE: &str = "[[stage]]\nname = \"s\"\nrun = \"prep stats\"\nshards = [\"${runs}/x\"]\nsubjects = []\n";

    /// Vars name other vars, after --set too; an empty list is no flag.
    #[test]
    fn vars_expand_in_vars_and_empty_lists_are_left_out() {
        let text = format!("[vars]\nroot = \"/data\"\nruns = \"${{root}}/runs\"\n{STAGE}");
        assert_eq!(doc(&text, &[]).unwrap().stages[0].argv, ["prep", "stats", "--shards", "/data/runs/x"]);
        let set = doc(&text, &[("root", "/scratch")]).unwrap();
        assert_eq!(set.stages[0].argv[3], "/scratch/runs/x");
        let cycle = format!("[vars]\nroot = \"${{runs}}\"\nruns = \"${{root}}/runs\"\n{STAGE}");
        let err = doc(&cycle, &[]).unwrap_err().to_string();
        assert!(err.contains("p.toml:2:") && err.contains("cycle") && err.contains("root, runs"), "{err}");
        let undefined = format!("[vars]\nroot = \"/data\"\nruns = \"${{rot}}/runs\"\n{STAGE}");
        let err = doc(&undefined, &[]).unwrap_err().to_string();
        assert!(err.contains("p.toml:3:") && err.contains("`${rot}` is not defined"), "{err}");
    }
}
