//! The config file: read with serde into typed tables, every key and value with its place in the
//! text (`toml::Spanned`), so an error names the line it is on — the second `[projects.X]` table's
//! own line, not the first line of the file that assigns the same key — and a typo gets a hint.
//! Unknown keys are serde's (`deny_unknown_fields`); values are checked here, with orch's words.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use toml::{Spanned, Value};

use super::{
    count_range, find_key, parse_author, resolve_path, resolve_program, valid_name, Agent,
    CommentsOn, Config, Forge, ForgeKind, Kind, PermissionMode, Project, Source, Stage,
    DEFAULT_PR_ISSUE_REF, DEFAULT_PR_TITLE, DEFAULT_REMOTE, KEYS, MAX_RUNNING, PRIORITY,
    STAGE_TIMEOUT,
};
use crate::domain::agent::AgentKind;
use crate::domain::{branch, intake};
use crate::{exit, fsx};

/// A budget this large is a typo, not a budget.
const MAX_DOLLARS: f64 = 1_000_000.0;

/// A config file larger than this is not one a person wrote.
const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// The top-level names that are tables or lists rather than settings.
const TABLES: &[&str] = &["projects", "pipeline", "stages", "agents", "secret_env"];

type Named<T> = BTreeMap<Spanned<String>, Spanned<T>>;

/// The file as written.
#[derive(Default)]
struct Document {
    /// Top-level scalars: the settings of `config::KEYS` (or typos of them).
    settings: Vec<(Spanned<String>, Spanned<Value>)>,
    projects: Option<Spanned<Named<ProjectTable>>>,
    pipeline: Option<Spanned<PipelineTable>>,
    stages: Option<Spanned<Named<StageTable>>>,
    agents: Option<Spanned<Named<AgentTable>>>,
    secret_env: Option<Spanned<Value>>,
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By hand rather than `#[serde(flatten)]`, which would lose the settings' places.
        struct Walk;
        impl<'de> Visitor<'de> for Walk {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML document")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut doc = Document::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.get_ref().as_str() {
                        "projects" => doc.projects = Some(map.next_value()?),
                        "pipeline" => doc.pipeline = Some(map.next_value()?),
                        "stages" => doc.stages = Some(map.next_value()?),
                        "agents" => doc.agents = Some(map.next_value()?),
                        "secret_env" => doc.secret_env = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value()?;
                            doc.settings.push((key, value));
                        }
                    }
                }
                Ok(doc)
            }
        }
        deserializer.deserialize_map(Walk)
    }
}

