//! Settings: built-in defaults < TOML file < `ORCH_*` environment < flags, each value with its
//! source. Every scalar setting is one row of `KEYS`; its environment variable is its name in upper
//! case behind `ORCH_` (`lease_seconds` ⇔ `ORCH_LEASE_SECONDS`), so the rule needs no table of its own.
//! Tables (projects, pipeline, stages, agents) come from the file only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

mod file;
pub mod location;

pub use location::{check_url as check_db_url, Location};

use crate::domain::agent::AgentKind;
use crate::fsx;

use crate::exit;
use crate::secrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number from `min` to `max`: a value outside its range is refused when the
    /// configuration is read, so arithmetic on it cannot wrap or panic later.
    Count {
        min: u64,
        max: u64,
    },
    Bool,
    Text,
    /// Absolute, or `~`/`~/…` (orch's HOME); relative only in a flag (see `resolve_path`).
    Path,
    /// A name looked up on PATH, or a path by the rule of `Path`.
    Program,
    /// The database: a file by the rule of `Path` (SQLite), or a `postgres://` URL
    /// (PostgreSQL) that holds no password (see `location`).
    Location,
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

    /// The allowed values of a `Count`, inclusive.
    pub fn range(&self) -> Option<(u64, u64)> {
        match self.kind {
            Kind::Count { min, max } => Some((min, max)),
            _ => None,
        }
    }
}

macro_rules! kind {
    (Count($min:expr, $max:expr)) => {
        Kind::Count {
            min: $min,
            max: $max,
        }
    };
    ($kind:ident) => {
        Kind::$kind
    };
}

