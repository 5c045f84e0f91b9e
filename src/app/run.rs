//! Running one claimed job: check the lease and open the run row, build the agent's command line
//! and environment, start it in its own process group, watch it (log, lease heartbeat, timeout,
//! signals), and record how it ended. The verdict on the run is finalize's, from the log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::agent::{self, Agent, Launch, Profile};
use crate::app::finalize::LaunchKind;
use crate::config::{self, Config, Project, Stage};
use crate::domain::agent::AgentKind;
use crate::domain::decide;
use crate::domain::prompt;
use crate::domain::states::JobState;
use crate::domain::verdict::{Class, Ending};
use crate::procfs::{self, Place, Proc};
use crate::store::{self, Job, LeaseHolder, NewRun, PreviousResult, RunEnd, Store};
use crate::{fsx, Ctx};

use crate::runner::log::CappedLog;
use crate::runner::process::Agent as Process;
use crate::runner::signals::Signals;
use crate::runner::status::StatusLine;
use crate::runner::supervise::{Limits, Watch, Watched, LEASE_GONE};
use crate::runner::{process, supervise};

/// The previous stage's result text is cut to this many bytes in a prompt: one argv element may
/// hold at most 128 KiB on Linux, and the task body shares it.
pub const PREVIOUS_RESULT_MAX_BYTES: usize = 32 * 1024;

pub struct RunRequest<'a> {
    pub job_id: i64,
    pub worker: &'a str,
    /// The agent profile (`[agents.NAME]`, or a kind's name); None for the job's own, chosen by
    /// its stage and project (`Config::stage_agent`).
    pub agent: Option<&'a str>,
    /// Draw the live status line on stderr (a terminal, no `--json`).
    pub live_status: bool,
}

/// How the run went, as recorded in its agent_runs row.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: i64,
    pub job_id: i64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Ended because the agent wrote nothing for `idle_timeout_seconds`.
    pub stalled: bool,
    pub interrupted: bool,
    /// The agent session this run continued, when it did (`--resume`).
    pub resumed_session: Option<String>,
    pub duration_ms: i64,
    pub log_path: String,
    pub log_bytes: u64,
    pub log_truncated: bool,
    /// Why the agent could not be started (the run is recorded; the cached preflight verdict was dropped).
    pub launch_error: Option<String>,
    /// The lease was gone mid-run (job cancelled or rescued), so the agent was stopped.
    pub lease_lost: bool,
    /// The run's failure text says the agent is not logged in; the cached preflight verdict was dropped.
    pub auth_failure: bool,
}

/// Run the agent for `request.job_id`, which `request.worker` must hold the lease of. Ok when
/// the run was recorded, whatever the agent did (a launch failure included); Err when it could
/// not be (not the lease holder, no such job, the database failing).
///
/// SIGINT and SIGTERM are caught from the start: while the agent runs they are passed to its
/// group; before or after, they are delivered to orch once the run is recorded.
pub fn run_job(ctx: &Ctx, store: &mut dyn Store, request: &RunRequest) -> Result<RunOutcome> {
    config::require_worker(request.worker)?;
    let mut signals = Signals::install().context("setting up signal handling")?;
    let outcome = run_with_signals(&ctx.config, store, request, &mut signals);
    signals.finish();
    outcome
}