type Field = Option<Spanned<Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectTable {
    workdir: Field,
    max_running: Field,
    priority: Field,
    auto_commit: Field,
    commit_author: Field,
    max_cost_usd: Field,
    max_cost_usd_per_day: Field,
    agent: Field,
    forge: Option<Spanned<ForgeTable>>,
    worktrees: Field,
    base_branch: Field,
    remote: Field,
    branch_template: Field,
    pr_title: Field,
    pr_issue_ref: Field,
    pr_draft: Field,
    usage_comments: Field,
    intake: Field,
    intake_label: Field,
    task_key: Field,
    issue_labels: Field,
    approvers: Field,
    merge: Field,
    merge_style: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgeTable {
    kind: Field,
    url: Field,
    repo: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineTable {
    stages: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageTable {
    prompt: Field,
    extra_args: Field,
    timeout_seconds: Field,
    idle_timeout_seconds: Field,
    permission_mode: Field,
    allowed_tools: Field,
    disallowed_tools: Field,
    resume: Field,
    max_budget_usd: Field,
    agent: Field,
    ci_gate: Field,
    approve: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentTable {
    kind: Field,
    bin: Field,
    home: Field,
    argv: Field,
    extra_args: Field,
    min_version: Field,
    env: Option<Spanned<BTreeMap<Spanned<String>, Spanned<Value>>>>,
    prices: Option<Spanned<PricesTable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PricesTable {
    input_per_mtok: Field,
    cached_input_per_mtok: Field,
    output_per_mtok: Field,
}

/// The file's path and text, for turning a place into "config.toml line 7".
pub(super) struct Text<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Text<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    /// "config.toml line 7: key".
    fn at(&self, offset: usize, key: &str) -> String {
        format!("{} line {}: {key}", self.path.display(), self.line(offset))
    }

    fn error(&self, offset: usize, key: &str, what: impl fmt::Display) -> anyhow::Error {
        exit::config(format!("{}: {what}", self.at(offset, key)))
    }

    /// serde's own words about the file (an unknown key, a table where a value should be), at its
    /// line, with a hint for a typo.
    fn serde_error(&self, err: &toml::de::Error) -> anyhow::Error {
        let message = err.message().trim_end();
        let line = err.span().map(|span| self.line(span.start));
        let place = match line {
            Some(line) => format!("{} line {line}", self.path.display()),
            None => self.path.display().to_string(),
        };
        // serde: "unknown field `max_runing`, expected one of `workdir`, `max_running`, …".
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((name, expected)) = rest.split_once('`') {
                let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect::<Vec<_>>();
                return exit::config(format!(
                    "{place}: {name}: unknown key (expected one of: {}){}",
                    known.join(", "),
                    crate::suggest::hint(name, known.iter().copied())
                ));
            }
        }
        // A syntax error: where exactly, as an editor counts.
        let column = err.span().map(|span| {
            let start = span.start.min(self.text.len());
            self.text[..start]
                .rfind('\n')
                .map_or(start, |nl| start - nl - 1)
                + 1
        });
        match column {
            Some(column) => exit::config(format!("{place}, column {column}: {message}")),
            None => exit::config(format!("{place}: {message}")),
        }
    }
}

/// A value and its key, to check with orch's words.
struct Checked<'a> {
    file: &'a Text<'a>,
    key: &'a str,
    value: &'a Spanned<Value>,
    home: Option<&'a Path>,
}

impl Checked<'_> {
    fn wrong(&self, wanted: &str) -> anyhow::Error {
        self.file.error(
            self.value.span().start,
            self.key,
            format!("expected {wanted}"),
        )
    }

    fn text(&self) -> Result<String> {
        match self.value.get_ref() {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.wrong("a string")),
        }
    }

    fn count(&self, (min, max): (u64, u64)) -> Result<u64> {
        self.value
            .get_ref()
            .as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| self.wrong(&count_range(min, max)))
    }

    fn int(&self, (min, max): (i64, i64)) -> Result<i64> {
        self.value
            .get_ref()
            .as_integer()
            .filter(|i| (min..=max).contains(i))
            .ok_or_else(|| self.wrong(&count_range(min, max)))
    }

    /// An amount of US dollars: a number (`5` or `2.50`) above zero, below a million.
    fn dollars(&self) -> Result<f64> {
        let amount = match self.value.get_ref() {
            Value::Integer(i) => *i as f64,
            Value::Float(f) => *f,
            _ => f64::NAN,
        };
        if amount.is_finite() && amount > 0.0 && amount < MAX_DOLLARS {
            Ok(amount)
        } else {
            Err(self.wrong("an amount of US dollars above 0 and below 1000000, like 5 or 2.50"))
        }
    }

    fn bool(&self) -> Result<bool> {
        self.value
            .get_ref()
            .as_bool()
            .ok_or_else(|| self.wrong("true or false"))
    }

    fn list(&self) -> Result<Vec<String>> {
        string_list(self.value.get_ref()).ok_or_else(|| self.wrong("a list of strings"))
    }

    fn checked<T>(&self, check: impl Fn(&str) -> Result<T, String>) -> Result<T> {
        let raw = self.text()?;
        check(&raw).map_err(|why| self.file.error(self.value.span().start, self.key, why))
    }

    /// A path by `resolve_path`'s rule for the file: absolute, or `~/…`.
    fn path(&self) -> Result<PathBuf> {
        self.checked(|raw| resolve_path(raw, Source::File, self.home))
    }

    fn program(&self) -> Result<String> {
        self.checked(|raw| resolve_program(raw, Source::File, self.home))
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Read the file; a missing default file is no error, a missing named one is. Only a small
/// regular file is read: a FIFO there would hang every command, `/dev/zero` would fill the memory.
/// `/dev/null`, the usual way to say "no file", reads as an empty one.
pub(super) fn read(path: &Path, explicit: bool) -> Result<Option<String>> {
    let read = if path == Path::new("/dev/null") {
        Ok(String::new())
    } else {
        fsx::read_capped_text(path, CONFIG_MAX_BYTES)
    };
    match read {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.is_not_found() && !explicit => Ok(None),
        Err(err) => Err(exit::config(format!(
            "cannot read config file {}: {err}",
            path.display()
        ))),
    }
}

/// Apply the file's text to `config`: its settings (checked like any other source), then its
/// pipeline, projects, stages, agents and `secret_env`.
pub(super) fn apply(config: &mut Config, path: &Path, text: &str) -> Result<()> {
    let file = Text { path, text };
    let doc: Document = toml::from_str(text).map_err(|err| file.serde_error(&err))?;
    let home = config.home.clone();
    let home = home.as_deref();
    for (key, value) in &doc.settings {
        setting(config, &file, key, value)?;
    }
    if let Some(pipeline) = &doc.pipeline {
        config.stages = pipeline_stages(&file, pipeline)?;
    }
    if let Some(projects) = &doc.projects {
        for (name, table) in projects.get_ref() {
            let project = project(&file, name, table, home)?;
            config.projects.insert(project.name.clone(), project);
        }
    }
    if let Some(stages) = &doc.stages {
        for (name, table) in stages.get_ref() {
            checked_name(&file, name)?;
            if !config.stages.iter().any(|s| s == name.get_ref()) {
                return Err(file.error(
                    name.span().start,
                    &format!("[stages.{}]", name.get_ref()),
                    format!(
                        "not a stage of the pipeline ({}){}",
                        config.stages.join(", "),
                        crate::suggest::hint(
                            name.get_ref(),
                            config.stages.iter().map(String::as_str)
                        )
                    ),
                ));
            }
            let stage = stage(&file, table)?;
            config.stage_settings.insert(name.get_ref().clone(), stage);
        }
    }
    if let Some(agents) = &doc.agents {
        for (name, table) in agents.get_ref() {
            checked_name(&file, name)?;
            let agent = agent(&file, name.get_ref(), table, home)?;
            config.agents.insert(name.get_ref().clone(), agent);
        }
    }
    check_agents(config, &file, &doc)?;
    if let Some(list) = &doc.secret_env {
        config.secret_env = string_list(list.get_ref()).ok_or_else(|| {
            file.error(
                list.span().start,
                "secret_env",
                "expected a list of variable names",
            )
        })?;
    }
    Ok(())
}

/// One top-level `key = value`: a setting of `KEYS`, checked by `Config::set` like every source.
fn setting(
    config: &mut Config,
    file: &Text,
    key: &Spanned<String>,
    value: &Spanned<Value>,
) -> Result<()> {
    let name = key.get_ref().as_str();
    let at = key.span().start;
    let Some(found) = find_key(name) else {
        let candidates = KEYS.iter().map(|k| k.name).chain(TABLES.iter().copied());
        let mut why = format!("unknown setting{}", crate::suggest::hint(name, candidates));
        if value.get_ref().is_table() {
            why.push_str(
                " (tables are [projects.NAME], [pipeline], [stages.NAME] and [agents.NAME]; \
                 settings are `key = value` before the first table)",
            );
        }
        return Err(file.error(at, name, why));
    };
    if found.kind == Kind::Secret {
        return Err(file.error(
            at,
            name,
            format!(
                "secrets are read from the environment only ({} or {}_FILE)",
                found.env(),
                found.env()
            ),
        ));
    }
    let raw = match value.get_ref() {
        Value::String(s) => s.clone(),
        Value::Integer(i) if *i >= 0 => i.to_string(),
        Value::Boolean(b) => b.to_string(),
        other => return Err(file.error(at, name, format!("unsupported value {other}"))),
    };
    config
        .set(found, raw, Source::File)
        .map_err(|err| file.error(value.span().start, name, super::strip_origin(&err)))
}

fn checked_name(file: &Text, name: &Spanned<String>) -> Result<()> {
    if valid_name(name.get_ref()) {
        Ok(())
    } else {
        Err(file.error(
            name.span().start,
            name.get_ref(),
            "names use letters, digits, '-', '_' and '.' only",
        ))
    }
}

fn pipeline_stages(file: &Text, pipeline: &Spanned<PipelineTable>) -> Result<Vec<String>> {
    let wanted = "`stages = [\"…\", …]`";
    let Some(stages) = &pipeline.get_ref().stages else {
        return Err(file.error(
            pipeline.span().start,
            "pipeline",
            format!("expected {wanted}"),
        ));
    };
    let at = stages.span().start;
    let list = stages
        .get_ref()
        .as_array()
        .ok_or_else(|| file.error(at, "stages", format!("expected {wanted}")))?;
    let mut names: Vec<String> = Vec::new();
    for stage in list {
        let name = stage.as_str().filter(|s| valid_name(s)).ok_or_else(|| {
            file.error(
                at,
                "stages",
                format!("a stage is a name like \"developer\", got {stage}"),
            )
        })?;
        if names.iter().any(|n| n == name) {
            return Err(file.error(at, "stages", format!("stage {name:?} is listed twice")));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(file.error(at, "stages", "the pipeline needs at least one stage"));
    }
    Ok(names)
}

/// A field of a table, checked, or None when absent.
fn field<'a>(
    file: &'a Text,
    key: &'a str,
    value: &'a Field,
    home: Option<&'a Path>,
) -> Option<Checked<'a>> {
    value.as_ref().map(|value| Checked {
        file,
        key,
        value,
        home,
    })
}