macro_rules! keys {
    ($($ident:ident = $name:literal, $kind:ident $(($min:expr, $max:expr))?, $default:expr, $doc:literal;)*) => {
        $(pub const $ident: &Key = &Key {
            name: $name,
            kind: kind!($kind $(($min, $max))?),
            default: $default,
            doc: $doc,
        };)*
        /// Every scalar setting, in the order `orch config` and the README list them.
        pub const KEYS: &[&Key] = &[$($ident),*];
    };
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;
const KIB: u64 = 1024;
const GIB: u64 = 1024 * 1024 * KIB;

keys! {
    DB = "db", Location, None, "The database: an SQLite file (default $XDG_STATE_HOME/orch/orch.db, else ~/.local/state/orch/orch.db) or a postgres:// URL without its password";
    LOG_DIR = "log_dir", Path, None, "Directory for run logs and tick locks (default: `logs/` beside the database)";
    WORKTREE_DIR = "worktree_dir", Path, None, "Directory for the tasks' git worktrees, one per task under `<project>/` (default: `worktrees/` beside the database)";
    BUSY_TIMEOUT_MS = "busy_timeout_ms", Count(0, 10 * MINUTE * 1000), Some("5000"), "How long a step waits for another process's write lock";
    HOST = "host", Text, None, "This machine's name on the runs it records (default: the system host name); unique per machine";
    LEASE_SECONDS = "lease_seconds", Count(1, WEEK), Some("900"), "Lease a claim holds before another worker may rescue the job";
    MAX_ATTEMPTS = "max_attempts", Count(1, 100), Some("3"), "Attempts a job gets before it fails for good";
    COLOR = "color", Text, Some("auto"), "auto, always or never";
    CLAUDE_BIN = "claude_bin", Program, Some("claude"), "Claude Code's binary, for profiles of kind claude (a path, or a name looked up on PATH)";
    CODEX_BIN = "codex_bin", Program, Some("codex"), "Codex CLI's binary, for profiles of kind codex";
    GEMINI_BIN = "gemini_bin", Program, Some("gemini"), "Gemini CLI's binary, for profiles of kind gemini";
    AGENT_HOME = "agent_home", Path, None, "The agent's HOME when it runs as another user (default: orch's HOME)";
    CLAUDE_CREDENTIALS_PATH = "claude_credentials_path", Path, None, "Claude Code's credentials file, for profiles of kind claude (default: see preflight)";
    PREFLIGHT_CHECK_AUTH = "preflight_check_auth", Bool, Some("true"), "false: preflight checks the version only";
    PREFLIGHT_CACHE_TTL = "preflight_cache_ttl", Count(0, DAY), Some("300"), "Seconds a preflight verdict is served from the cache";
    VERSION_TIMEOUT_SECONDS = "version_timeout_seconds", Count(1, 10 * MINUTE), Some("10"), "How long `<agent> --version` may take";
    AUTH_EXPIRY_SKEW_SECONDS = "auth_expiry_skew_seconds", Count(0, DAY), Some("300"), "A token expiring within this many seconds counts as expired";
    AUTH_ALLOW_REFRESHABLE = "auth_allow_refreshable", Bool, Some("false"), "true: an expired token with a refresh token passes";
    RUN_TIMEOUT_SECONDS = "run_timeout_seconds", Count(1, WEEK), Some("2700"), "A run longer than this is ended (per stage: [stages.NAME] timeout_seconds)";
    IDLE_TIMEOUT_SECONDS = "idle_timeout_seconds", Count(1, WEEK), Some("600"), "A run whose log has not grown for this long is ended as stalled (per stage: [stages.NAME] idle_timeout_seconds)";
    RESUME_PROMPT = "resume_prompt", Text, Some("Continue the task from where you stopped. The work you already did is in this directory; finish it."), "The prompt of a run that continues its stage's earlier session (--resume)";
    CLOCK_AHEAD_SECONDS = "clock_ahead_seconds", Count(0, 10 * YEAR), Some("0"), "Run orch's clock this far ahead of the machine's (drills: what a tick does once a usage limit resets or a retry is due)";
    KILL_GRACE_SECONDS = "kill_grace_seconds", Count(0, HOUR), Some("10"), "Between SIGTERM and SIGKILL when a run is ended";
    LOG_MAX_BYTES = "log_max_bytes", Count(64 * KIB, 64 * GIB), Some("268435456"), "A run's log is cut at this size (room for the result line at the end)";
    LOG_STORE_MAX_BYTES = "log_store_max_bytes", Count(0, GIB), Some("8388608"), "How much of a run's log finalize keeps in the database, compressed, so `orch logs` shows it on any host (its tail when longer); 0: none";
    RETENTION_DAYS = "retention_days", Count(1, 100 * 365), Some("90"), "`orch prune` removes tasks finished longer ago than this: jobs, history, runs, logs (cost totals stay)";
    PRUNE_INTERVAL_HOURS = "prune_interval_hours", Count(0, 365 * 24), Some("24"), "How often `orch tick` prunes, once across every worker sharing the database; 0: never";
    CI_TIMEOUT_SECONDS = "ci_timeout_seconds", Count(1, WEEK), Some("3600"), "How long the CI gate waits for the forge's verdict on a gated stage's commit before the task fails";
    CI_GRACE_SECONDS = "ci_grace_seconds", Count(0, DAY), Some("300"), "How long a gated stage's commit may have no CI status at all before ci_missing applies";
    CI_MISSING = "ci_missing", Text, Some("pass"), "pass or fail: what the CI gate does with a commit no CI reported on within ci_grace_seconds";
    CI_POLL_SECONDS = "ci_poll_seconds", Count(0, HOUR), Some("30"), "How often a CI gate's commit is looked at on the forge, by one worker of all those sharing the database; 0: every tick";
    CI_MAX_FIXES = "ci_max_fixes", Count(0, 100), Some("3"), "Times red CI sends a gated stage back to fix it before the task fails";
    APPROVAL_ALERT_SECONDS = "approval_alert_seconds", Count(0, 4 * WEEK), Some("86400"), "A job awaiting approval longer than this is alerted, once; 0: never";
    SYNC_INTERVAL_SECONDS = "sync_interval_seconds", Count(0, WEEK), Some("300"), "How often `orch tick` takes in each intake project's labelled issues, once across every worker sharing the database; 0: every tick";
    RETRY_BASE_SECONDS = "retry_base_seconds", Count(0, DAY), Some("60"), "First retry delay; doubles with each attempt";
    RETRY_MAX_SECONDS = "retry_max_seconds", Count(0, WEEK), Some("3600"), "Longest retry delay";
    RATE_LIMIT_BACKOFF_SECONDS = "rate_limit_backoff_seconds", Count(0, WEEK), Some("900"), "Shortest retry delay after a rate limit";
    BREAKER_THRESHOLD = "breaker_threshold", Count(1, 1000), Some("3"), "Consecutive transient failures that open an agent's circuit breaker";
    BREAKER_COOLDOWN_SECONDS = "breaker_cooldown_seconds", Count(0, WEEK), Some("600"), "How long an open breaker waits before a probe";
    GIT_HOOKS = "git_hooks", Bool, Some("false"), "true: orch's own git commands (auto-commit) run the repository's hooks";
    GIT_TIMEOUT_SECONDS = "git_timeout_seconds", Count(1, HOUR), Some("120"), "How long each git command of an auto-commit may take";
    NOTIFY_MAX_ATTEMPTS = "notify_max_attempts", Count(1, 1000), Some("20"), "Delivery attempts before a message is marked dead";
    NOTIFY_RETRY_BASE_SECONDS = "notify_retry_base_seconds", Count(0, DAY), Some("30"), "First delay after a failed delivery; doubles with each attempt";
    NOTIFY_RETRY_MAX_SECONDS = "notify_retry_max_seconds", Count(0, WEEK), Some("3600"), "Longest delay between delivery attempts";
    ALERT_DEDUP_SECONDS = "alert_dedup_seconds", Count(0, WEEK), Some("3600"), "Alerts of one kind and key within this window fold into one";
    HTTP_TIMEOUT_SECONDS = "http_timeout_seconds", Count(1, 10 * MINUTE), Some("10"), "Connect and read timeout for Telegram and the forge";
    TELEGRAM_API_URL = "telegram_api_url", Text, Some("https://api.telegram.org"), "Telegram Bot API base URL";
    TELEGRAM_CHAT_ID = "telegram_chat_id", Text, None, "Chat that receives alerts";
    TELEGRAM_BOT_TOKEN = "telegram_bot_token", Secret, None, "Bot token (environment or ORCH_TELEGRAM_BOT_TOKEN_FILE only)";
    FORGE_TOKEN = "forge_token", Secret, None, "Forge API token (environment or ORCH_FORGE_TOKEN_FILE only)";
}

/// `[stages.NAME] timeout_seconds`: the range of `run_timeout_seconds`.
pub const STAGE_TIMEOUT: (u64, u64) = (1, WEEK);
/// `[projects.NAME] max_running`.
pub const MAX_RUNNING: (u64, u64) = (1, 10_000);
/// A task's priority (`[projects.NAME] priority`, `enqueue --priority`); higher runs sooner.
pub const PRIORITY: (i64, i64) = (0, 1000);

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

/// Where usage comments go (`usage_comments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentsOn {
    /// The task's issue only.
    Issue,
    /// The task's pull request once it has one, the issue before.
    Pr,
    /// Both.
    Both,
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
    /// The most one task of the project may cost, summed over its runs.
    pub max_cost_usd: Option<f64>,
    /// The most the project's runs may cost in one day (UTC).
    pub max_cost_usd_per_day: Option<f64>,
    /// A git worktree and a branch per task (when the workdir is a git repository). false: every
    /// task runs in the workdir itself, one at a time.
    pub worktrees: bool,
    /// The branch tasks start from and pull requests go into; None: the remote's default branch.
    pub base_branch: Option<String>,
    /// The remote task branches are pushed to (a name in the main clone).
    pub remote: String,
    /// `feature/{task}-{slug}`: see `domain::branch`.
    pub branch_template: String,
    /// The pull request's title: `{task}: {title}`.
    pub pr_title: String,
    /// The line that links the pull request to the task's issue, when it has one: `Closes
    /// #{issue}`; empty: none.
    pub pr_issue_ref: String,
    /// Open pull requests as drafts (GitHub).
    pub pr_draft: bool,
    pub usage_comments: CommentsOn,
    /// The agent profile of the project's stages that do not name one.
    pub agent: Option<String>,
    /// Take in the forge's open issues that carry `intake_label` as tasks (`orch sync`).
    pub intake: bool,
    /// The label that marks an issue for orch: `orch`.
    pub intake_label: String,
    /// The key of a task taken in from an issue: `{REPO}-{number}` (see `domain::intake`).
    pub task_key: String,
    /// Keep one state label (`orch:queued`, …) on each task's issue.
    pub issue_labels: bool,
    /// Forge logins whose `/orch approve` and `/orch reject <note>` comments count.
    pub approvers: Vec<String>,
    /// `merge = "after_last_stage"`: merge the task's pull request once its last stage succeeded
    /// and CI is green; false: never (the default).
    pub merge_after_last_stage: bool,
    /// How it is merged (`merge_style`).
    pub merge_style: crate::forge::MergeStyle,
}

