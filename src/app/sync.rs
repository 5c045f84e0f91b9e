//! Intake: each intake project's open issues that carry its label become tasks, and the queued
//! jobs of tasks whose issue was closed or lost the label are cancelled (`orch sync`; `orch
//! tick` every `sync_interval_seconds`, once across the fleet through a turn in the store).
//!
//! The whole list is read before anything is written, and a list that failed part-way writes
//! nothing: a page missing must not read as issues closed.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::config::{self, Config, Project};
use crate::domain::approval::{self, Command, Said};
use crate::domain::intake;
use crate::domain::retention::TURN_MARGIN_MS;
use crate::domain::states::JobState;
use crate::forge;
use crate::http::Http;
use crate::store::{IntakeIssue, IntakeSync, IntakeSynced, Rejection, Reviewed, Store, Turn};

/// What syncing one project came to.
#[derive(Debug, Serialize)]
pub struct Report {
    pub project: String,
    /// Open issues with the label, as listed.
    pub listed: usize,
    #[serde(flatten)]
    pub synced: IntakeSynced,
    /// Jobs awaiting approval an approver's comment approved or rejected.
    pub reviews: Vec<Reviewed>,
    /// Why the project was not synced (nothing was written for it).
    pub error: Option<Failure>,
}

/// Why a sync of a project failed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The forge refused the token (401): a configuration error.
    Unauthorized { message: String },
    /// The forge asked to wait (429, or 403 with `Retry-After` or a spent rate limit); the next
    /// sync of the project waits at least this long.
    RateLimited { seconds: u64, message: String },
    /// The forge failed, timed out or was not there; the next sync tries again.
    Failed { message: String },
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Unauthorized { message }
            | Failure::RateLimited { message, .. }
            | Failure::Failed { message } => message,
        }
    }

    fn from_forge(err: forge::Error) -> Failure {
        match err {
            forge::Error::Unauthorized(error) => Failure::Unauthorized {
                message: format!(
                    "{error} (the forge refused the token in {})",
                    config::FORGE_TOKEN.env()
                ),
            },
            forge::Error::RetryAfter { seconds, error } => Failure::RateLimited {
                seconds,
                message: format!("{error} (rate limited: the next sync waits {seconds} s)"),
            },
            forge::Error::Failed(error)
            | forge::Error::Refused(error)
            | forge::Error::Gone(error) => Failure::Failed { message: error },
        }
    }
}

/// The projects that take in issues, in name order; `only` narrows them to one.
pub fn intake_projects<'c>(config: &'c Config, only: Option<&str>) -> Vec<&'c Project> {
    config
        .projects
        .values()
        .filter(|p| p.intake && p.forge.is_some())
        .filter(|p| only.is_none_or(|name| p.name == name))
        .collect()
}

/// The forge token, or the configuration error that says how to give one.
pub fn token(config: &Config) -> Result<&str> {
    crate::notify::forge_token(config).ok_or_else(|| {
        crate::exit::config(format!(
            "intake needs the forge's API token: set {} (or {}_FILE)",
            config::FORGE_TOKEN.env(),
            config::FORGE_TOKEN.env()
        ))
    })
}

/// The client a sync talks to the forge through, the token among its secrets.
pub fn client(config: &Config, token: &str) -> Http {
    let timeout = Duration::from_secs(config.count(config::HTTP_TIMEOUT_SECONDS).max(1));
    Http::new(timeout, vec![token.to_string()])
}

/// Sync `project` now: list its labelled open issues (every page), then write what they imply
/// in one transaction. A forge failure is the report's `error`, and nothing is written.
pub fn sync_project(
    config: &Config,
    store: &mut dyn Store,
    http: &Http,
    token: &str,
    project: &Project,
    actor: &str,
) -> Result<Report> {
    let mut report = Report {
        project: project.name.clone(),
        listed: 0,
        synced: IntakeSynced::default(),
        reviews: Vec::new(),
        error: None,
    };
    let Some(spec) = &project.forge else {
        return Ok(report);
    };
    let forge = forge::connect(spec, http, token);
    let listed = forge.labelled_issues(&project.intake_label);
    let issues: Vec<IntakeIssue> = match listed {
        Ok(issues) => issues
            .into_iter()
            .map(|issue| IntakeIssue {
                number: issue.number,
                key: intake::task_key(&project.task_key, &spec.repo, issue.number),
                title: intake::title(&issue.title),
                body: intake::body(&issue.body),
            })
            .collect(),
        Err(err) => {
            report.error = Some(Failure::from_forge(err));
            return Ok(report);
        }
    };
    report.listed = issues.len();
    let now = store.now()?;
    report.synced = store.sync_intake(&IntakeSync {
        project: &project.name,
        issues: &issues,
        stage: &config.stages[0],
        priority: project.priority,
        max_attempts: config.count(config::MAX_ATTEMPTS).max(1),
        actor,
        now,
    })?;
    report.reviews = comment_reviews(config, store, &*forge, project)?;
    Ok(report)
}