fn project(
    file: &Text,
    name: &Spanned<String>,
    table: &Spanned<ProjectTable>,
    home: Option<&Path>,
) -> Result<Project> {
    checked_name(file, name)?;
    let t = table.get_ref();
    let get = |key, value| field(file, key, value, home);
    let workdir = get("workdir", &t.workdir)
        .ok_or_else(|| file.error(table.span().start, name.get_ref(), "workdir is required"))?
        .path()?;
    let commit_author = get("commit_author", &t.commit_author)
        .map(|f| {
            let author = f.text()?;
            match parse_author(&author) {
                Some(_) => Ok(author),
                None => Err(f.wrong("\"Name <email>\"")),
            }
        })
        .transpose()?;
    let intake = get("intake", &t.intake)
        .map(|f| f.bool())
        .transpose()?
        .unwrap_or(false);
    let issue_labels = get("issue_labels", &t.issue_labels)
        .map(|f| f.bool())
        .transpose()?
        .unwrap_or(false);
    for (key, on, value) in [
        ("intake", intake, &t.intake),
        ("issue_labels", issue_labels, &t.issue_labels),
    ] {
        if on && t.forge.is_none() {
            let at = value
                .as_ref()
                .map_or(table.span().start, |v| v.span().start);
            return Err(file.error(
                at,
                key,
                format!(
                    "{key} works on the issues of the project's forge: add [projects.{}.forge]",
                    name.get_ref()
                ),
            ));
        }
    }
    let max_running = get("max_running", &t.max_running)
        .map(|f| f.count(MAX_RUNNING))
        .transpose()?
        .unwrap_or(1);
    Ok(Project {
        name: name.get_ref().clone(),
        workdir,
        max_running: u32::try_from(max_running).expect("within MAX_RUNNING"),
        priority: get("priority", &t.priority)
            .map(|f| f.int(PRIORITY))
            .transpose()?
            .unwrap_or(0),
        auto_commit: get("auto_commit", &t.auto_commit)
            .map(|f| f.bool())
            .transpose()?
            .unwrap_or(false),
        commit_author,
        forge: t.forge.as_ref().map(|f| forge(file, f)).transpose()?,
        max_cost_usd: get("max_cost_usd", &t.max_cost_usd)
            .map(|f| f.dollars())
            .transpose()?,
        max_cost_usd_per_day: get("max_cost_usd_per_day", &t.max_cost_usd_per_day)
            .map(|f| f.dollars())
            .transpose()?,
        worktrees: get("worktrees", &t.worktrees)
            .map(|f| f.bool())
            .transpose()?
            .unwrap_or(true),
        base_branch: get("base_branch", &t.base_branch)
            .map(|f| f.checked(|raw| branch::valid(raw).map(|()| raw.to_string()).map_err(|why| format!("expected a branch name: {why}"))))
            .transpose()?,
        remote: get("remote", &t.remote)
            .map(|f| {
                f.checked(|raw| match valid_name(raw) {
                    true => Ok(raw.to_string()),
                    false => Err("expected the name of a remote of the workdir's repository (letters, digits, '-', '_', '.')".to_string()),
                })
            })
            .transpose()?
            .unwrap_or_else(|| DEFAULT_REMOTE.to_string()),
        branch_template: get("branch_template", &t.branch_template)
            .map(|f| f.checked(|raw| branch::check_template(raw).map(|()| raw.to_string())))
            .transpose()?
            .unwrap_or_else(|| branch::DEFAULT_TEMPLATE.to_string()),
        pr_title: get("pr_title", &t.pr_title)
            .map(|f| f.text())
            .transpose()?
            .unwrap_or_else(|| DEFAULT_PR_TITLE.to_string()),
        pr_issue_ref: get("pr_issue_ref", &t.pr_issue_ref)
            .map(|f| f.text())
            .transpose()?
            .unwrap_or_else(|| DEFAULT_PR_ISSUE_REF.to_string()),
        pr_draft: get("pr_draft", &t.pr_draft)
            .map(|f| f.bool())
            .transpose()?
            .unwrap_or(false),
        usage_comments: match get("usage_comments", &t.usage_comments) {
            None => CommentsOn::Pr,
            Some(f) => match f.text()?.as_str() {
                "issue" => CommentsOn::Issue,
                "pr" => CommentsOn::Pr,
                "both" => CommentsOn::Both,
                _ => return Err(f.wrong("\"issue\", \"pr\" or \"both\"")),
            },
        },
        agent: agent_name(get("agent", &t.agent))?,
        intake,
        intake_label: get("intake_label", &t.intake_label)
            .map(|f| f.checked(|raw| intake::check_label(raw).map(|()| raw.to_string())))
            .transpose()?
            .unwrap_or_else(|| intake::DEFAULT_LABEL.to_string()),
        issue_labels,
        approvers: match get("approvers", &t.approvers) {
            None => Vec::new(),
            Some(f) => {
                let logins = f.list()?;
                let valid = |l: &String| {
                    !l.is_empty()
                        && l.len() <= 100
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                };
                if !logins.iter().all(valid) {
                    return Err(f.wrong("a list of forge logins (letters, digits, '-', '_', '.')"));
                }
                logins
            }
        },
        merge_after_last_stage: match get("merge", &t.merge) {
            None => false,
            Some(f) => match f.text()?.as_str() {
                "never" => false,
                "after_last_stage" if t.forge.is_some() => true,
                "after_last_stage" => {
                    return Err(f.wrong("\"never\" (merging needs [projects.NAME.forge])"))
                }
                _ => return Err(f.wrong("\"never\" or \"after_last_stage\"")),
            },
        },
        merge_style: match get("merge_style", &t.merge_style) {
            None => crate::forge::MergeStyle::Merge,
            Some(f) => crate::forge::MergeStyle::from_name(&f.text()?)
                .ok_or_else(|| f.wrong("\"merge\", \"squash\" or \"rebase\""))?,
        },
        task_key: get("task_key", &t.task_key)
            .map(|f| f.checked(|raw| intake::check_task_key(raw).map(|()| raw.to_string())))
            .transpose()?
            .unwrap_or_else(|| intake::DEFAULT_TASK_KEY.to_string()),
    })
}