/// Defaults of the pull-request settings of a project.
pub const DEFAULT_REMOTE: &str = "origin";
pub const DEFAULT_PR_TITLE: &str = "{task}: {title}";
pub const DEFAULT_PR_ISSUE_REF: &str = "Closes #{issue}";

impl Project {
    /// The project's budgets.
    pub fn budget(&self) -> crate::domain::budget::Budget {
        crate::domain::budget::Budget {
            per_task_usd: self.max_cost_usd,
            per_day_usd: self.max_cost_usd_per_day,
        }
    }

    /// Whether orch keeps state labels on its tasks' issues: asked for, and a forge to keep
    /// them on.
    pub fn keeps_issue_labels(&self) -> bool {
        self.issue_labels && self.forge.is_some()
    }

    /// Whether its tasks get pull requests: they get branches (the workdir is in a git
    /// repository), and it has a forge.
    pub fn opens_pull_requests(&self) -> bool {
        self.worktrees && self.forge.is_some() && in_git_work_tree(&self.workdir)
    }

    /// How many of its jobs may run at once: one when its tasks share the workdir itself
    /// (`worktrees = false`).
    pub fn max_running(&self) -> u32 {
        if self.worktrees {
            self.max_running
        } else {
            1
        }
    }

    /// Why the project's jobs cannot run here now: its workdir is missing or not a directory. A
    /// run that finds this holds the project on this host (not the agent's breaker).
    pub fn workdir_missing(&self) -> Option<String> {
        (!self.workdir.is_dir()).then(|| {
            format!(
                "the workdir of project {} ({}) does not exist or is not a directory",
                self.name,
                self.workdir.display()
            )
        })
    }

    /// What is wrong with the workdir, if anything: missing, not a directory, or (with
    /// auto-commit on) not inside a git work tree. Checked where an operator looks (`orch config`,
    /// `orch preflight --explain`, `orch enqueue`), before a job finds out.
    pub fn workdir_problem(&self) -> Option<String> {
        let dir = &self.workdir;
        match std::fs::metadata(dir) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("workdir {} does not exist", dir.display()))
            }
            Err(err) => Some(format!(
                "workdir {} cannot be reached: {err}",
                dir.display()
            )),
            Ok(meta) if !meta.is_dir() => {
                Some(format!("workdir {} is not a directory", dir.display()))
            }
            Ok(_) if self.auto_commit && !in_git_work_tree(dir) => Some(format!(
                "workdir {} is not in a git work tree, and auto_commit is on",
                dir.display()
            )),
            Ok(_) => None,
        }
    }
}

