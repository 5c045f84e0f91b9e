//! Every clap definition: the top-level `Cli`, the `Command` enum and each subcommand's arguments.
//! Command files in `src/commands/` take these structs; nothing else parses argv.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "orch",
    version,
    about = "Run AI coding agents unattended on a shared queue of jobs",
    long_about = "Run AI coding agents (Claude Code first) unattended on a shared SQLite queue of jobs \
                  for many projects. Each subcommand is one step with a documented exit status, so cron, \
                  shell scripts and CI can chain them; `orch tick` does the whole chain.",
    after_help = "Exit statuses: `orch help <command>` lists each command's; the table is in the README and orch(1)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The help heading of the flags every subcommand accepts, apart from each one's own.
const GLOBAL: &str = "Global options";

/// The command line as orch parses it: the derived `Cli`, each subcommand's help ending with the
/// exit statuses it can return (from `exit::statuses`, the one table). `main`, the manual pages
/// and the completions all use this.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, |sub| {
            sub.after_help(crate::exit::statuses_help(&name))
        });
    }
    cmd
}

/// Flags every subcommand accepts.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// The database: an SQLite file, or a postgres:// URL (no password in it) [env: ORCH_DB] [default: $XDG_STATE_HOME/orch/orch.db]
    #[arg(long, global = true, value_name = "PATH|URL", help_heading = GLOBAL)]
    pub db: Option<PathBuf>,

    /// The TOML configuration file [env: ORCH_CONFIG] [default: $XDG_CONFIG_HOME/orch/config.toml]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Override a setting for this invocation, e.g. `--set lease_seconds=60` (not for secrets)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", help_heading = GLOBAL)]
    pub set: Vec<String>,

    /// Print one JSON document on stdout instead of text for people
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// When to colour human output [env: ORCH_COLOR]
    #[arg(long, global = true, value_enum, value_name = "WHEN", help_heading = GLOBAL)]
    pub color: Option<ColorChoice>,
}