fn forge(file: &Text, table: &Spanned<ForgeTable>) -> Result<Forge> {
    let t = table.get_ref();
    let get = |key, value| field(file, key, value, None);
    let start = table.span().start;
    let kind = match get("kind", &t.kind)
        .map(|f| f.text())
        .transpose()?
        .as_deref()
    {
        Some("gitea") | Some("forgejo") => ForgeKind::Gitea,
        Some("github") => ForgeKind::Github,
        _ => {
            let at = t.kind.as_ref().map_or(start, |k| k.span().start);
            return Err(file.error(at, "kind", "expected \"gitea\", \"forgejo\" or \"github\""));
        }
    };
    let url = match (get("url", &t.url).map(|f| f.text()).transpose()?, &kind) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, ForgeKind::Github) => "https://api.github.com".to_string(),
        (None, ForgeKind::Gitea) => {
            return Err(file.error(start, "url", "expected the forge's URL"));
        }
    };
    let repo = get("repo", &t.repo).map(|f| f.text()).transpose()?;
    let repo = repo
        .filter(|r| r.split('/').count() == 2 && !r.starts_with('/') && !r.ends_with('/'))
        .ok_or_else(|| {
            let at = t.repo.as_ref().map_or(start, |r| r.span().start);
            file.error(at, "repo", "expected \"owner/name\"")
        })?;
    Ok(Forge { kind, url, repo })
}

