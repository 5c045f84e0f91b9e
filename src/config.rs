//! Settings: built-in defaults < TOML file < `ORCH_*` environment < flags, each value with its
//! source. Every scalar setting is one row of `KEYS`; its environment variable is its name in upper
//! case behind `ORCH_` (`lease_seconds` ⇔ `ORCH_LEASE_SECONDS`), so the rule needs no table of its own.
//! Tables (projects, pipeline, stages, agents) come from the file only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::exit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number ≥ 0.
    Count,
    Bool,
    Text,
    Path,
    /// Never read from the file or flags, never printed: environment or `<NAME>_FILE` only.
    Secret,
}

/// One scalar setting.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

impl Key {
    pub fn env(&self) -> String {
        format!("ORCH_{}", self.name.to_ascii_uppercase())
    }

    /// Where a value of this key came from, as an operator would write it: `ORCH_LEASE_SECONDS`,
    /// `--set lease_seconds`, `lease_seconds in the config file`.
    pub fn origin(&self, source: Source) -> String {
        match source {
            Source::Env => self.env(),
            Source::Flag => format!("--set {}", self.name),
            Source::File => format!("{} in the config file", self.name),
            Source::Default => format!("the default {}", self.name),
        }
    }
}

macro_rules! keys {
    ($($ident:ident = $name:literal, $kind:ident, $default:expr, $doc:literal;)*) => {
        $(pub const $ident: &Key = &Key { name: $name, kind: Kind::$kind, default: $default, doc: $doc };)*
        /// Every scalar setting, in the order `orch config` and the README list them.
        pub const KEYS: &[&Key] = &[$($ident),*];
    };
}

keys! {
    DB = "db", Path, None, "SQLite database (default $XDG_STATE_HOME/orch/orch.db, else ~/.local/state/orch/orch.db)";
    LOG_DIR = "log_dir", Path, None, "Directory for run logs (default: `logs/` beside the database)";
    BUSY_TIMEOUT_MS = "busy_timeout_ms", Count, Some("5000"), "How long a step waits for another process's write lock";
    LEASE_SECONDS = "lease_seconds", Count, Some("900"), "Lease a claim holds before another worker may rescue the job";
    HOST = "host", Text, None, "This machine's name on the runs it records (default: the system host name); unique per machine";
    MAX_ATTEMPTS = "max_attempts", Count, Some("3"), "Attempts a job gets before it fails for good";
    COLOR = "color", Text, Some("auto"), "auto, always or never";
    CLAUDE_BIN = "claude_bin", Text, Some("claude"), "The agent binary (a path, or a name looked up on PATH)";
    AGENT_HOME = "agent_home", Path, None, "The agent's HOME when it runs as another user (default: orch's HOME)";
    CLAUDE_CREDENTIALS_PATH = "claude_credentials_path", Path, None, "Credentials file to check (default: see preflight)";
    PREFLIGHT_CHECK_AUTH = "preflight_check_auth", Bool, Some("true"), "false: preflight checks the version only";
    PREFLIGHT_CACHE_TTL = "preflight_cache_ttl", Count, Some("300"), "Seconds a preflight verdict is served from the cache";
    VERSION_TIMEOUT_SECONDS = "version_timeout_seconds", Count, Some("10"), "How long `<agent> --version` may take";
    AUTH_EXPIRY_SKEW_SECONDS = "auth_expiry_skew_seconds", Count, Some("300"), "A token expiring within this many seconds counts as expired";
    AUTH_ALLOW_REFRESHABLE = "auth_allow_refreshable", Bool, Some("false"), "true: an expired token with a refresh token passes";
    RUN_TIMEOUT_SECONDS = "run_timeout_seconds", Count, Some("2700"), "A run longer than this is ended (per stage: [stages.NAME] timeout_seconds)";
    KILL_GRACE_SECONDS = "kill_grace_seconds", Count, Some("10"), "Between SIGTERM and SIGKILL when a run is ended";
    LOG_MAX_BYTES = "log_max_bytes", Count, Some("268435456"), "A run's log is cut at this size";
    RETRY_BASE_SECONDS = "retry_base_seconds", Count, Some("60"), "First retry delay; doubles with each attempt";
    RETRY_MAX_SECONDS = "retry_max_seconds", Count, Some("3600"), "Longest retry delay";
    RATE_LIMIT_BACKOFF_SECONDS = "rate_limit_backoff_seconds", Count, Some("900"), "Shortest retry delay after a rate limit";
    BREAKER_THRESHOLD = "breaker_threshold", Count, Some("3"), "Consecutive transient failures that open an agent's circuit breaker";
    BREAKER_COOLDOWN_SECONDS = "breaker_cooldown_seconds", Count, Some("600"), "How long an open breaker waits before a probe";
    GIT_TIMEOUT_SECONDS = "git_timeout_seconds", Count, Some("120"), "How long each git command of an auto-commit may take";
    NOTIFY_MAX_ATTEMPTS = "notify_max_attempts", Count, Some("20"), "Delivery attempts before a message is marked dead";
    NOTIFY_RETRY_BASE_SECONDS = "notify_retry_base_seconds", Count, Some("30"), "First delay after a failed delivery; doubles with each attempt";
    NOTIFY_RETRY_MAX_SECONDS = "notify_retry_max_seconds", Count, Some("3600"), "Longest delay between delivery attempts";
    ALERT_DEDUP_SECONDS = "alert_dedup_seconds", Count, Some("3600"), "Alerts of one kind and key within this window fold into one";
    HTTP_TIMEOUT_SECONDS = "http_timeout_seconds", Count, Some("10"), "Connect and read timeout for Telegram and the forge";
    TELEGRAM_API_URL = "telegram_api_url", Text, Some("https://api.telegram.org"), "Telegram Bot API base URL";
    TELEGRAM_CHAT_ID = "telegram_chat_id", Text, None, "Chat that receives alerts";
    TELEGRAM_BOT_TOKEN = "telegram_bot_token", Secret, None, "Bot token (environment or ORCH_TELEGRAM_BOT_TOKEN_FILE only)";
    FORGE_TOKEN = "forge_token", Secret, None, "Forge API token (environment or ORCH_FORGE_TOKEN_FILE only)";
}