impl GlobalArgs {
    /// The flags that override settings, for the configuration.
    pub fn overrides(&self) -> crate::config::Overrides {
        crate::config::Overrides {
            db: self.db.clone(),
            config: self.config.clone(),
            set: self.set.clone(),
            color: self.color.map(|c| format!("{c:?}").to_ascii_lowercase()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a task and queue the job for its first stage (or --stage)
    Enqueue(EnqueueArgs),
    /// Atomically take the next eligible job and lease it to a worker
    Claim(ClaimArgs),
    /// Counts by state and stage, running jobs and their leases, the next retries
    Status(StatusArgs),
    /// One job (its task, history and runs), or one task and all its jobs
    Show(ShowArgs),
    /// List jobs: live ones by default, or by state, project, stage or task
    Jobs(JobsArgs),
    /// Launch the agent for a claimed job, capture its log and keep its lease until it ends
    Run(RunArgs),
    /// Judge a job's run and move the job on: next stage, retry, failed or gated (exit 0/20/21/22)
    #[command(
        long_about = "Judge a job's latest run (or --run) from its log and write what the verdict \
                      implies in one transaction: the next stage's job or the task's completion, a \
                      retry after a backoff, a failure for good, or the auth gate; alerts and the usage \
                      comment in the outbox; the agent's circuit breaker. Finalizing a finalized run \
                      changes nothing and reports the earlier decision."
    )]
    Finalize(FinalizeArgs),
    /// Cancel a queued or running job
    Cancel(JobArg),
    /// Put a failed or cancelled job back in the queue with its attempts reset (--stage: at that stage)
    Retry(RetryArgs),
    /// Print the effective configuration and where each value came from
    Config,
    /// The whole step for cron: notify, recover, preflight, claim, run, finalize (up to --max-jobs)
    Tick(TickArgs),
    /// Walk one task through the pipeline with a stand-in agent, in a directory of its own
    Demo(DemoArgs),
    /// Judge a run's log: did the agent really succeed? (exit 0 ok, 20 retry, 21 failed, 22 auth/refused)
    #[command(name = "validate-log")]
    ValidateLog(ValidateLogArgs),
    /// Check the agent can take a job: its binary answers --version and it is logged in
    #[command(
        long_about = "Check the agent can take a job: its binary answers `--version` (exit 10 if not) and \
                      it is logged in, judged from its credentials file without sending the token anywhere \
                      (exit 11 if not). The verdict is cached in the database for preflight_cache_ttl \
                      seconds and shared by every orch process; `orch claim` asks the same question first."
    )]
    Preflight(PreflightArgs),
    /// Drop cached preflight verdicts, release auth gates and usage holds (--breaker: close circuit breakers)
    ResetCache(ResetCacheArgs),
    /// Deliver the outbox: Telegram alerts and forge usage comments that are due
    #[command(
        long_about = "Deliver the outbox: Telegram alerts and forge usage comments that are due. \
                      A failed delivery stays in the outbox and is retried with backoff; after \
                      notify_max_attempts it is dead (see `orch status`). Exit status 0 whenever \
                      the step ran, nothing due included; failed deliveries are reported, not raised."
    )]
    Notify(NotifyArgs),
    /// Render a run's stream-json log for a person: text, tool calls, results, verdict and usage
    #[command(
        long_about = "Render a run's stream-json log for a person: the agent's text, its tool calls \
                      (name and the gist of the input) and their results cut to one line, then the \
                      verdict and usage. The log is read as a stream, whatever its size. Lines that \
                      are not JSON are shown dimmed. `--raw` prints the log exactly as stored; \
                      `--json` prints one JSON object per event (JSON Lines). Exit 3 when the job \
                      has no run yet."
    )]
    Logs(LogsArgs),
    /// Print Prometheus metrics (text exposition 0.0.4), or write them atomically with --out
    #[command(
        long_about = "Print the queue's state as Prometheus metrics (text exposition format 0.0.4): \
                      jobs by project, stage and state, runs by class, retries, cost and tokens by \
                      project, preflight state and age, the outbox backlog and the age of the oldest \
                      due job. `--out FILE` writes them through a temporary file and a rename, for \
                      node_exporter's textfile collector."
    )]
    Metrics(MetricsArgs),
    /// Remove the worktrees of finished tasks that a crash left behind on this host
    #[command(
        name = "prune-worktrees",
        long_about = "Remove this host's git worktrees of tasks that are finished (complete, failed \
                      or cancelled) and worktrees under worktree_dir that no live task has: what a \
                      crash between a task's end and its clean-up leaves. Only git worktrees of a \
                      project's main clone under orch's worktree directory are removed; their \
                      branches stay. Worktrees whose directory is gone are forgotten."
    )]
    PruneWorktrees(PruneWorktreesArgs),
    /// Remove tasks finished longer ago than retention_days, with their runs, logs and worktrees
    #[command(
        long_about = "Remove what belongs to tasks finished (complete, failed or cancelled) longer \
                      ago than retention_days (or --older-than): their jobs, history, runs, \
                      delivered outbox messages, log files and worktrees. A live task, a pending \
                      or dead message, and a task whose run may still be writing its log are left \
                      alone. Counts and the cost rollup stay: `orch status`, `orch metrics` and \
                      `orch usage` answer as before. It works in short batches, one transaction \
                      each, so claims wait for it only briefly, then hands the freed pages back to \
                      the file system. `orch tick` runs it every prune_interval_hours."
    )]
    Prune(PruneArgs),
    /// Cost report: runs, cost, tokens, turns, wall time and classes, grouped as asked
    #[command(
        long_about = "The cost report: runs, cost, input, output and cache tokens, turns, wall \
                      time and the count of each verdict class, grouped by project, stage, task, \
                      day, agent or worker (--by, several at once: --by project,day). From the \
                      usage rollup, which keeps every finalized run, pruned or not, and the runs \
                      not finalized yet (class unjudged). Days are UTC days, of each run's start; \
                      --since and --until take UTC dates and include both days. A table, or \
                      --json, or --csv."
    )]
    Usage(UsageArgs),
    /// The database as a whole: `orch db copy` moves a queue from one database to another
    Db(DbArgs),
    /// Let a job awaiting approval run (a task key, or a job id)
    Approve(ApproveArgs),
    /// Send a job awaiting approval back: the previous stage runs again with the note in its prompt
    Reject(RejectArgs),
    /// Take in the forge's open issues that carry each project's label as tasks
    #[command(
        long_about = "Take in each intake project's open issues that carry its label \
                      (intake_label, default orch) from its forge, every page of them: each \
                      issue never taken in before becomes a task (its key from task_key, its \
                      title and body from the issue, its issue number set) queued at the first \
                      stage. A task that exists for the issue, in any state, is never made \
                      again; the queued jobs of tasks whose issue was closed or lost the label \
                      are cancelled (a running job is left to finish). A second sync of the \
                      same issues changes nothing. `orch tick` syncs every \
                      sync_interval_seconds, once across every worker sharing the database."
    )]
    Sync(SyncArgs),
    /// Print a shell completion script, or write every shell's into --dir
    Completions(CompletionsArgs),
    /// Write the manual pages (orch.1 and one per subcommand) into a directory
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Project name, as in the configuration's [projects.NAME]
    #[arg(long, add = crate::complete::projects())]
    pub project: String,
    /// Task key, e.g. ORCH-044
    #[arg(long)]
    pub task: String,
    /// Task title
    #[arg(long)]
    pub title: Option<String>,
    /// Read the task body from this file, or `-` for standard input
    #[arg(long, value_name = "FILE|-")]
    pub body_file: Option<String>,
    /// The task's issue number on the project's forge (for usage comments)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    pub issue: Option<u64>,
    /// Start at this pipeline stage instead of the first
    #[arg(long, add = crate::complete::stages())]
    pub stage: Option<String>,
    /// Higher runs sooner; 0 to 1000 [default: the project's priority]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Worker name that will hold the lease (e.g. the host name)
    #[arg(long, value_parser = worker_name)]
    pub worker: String,
    /// Only claim jobs of this project
    #[arg(long, add = crate::complete::projects())]
    pub project: Option<String>,
    /// Only jobs this agent profile runs (by their stage's and project's `agent`) [default: every
    /// agent the pipeline uses whose preflight passes]
    #[arg(long, add = crate::complete::agents())]
    pub agent: Option<String>,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    /// The agent to check (a [agents.NAME] profile, or claude)
    #[arg(long, default_value = crate::config::DEFAULT_AGENT, add = crate::complete::agents())]
    pub agent: String,
    /// Each check on its own line with its evidence and, for a failure, the fix
    #[arg(long)]
    pub explain: bool,
    /// Evaluate afresh instead of serving the cached verdict (the result is cached)
    #[arg(long)]
    pub no_cache: bool,
}