fn stage(file: &Text, table: &Spanned<StageTable>) -> Result<Stage> {
    let t = table.get_ref();
    let get = |key, value| field(file, key, value, None);
    Ok(Stage {
        prompt: get("prompt", &t.prompt).map(|f| f.text()).transpose()?,
        extra_args: get("extra_args", &t.extra_args)
            .map(|f| f.list())
            .transpose()?
            .unwrap_or_default(),
        timeout_seconds: get("timeout_seconds", &t.timeout_seconds)
            .map(|f| f.count(STAGE_TIMEOUT))
            .transpose()?,
        idle_timeout_seconds: get("idle_timeout_seconds", &t.idle_timeout_seconds)
            .map(|f| f.count(STAGE_TIMEOUT))
            .transpose()?,
        permission_mode: get("permission_mode", &t.permission_mode)
            .map(|f| {
                f.checked(|name| {
                    PermissionMode::from_name(name).ok_or_else(|| {
                        let names = PermissionMode::ALL.iter().map(|m| m.as_str());
                        format!(
                            "expected one of {}{}",
                            names.clone().collect::<Vec<_>>().join(", "),
                            crate::suggest::hint(name, names)
                        )
                    })
                })
            })
            .transpose()?,
        allowed_tools: tools(get("allowed_tools", &t.allowed_tools))?,
        disallowed_tools: tools(get("disallowed_tools", &t.disallowed_tools))?,
        resume: get("resume", &t.resume).map(|f| f.bool()).transpose()?,
        max_budget_usd: get("max_budget_usd", &t.max_budget_usd)
            .map(|f| f.dollars())
            .transpose()?,
        agent: agent_name(get("agent", &t.agent))?,
        ci_gate: get("ci_gate", &t.ci_gate).map(|f| f.bool()).transpose()?,
        approve: get("approve", &t.approve).map(|f| f.bool()).transpose()?,
    })
}