pub const DEFAULT_STAGES: &[&str] = &[
    "analyst",
    "architect",
    "developer",
    "reviewer",
    "tester",
    "deployer",
];
pub const DEFAULT_AGENT: &str = "claude";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Flag => "flag",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Setting {
    pub value: String,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    Gitea,
    Github,
}

#[derive(Debug, Clone, Serialize)]
pub struct Forge {
    pub kind: ForgeKind,
    /// Gitea/Forgejo: the site URL; GitHub: the API URL (default https://api.github.com).
    pub url: String,
    /// owner/name
    pub repo: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    pub workdir: PathBuf,
    pub max_running: u32,
    pub priority: i64,
    pub auto_commit: bool,
    pub commit_author: Option<String>,
    pub forge: Option<Forge>,
}

impl Project {
    /// Why the project's jobs cannot run here now: its workdir is missing or not a directory.
    pub fn workdir_problem(&self) -> Option<String> {
        (!self.workdir.is_dir()).then(|| {
            format!(
                "the workdir of project {} ({}) does not exist or is not a directory",
                self.name,
                self.workdir.display()
            )
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stage {
    pub prompt: Option<String>,
    pub extra_args: Vec<String>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Agent {
    pub bin: Option<String>,
    pub home: Option<PathBuf>,
    /// argv template; `{prompt}` is replaced by the stage prompt. Default: Claude Code's print mode.
    pub argv: Option<Vec<String>>,
    pub extra_args: Vec<String>,
    pub min_version: Option<String>,
    /// Extra environment for the agent (e.g. CLAUDE_CONFIG_DIR).
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: Option<PathBuf>,
    settings: BTreeMap<&'static str, Setting>,
    pub projects: BTreeMap<String, Project>,
    pub stages: Vec<String>,
    pub stage_settings: BTreeMap<String, Stage>,
    pub agents: BTreeMap<String, Agent>,
    /// Environment variables removed from the agent's environment besides orch's own secrets.
    pub secret_env: Vec<String>,
}

/// Where settings are read from; tests build one by hand, `load` reads the process's.
pub struct Inputs<'a> {
    pub global: &'a GlobalArgs,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Config {
    /// Read the process's configuration: file, environment, then the global flags.
    pub fn load(global: &GlobalArgs) -> Result<Config> {
        Config::load_from(&Inputs {
            global,
            env: &|name| std::env::var(name).ok(),
        })
    }

    pub fn load_from(inputs: &Inputs) -> Result<Config> {
        let env = inputs.env;
        let (file, explicit) = match (&inputs.global.config, env("ORCH_CONFIG")) {
            (Some(path), _) => (Some(path.clone()), true),
            (None, Some(path)) if !path.is_empty() => (Some(PathBuf::from(path)), true),
            _ => (default_config_path(env), false),
        };
        let table = match &file {
            Some(path) => read_table(path, explicit)?,
            None => None,
        };
        let mut config = Config {
            file: table.as_ref().and(file.clone()),
            settings: BTreeMap::new(),
            projects: BTreeMap::new(),
            stages: DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
            stage_settings: BTreeMap::new(),
            agents: BTreeMap::new(),
            secret_env: Vec::new(),
        };
        for key in KEYS {
            if let Some(default) = key.default {
                config.set(key, default.to_string(), Source::Default)?;
            }
        }
        if let Some((path, text, table)) = &table {
            config.apply_file(path, text, table)?;
        }
        for key in KEYS {
            if let Some(value) = env(&key.env()) {
                config.set(key, value, Source::Env)?;
            } else if key.kind == Kind::Secret {
                if let Some(path) = env(&format!("{}_FILE", key.env())) {
                    let value = std::fs::read_to_string(&path).map_err(|err| {
                        exit::config(format!("cannot read {}_FILE ({path}): {err}", key.env()))
                    })?;
                    config.set(key, value.trim_end().to_string(), Source::Env)?;
                }
            }
        }
        if let Some(db) = &inputs.global.db {
            config.set(DB, db.display().to_string(), Source::Flag)?;
        }
        if let Some(color) = inputs.global.color {
            let value = format!("{color:?}").to_ascii_lowercase();
            config.set(COLOR, value, Source::Flag)?;
        }
        for assignment in &inputs.global.set {
            let (name, value) = assignment
                .split_once('=')
                .ok_or_else(|| exit::usage(format!("--set {assignment}: expected KEY=VALUE")))?;
            let key = find_key(name.trim()).ok_or_else(|| {
                exit::usage(format!("--set {assignment}: unknown setting {name:?}"))
            })?;
            if key.kind == Kind::Secret {
                return Err(exit::usage(format!(
                    "--set {name}: secrets are read from the environment only ({}), never from argv",
                    key.env()
                )));
            }
            config.set(key, value.to_string(), Source::Flag)?;
        }
        // An empty ORCH_DB (or --db "") counts as unset, like an empty ORCH_CONFIG.
        if config.text(DB).is_none() {
            let db = default_state_dir(env)?.join("orch.db");
            config.set(DB, db.display().to_string(), Source::Default)?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &'static Key, value: String, source: Source) -> Result<()> {
        let valid = match key.kind {
            Kind::Count => value.trim().parse::<u64>().is_ok(),
            Kind::Bool => parse_bool(&value).is_some(),
            Kind::Text | Kind::Path | Kind::Secret => true,
        };
        if !valid {
            let origin = key.origin(source);
            let wanted = match key.kind {
                Kind::Count => "a whole number ≥ 0",
                _ => "true or false",
            };
            return Err(exit::config(format!(
                "{origin}: expected {wanted}, got {value:?}"
            )));
        }
        self.settings.insert(key.name, Setting { value, source });
        Ok(())
    }

    fn apply_file(&mut self, path: &Path, text: &str, table: &toml::Table) -> Result<()> {
        let at = |key: &str| -> String {
            match line_of(text, key) {
                Some(line) => format!("{} line {line}: {key}", path.display()),
                None => format!("{}: {key}", path.display()),
            }
        };
        for (name, value) in table {
            match name.as_str() {
                "projects" => self.projects = parse_projects(value, &at)?,
                "pipeline" => {
                    let stages =
                        value
                            .get("stages")
                            .and_then(|v| v.as_array())
                            .ok_or_else(|| {
                                exit::config(format!(
                                    "{}: expected `stages = [\"…\", …]`",
                                    at("pipeline")
                                ))
                            })?;
                    let mut names = Vec::new();
                    for stage in stages {
                        let name = stage.as_str().filter(|s| valid_name(s)).ok_or_else(|| {
                            exit::config(format!(
                                "{}: a stage is a name like \"developer\", got {stage}",
                                at("stages")
                            ))
                        })?;
                        if names.iter().any(|n| n == name) {
                            return Err(exit::config(format!(
                                "{}: stage {name:?} is listed twice",
                                at("stages")
                            )));
                        }
                        names.push(name.to_string());
                    }
                    if names.is_empty() {
                        return Err(exit::config(format!(
                            "{}: the pipeline needs at least one stage",
                            at("stages")
                        )));
                    }
                    self.stages = names;
                }
                "stages" => self.stage_settings = parse_map(value, "stages", &at, parse_stage)?,
                "agents" => self.agents = parse_map(value, "agents", &at, parse_agent)?,
                "secret_env" => {
                    self.secret_env = string_list(value).ok_or_else(|| {
                        exit::config(format!(
                            "{}: expected a list of variable names",
                            at("secret_env")
                        ))
                    })?
                }
                _ => {
                    let key = find_key(name)
                        .ok_or_else(|| exit::config(format!("{}: unknown setting", at(name))))?;
                    if key.kind == Kind::Secret {
                        return Err(exit::config(format!(
                            "{}: secrets are read from the environment only ({} or {}_FILE)",
                            at(name),
                            key.env(),
                            key.env()
                        )));
                    }
                    let raw = match value {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(i) if *i >= 0 => i.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        other => {
                            return Err(exit::config(format!(
                                "{}: unsupported value {other}",
                                at(name)
                            )));
                        }
                    };
                    self.set(key, raw, Source::File).map_err(|err| {
                        exit::config(format!("{}: {}", at(name), strip_origin(&err)))
                    })?;
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &Key) -> Option<&Setting> {
        self.settings.get(key.name)
    }

    pub fn text(&self, key: &Key) -> Option<&str> {
        self.get(key)
            .map(|s| s.value.as_str())
            .filter(|s| !s.is_empty())
    }

    pub fn path(&self, key: &Key) -> Option<PathBuf> {
        self.text(key).map(PathBuf::from)
    }

    /// A `Count` setting; validated at load, so a missing default is the only way to get 0.
    pub fn count(&self, key: &Key) -> u64 {
        debug_assert_eq!(key.kind, Kind::Count);
        self.get(key)
            .and_then(|s| s.value.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn flag(&self, key: &Key) -> bool {
        debug_assert_eq!(key.kind, Kind::Bool);
        self.get(key)
            .and_then(|s| parse_bool(&s.value))
            .unwrap_or(false)
    }

    pub fn db_path(&self) -> PathBuf {
        self.path(DB).expect("db always has a value")
    }

    /// This machine's name as runs record it: the `host` setting, else the system host name.
    /// A rescue looks up the processes of a run recorded under this name.
    pub fn host(&self) -> String {
        if let Some(host) = self.text(HOST).map(str::trim).filter(|h| !h.is_empty()) {
            return host.to_string();
        }
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        match std::str::from_utf8(&buf[..len]) {
            Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
            _ => "localhost".to_string(),
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path(LOG_DIR).unwrap_or_else(|| {
            let db = self.db_path();
            db.parent().unwrap_or(Path::new(".")).join("logs")
        })
    }

    pub fn project(&self, name: &str) -> Result<&Project> {
        self.projects.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.projects.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "no projects are configured; add [projects.NAME] with a workdir to the config file"
                    .to_string()
            } else {
                format!("known projects: {}", known.join(", "))
            };
            exit::config(format!("unknown project {name:?} ({hint})"))
        })
    }

    pub fn check_stage(&self, stage: &str) -> Result<()> {
        if self.stages.iter().any(|s| s == stage) {
            Ok(())
        } else {
            Err(exit::config(format!(
                "unknown stage {stage:?} (the pipeline is: {})",
                self.stages.join(", ")
            )))
        }
    }

    /// The stage after `stage` in the pipeline, or None after the last.
    pub fn next_stage(&self, stage: &str) -> Option<&str> {
        let at = self.stages.iter().position(|s| s == stage)?;
        self.stages.get(at + 1).map(String::as_str)
    }

    pub fn stage(&self, name: &str) -> Stage {
        self.stage_settings.get(name).cloned().unwrap_or_default()
    }

    /// The variables the agent never sees: each secret setting's variable and its `_FILE`
    /// variant, then the names listed in `secret_env`. The one list; the agent's command uses it.
    pub fn secret_vars(&self) -> Vec<String> {
        KEYS.iter()
            .filter(|key| key.kind == Kind::Secret)
            .flat_map(|key| [key.env(), format!("{}_FILE", key.env())])
            .chain(self.secret_env.iter().cloned())
            .collect()
    }

    /// The named agent profile; `claude` exists without configuration.
    pub fn agent(&self, name: &str) -> Result<Agent> {
        match self.agents.get(name) {
            Some(agent) => Ok(agent.clone()),
            None if name == DEFAULT_AGENT => Ok(Agent::default()),
            None => Err(exit::config(format!(
                "unknown agent {name:?}; add [agents.{name}] to the config file"
            ))),
        }
    }

    /// Every setting with its value and source, secrets masked.
    pub fn settings(&self) -> Vec<(&'static Key, Option<Setting>)> {
        KEYS.iter()
            .map(|key| {
                let setting = self.get(key).cloned().map(|mut s| {
                    if key.kind == Kind::Secret {
                        s.value = "***".to_string();
                    }
                    s
                });
                (*key, setting)
            })
            .collect()
    }
}

pub fn find_key(name: &str) -> Option<&'static Key> {
    KEYS.iter().copied().find(|key| key.name == name)
}

/// `Name <email>` (git's author form) as its two parts, both non-empty.
pub fn parse_author(author: &str) -> Option<(&str, &str)> {
    let (name, rest) = author.trim().split_once('<')?;
    let email = rest.strip_suffix('>')?.trim();
    let name = name.trim();
    let clean = |s: &str| !s.is_empty() && !s.contains(['<', '>', '\n', '\0']);
    (clean(name) && clean(email)).then_some((name, email))
}

pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Names of projects, stages and agents: safe in file names, SQL JSON paths and metric labels.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn strip_origin(err: &anyhow::Error) -> String {
    let text = err.to_string();
    match text.split_once(": expected") {
        Some((_, rest)) => format!("expected{rest}"),
        None => text,
    }
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir).join("orch/config.toml")),
        None => home(env).map(|h| h.join(".config/orch/config.toml")),
    }
}

fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    match env("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join("orch")),
        None => home(env)
            .map(|h| h.join(".local/state/orch"))
            .ok_or_else(|| exit::config("no database: set --db, ORCH_DB, XDG_STATE_HOME or HOME")),
    }
}

type Located = (PathBuf, String, toml::Table);
/// Where a key sits in the file, for error messages: "config.toml line 4: key".
type At<'a> = &'a dyn Fn(&str) -> String;
type ParseEntry<T> = fn(&str, &toml::Table, At) -> Result<T>;

/// The file's text and table; a missing default file is no error, a missing named one is.
fn read_table(path: &Path, explicit: bool) -> Result<Option<Located>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(err) => {
            return Err(exit::config(format!(
                "cannot read config file {}: {err}",
                path.display()
            )));
        }
    };
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
        exit::config(format!(
            "{}: {}",
            path.display(),
            err.to_string().trim_end()
        ))
    })?;
    Ok(Some((path.to_path_buf(), text, table)))
}