fn run_with_signals(
    config: &Config,
    store: &mut dyn Store,
    request: &RunRequest,
    signals: &mut Signals,
) -> Result<RunOutcome> {
    let job = store
        .job(request.job_id)?
        .ok_or_else(|| store::no_job(request.job_id))?;
    let project = config.project(&job.project)?;
    let agent_name = request
        .agent
        .unwrap_or_else(|| config.stage_agent(&job.project, &job.stage));
    let profile = agent::resolve(config, agent_name)?;
    let stage = config.stage(&job.stage);
    warn_unsupported(&profile, &job.stage, &stage);
    let limits = limits(config, &stage);
    let agent_version = store.cached_agent_version(&config.host(), agent_name)?;
    let resume = resume_session(store, &job, &stage, agent_name, profile.agent)?;
    // Before the run is recorded: a log directory others may write in is refused with no run.
    let log_dir = fsx::ensure_private_dir(&config.log_dir(), "log directory")?;
    let place = Place::current(config.host());
    let log_path = |run_id| {
        log_dir
            .join(format!("job-{}-run-{run_id}.log", request.job_id))
            .display()
            .to_string()
    };
    let started = store.start_run(&NewRun {
        log_path: &log_path,
        job_id: request.job_id,
        worker: request.worker,
        agent: agent_name,
        agent_kind: profile.env.kind().name(),
        agent_version: agent_version.as_deref(),
        lease_ms: limits.lease_ms,
        place: &place,
        supervisor: procfs::this_process(),
        resumed_session: resume.as_deref(),
        now: store.now()?,
    })?;
    // From here on the run exists: every way out ends its row.
    let run = Run {
        id: started.run_id,
        job: started.job,
        log_path: PathBuf::from(&started.log_path),
        worker: request.worker,
        agent: profile.agent,
        clock: Instant::now(),
        resumed: resume.clone(),
    };
    let launch = Launching {
        project,
        profile: &profile,
        stage: &stage,
    };
    let prepared = match prepare(config, store, &run, &launch, resume.as_deref()) {
        Ok(prepared) => prepared,
        Err(failure) => return run.launch_failed(store, failure),
    };
    let Prepared {
        command,
        program,
        cwd,
        mut log,
    } = prepared;
    let mut next = (command, program);
    let mut resume = resume;
    let mut resume_failed = false;
    loop {
        let (command, program) = next;
        let mut agent = match run.start(store, &launch, command, &program, &cwd) {
            Ok(agent) => agent,
            Err(failure) => return run.launch_failed(store, failure),
        };
        let watched = run.watch(
            store,
            &mut agent,
            &mut log,
            signals,
            &limits,
            request.live_status,
        )?;
        // The session to continue is gone (the agent keeps sessions per directory, and may have
        // dropped it): the work starts afresh in the same run and log, rather than failing an
        // attempt over it.
        let Some(session) = resume.take().filter(|_| run.resume_refused(&watched)) else {
            let keep_log = config.count(config::LOG_STORE_MAX_BYTES);
            return run.finish(store, &agent, &log, watched, resume_failed, keep_log);
        };
        resume_failed = true;
        crate::diag!(
            "orch: run {}: the agent has no session {session} to continue: starting afresh",
            run.id
        );
        next = match command_for(config, store, &run.job, Some(run.id), &launch, &cwd, None) {
            Ok(fresh) => fresh,
            Err(failure) => return run.launch_failed(store, failure),
        };
    }
}

/// Say which of the stage's settings the profile's kind cannot honour (a tool list for Codex, a
/// budget for Gemini): they are not passed, and an operator should know.
fn warn_unsupported(profile: &Profile, stage_name: &str, stage: &Stage) {
    let unsupported = profile.agent.unsupported(stage);
    if !unsupported.is_empty() {
        crate::diag!(
            "orch: warning: agent {} ({}) cannot honour [stages.{stage_name}] {}: not passed",
            profile.name(),
            profile.agent.spec().product,
            unsupported.join(", ")
        );
    }
}

/// What the agent is started for: the job's project, the agent profile, the stage's settings.
struct Launching<'a> {
    project: &'a Project,
    profile: &'a Profile<'a>,
    stage: &'a Stage,
}

