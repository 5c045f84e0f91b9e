//! The CI gate, each tick: every job waiting behind a gated stage's commit is looked at — the
//! forge's checks on the commit once it is pushed, judged by `domain::ci` — and settled: due
//! (green, or no CI within the grace), the gated stage again with the failing checks in its
//! prompt (red, fixes left), the task failed with an alert (red with no fix left, no verdict in
//! time), or left for the next tick (pending).

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::domain::ci::{self, Step, Verdict};
use crate::forge;
use crate::store::{AlertKind, GateOutcome, GateRow, GateSettle, NewAlert, Store};

/// Gates looked at per tick, oldest first.
const GATES_PER_TICK: i64 = 50;

/// A gate the tick settled (one left waiting is not reported).
#[derive(Debug, Serialize)]
pub struct Report {
    pub job_id: i64,
    pub task: String,
    pub project: String,
    pub sha: String,
    /// passed, fix or failed.
    pub outcome: &'static str,
    pub reason: String,
    /// The job queued for the gated stage again, on a fix.
    pub fix_job_id: Option<i64>,
}

/// Look at every waiting gate once. A forge that fails leaves its gates waiting (the timeout
/// still runs); no token leaves every gate waiting.
pub fn check_gates(config: &Config, store: &mut dyn Store) -> Result<Vec<Report>> {
    let gates = store.ci_gates(GATES_PER_TICK)?;
    if gates.is_empty() {
        return Ok(Vec::new());
    }
    let token = crate::notify::forge_token(config);
    let http = crate::app::sync::client(config, token.unwrap_or_default());
    let policy = config.ci_policy();
    let alerts_on = crate::notify::alerts_switch(config).on;
    let mut reports = Vec::new();
    for gate in gates {
        let now = store.now()?;
        let waited = now.saturating_sub(gate.since);
        let verdict = match verdict(config, &http, token, &gate) {
            Ok(verdict) => verdict,
            Err(err) => {
                crate::diag!("orch: warning: CI gate of job {}: {err}", gate.job_id);
                Verdict::Pending
            }
        };
        let fixes = u32::try_from(gate.ci_fixes).unwrap_or(u32::MAX);
        let (outcome, name, reason) = match ci::step(&verdict, waited, fixes, &policy) {
            Step::Wait => (GateOutcome::Wait, "", String::new()),
            Step::Pass(note) => (GateOutcome::Pass { note: note.clone() }, "passed", note),
            Step::Fix { failed, fix } => {
                let reason = format!(
                    "CI is red on {}: {} runs again to fix it (fix {fix} of {})",
                    short(&gate.sha),
                    gate.gated_stage,
                    policy.max_fixes
                );
                let failures = ci::failures_text(&failed);
                (
                    GateOutcome::Fix {
                        failures,
                        reason: reason.clone(),
                    },
                    "fix",
                    reason,
                )
            }
            Step::Fail(why) => {
                let reason = format!("CI gate on {}: {why}", short(&gate.sha));
                let alert = alerts_on.then(|| Box::new(alert(&gate, &reason)));
                (
                    GateOutcome::Fail {
                        reason: reason.clone(),
                        alert,
                    },
                    "failed",
                    reason,
                )
            }
        };
        let settled = store.settle_ci_gate(&GateSettle {
            job_id: gate.job_id,
            outcome: &outcome,
            actor: "ci",
            now,
        })?;
        if let (Some(settled), false) = (settled, name.is_empty()) {
            reports.push(Report {
                job_id: gate.job_id,
                task: gate.task.clone(),
                project: gate.project.clone(),
                sha: gate.sha.clone(),
                outcome: name,
                reason,
                fix_job_id: settled.fix_job_id,
            });
        }
    }
    Ok(reports)
}

/// What CI says of the gate's commit: nothing until the commit is pushed (CI cannot have
/// seen it), else the forge's checks.
fn verdict(
    config: &Config,
    http: &crate::http::Http,
    token: Option<&str>,
    gate: &GateRow,
) -> Result<Verdict, String> {
    if gate.pushed_sha.as_deref() != Some(gate.sha.as_str()) {
        return Ok(Verdict::Pending);
    }
    let Some(spec) = config
        .projects
        .get(&gate.project)
        .and_then(|p| p.forge.as_ref())
    else {
        return Err(format!("project {} has no forge any more", gate.project));
    };
    let Some(token) = token else {
        return Err(format!("{} is not set", crate::config::FORGE_TOKEN.env()));
    };
    let checks = forge::connect(spec, http, token)
        .commit_checks(&gate.sha)
        .map_err(|err| err.to_string())?;
    Ok(ci::verdict(&checks))
}

fn alert(gate: &GateRow, reason: &str) -> NewAlert {
    NewAlert {
        project: Some(gate.project.clone()),
        task: Some(gate.task.clone()),
        stage: Some(gate.gated_stage.clone()),
        job_id: Some(gate.job_id),
        class: Some("ci_failed".to_string()),
        ..NewAlert::new(
            AlertKind::CiFailed,
            &format!("{}/{}", gate.project, gate.gated_stage),
            reason,
        )
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// Alert, once each, the jobs that have waited for approval longer than
/// `approval_alert_seconds` (0: never). Their ids.
pub fn alert_waiting_approvals(config: &Config, store: &mut dyn Store) -> Result<Vec<i64>> {
    let after_ms = config.millis(crate::config::APPROVAL_ALERT_SECONDS);
    if after_ms == 0 {
        return Ok(Vec::new());
    }
    let alerts_on = crate::notify::alerts_switch(config).on;
    let now = store.now()?;
    let alert = |job: &crate::store::Job| {
        alerts_on.then(|| {
            let waited = crate::output::relative(job.updated_at, now);
            NewAlert {
                dedup_key: format!("approval/{}", job.job_id),
                ..NewAlert::for_job(
                    AlertKind::ApprovalWaiting,
                    job,
                    "awaiting_approval",
                    &format!(
                        "stage {} waits for `orch approve {}` or `orch reject` since {waited}",
                        job.stage, job.task
                    ),
                )
            }
        })
    };
    store.alert_waiting_approvals(&crate::store::ApprovalAlerts {
        waiting_since: now.saturating_sub(after_ms),
        alert: &alert,
        now,
    })
}