/// The 1-based line where `key` is assigned or its table opens, for error messages.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let assigns = line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            let opens =
                line.starts_with('[') && line.trim_end().trim_end_matches(']').ends_with(key);
            assigns || opens
        })
        .map(|index| index + 1)
}

fn string_list(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn parse_map<T>(
    value: &toml::Value,
    what: &str,
    at: &dyn Fn(&str) -> String,
    parse: ParseEntry<T>,
) -> Result<BTreeMap<String, T>> {
    let table = value
        .as_table()
        .ok_or_else(|| exit::config(format!("{}: expected [{what}.NAME] tables", at(what))))?;
    let mut out = BTreeMap::new();
    for (name, entry) in table {
        if !valid_name(name) {
            return Err(exit::config(format!(
                "{}: names use letters, digits, '-', '_' and '.' only",
                at(name)
            )));
        }
        let entry = entry
            .as_table()
            .ok_or_else(|| exit::config(format!("{}: expected a table", at(name))))?;
        out.insert(name.clone(), parse(name, entry, at)?);
    }
    Ok(out)
}

/// Reads one table's fields, rejecting unknown ones (a typo must not pass silently).
struct Fields<'a> {
    table: &'a toml::Table,
    at: &'a dyn Fn(&str) -> String,
    allowed: &'static [&'static str],
}