/// A stage's or a project's `agent`: a name, checked against the profiles once they are read
/// (`check_agents`).
fn agent_name(field: Option<Checked>) -> Result<Option<String>> {
    field
        .map(|f| {
            f.checked(|name| {
                if valid_name(name) {
                    Ok(name.to_string())
                } else {
                    Err("expected an agent's name: letters, digits, '-', '_' and '.'".to_string())
                }
            })
        })
        .transpose()
}

/// Every `agent` a stage or a project names must be a profile (`[agents.NAME]`) or a kind's name.
fn check_agents(config: &Config, file: &Text, doc: &Document) -> Result<()> {
    let stages = doc.stages.iter().flat_map(|t| t.get_ref().values());
    let projects = doc.projects.iter().flat_map(|t| t.get_ref().values());
    let fields = stages
        .map(|s| &s.get_ref().agent)
        .chain(projects.map(|p| &p.get_ref().agent));
    for field in fields.flatten() {
        let Some(name) = field.get_ref().as_str() else {
            continue;
        };
        if !config.is_agent(name) {
            let kinds = AgentKind::ALL.iter().map(|k| k.name());
            let known: Vec<&str> = kinds
                .chain(config.agents.keys().map(String::as_str))
                .collect();
            return Err(file.error(
                field.span().start,
                "agent",
                format!(
                    "unknown agent {name:?}: add [agents.{name}] with its kind, or name one of {}{}",
                    known.join(", "),
                    crate::suggest::hint(name, known.iter().copied())
                ),
            ));
        }
    }
    Ok(())
}