/// The session the job's next run continues: its latest run's, when that run was cut short with
/// its work unfinished (`decide::RESUMES_AFTER`) by the same agent profile and its log gave a
/// session id, unless the stage says `resume = false`.
fn resume_session(
    store: &dyn Store,
    job: &Job,
    stage: &Stage,
    agent_name: &str,
    agent: &dyn Agent,
) -> Result<Option<String>> {
    if stage.resume == Some(false) {
        return Ok(None);
    }
    let Some(last) = store.runs_for_job(job.job_id)?.pop() else {
        return Ok(None);
    };
    if last.agent != agent_name || !last.class.as_deref().is_some_and(decide::resumes_after) {
        return Ok(None);
    }
    // Finalize kept the usage, session id included; a rescued run was never judged: its log
    // says.
    let stored = last
        .usage
        .as_ref()
        .and_then(|usage| usage.get("session_id"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let session = match (stored, &last.log_path) {
        (Some(session), _) => Some(session),
        (None, Some(log)) => agent
            .judge_path(Path::new(log), Ending::default())
            .ok()
            .and_then(|verdict| verdict.usage.session_id),
        (None, None) => None,
    };
    Ok(session.filter(|s| is_session_id(s)))
}

/// A session id as agents make them (a UUID, say): it goes to the agent as the value of an
/// option, so one that could read as an option, or is not a plain token, is not used.
fn is_session_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A run whose row is open.
struct Run<'a> {
    id: i64,
    job: Job,
    log_path: PathBuf,
    worker: &'a str,
    /// What reads the log the agent writes.
    agent: &'static dyn Agent,
    clock: Instant,
    /// The session this run continues, if it does.
    resumed: Option<String>,
}

/// Why the agent was not started, and whose fault that is.
struct LaunchFailure {
    kind: LaunchKind,
    reason: String,
}

impl LaunchFailure {
    fn agent(reason: String) -> LaunchFailure {
        LaunchFailure {
            kind: LaunchKind::Agent,
            reason,
        }
    }
}

/// Everything needed to start the agent.
struct Prepared {
    /// The agent's argv and environment; `process::spawn` adds the rest.
    command: Command,
    /// argv[0], for a launch failure's reason.
    program: String,
    /// Where the agent works: the task's worktree, or the workdir.
    cwd: PathBuf,
    log: CappedLog,
}

fn prepare(
    config: &Config,
    store: &mut dyn Store,
    run: &Run,
    launch: &Launching,
    resume: Option<&str>,
) -> Result<Prepared, LaunchFailure> {
    let log =
        CappedLog::create(&run.log_path, config.count(config::LOG_MAX_BYTES)).map_err(|err| {
            LaunchFailure::agent(format!(
                "cannot create the run's log {}: {err}",
                run.log_path.display()
            ))
        })?;
    if let Some(reason) = crate::app::branches::not_ready(launch.project) {
        return Err(LaunchFailure {
            kind: LaunchKind::Project,
            reason,
        });
    }
    let cwd =
        crate::app::branches::checkout(config, store, &run.job, launch.project).map_err(|why| {
            LaunchFailure {
                kind: LaunchKind::Checkout,
                reason: format!("the task's worktree could not be made: {why}"),
            }
        })?;
    let (command, program) =
        command_for(config, store, &run.job, Some(run.id), launch, &cwd, resume)?;
    Ok(Prepared {
        command,
        program,
        cwd,
        log,
    })
}

/// The agent's command for `job` — argv (the prompt in full, or the continuation prompt when it
/// resumes a session), working directory, environment — and its program, as `orch run` starts it
/// and `orch run --dry-run` shows it.
fn command_for(
    config: &Config,
    store: &dyn Store,
    job: &Job,
    run_id: Option<i64>,
    launch: &Launching,
    cwd: &Path,
    resume: Option<&str>,
) -> Result<(Command, String), LaunchFailure> {
    let Launching { profile, stage, .. } = *launch;
    let prompt_text = match resume {
        Some(_) => config
            .text(config::RESUME_PROMPT)
            .unwrap_or_default()
            .to_string(),
        None => build_prompt(config, store, job, stage)
            .map_err(|err| LaunchFailure::agent(format!("{err:#}")))?,
    };
    if let Some(why) = prompt::unfit("the prompt", &prompt_text, prompt::ARG_MAX_BYTES) {
        return Err(LaunchFailure {
            kind: LaunchKind::Task,
            reason: format!("{why}: shorten the task's body or the stage's prompt"),
        });
    }
    let launch = Launch {
        prompt: &prompt_text,
        stage,
        resume,
    };
    let argv = profile.agent.argv(&profile.env, &launch).map_err(|why| {
        LaunchFailure::agent(format!(
            "cannot start the agent: {why} (set {})",
            profile.env.bin_settings()
        ))
    })?;
    let (program, args) = argv.split_first().ok_or_else(|| {
        LaunchFailure::agent(format!(
            "the argv template of agent {} is empty",
            profile.name()
        ))
    })?;
    let mut command = profile.agent.command(&profile.env, Path::new(program));
    command
        .args(args)
        .current_dir(cwd)
        .env("PWD", cwd)
        .env("ORCH_JOB_ID", job.job_id.to_string())
        .env(
            "ORCH_RUN_ID",
            run_id.map_or_else(String::new, |id| id.to_string()),
        )
        .env("ORCH_TASK", &job.task)
        .env("ORCH_STAGE", &job.stage);
    Ok((command, program.clone()))
}

/// What `orch run JOB` would start, for `--dry-run`: nothing is started, claimed or written.
#[derive(Debug, Serialize)]
pub struct DryRun {
    pub job_id: i64,
    pub agent: String,
    pub program: String,
    /// The whole argv, the prompt in full.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The names of the variables the agent's environment holds (their values are not shown).
    pub env: Vec<String>,
}

/// Build the command `orch run` would start for `job_id` with `agent` (None: the job's own),
/// without starting it.
pub fn dry_run(
    config: &Config,
    store: &dyn Store,
    job_id: i64,
    agent: Option<&str>,
) -> Result<DryRun> {
    let mut job = store.job(job_id)?.ok_or_else(|| store::no_job(job_id))?;
    // A queued job runs as its next attempt.
    if job.state != JobState::Running {
        job.attempt += 1;
    }
    let project = config.project(&job.project)?;
    let agent = agent.unwrap_or_else(|| config.stage_agent(&job.project, &job.stage));
    let profile = agent::resolve(config, agent)?;
    let stage = config.stage(&job.stage);
    let resume = resume_session(store, &job, &stage, agent, profile.agent)?;
    let launch = Launching {
        project,
        profile: &profile,
        stage: &stage,
    };
    let cwd = crate::app::branches::planned_cwd(config, store, &job, project)?;
    let (command, program) =
        command_for(config, store, &job, None, &launch, &cwd, resume.as_deref())
            .map_err(|failure| anyhow::anyhow!("{}", failure.reason))?;
    let mut env: std::collections::BTreeSet<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    for (name, value) in command.get_envs() {
        let name = name.to_string_lossy().into_owned();
        match value {
            Some(_) => env.insert(name),
            None => env.remove(&name),
        };
    }
    let argv = std::iter::once(program.clone())
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    Ok(DryRun {
        job_id,
        agent: agent.to_string(),
        program,
        argv,
        cwd,
        env: env.into_iter().collect(),
    })
}

/// The stage's prompt with the job's values filled in.
fn build_prompt(config: &Config, store: &dyn Store, job: &Job, stage: &Stage) -> Result<String> {
    let body = store.task_body(job.task_id)?;
    let previous = match config.stages.iter().position(|s| *s == job.stage) {
        Some(at) if at > 0 => store.last_ok_result(job.task_id, &config.stages[at - 1])?,
        _ => None,
    };
    // The text finalize stored; a run finalized before orch stored it has only its log.
    let previous_result = match previous {
        Some(PreviousResult::Text(text)) => text,
        Some(PreviousResult::Log(log)) => previous_result(Path::new(&log)),
        None => String::new(),
    };
    let issue = job.issue.map(|n| n.to_string()).unwrap_or_default();
    let attempt = job.attempt.to_string();
    // A run sent back by red CI: the failing checks (the forge's text, bounded when stored).
    let ci_failures = store.ci_failures(job.job_id)?.unwrap_or_default();
    // A run a reviewer sent back: the note (a person's text, bounded when it was given).
    let review_note = store.review_note(job.job_id)?.unwrap_or_default();
    let vars = [
        ("task", job.task.as_str()),
        ("title", job.title.as_str()),
        ("body", body.as_str()),
        ("issue", issue.as_str()),
        ("stage", job.stage.as_str()),
        ("project", job.project.as_str()),
        ("attempt", attempt.as_str()),
        ("previous_result", previous_result.as_str()),
        ("ci_failures", ci_failures.as_str()),
        ("review_note", review_note.as_str()),
    ];
    debug_assert!(vars
        .iter()
        .all(|(name, _)| prompt::PLACEHOLDERS.contains(name)));
    let mut template = prompt::template(&job.stage, stage.prompt.as_deref());
    for (text, placeholder, block) in [
        (&ci_failures, "{ci_failures}", prompt::CI_FAILURES_BLOCK),
        (&review_note, "{review_note}", prompt::REVIEW_NOTE_BLOCK),
    ] {
        if !text.is_empty() && !template.contains(placeholder) {
            template.push_str(block);
        }
    }
    Ok(prompt::substitute(&template, &vars))
}

/// The result text of the previous stage's log, judged ok, cut to fit a prompt; empty when the
/// log holds no successful result. Only for runs finalized before the store kept this text.
fn previous_result(log: &Path) -> String {
    // Read as Claude Code's: runs that old are older than the other kinds.
    let reader = agent::of_kind(AgentKind::Claude);
    match reader.judge_path(log, Ending::default()) {
        Ok(verdict) if verdict.ok => prompt::cap(
            verdict.result_text.unwrap_or_default(),
            PREVIOUS_RESULT_MAX_BYTES,
        ),
        Ok(_) => String::new(),
        Err(err) => {
            crate::diag!(
                "orch: warning: cannot read the previous stage's log {}: {err}",
                log.display()
            );
            String::new()
        }
    }
}

/// The run's timeout and idle timeout (the stage's, else the settings'), kill grace and lease
/// heartbeat.
fn limits(config: &Config, stage: &Stage) -> Limits {
    let lease_ms = config.millis(config::LEASE_SECONDS);
    let timeout = stage
        .timeout_seconds
        .unwrap_or_else(|| config.count(config::RUN_TIMEOUT_SECONDS));
    let idle = stage
        .idle_timeout_seconds
        .unwrap_or_else(|| config.count(config::IDLE_TIMEOUT_SECONDS));
    Limits {
        timeout: Duration::from_secs(timeout),
        idle: Duration::from_secs(idle),
        grace: config.seconds(config::KILL_GRACE_SECONDS),
        lease_ms,
        // Well before the lease runs out: two heartbeats may fail and the third still be in time.
        heartbeat_every: Duration::from_millis((lease_ms / 3).max(100) as u64),
    }
}

/// Why the agent could not be started, and whose fault it is: the task's when its prompt cannot
/// be passed, the project's when its workdir went missing (a failed chdir looks like a missing
/// binary), else the agent's.
fn spawn_failure(
    program: &str,
    err: &std::io::Error,
    project: &Project,
    bin_settings: &str,
) -> LaunchFailure {
    let (kind, hint) = match err.raw_os_error() {
        Some(libc::E2BIG) => (
            LaunchKind::Task,
            " (the prompt is too long: Linux takes at most 128 KiB in one argument; shorten the \
             task's body or the stage's prompt)"
                .to_string(),
        ),
        None if err.kind() == std::io::ErrorKind::InvalidInput => (
            LaunchKind::Task,
            " (an argument holds a NUL byte: the task's body, title or the stage's prompt)"
                .to_string(),
        ),
        _ if project.workdir_missing().is_some() => {
            let reason = project.workdir_missing().unwrap_or_default();
            return LaunchFailure {
                kind: LaunchKind::Project,
                reason,
            };
        }
        Some(libc::ENOENT) => (
            LaunchKind::Agent,
            format!(" (not found: set {bin_settings})"),
        ),
        Some(libc::EACCES) => (LaunchKind::Agent, " (not executable)".to_string()),
        _ => (LaunchKind::Agent, String::new()),
    };
    LaunchFailure {
        kind,
        reason: format!("cannot start the agent {program}: {err}{hint}"),
    }
}

impl Run<'_> {
    fn elapsed_ms(&self) -> i64 {
        i64::try_from(self.clock.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Start the agent. It leads its own process group: recorded with its start time, the group
    /// can be ended by a rescue on this host should this orch die or stop. It is not reaped
    /// before `wait`, so even an agent that already exited still shows in /proc.
    fn start(
        &self,
        store: &mut dyn Store,
        launch: &Launching,
        command: Command,
        program: &str,
        cwd: &Path,
    ) -> Result<Process, LaunchFailure> {
        let (spawned, recorded) = store.start_agent(self.id, || {
            let spawned = process::spawn(command, cwd);
            let recorded = spawned.as_ref().ok().and_then(|agent| {
                let pid = agent.pid() as i32;
                procfs::start_time(pid).map(|start| Proc { pid, start })
            });
            (spawned, recorded)
        });
        let agent = spawned.map_err(|err| {
            spawn_failure(
                program,
                &err,
                launch.project,
                &launch.profile.env.bin_settings(),
            )
        })?;
        if let Err(err) = recorded {
            crate::diag!(
                "orch: warning: could not record the agent's pid {}: {err:#}",
                agent.pid()
            );
        }
        Ok(agent)
    }

    /// Record a run that never started. When the agent is to blame, drop the cached preflight
    /// verdict too: the agent is not what preflight saw. A task's or a project's failure says
    /// nothing about the agent.
    fn launch_failed(&self, store: &mut dyn Store, failure: LaunchFailure) -> Result<RunOutcome> {
        let LaunchFailure { kind, reason } = failure;
        crate::diag!("orch: run {} of job {}: {reason}", self.id, self.job.job_id);
        let end = RunEnd {
            ended_at: store.now()?,
            duration_ms: self.elapsed_ms(),
            launch_error: Some(&reason),
            launch_kind: Some(kind.as_str()),
            drop_preflight_cache: kind == LaunchKind::Agent,
            ..RunEnd::default()
        };
        self.record(store, &end, false, false)
    }

    /// Write how the run ended, and say so.
    fn record(
        &self,
        store: &mut dyn Store,
        end: &RunEnd,
        lease_lost: bool,
        auth_failure: bool,
    ) -> Result<RunOutcome> {
        store.end_run(self.id, end)?;
        Ok(RunOutcome {
            run_id: self.id,
            job_id: self.job.job_id,
            exit_code: end.exit_code,
            signal: end.signal,
            timed_out: end.timed_out,
            stalled: end.stalled,
            interrupted: end.interrupted,
            resumed_session: self.resumed.clone().filter(|_| !end.resume_failed),
            duration_ms: end.duration_ms,
            log_path: self.log_path.display().to_string(),
            log_bytes: end.log_bytes,
            log_truncated: end.log_truncated,
            launch_error: end.launch_error.map(str::to_string),
            lease_lost,
            auth_failure,
        })
    }

    /// Watch the started agent to its end. When orch itself fails while watching, the agent's
    /// group is ended and the run recorded as cut short before the error is returned.
    fn watch(
        &self,
        store: &mut dyn Store,
        agent: &mut Process,
        log: &mut CappedLog,
        signals: &mut Signals,
        limits: &Limits,
        live_status: bool,
    ) -> Result<Watched> {
        let mut status = live_status.then(|| StatusLine::new(self.clock, self.agent.progress()));
        let job_id = self.job.job_id;
        let holder = LeaseHolder {
            job_id,
            worker: self.worker,
            attempt: self.job.attempt,
        };
        let watched = {
            let mut heartbeat = || {
                let now = store.now()?;
                store.heartbeat(&holder, self.id, limits.lease_ms, now)
            };
            supervise::supervise(
                Watch {
                    agent,
                    log,
                    signals,
                    status: status.as_mut(),
                    heartbeat: &mut heartbeat,
                },
                limits,
                // A second start (a resume that fell back) has the whole idle timeout, and what
                // is left of the run's time.
                self.clock,
            )
        };
        if let Some(status) = status.as_mut() {
            status.clear();
        }
        if let Err(err) = log.sync() {
            crate::diag!("orch: warning: could not sync the run's log: {err}");
        }
        match watched {
            Ok(watched) => Ok(watched),
            Err(err) => {
                let _ = agent.wait();
                let end = RunEnd {
                    pid: Some(agent.pid()),
                    ended_at: store.now().unwrap_or_else(|_| store::now_ms()),
                    duration_ms: self.elapsed_ms(),
                    interrupted: true,
                    log_bytes: log.written,
                    log_truncated: log.truncated,
                    ..RunEnd::default()
                };
                store.end_run(self.id, &end)?;
                Err(err.context(format!("run {} of job {job_id}", self.id)))
            }
        }
    }

    /// Whether the agent refused to resume the session it was given (and did nothing else): the
    /// log says so and the agent ended by itself.
    fn resume_refused(&self, watched: &Watched) -> bool {
        let (exit_code, _) = process::code_or_signal(watched.status);
        if watched.interrupted || watched.timed_out || watched.stalled || exit_code == Some(0) {
            return false;
        }
        let ending = Ending::new(exit_code, false, false);
        self.agent
            .judge_path(&self.log_path, ending)
            .is_ok_and(|verdict| verdict.resume_failed)
    }

    /// Record how the watched run ended.
    fn finish(
        &self,
        store: &mut dyn Store,
        agent: &Process,
        log: &CappedLog,
        mut watched: Watched,
        resume_failed: bool,
        keep_log: u64,
    ) -> Result<RunOutcome> {
        if !watched.lease_lost && store.run_closed(self.id).unwrap_or(false) {
            // Closed while the agent worked (cancelled, or rescued) and ended before a heartbeat
            // noticed: say so, as the heartbeat would have.
            crate::diag!("orch: {LEASE_GONE}");
            watched.lease_lost = true;
            watched.interrupted = true;
        }
        let (exit_code, signal) = process::code_or_signal(watched.status);
        let ending = Ending::new(exit_code, watched.timed_out, watched.stalled);
        // The post-factum safety net: a log that says the agent is not authenticated drops the
        // cached verdict, so the next claim checks afresh (finalize decides about the gate).
        let auth_failure = self.auth_failure(ending);
        let end = RunEnd {
            pid: Some(agent.pid()),
            ended_at: store.now()?,
            duration_ms: self.elapsed_ms(),
            exit_code,
            signal,
            timed_out: watched.timed_out,
            stalled: watched.stalled,
            interrupted: watched.interrupted,
            resume_failed,
            launch_error: None,
            launch_kind: None,
            log_bytes: log.written,
            log_truncated: log.truncated,
            drop_preflight_cache: auth_failure.is_some(),
            // The run is the lease's no more: no finalize will keep its log.
            log: watched
                .lease_lost
                .then(|| crate::app::finalize::keep_log(keep_log, &self.log_path, self.id))
                .flatten(),
        };
        let outcome = self.record(store, &end, watched.lease_lost, auth_failure.is_some())?;
        if let Some(reason) = &auth_failure {
            crate::diag!(
                "orch: run {}: {reason}; the preflight cache was dropped, the next claim checks afresh",
                self.id
            );
        }
        Ok(outcome)
    }

    /// The verdict's reason when the run's log is judged `auth` (given how the agent ended).
    fn auth_failure(&self, ending: Ending) -> Option<String> {
        match self.agent.judge_path(&self.log_path, ending) {
            Ok(verdict) => (verdict.class == Class::Auth).then_some(verdict.reason),
            Err(err) => {
                crate::diag!(
                    "orch: warning: cannot read the run's log {}: {err}",
                    self.log_path.display()
                );
                None
            }
        }
    }
}