impl Fields<'_> {
    fn check(&self) -> Result<()> {
        match self
            .table
            .keys()
            .find(|k| !self.allowed.contains(&k.as_str()))
        {
            Some(unknown) => Err(exit::config(format!(
                "{}: unknown key (expected one of: {})",
                (self.at)(unknown),
                self.allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn wrong(&self, key: &str, wanted: &str) -> anyhow::Error {
        exit::config(format!("{}: expected {wanted}", (self.at)(key)))
    }

    fn text(&self, key: &str) -> Result<Option<String>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn count(&self, key: &str) -> Result<Option<u64>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(_) => Err(self.wrong(key, "a whole number ≥ 0")),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => Ok(Some(*i)),
            Some(_) => Err(self.wrong(key, "a whole number")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn list(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.table.get(key) {
            None => Ok(None),
            Some(value) => string_list(value)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a list of strings")),
        }
    }
}

fn parse_projects(
    value: &toml::Value,
    at: &dyn Fn(&str) -> String,
) -> Result<BTreeMap<String, Project>> {
    parse_map(value, "projects", at, |name, table, at| {
        let fields = Fields {
            table,
            at,
            allowed: &[
                "workdir",
                "max_running",
                "priority",
                "auto_commit",
                "commit_author",
                "forge",
            ],
        };
        fields.check()?;
        let workdir = fields
            .text("workdir")?
            .ok_or_else(|| exit::config(format!("{}: workdir is required", at(name))))?;
        let max_running = fields.count("max_running")?.unwrap_or(1);
        if max_running == 0 || max_running > u32::MAX as u64 {
            return Err(fields.wrong("max_running", "a whole number ≥ 1"));
        }
        let forge = match table.get("forge") {
            None => None,
            Some(value) => Some(parse_forge(value, at)?),
        };
        let commit_author = fields.text("commit_author")?;
        if commit_author
            .as_deref()
            .is_some_and(|a| parse_author(a).is_none())
        {
            return Err(fields.wrong("commit_author", "\"Name <email>\""));
        }
        Ok(Project {
            name: name.to_string(),
            workdir: PathBuf::from(workdir),
            max_running: max_running as u32,
            priority: fields.int("priority")?.unwrap_or(0),
            auto_commit: fields.bool("auto_commit")?.unwrap_or(false),
            commit_author,
            forge,
        })
    })
}

fn parse_forge(value: &toml::Value, at: &dyn Fn(&str) -> String) -> Result<Forge> {
    let table = value
        .as_table()
        .ok_or_else(|| exit::config(format!("{}: expected a table", at("forge"))))?;
    let fields = Fields {
        table,
        at,
        allowed: &["kind", "url", "repo"],
    };
    fields.check()?;
    let kind = match fields.text("kind")?.as_deref() {
        Some("gitea") | Some("forgejo") => ForgeKind::Gitea,
        Some("github") => ForgeKind::Github,
        _ => return Err(fields.wrong("kind", "\"gitea\", \"forgejo\" or \"github\"")),
    };
    let url = match (fields.text("url")?, &kind) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, ForgeKind::Github) => "https://api.github.com".to_string(),
        (None, ForgeKind::Gitea) => return Err(fields.wrong("url", "the forge's URL")),
    };
    let repo = fields
        .text("repo")?
        .filter(|r| r.split('/').count() == 2 && !r.starts_with('/') && !r.ends_with('/'))
        .ok_or_else(|| fields.wrong("repo", "\"owner/name\""))?;
    Ok(Forge { kind, url, repo })
}

fn parse_stage(_name: &str, table: &toml::Table, at: &dyn Fn(&str) -> String) -> Result<Stage> {
    let fields = Fields {
        table,
        at,
        allowed: &["prompt", "extra_args", "timeout_seconds"],
    };
    fields.check()?;
    Ok(Stage {
        prompt: fields.text("prompt")?,
        extra_args: fields.list("extra_args")?.unwrap_or_default(),
        timeout_seconds: fields.count("timeout_seconds")?,
    })
}

fn parse_agent(_name: &str, table: &toml::Table, at: &dyn Fn(&str) -> String) -> Result<Agent> {
    let fields = Fields {
        table,
        at,
        allowed: &["bin", "home", "argv", "extra_args", "min_version", "env"],
    };
    fields.check()?;
    let mut env = BTreeMap::new();
    if let Some(value) = table.get("env") {
        let vars = value
            .as_table()
            .ok_or_else(|| fields.wrong("env", "a table of strings"))?;
        for (name, value) in vars {
            let value = value
                .as_str()
                .ok_or_else(|| fields.wrong(name, "a string"))?;
            env.insert(name.clone(), value.to_string());
        }
    }
    Ok(Agent {
        bin: fields.text("bin")?,
        home: fields.text("home")?.map(PathBuf::from),
        argv: fields.list("argv")?,
        extra_args: fields.list("extra_args")?.unwrap_or_default(),
        min_version: fields.text("min_version")?,
        env,
    })
}

/// Load `text` as the config file with `vars` as the whole environment (unit tests).
#[cfg(test)]
pub(crate) fn load_for_test(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let global = GlobalArgs {
        config: Some(path),
        db: Some(PathBuf::from("/tmp/x.db")),
        ..Default::default()
    };
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load_from(&Inputs {
        global: &global,
        env: &|name| vars.get(name).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
        load_for_test(text, vars)
    }

    #[test]
    fn env_overrides_file_overrides_default() {
        let config = load(
            "lease_seconds = 60\nmax_attempts = 5\n",
            &[("ORCH_MAX_ATTEMPTS", "7")],
        )
        .unwrap();
        assert_eq!(config.count(LEASE_SECONDS), 60);
        assert_eq!(config.get(LEASE_SECONDS).unwrap().source, Source::File);
        assert_eq!(config.count(MAX_ATTEMPTS), 7);
        assert_eq!(config.get(MAX_ATTEMPTS).unwrap().source, Source::Env);
        assert_eq!(
            config.get(BREAKER_THRESHOLD).unwrap().source,
            Source::Default
        );
        assert_eq!(config.get(DB).unwrap().source, Source::Flag);
    }

    #[test]
    fn errors_name_line_and_key() {
        let err = load("\n\nlease_seconds = \"soon\"\n", &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("line 3: lease_seconds"),
            "{err:#}"
        );
        let err = load("[projects.web]\nworkdir = \"/srv\"\nmax_runing = 2\n", &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("line 3: max_runing: unknown key"),
            "{err:#}"
        );
        assert_eq!(exit::code_of(&err), exit::CONFIG);
    }

    #[test]
    fn commit_author_is_name_and_email() {
        assert_eq!(
            parse_author(" orch bot <bot@example.org> "),
            Some(("orch bot", "bot@example.org"))
        );
        for bad in ["bot@example.org", "<a@b>", "x <>", "x <a@b", "a <b> c"] {
            assert_eq!(parse_author(bad), None, "{bad}");
        }
        let err = load(
            "[projects.web]\nworkdir = \"/srv\"\ncommit_author = \"bot\"\n",
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("commit_author"), "{err:#}");
    }

    #[test]
    fn secrets_are_masked_and_not_read_from_the_file() {
        let config = load("", &[("ORCH_FORGE_TOKEN", "s3cret")]).unwrap();
        let shown = config.settings();
        let forge = shown.iter().find(|(k, _)| k.name == "forge_token").unwrap();
        assert_eq!(forge.1.as_ref().unwrap().value, "***");
        assert_eq!(config.text(FORGE_TOKEN), Some("s3cret"));
        assert!(load("forge_token = \"x\"\n", &[]).is_err());
    }
}