#[derive(Debug, Args)]
pub struct ResetCacheArgs {
    /// Only this agent's verdict, gate, usage hold and breaker [default: every agent's]
    #[arg(long, add = crate::complete::agents())]
    pub agent: Option<String>,
    /// Also close the circuit breaker and forget its count of failures
    #[arg(long)]
    pub breaker: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Job id (claimed by --worker)
    #[arg(value_parser = id())]
    pub job: i64,
    /// The worker holding the job's lease
    #[arg(long, value_parser = worker_name, required_unless_present = "dry_run")]
    pub worker: Option<String>,
    /// Run it with this agent profile instead of the job's own (its stage's, else its project's
    /// `agent`, else claude)
    #[arg(long, add = crate::complete::agents())]
    pub agent: Option<String>,
    /// Print what would run — the binary, the argv with the prompt in full, the working
    /// directory, the names of the environment's variables — and start nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// Job id
    #[arg(value_parser = id())]
    pub job: i64,
    /// This run of the job instead of its latest
    #[arg(long, value_name = "RUN", value_parser = id())]
    pub run: Option<i64>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A job id (`orch jobs` lists them), or a task key such as ORCH-44
    #[arg(value_name = "JOB|TASK")]
    pub target: String,
    /// With a task key: the task of this project (keys are unique per project)
    #[arg(long, add = crate::complete::projects())]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this state (repeatable) [default: queued and running]
    #[arg(long, value_name = "STATE", add = crate::complete::states())]
    pub state: Vec<String>,
    /// Only this project's jobs
    #[arg(long, add = crate::complete::projects())]
    pub project: Option<String>,
    /// Only jobs at this stage
    #[arg(long, add = crate::complete::stages())]
    pub stage: Option<String>,
    /// Only this task's jobs (its key)
    #[arg(long, value_name = "KEY")]
    pub task: Option<String>,
    /// At most this many jobs of each state
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct JobArg {
    /// Job id
    #[arg(value_parser = id())]
    pub job: i64,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Job id
    #[arg(value_parser = id())]
    pub job: i64,
    /// Queue it at this stage of the pipeline instead of its own; a queued job may be moved too
    /// (e.g. one at a stage the pipeline no longer has)
    #[arg(long, value_name = "STAGE", add = crate::complete::stages())]
    pub stage: Option<String>,
    /// A queued job waiting out its retry delay: due now, its attempts kept
    #[arg(long)]
    pub now: bool,
    /// A job waiting for budget (over_budget): add USD to what holds it (its task's budget, its
    /// project's for today, or both) and queue it again when that is enough
    #[arg(long, value_name = "USD", value_parser = dollars, allow_negative_numbers = true,
          conflicts_with_all = ["stage", "now"])]
    pub raise_budget: Option<f64>,
}