/// Jobs awaiting approval of `project` that waited since.
const APPROVALS_PER_SYNC: i64 = 200;

/// Approve or reject the project's jobs awaiting approval whose task's issue or pull request
/// has a command from one of its `approvers` (`domain::approval`). A forge that fails to list a
/// task's comments leaves its job waiting (a warning); the next sync looks again.
fn comment_reviews(
    config: &Config,
    store: &mut dyn Store,
    forge: &dyn forge::Forge,
    project: &Project,
) -> Result<Vec<Reviewed>> {
    if project.approvers.is_empty() {
        return Ok(Vec::new());
    }
    let mut reviews = Vec::new();
    let waiting = store.jobs_in_state(JobState::AwaitingApproval, APPROVALS_PER_SYNC)?;
    for job in waiting.iter().filter(|j| j.project == project.name) {
        let pull = store.task(job.task_id)?.and_then(|t| t.pr_number);
        let mut comments = Vec::new();
        for number in job.issue.into_iter().chain(pull).filter(|n| *n > 0) {
            match forge.comments_since(number, job.updated_at) {
                Ok(found) => comments.extend(found),
                Err(err) => crate::diag!(
                    "orch: warning: sync: the comments of #{number} ({} {}): {err}",
                    job.project,
                    job.task
                ),
            }
        }
        comments.sort_by_key(|c| (c.created_at, c.id));
        let said: Vec<Said> = comments
            .iter()
            .map(|c| Said {
                id: c.id,
                author: &c.author,
                body: &c.body,
                created_at: c.created_at,
                updated_at: c.updated_at,
            })
            .collect();
        let now = store.now()?;
        let mut first = None;
        for (id, who, command) in approval::commands(&said, &project.approvers, job.updated_at) {
            // Each comment is one command, once: a later sync never reads it again.
            if store.take_comment(&project.name, id, now)? {
                first = Some((who, command));
                break;
            }
        }
        let Some((who, command)) = first else {
            continue;
        };
        let actor = format!("forge:{who}");
        let reviewed = match command {
            Command::Approve => store.approve(job.job_id, &actor, Some("by a comment"), now)?,
            Command::Reject(note) => store.reject(&Rejection {
                job_id: job.job_id,
                stage: &config.previous_stage(&job.stage),
                note: &note,
                actor: &actor,
                now,
            })?,
        };
        reviews.push(reviewed);
    }
    Ok(reviews)
}

/// The name of a project's sync turn in the store.
pub fn turn_name(project: &str) -> String {
    format!("sync:{project}")
}

/// The tick's intake: each intake project whose turn is due (`sync_interval_seconds` since its
/// last sync, and nobody syncing it) is synced by this process, once across every worker that
/// shares the store. A sync that failed counts as done, so the forge is asked again only after
/// the interval, or after the wait a rate limit named when that is longer. Nothing when no
/// project takes in issues, or the token is missing (said once per tick on stderr).
pub fn when_due(config: &Config, store: &mut dyn Store, worker: &str) -> Result<Vec<Report>> {
    let projects = intake_projects(config, None);
    if projects.is_empty() {
        return Ok(Vec::new());
    }
    let token = token(config)?;
    let http = client(config, token);
    let interval_ms = config::seconds_to_ms(config.count(config::SYNC_INTERVAL_SECONDS));
    let timeout_ms = config::seconds_to_ms(config.count(config::HTTP_TIMEOUT_SECONDS));
    let holder = format!("{worker}@{}:{}", config.host(), std::process::id());
    let mut reports = Vec::new();
    for project in projects {
        let name = turn_name(&project.name);
        let turn = Turn {
            name: &name,
            holder: &holder,
            every_ms: interval_ms,
            hold_ms: timeout_ms.saturating_mul(4).saturating_add(TURN_MARGIN_MS),
            now: store.now()?,
        };
        if !store.take_turn(&turn)? {
            continue;
        }
        let synced = sync_project(config, store, &http, token, project, "sync");
        let now = store.now()?;
        let done_at = match &synced {
            Ok(Report {
                error: Some(Failure::RateLimited { seconds, .. }),
                ..
            }) => intake::done_at_for_wait(now, interval_ms, config::seconds_to_ms(*seconds)),
            _ => now,
        };
        let ended = store.end_turn(&name, &holder, true, done_at);
        reports.push(synced?);
        ended?;
    }
    Ok(reports)
}