/// A list of tool rules (`"Bash(git diff:*)"`, `"Edit"`): each reaches the agent as one argument
/// after its flag, so none may look like an option or be empty.
fn tools(field: Option<Checked>) -> Result<Vec<String>> {
    let Some(f) = field else {
        return Ok(Vec::new());
    };
    let list = f.list()?;
    if list
        .iter()
        .any(|t| t.trim().is_empty() || t.starts_with('-') || t.chars().any(char::is_control))
    {
        return Err(f.wrong(
            "tool names like \"Edit\" or \"Bash(git diff:*)\", none empty or starting with '-'",
        ));
    }
    Ok(list)
}

fn agent(
    file: &Text,
    name: &str,
    table: &Spanned<AgentTable>,
    home: Option<&Path>,
) -> Result<Agent> {
    let t = table.get_ref();
    let get = |key, value| field(file, key, value, home);
    let kind = match get("kind", &t.kind) {
        Some(f) => {
            let kind = f.text()?;
            AgentKind::from_name(&kind).ok_or_else(|| {
                f.wrong(&format!(
                    "a kind of agent orch knows ({}), got {kind:?}{}",
                    AgentKind::names(),
                    crate::suggest::hint(&kind, AgentKind::ALL.iter().map(|k| k.name()))
                ))
            })?
        }
        None => AgentKind::for_profile(name),
    };
    let mut env = BTreeMap::new();
    if let Some(vars) = &t.env {
        for (name, value) in vars.get_ref() {
            let value = match value.get_ref() {
                Value::String(s) => s.clone(),
                _ => {
                    return Err(file.error(value.span().start, name.get_ref(), "expected a string"))
                }
            };
            env.insert(name.get_ref().clone(), value);
        }
    }
    let argv = match get("argv", &t.argv) {
        Some(f) => {
            let argv = f.list()?;
            if !crate::domain::prompt::prompt_is_positional(&argv) {
                return Err(f.wrong(
                    "a template where {prompt} comes after a \"--\" element (e.g. [\"{bin}\", \
                     \"-p\", \"--\", \"{prompt}\"]), so no task text can be read as an option; \
                     or embed it, as in \"--prompt={prompt}\"",
                ));
            }
            Some(argv)
        }
        None => None,
    };
    Ok(Agent {
        kind,
        bin: get("bin", &t.bin).map(|f| f.program()).transpose()?,
        home: get("home", &t.home).map(|f| f.path()).transpose()?,
        argv,
        extra_args: get("extra_args", &t.extra_args)
            .map(|f| f.list())
            .transpose()?
            .unwrap_or_default(),
        min_version: get("min_version", &t.min_version)
            .map(|f| f.text())
            .transpose()?,
        env,
        prices: t.prices.as_ref().map(|p| prices(file, p)).transpose()?,
    })
}

/// `[agents.NAME.prices]`: US dollars per million tokens.
fn prices(file: &Text, table: &Spanned<PricesTable>) -> Result<crate::domain::price::Prices> {
    let t = table.get_ref();
    let required = |key: &str, value: &Field| -> Result<f64> {
        match field(file, key, value, None) {
            Some(f) => f.dollars(),
            None => Err(file.error(
                table.span().start,
                key,
                "is required: US dollars per million tokens",
            )),
        }
    };
    Ok(crate::domain::price::Prices {
        input: required("input_per_mtok", &t.input_per_mtok)?,
        cached_input: field(
            file,
            "cached_input_per_mtok",
            &t.cached_input_per_mtok,
            None,
        )
        .map(|f| f.dollars())
        .transpose()?,
        output: required("output_per_mtok", &t.output_per_mtok)?,
    })
}