/// Whether `dir` or one of its parents holds a `.git` (a directory, or a worktree's file).
pub fn in_git_work_tree(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stage {
    pub prompt: Option<String>,
    pub extra_args: Vec<String>,
    pub timeout_seconds: Option<u64>,
    /// How the agent may act (Claude Code's `--permission-mode`); `Config::stage` fills in the
    /// default for the stage when the file does not say.
    pub permission_mode: Option<PermissionMode>,
    /// Tools the agent may use without asking, and tools it may not use.
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
    pub idle_timeout_seconds: Option<u64>,
    /// Continue an earlier session of the stage when a run was cut short (default true).
    pub resume: Option<bool>,
    /// The agent's own cost ceiling per run (Claude Code's `--max-budget-usd`).
    pub max_budget_usd: Option<f64>,
    /// The agent profile that runs the stage (`[agents.NAME]`, or a kind's name).
    pub agent: Option<String>,
    /// The next stage waits for green CI on the commit this stage leaves (default: on for
    /// `developer`); `Config::stage` fills in the default.
    pub ci_gate: Option<bool>,
    /// The stage's job waits for a person's approval (`orch approve`) after the previous stage
    /// succeeded.
    pub approve: Option<bool>,
}

/// How an agent may act in a stage: the permission modes of Claude Code (`--permission-mode`),
/// which other agents map onto their own sandbox and approval settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    /// Ask for every tool that needs permission: in print mode, that is a denial.
    Default,
    /// Edit files without asking; commands still need `allowed_tools`.
    AcceptEdits,
    /// Read and plan only: no edits, no commands.
    Plan,
    /// Everything, without asking (refused by Claude Code as root unless IS_SANDBOX=1).
    BypassPermissions,
    /// Never ask: anything not allowed is denied.
    DontAsk,
    /// Claude Code decides per tool.
    Auto,
}

impl PermissionMode {
    pub const ALL: &'static [PermissionMode] = &[
        PermissionMode::Default,
        PermissionMode::AcceptEdits,
        PermissionMode::Plan,
        PermissionMode::BypassPermissions,
        PermissionMode::DontAsk,
        PermissionMode::Auto,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Default => "default",
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Plan => "plan",
            PermissionMode::BypassPermissions => "bypassPermissions",
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Auto => "auto",
        }
    }

    pub fn from_name(name: &str) -> Option<PermissionMode> {
        PermissionMode::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == name)
    }

    /// orch's default for a stage: the stages that think (analyst, architect) plan; every other
    /// stage may edit files.
    pub fn default_for(stage: &str) -> PermissionMode {
        match stage {
            "analyst" | "architect" => PermissionMode::Plan,
            _ => PermissionMode::AcceptEdits,
        }
    }
}

/// A map's names, each with "(set)" for its value: what `orch config --json` shows of a table
/// that may hold secrets.
fn names_only<S: serde::Serializer>(
    map: &BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.keys().map(|name| (name, "(set)")))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Agent {
    /// Which CLI the profile runs (`kind = "claude"`); by default the kind named like the
    /// profile, else `claude`.
    pub kind: AgentKind,
    pub bin: Option<String>,
    pub home: Option<PathBuf>,
    /// argv template; `{prompt}` is replaced by the stage prompt. Default: the kind's (Claude
    /// Code's print mode).
    pub argv: Option<Vec<String>>,
    pub extra_args: Vec<String>,
    pub min_version: Option<String>,
    /// Extra environment for the agent (e.g. CLAUDE_CONFIG_DIR). Shown by name only: a value
    /// may be a key.
    #[serde(serialize_with = "names_only")]
    pub env: BTreeMap<String, String>,
    /// What the agent's tokens cost, for a kind whose log reports tokens but no cost (Codex,
    /// Gemini): orch's estimate then stands in for the cost, marked as one.
    pub prices: Option<crate::domain::price::Prices>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file read, when there was one.
    pub file: Option<PathBuf>,
    /// The config file orch looked for (it may not exist): named in errors about a missing
    /// project, stage or agent.
    pub looked_for: Option<PathBuf>,
    /// orch's HOME, absolute, for `~` in paths.
    home: Option<PathBuf>,
    /// Where logs and worktrees go by default when the database is not a file beside them.
    state_dir: Option<PathBuf>,
    settings: BTreeMap<&'static str, Setting>,
    pub projects: BTreeMap<String, Project>,
    pub stages: Vec<String>,
    pub stage_settings: BTreeMap<String, Stage>,
    pub agents: BTreeMap<String, Agent>,
    /// Environment variables removed from the agent's environment besides orch's own secrets.
    pub secret_env: Vec<String>,
}

/// What the command line overrides: the global flags, as plain values (`cli` converts its
/// arguments into this; configuration never looks at clap's types).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--db`
    pub db: Option<PathBuf>,
    /// `--config`
    pub config: Option<PathBuf>,
    /// `--set KEY=VALUE`, each as given.
    pub set: Vec<String>,
    /// `--color`: auto, always or never.
    pub color: Option<String>,
}

/// Where settings are read from; tests build one by hand, `load` reads the process's.
pub struct Inputs<'a> {
    pub global: &'a Overrides,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The secret settings, by name: taken out of the environment at start-up (`crate::secrets`).
    pub secret: &'a dyn Fn(&str) -> Option<secrets::Found>,
}