/// An amount of US dollars above 0 and below a million.
fn dollars(text: &str) -> Result<f64, String> {
    match text.trim().trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 && usd < 1_000_000.0 => Ok(usd),
        _ => Err(format!(
            "expected an amount of US dollars above 0, like 5 or 2.50, got {text:?}"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ValidateLogArgs {
    /// The agent's log (its JSON lines, text mixed in; Claude Code's json object or array), or
    /// `-` for stdin
    #[arg(value_name = "PATH|-")]
    pub path: String,
    /// The agent's exit status: a success result with a non-zero status is `exit_mismatch`
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub exit_code: Option<i32>,
    /// The run was ended by its timeout: without a success result the class is `timeout`
    #[arg(long, conflicts_with = "stalled")]
    pub timed_out: bool,
    /// The run was ended by its idle timeout: without a success result the class is `stalled`
    #[arg(long)]
    pub stalled: bool,
    /// Judge by this kind's rules (claude, codex, gemini), or by an agent profile's kind
    #[arg(long, value_name = "KIND", default_value = "claude", add = crate::complete::agents())]
    pub agent: String,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Give dead messages (out of attempts) another round first
    #[arg(long)]
    pub retry_dead: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Job id
    #[arg(value_parser = id())]
    pub job: i64,
    /// The run to show (the RUN column of `orch show JOB`) [default: the job's latest run]
    #[arg(long, value_name = "N", value_parser = id())]
    pub run: Option<i64>,
    /// Print the log exactly as stored
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write the metrics to FILE (atomically: a temporary file beside it, then a rename) instead
    /// of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PruneWorktreesArgs {
    /// Only say what would be removed
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove what finished longer ago than this: a number and s, m, h, d or w (90d, 36h)
    /// [default: retention_days]
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Count what would be removed, and remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy a whole queue (tasks, jobs, history, runs, outbox, holds, counters and rollups) into
    /// an empty database: SQLite to PostgreSQL, or back
    #[command(
        long_about = "Copy a whole queue into an empty database: tasks, jobs, their history, runs, the \
                      outbox, caches and holds, the counters and the usage rollup, each table by \
                      column name, in pages. SQLite to PostgreSQL (the way from one host to a fleet), \
                      PostgreSQL to SQLite, or either to its own kind. A target holding any row is \
                      refused; the row counts of every table are compared after. Stop the workers \
                      first: rows written to the source during the copy are not carried."
    )]
    Copy(DbCopyArgs),
}

#[derive(Debug, Args)]
pub struct DbCopyArgs {
    /// The database to copy: an SQLite file or a postgres:// URL
    #[arg(long, value_name = "PATH|URL")]
    pub from: String,
    /// The empty database to copy into (created and migrated when missing)
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct UsageArgs {
    /// Runs that started on this UTC day or later (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Runs that started on this UTC day or earlier (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Group by project, stage, task, day, agent or worker; several, comma-separated or repeated
    /// [default: project]
    #[arg(long, value_name = "WHAT", value_delimiter = ',')]
    pub by: Vec<String>,
    /// Comma-separated values (a header line, then one line per group) instead of a table
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// A task key (its job awaiting approval) or a job id
    #[arg(value_name = "TASK|JOB")]
    pub target: String,
    /// Why, for the job's history
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// A task key (its job awaiting approval) or a job id
    #[arg(value_name = "TASK|JOB")]
    pub target: String,
    /// What the previous stage must change: it reaches its prompt as {review_note}
    #[arg(long, value_name = "TEXT")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this project (it must take in issues: intake = true)
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell whose completion script to print
    #[arg(value_enum, required_unless_present = "dir")]
    pub shell: Option<clap_complete::Shell>,
    /// Write the scripts into this directory under their usual names (every shell, or SHELL's)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory the pages are written into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TickArgs {
    /// Worker name that holds the leases (e.g. the host name); one tick per worker at a time
    #[arg(long, value_parser = worker_name)]
    pub worker: String,
    /// Only jobs this agent profile runs [default: every agent the pipeline uses; one whose
    /// preflight fails holds only its own stages' jobs]
    #[arg(long, add = crate::complete::agents())]
    pub agent: Option<String>,
    /// Only claim jobs of this project
    #[arg(long, add = crate::complete::projects())]
    pub project: Option<String>,
    /// Jobs to do in this tick at most
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_jobs: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the demo's directory (project, config, database, logs) to explore
    #[arg(long)]
    pub keep: bool,
    /// Make the demo in this new or empty directory (kept) instead of a temporary one
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Job and run ids are positive: refused at the door rather than looked up and not found.
fn id() -> clap::builder::RangedI64ValueParser<i64> {
    clap::value_parser!(i64).range(1..=i64::MAX)
}

/// `--worker`: it names the worker's tick lock file and its leases.
fn worker_name(value: &str) -> Result<String, &'static str> {
    if crate::config::valid_name(value) {
        Ok(value.to_string())
    } else {
        Err(crate::config::WORKER_RULE)
    }
}