impl Config {
    /// Read the process's configuration: file, environment, then the global flags.
    pub fn load(global: &Overrides) -> Result<Config> {
        Config::load_from(&Inputs {
            global,
            env: &|name| std::env::var(name).ok(),
            secret: &secrets::get,
        })
    }

    pub fn load_from(inputs: &Inputs) -> Result<Config> {
        let env = inputs.env;
        let home = home(env);
        let (file, explicit) = match (&inputs.global.config, env("ORCH_CONFIG")) {
            (Some(path), _) => {
                let path = resolve_path(&path.display().to_string(), Source::Flag, home.as_deref())
                    .map_err(|why| exit::config(format!("--config: {why}")))?;
                (Some(path), true)
            }
            (None, Some(path)) if !path.is_empty() => {
                let path = resolve_path(&path, Source::Env, home.as_deref())
                    .map_err(|why| exit::config(format!("ORCH_CONFIG: {why}")))?;
                (Some(path), true)
            }
            _ => (default_config_path(env), false),
        };
        let text = match &file {
            Some(path) => file::read(path, explicit)?,
            None => None,
        };
        let mut config = Config {
            file: text.as_ref().and(file.clone()),
            looked_for: file.clone(),
            home,
            state_dir: None,
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
        if let (Some(path), Some(text)) = (&file, &text) {
            file::apply(&mut config, path, text)?;
        }
        for key in KEYS {
            if key.kind == Kind::Secret {
                match (inputs.secret)(&key.env()) {
                    Some(secrets::Found::Value(value)) => config.set(key, value, Source::Env)?,
                    Some(secrets::Found::Unreadable(why)) => return Err(exit::config(why)),
                    None => {}
                }
            } else if let Some(value) = env(&key.env()) {
                config.set(key, value, Source::Env)?;
            }
        }
        if let Some(db) = &inputs.global.db {
            config.set(DB, db.display().to_string(), Source::Flag)?;
        }
        if let Some(color) = &inputs.global.color {
            config.set(COLOR, color.clone(), Source::Flag)?;
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
        if matches!(config.db(), Location::Url(_))
            && (config.text(LOG_DIR).is_none() || config.text(WORKTREE_DIR).is_none())
        {
            config.state_dir = Some(default_state_dir(env).map_err(|_| {
                exit::config(
                    "the database is a URL, so logs and worktrees have no default directory: \
                     set log_dir and worktree_dir, XDG_STATE_HOME or HOME",
                )
            })?);
        }
        Ok(config)
    }

    /// Check `value` against the key's kind and store it as orch will use it (a path expanded
    /// and absolute, a number trimmed). The error names the key as its source spells it and
    /// what was expected; `apply_file` swaps the origin for the file's line.
    fn set(&mut self, key: &'static Key, value: String, source: Source) -> Result<()> {
        let checked = match key.kind {
            Kind::Count { min, max } => match value.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
                _ => Err(format!("expected {}, got {value:?}", count_range(min, max))),
            },
            Kind::Bool => match parse_bool(&value) {
                Some(_) => Ok(value),
                None => Err(format!("expected true or false, got {value:?}")),
            },
            Kind::Path if !value.is_empty() => resolve_path(&value, source, self.home.as_deref())
                .map(|path| path.display().to_string()),
            Kind::Program => resolve_program(&value, source, self.home.as_deref()),
            Kind::Location if location::is_url(&value) => {
                location::check_url(&value).map(|()| value)
            }
            Kind::Location if !value.is_empty() => {
                resolve_path(&value, source, self.home.as_deref())
                    .map(|path| path.display().to_string())
            }
            Kind::Text | Kind::Path | Kind::Location | Kind::Secret => Ok(value),
        };
        let value =
            checked.map_err(|why| exit::config(format!("{}: {why}", key.origin(source))))?;
        self.settings.insert(key.name, Setting { value, source });
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

    /// A `Count` setting, within its range (checked at load).
    pub fn count(&self, key: &Key) -> u64 {
        let (min, _) = key.range().expect("a Count setting");
        self.get(key)
            .and_then(|s| s.value.trim().parse().ok())
            .unwrap_or(min)
    }

    /// A `Count` of seconds as epoch milliseconds to add to a time; saturates.
    pub fn millis(&self, key: &Key) -> i64 {
        seconds_to_ms(self.count(key))
    }

    /// A `Count` of seconds as a duration.
    pub fn seconds(&self, key: &Key) -> Duration {
        Duration::from_secs(self.count(key))
    }

    pub fn flag(&self, key: &Key) -> bool {
        debug_assert!(key.kind == Kind::Bool);
        self.get(key)
            .and_then(|s| parse_bool(&s.value))
            .unwrap_or(false)
    }

    /// The database: a file (SQLite) or a URL (PostgreSQL).
    pub fn db(&self) -> Location {
        Location::parse(self.text(DB).expect("db always has a value"))
    }

    /// The directory logs and worktrees go in by default: the database file's, else the state
    /// directory.
    fn files_dir(&self) -> PathBuf {
        match self.db() {
            Location::File(path) => path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            Location::Url(_) => self.state_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        }
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

    /// Where the tasks' worktrees live: `worktree_dir`, else `worktrees/` beside the database.
    pub fn worktree_dir(&self) -> PathBuf {
        self.path(WORKTREE_DIR)
            .unwrap_or_else(|| self.files_dir().join("worktrees"))
    }

    pub fn log_dir(&self) -> PathBuf {
        self.path(LOG_DIR)
            .unwrap_or_else(|| self.files_dir().join("logs"))
    }

    pub fn project(&self, name: &str) -> Result<&Project> {
        self.projects
            .get(name)
            .ok_or_else(|| exit::config(self.unknown_project(name)))
    }

    /// Why `name` is not a project, with the known ones, a likely typo and the file looked in.
    pub fn unknown_project(&self, name: &str) -> String {
        let known: Vec<&str> = self.projects.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            format!(
                "no projects are configured; add [projects.NAME] with a workdir to {}",
                self.describe_file()
            )
        } else {
            format!(
                "known projects: {}, in {}{}",
                known.join(", "),
                self.describe_file(),
                crate::suggest::hint(name, known.iter().copied())
            )
        };
        format!("unknown project {name:?} ({hint})")
    }

    /// Why `stage` is not a stage of the pipeline.
    pub fn unknown_stage(&self, stage: &str) -> String {
        format!(
            "unknown stage {stage:?} (the pipeline is: {}, in {}{})",
            self.stages.join(", "),
            self.describe_file(),
            crate::suggest::hint(stage, self.stages.iter().map(String::as_str))
        )
    }

    /// The config file for a message: its path, and whether it exists.
    pub fn describe_file(&self) -> String {
        match (&self.file, &self.looked_for) {
            (Some(file), _) => file.display().to_string(),
            (None, Some(path)) => format!("{} (which does not exist)", path.display()),
            (None, None) => "the config file (none: set --config, ORCH_CONFIG or HOME)".to_string(),
        }
    }

    pub fn check_stage(&self, stage: &str) -> Result<()> {
        if self.stages.iter().any(|s| s == stage) {
            Ok(())
        } else {
            Err(exit::config(self.unknown_stage(stage)))
        }
    }

    /// The stage after `stage` in the pipeline, or None after the last.
    pub fn next_stage(&self, stage: &str) -> Option<&str> {
        let at = self.stages.iter().position(|s| s == stage)?;
        self.stages.get(at + 1).map(String::as_str)
    }

    /// A stage's settings, with orch's defaults filled in where the file says nothing.
    pub fn stage(&self, name: &str) -> Stage {
        let mut stage = self.stage_settings.get(name).cloned().unwrap_or_default();
        stage
            .permission_mode
            .get_or_insert(PermissionMode::default_for(name));
        stage
            .idle_timeout_seconds
            .get_or_insert(self.count(IDLE_TIMEOUT_SECONDS));
        stage.resume.get_or_insert(true);
        stage.ci_gate.get_or_insert(name == "developer");
        stage
    }

    /// The stage a rejection of `stage` sends back: the one before it in the pipeline (the
    /// stage itself when it is the first, or not in the pipeline).
    pub fn previous_stage(&self, stage: &str) -> String {
        match self.stages.iter().position(|s| s == stage) {
            Some(at) if at > 0 => self.stages[at - 1].clone(),
            _ => stage.to_string(),
        }
    }

    /// The CI gate's policy, from the settings.
    pub fn ci_policy(&self) -> crate::domain::ci::Policy {
        use crate::domain::ci::{Missing, Policy};
        Policy {
            grace_ms: self.millis(CI_GRACE_SECONDS),
            timeout_ms: self.millis(CI_TIMEOUT_SECONDS),
            missing: match self.text(CI_MISSING) {
                Some("fail") => Missing::Fail,
                _ => Missing::Pass,
            },
            max_fixes: u32::try_from(self.count(CI_MAX_FIXES)).unwrap_or(u32::MAX),
        }
    }

    /// Every agent profile's name: `claude` (which exists without configuration) first, then the
    /// configured ones, then the kinds stages or projects name without a profile.
    pub fn agent_names(&self) -> Vec<&str> {
        let mut names = vec![DEFAULT_AGENT];
        let named = self.agents.keys().map(String::as_str);
        let chosen = (self
            .stage_settings
            .values()
            .filter_map(|s| s.agent.as_deref()))
        .chain(self.projects.values().filter_map(|p| p.agent.as_deref()));
        for name in named.chain(chosen) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The named agent profile; a kind's name (`claude`, `codex`, `gemini`) is a profile of that
    /// kind without configuration.
    pub fn agent(&self, name: &str) -> Result<Agent> {
        match (self.agents.get(name), AgentKind::from_name(name)) {
            (Some(agent), _) => Ok(agent.clone()),
            (None, Some(kind)) => Ok(Agent {
                kind,
                ..Agent::default()
            }),
            (None, None) => Err(exit::config(format!(
                "unknown agent {name:?}; add [agents.{name}] to the config file"
            ))),
        }
    }

    /// `usage` with its cost estimated by the profile's price table, when it has one and the
    /// log gave no cost.
    pub fn price(&self, agent: &str, usage: &mut crate::domain::verdict::Usage) {
        if let Some(prices) = self.agents.get(agent).and_then(|a| a.prices) {
            prices.apply(usage);
        }
    }

    /// The stages of `project` whose cost its budgets cannot see, "stage (agent)": the project
    /// has a budget, and the stage's agent is of a kind that reports no cost and has no price
    /// table. Empty without a budget.
    pub fn budget_blind_stages(&self, project: &Project) -> Vec<String> {
        if project.max_cost_usd.is_none() && project.max_cost_usd_per_day.is_none() {
            return Vec::new();
        }
        self.stages
            .iter()
            .filter_map(|stage| {
                let agent = self.stage_agent(&project.name, stage);
                let profile = self.agents.get(agent);
                let kind = profile.map_or_else(
                    || AgentKind::from_name(agent).unwrap_or_default(),
                    |p| p.kind,
                );
                let priced = profile.is_some_and(|p| p.prices.is_some());
                (!kind.reports_cost() && !priced).then(|| format!("{stage} ({agent})"))
            })
            .collect()
    }

    /// Whether `name` is an agent profile (configured, or a kind's name).
    pub fn is_agent(&self, name: &str) -> bool {
        self.agents.contains_key(name) || AgentKind::from_name(name).is_some()
    }

    /// The agent profile that runs `stage` of `project`'s jobs: the stage's `agent`, else the
    /// project's, else `claude`.
    pub fn stage_agent(&self, project: &str, stage: &str) -> &str {
        self.stage_settings
            .get(stage)
            .and_then(|s| s.agent.as_deref())
            .or_else(|| self.projects.get(project).and_then(|p| p.agent.as_deref()))
            .unwrap_or(DEFAULT_AGENT)
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

/// What a worker name may be: it names the worker's tick lock file and its leases.
pub const WORKER_RULE: &str =
    "a worker name is 1 to 64 letters, digits, '-', '_' or '.' (e.g. the host name)";

/// A worker name from a library caller (the CLI checks it as it parses): a usage error if bad.
pub fn require_worker(worker: &str) -> Result<()> {
    if valid_name(worker) {
        Ok(())
    } else {
        Err(exit::usage(format!("--worker: {WORKER_RULE}")))
    }
}

fn strip_origin(err: &anyhow::Error) -> String {
    let text = err.to_string();
    match text.split_once(": expected") {
        Some((_, rest)) => format!("expected{rest}"),
        None => text,
    }
}

/// A directory variable as the XDG base directory spec reads it: set, non-empty and absolute
/// (a relative one is ignored).
fn absolute_var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<PathBuf> {
    env(name).map(PathBuf::from).filter(|dir| dir.is_absolute())
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    absolute_var(env, "HOME")
}

fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match absolute_var(env, "XDG_CONFIG_HOME") {
        Some(dir) => Some(dir.join("orch/config.toml")),
        None => home(env).map(|h| h.join(".config/orch/config.toml")),
    }
}

fn default_state_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    match absolute_var(env, "XDG_STATE_HOME") {
        Some(dir) => Ok(dir.join("orch")),
        None => home(env)
            .map(|h| h.join(".local/state/orch"))
            .ok_or_else(|| exit::config("no database: set --db, ORCH_DB, XDG_STATE_HOME or HOME")),
    }
}

/// "a whole number from 1 to 604800", for messages.
fn count_range(min: impl fmt::Display, max: impl fmt::Display) -> String {
    format!("a whole number from {min} to {max}")
}

/// Seconds as milliseconds to add to an epoch time; saturates instead of wrapping.
pub fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A path from the configuration as orch will use it. `~` and `~/…` stand for orch's HOME. A
/// relative path is refused from the file and the environment, where it would follow whatever
/// directory orch happens to start in (cron's is not a person's); in a flag it is the caller's
/// choice at that moment, made absolute against the current directory. The error starts with
/// "expected", as every check of a value here does.
pub fn resolve_path(raw: &str, source: Source, home: Option<&Path>) -> Result<PathBuf, String> {
    fsx::absolute_path(raw, source == Source::Flag, home)
}

/// A program: a bare name is looked up on PATH when it runs; anything with a `/` is a path.
fn resolve_program(raw: &str, source: Source, home: Option<&Path>) -> Result<String, String> {
    if raw.contains('/') || raw.starts_with('~') {
        resolve_path(raw, source, home).map(|path| path.display().to_string())
    } else {
        Ok(raw.to_string())
    }
}

/// Load `text` as the config file with `vars` as the whole environment (unit tests).
#[cfg(test)]
pub(crate) fn load_for_test(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let global = Overrides {
        config: Some(path),
        db: Some(PathBuf::from("/tmp/x.db")),
        ..Default::default()
    };
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let secret = |var: &str| vars.get(var).cloned().map(secrets::Found::Value);
    Config::load_from(&Inputs {
        global: &global,
        env: &|name| vars.get(name).cloned(),
        secret: &secret,
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
    fn an_agent_profile_has_a_kind() {
        let config = load(
            "[agents.claude]\n[agents.fast]\nextra_args = [\"-x\"]\n[agents.mine]\nkind = \"claude\"\n",
            &[],
        )
        .unwrap();
        for name in ["claude", "fast", "mine", "nobody-configured"] {
            let kind = config
                .agents
                .get(name)
                .map_or(AgentKind::Claude, |a| a.kind);
            assert_eq!(kind, AgentKind::Claude, "{name}");
        }
        assert_eq!(config.agent("claude").unwrap().kind, AgentKind::Claude);
        let err = load("\n[agents.codex]\nkind = \"codx\"\n", &[]).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains(
                "line 3: kind: expected a kind of agent orch knows (claude, codex, gemini), got \"codx\""
            ),
            "{text}"
        );
        assert_eq!(exit::code_of(&err), exit::CONFIG, "{text}");
        assert!(load("[agents.x]\nkind = 1\n", &[]).is_err());
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
    fn every_number_has_a_range_its_default_is_in() {
        for key in KEYS {
            if let Kind::Count { min, max } = key.kind {
                let default: u64 = key.default.unwrap().parse().unwrap();
                assert!(min <= default && default <= max, "{}", key.name);
            }
        }
        // A value out of range is refused from every source, naming it and the range.
        let huge = "18446744073709551615";
        let err = load("", &[("ORCH_RUN_TIMEOUT_SECONDS", huge)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("ORCH_RUN_TIMEOUT_SECONDS: expected a whole number from 1 to 604800, got \"{huge}\"")
        );
        let err = load("\nlog_max_bytes = 0\n", &[]).unwrap_err();
        assert!(
            err.to_string().ends_with(
                "line 2: log_max_bytes: expected a whole number from 65536 to 68719476736, got \"0\""
            ),
            "{err}"
        );
        assert_eq!(exit::code_of(&err), exit::CONFIG);
        let config = load("", &[("ORCH_LEASE_SECONDS", " 60 ")]).unwrap();
        assert_eq!(config.millis(LEASE_SECONDS), 60_000);
        assert_eq!(seconds_to_ms(u64::MAX), i64::MAX);
    }

    #[test]
    fn paths_are_absolute_with_home_expanded() {
        let home = Some(Path::new("/home/op"));
        let resolve = |raw, source| resolve_path(raw, source, home);
        assert_eq!(resolve("~", Source::File), Ok(PathBuf::from("/home/op")));
        assert_eq!(
            resolve("~/a/b", Source::Env),
            Ok(PathBuf::from("/home/op/a/b"))
        );
        assert_eq!(resolve("/srv/x", Source::File), Ok(PathBuf::from("/srv/x")));
        for relative in ["x", "./x", "~op/x", "../x"] {
            let err = resolve(relative, Source::File).unwrap_err();
            assert!(err.starts_with("expected an absolute path"), "{err}");
            assert!(resolve(relative, Source::Env).is_err());
        }
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(resolve("x", Source::Flag), Ok(cwd.join("x")));
        assert!(resolve_path("~/x", Source::File, None).is_err());
        assert_eq!(
            resolve_program("claude", Source::File, home),
            Ok("claude".to_string())
        );
        assert!(resolve_program("bin/claude", Source::Env, home).is_err());
        let err = load("[projects.web]\nworkdir = \"srv/web\"\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("line 2: workdir: expected an absolute path"));
    }

    #[test]
    fn the_secret_settings_are_the_variables_secrets_takes() {
        let secret: Vec<String> = KEYS
            .iter()
            .filter(|key| key.kind == Kind::Secret)
            .map(|key| key.env())
            .collect();
        assert_eq!(secret, secrets::SECRET_VARS);
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
    #[test]
    fn intake_needs_a_forge_a_key_with_the_number_and_a_label_without_commas() {
        let forge =
            "[projects.web.forge]\nkind = \"gitea\"\nurl = \"http://f\"\nrepo = \"team/web\"\n";
        let project = |keys: &str, forge: &str| {
            load(
                &format!("[projects.web]\nworkdir = \"/srv/web\"\n{keys}\n{forge}"),
                &[],
            )
        };
        let web = project("intake = true", forge).unwrap().projects["web"].clone();
        assert!(web.intake);
        assert_eq!(
            (web.intake_label.as_str(), web.task_key.as_str()),
            ("orch", "{REPO}-{number}")
        );
        assert!(!project("", forge).unwrap().projects["web"].intake);
        let approvers = project("approvers = [\"alice\", \"bob-2\"]", forge).unwrap();
        assert_eq!(approvers.projects["web"].approvers, ["alice", "bob-2"]);
        let merging = project(
            "merge = \"after_last_stage\"\nmerge_style = \"rebase\"",
            forge,
        )
        .unwrap()
        .projects["web"]
            .clone();
        assert!(merging.merge_after_last_stage);
        assert_eq!(merging.merge_style, crate::forge::MergeStyle::Rebase);
        for (keys, forge, wanted) in [
            ("intake = true", "", "add [projects.web.forge]"),
            ("issue_labels = true", "", "add [projects.web.forge]"),
            ("task_key = \"{REPO}\"", forge, "{number}"),
            (
                "task_key = \"{title}-{number}\"",
                forge,
                "unknown placeholder",
            ),
            ("intake_label = \"a,b\"", forge, "without commas"),
            ("approvers = [\"al ice\"]", forge, "forge logins"),
            ("merge = \"always\"", forge, "after_last_stage"),
            (
                "merge = \"after_last_stage\"",
                "",
                "needs [projects.NAME.forge]",
            ),
            ("merge_style = \"octopus\"", forge, "squash"),
        ] {
            let err = format!("{:#}", project(keys, forge).unwrap_err());
            assert!(err.contains(wanted), "{keys}: {err}");
        }
    }
}
