//! What a run's outcome means for its job: the decision (advance, complete, requeue, fail, gate)
//! and everything it implies (alerts, the usage comment, the auth gate, a project hold, the
//! breaker's event), from data alone. `app::finalize` gathers the facts, calls `decide`, and
//! writes the plan in one transaction.

use serde::Serialize;

use crate::domain::backoff;
use crate::domain::breaker::Event;
use crate::domain::verdict::{Class, Kind};
use crate::exit;

/// What finalize did with the job. Names are part of the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Done; the next stage's job was queued.
    Advanced,
    /// Done after the last stage: the task is complete.
    Completed,
    /// Back in the queue for another attempt after a backoff.
    Requeued,
    /// Failed for good.
    Failed,
    /// Back in the queue, attempt given back, until the agent is logged in again (or, after an
    /// `invocation_error`, until the setting it refused changes).
    Gated,
    /// Cancelled by an operator while it ran (`orch cancel`): the run was closed then.
    Cancelled,
}

const DECISIONS: [Decision; 6] = [
    Decision::Advanced,
    Decision::Completed,
    Decision::Requeued,
    Decision::Failed,
    Decision::Gated,
    Decision::Cancelled,
];

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Advanced => "advanced",
            Decision::Completed => "completed",
            Decision::Requeued => "requeued",
            Decision::Failed => "failed",
            Decision::Gated => "gated",
            Decision::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Decision> {
        DECISIONS.into_iter().find(|d| d.as_str() == name)
    }

    /// 0 advanced or completed, 20 requeued, 21 failed or cancelled (the job ended without
    /// success), 22 gated.
    pub fn exit_status(self) -> u8 {
        match self {
            Decision::Advanced | Decision::Completed => exit::OK,
            Decision::Requeued => exit::RUN_RETRY,
            Decision::Failed | Decision::Cancelled => exit::RUN_FAILED,
            Decision::Gated => exit::RUN_AUTH,
        }
    }
}

/// Whose fault it is that the agent could not be started. Only the agent's says anything about
/// the agent (and counts toward its circuit breaker); a task's fails that task, a project's holds
/// that project, and neither stops the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchKind {
    /// The binary is missing, not executable, not a program; or orch could not prepare the run.
    Agent,
    /// The task's prompt cannot be passed to any agent: too long for one argument (E2BIG) or
    /// holding a NUL byte.
    Task,
    /// The project's workdir is missing or not a directory, or its main clone has no commit to
    /// start a task's branch from.
    Project,
    /// The task's worktree could not be made (its branch's base cannot be found, git failed):
    /// a transient failure of the task, not of the agent.
    Checkout,
}

impl LaunchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchKind::Agent => "agent",
            LaunchKind::Task => "task",
            LaunchKind::Project => "project",
            LaunchKind::Checkout => "checkout",
        }
    }

    /// A stored name; a run recorded before orch told them apart was the agent's.
    pub fn from_name(name: Option<&str>) -> LaunchKind {
        match name {
            Some("task") => LaunchKind::Task,
            Some("project") => LaunchKind::Project,
            Some("checkout") => LaunchKind::Checkout,
            _ => LaunchKind::Agent,
        }
    }
}

/// What a run came to: its log's class, or what happened to the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    Log(Class),
    /// The agent could not be started.
    LaunchError(LaunchKind),
    /// The run was stopped from outside before an ok result.
    Interrupted,
}

impl Judged {
    pub fn name(self) -> &'static str {
        match self {
            Judged::Log(class) => class.name(),
            Judged::LaunchError(LaunchKind::Agent) => "launch_error",
            Judged::LaunchError(LaunchKind::Task) => "bad_prompt",
            Judged::LaunchError(LaunchKind::Project) => "workdir_missing",
            Judged::LaunchError(LaunchKind::Checkout) => "checkout_failed",
            Judged::Interrupted => "interrupted",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Judged::Log(class) => class.kind(),
            Judged::LaunchError(LaunchKind::Task) => Kind::Permanent,
            Judged::LaunchError(_) | Judged::Interrupted => Kind::Transient,
        }
    }

    /// How it bears on the agent's circuit breaker: only transient failures of the agent count.
    pub fn breaker_event(self) -> Event {
        match (self, self.kind()) {
            (_, Kind::Ok) => Event::Success,
            (
                Judged::Interrupted
                | Judged::LaunchError(LaunchKind::Project | LaunchKind::Checkout),
                _,
            ) => Event::Neutral,
            (_, Kind::Transient) => Event::Failure,
            // A usage limit is the account's state, not a fault of the agent.
            (_, Kind::Permanent | Kind::Gate | Kind::Hold) => Event::Neutral,
        }
    }
}

/// The retry backoff, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The first retry's delay; doubles with each attempt.
    pub base_ms: i64,
    /// The longest delay.
    pub max_ms: i64,
    /// The shortest delay after a rate limit.
    pub rate_limit_min_ms: i64,
}

impl Retry {
    /// The longest a failed job waits for its next attempt: a job due later than this (plus the
    /// clocks' skew) was dated by a clock that ran ahead.
    pub fn longest_ms(&self) -> i64 {
        let rate_limited = self
            .rate_limit_min_ms
            .max(0)
            .saturating_add(self.rate_limit_min_ms.max(0) / 10);
        self.max_ms.max(rate_limited)
    }
}

/// The wait before the next attempt after `attempt` (1-based) failed: `base · 2^(attempt-1)`
/// capped at `max`, less up to a quarter of it by `jitter` (0 ≤ jitter < 1) so jobs that failed
/// together do not come back together. After a rate limit, at least `rate_limit_min` (plus up to
/// a tenth of it by `jitter`).
pub fn retry_delay_ms(judged: Judged, attempt: i64, retry: &Retry, jitter: f64) -> i64 {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let step = backoff::exponential(retry.base_ms, retry.max_ms, attempt);
    let delay = step - (step as f64 * 0.25 * jitter) as i64;
    if judged == Judged::Log(Class::RateLimit) {
        let floor = retry.rate_limit_min_ms.max(0);
        delay.max(floor.saturating_add((floor as f64 * 0.1 * jitter) as i64))
    } else {
        delay
    }
}

/// What `decide` needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub judged: Judged,
    /// The agent's exit status, exactly as it returned.
    pub exit_code: Option<i64>,
    /// The attempt the run was (1-based) and how many the job gets.
    pub attempt: i64,
    pub max_attempts: i64,
    /// The pipeline's stage after the job's; None after the last.
    pub next_stage: Option<&'a str>,
    /// When the agent's usage limit resets (epoch ms), when the run was stopped by one.
    pub resets_at: Option<i64>,
    /// The next attempt can continue the run's session (`--resume`): the log gave a session id
    /// and the stage allows it. A turn limit is then worth another attempt, not a failure.
    pub resumable: bool,
}

/// The decision and everything it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub decision: Decision,
    /// When a requeued job is due.
    pub retry_at: Option<i64>,
    /// The attempt the claim took is given back (it did not count).
    pub refund_attempt: bool,
    /// The agent exited 0 with nothing to show: someone must hear of it now.
    pub silent_failure: bool,
    /// The job failed for good.
    pub failed_alert: bool,
    /// A usage comment for the task's issue (when the project has a forge and the task an issue).
    pub comment: bool,
    /// Hold the agent's auth gate.
    pub hold_gate: bool,
    /// Hold the agent profile on the run's host until its settings change: it refused how orch
    /// called it.
    pub hold_invocation: bool,
    /// Hold the project on the run's host: its workdir is missing there.
    pub hold_project: bool,
    /// Hold the agent on the run's host until this time (epoch ms): its usage limit resets then.
    pub hold_usage: Option<i64>,
    pub breaker: Event,
}

/// Decide what a run's outcome means for its job. Pure: `jitter` (0 ≤ jitter < 1) and `now` are
/// inputs.
pub fn decide(facts: &Facts, retry: &Retry, jitter: f64, now: i64) -> Plan {
    let judged = facts.judged;
    let mut plan = Plan {
        decision: Decision::Failed,
        retry_at: None,
        refund_attempt: false,
        silent_failure: false,
        failed_alert: false,
        comment: false,
        hold_gate: false,
        hold_invocation: false,
        hold_project: false,
        hold_usage: None,
        breaker: judged.breaker_event(),
    };
    if judged == Judged::LaunchError(LaunchKind::Project) {
        // Not the job's fault: it waits in the queue, its attempt given back, while claims on
        // that host skip the project.
        plan.decision = Decision::Requeued;
        plan.retry_at = Some(now);
        plan.refund_attempt = true;
        plan.hold_project = true;
        return plan;
    }
    match judged.kind() {
        Kind::Ok => {
            plan.decision = match facts.next_stage {
                Some(_) => Decision::Advanced,
                None => Decision::Completed,
            };
            plan.comment = true;
        }
        Kind::Gate => {
            // Nothing another attempt can change: the job waits, its attempt given back, for
            // the agent's login or the refused setting to be fixed.
            plan.decision = Decision::Gated;
            plan.retry_at = Some(now);
            plan.refund_attempt = true;
            if judged == Judged::Log(Class::InvocationError) {
                plan.hold_invocation = true;
            } else {
                plan.hold_gate = true;
            }
        }
        Kind::Hold => {
            // The account may work again when the limit resets: the job waits for then (plus a
            // little, so the jobs it stopped do not all come back at once), its attempt given
            // back, and the agent is held on the run's host until then.
            // A reset time in the past means now; one further off than any limit lasts is a
            // clock or a report gone wrong, and is not waited for.
            let resets_at = facts
                .resets_at
                .unwrap_or(now)
                .clamp(now, now.saturating_add(MAX_USAGE_HOLD_MS));
            let spread = (USAGE_SPREAD_MS as f64 * jitter.clamp(0.0, 1.0)) as i64;
            plan.decision = Decision::Requeued;
            plan.retry_at = Some(resets_at.saturating_add(spread));
            plan.refund_attempt = true;
            plan.hold_usage = Some(resets_at);
        }
        Kind::Permanent if judged == Judged::Log(Class::MaxTurns) && facts.resumable => {
            requeue_or_fail(&mut plan, facts, retry, jitter, now);
        }
        Kind::Permanent => plan.failed_alert = true,
        Kind::Transient => {
            plan.silent_failure = matches!(judged, Judged::Log(Class::Empty | Class::NoResult))
                && facts.exit_code == Some(0);
            requeue_or_fail(&mut plan, facts, retry, jitter, now);
        }
    }
    plan
}

/// The classes of a run cut short with its work unfinished, whose session the next attempt
/// continues (`--resume`) rather than starting over: orch's timeout or idle timeout, the agent's
/// turn limit, a usage limit, an interruption, and the rescues of a run whose orch went away.
pub const RESUMES_AFTER: &[&str] = &[
    "timeout",
    "stalled",
    "max_turns",
    "usage_limit",
    "interrupted",
    "lease_expired",
    "orch_gone",
    "orch_stopped",
];

/// Whether a run judged `class` is continued by the next attempt (see `RESUMES_AFTER`).
pub fn resumes_after(class: &str) -> bool {
    RESUMES_AFTER.contains(&class)
}

/// The longest a usage limit holds an agent: a week's limit, and a day to spare.
pub const MAX_USAGE_HOLD_MS: i64 = 8 * 24 * 3_600_000;

/// Jobs stopped by one usage limit come back spread over this long after it resets.
pub const USAGE_SPREAD_MS: i64 = 60_000;

/// Another attempt after a backoff while attempts remain, else failed for good.
fn requeue_or_fail(plan: &mut Plan, facts: &Facts, retry: &Retry, jitter: f64, now: i64) {
    if facts.attempt < facts.max_attempts {
        plan.decision = Decision::Requeued;
        let delay = retry_delay_ms(facts.judged, facts.attempt, retry, jitter);
        plan.retry_at = Some(now.saturating_add(delay));
    } else {
        plan.failed_alert = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: Retry = Retry {
        base_ms: 60_000,
        max_ms: 3_600_000,
        rate_limit_min_ms: 900_000,
    };
    const NOW: i64 = 1_000_000;

    fn facts(judged: Judged, exit_code: Option<i64>, attempt: i64) -> Facts<'static> {
        Facts {
            judged,
            exit_code,
            attempt,
            max_attempts: 3,
            next_stage: Some("architect"),
            resets_at: None,
            resumable: false,
        }
    }

    fn plan(judged: Judged, exit_code: Option<i64>, attempt: i64) -> Plan {
        decide(&facts(judged, exit_code, attempt), &RETRY, 0.0, NOW)
    }

    #[test]
    fn ok_advances_or_completes_and_comments() {
        let p = plan(Judged::Log(Class::Ok), Some(0), 1);
        assert_eq!(p.decision, Decision::Advanced);
        assert!(p.comment && !p.failed_alert && !p.silent_failure && !p.hold_gate);
        assert_eq!((p.retry_at, p.breaker), (None, Event::Success));
        let last = Facts {
            next_stage: None,
            ..facts(Judged::Log(Class::Ok), Some(0), 3)
        };
        let p = decide(&last, &RETRY, 0.5, NOW);
        assert_eq!(p.decision, Decision::Completed);
        assert!(p.comment);
    }

    #[test]
    fn every_transient_class_requeues_then_fails_at_the_last_attempt() {
        let transient = [
            Judged::Log(Class::Empty),
            Judged::Log(Class::NoResult),
            Judged::Log(Class::RateLimit),
            Judged::Log(Class::AgentError),
            Judged::Log(Class::Timeout),
            Judged::Log(Class::ExitMismatch),
            Judged::LaunchError(LaunchKind::Agent),
            Judged::Interrupted,
        ];
        for judged in transient {
            for attempt in 1..=2 {
                let p = plan(judged, Some(1), attempt);
                assert_eq!(p.decision, Decision::Requeued, "{judged:?} {attempt}");
                assert!(p.retry_at.unwrap() > NOW, "{judged:?}");
                assert!(!p.failed_alert && !p.comment && !p.refund_attempt);
            }
            let p = plan(judged, Some(1), 3);
            assert_eq!(
                (p.decision, p.retry_at),
                (Decision::Failed, None),
                "{judged:?}"
            );
            assert!(p.failed_alert);
            // Beyond the last (max_attempts lowered since): failed too.
            assert_eq!(plan(judged, Some(1), 7).decision, Decision::Failed);
            let event = if judged == Judged::Interrupted {
                Event::Neutral
            } else {
                Event::Failure
            };
            assert_eq!(p.breaker, event, "{judged:?}");
        }
    }

    #[test]
    fn empty_or_no_result_with_exit_0_is_a_silent_failure() {
        for class in [Class::Empty, Class::NoResult] {
            for attempt in [1, 3] {
                assert!(plan(Judged::Log(class), Some(0), attempt).silent_failure);
            }
            assert!(!plan(Judged::Log(class), Some(1), 1).silent_failure);
            assert!(!plan(Judged::Log(class), None, 1).silent_failure);
        }
        assert!(!plan(Judged::Log(Class::AgentError), Some(0), 1).silent_failure);
        assert!(!plan(Judged::Log(Class::Timeout), Some(0), 1).silent_failure);
    }

    #[test]
    fn permanent_classes_fail_at_once_without_counting() {
        for class in [Class::MaxTurns, Class::MaxBudget] {
            for attempt in 1..=3 {
                let p = plan(Judged::Log(class), Some(1), attempt);
                assert_eq!(p.decision, Decision::Failed);
                assert!(p.failed_alert && !p.silent_failure);
                assert_eq!(p.breaker, Event::Neutral);
            }
        }
    }

    #[test]
    fn a_launch_failure_is_judged_by_whose_it_is() {
        let agent = plan(Judged::LaunchError(LaunchKind::Agent), None, 1);
        assert_eq!(
            (agent.decision, agent.breaker),
            (Decision::Requeued, Event::Failure)
        );
        assert!(!agent.refund_attempt && !agent.hold_project);
        for attempt in [1, 3] {
            let task = plan(Judged::LaunchError(LaunchKind::Task), None, attempt);
            assert_eq!(
                (task.decision, task.breaker),
                (Decision::Failed, Event::Neutral)
            );
            assert!(task.failed_alert);
            let project = plan(Judged::LaunchError(LaunchKind::Project), None, attempt);
            assert_eq!(
                (project.decision, project.breaker, project.retry_at),
                (Decision::Requeued, Event::Neutral, Some(NOW))
            );
            assert!(project.refund_attempt && project.hold_project && !project.failed_alert);
        }
        for kind in [LaunchKind::Agent, LaunchKind::Task, LaunchKind::Project] {
            assert_eq!(LaunchKind::from_name(Some(kind.as_str())), kind);
        }
        assert_eq!(LaunchKind::from_name(None), LaunchKind::Agent);
    }

    #[test]
    fn the_longest_backoff_is_the_cap_or_a_jittered_rate_limit() {
        assert_eq!(RETRY.longest_ms(), 3_600_000);
        let slow = Retry {
            rate_limit_min_ms: 3_600_000,
            ..RETRY
        };
        assert_eq!(slow.longest_ms(), 3_960_000);
        let rl = Judged::Log(Class::RateLimit);
        assert!(retry_delay_ms(rl, 1, &slow, 0.999) <= slow.longest_ms());
    }

    #[test]
    fn auth_is_gated_and_gives_the_attempt_back() {
        for attempt in 1..=3 {
            let p = plan(Judged::Log(Class::Auth), Some(1), attempt);
            assert_eq!(p.decision, Decision::Gated);
            assert!(p.refund_attempt && p.hold_gate && !p.failed_alert);
            assert!(!p.hold_invocation);
            assert_eq!((p.retry_at, p.breaker), (Some(NOW), Event::Neutral));
        }
    }

    #[test]
    fn an_invocation_error_holds_the_profile_not_the_auth_gate() {
        for attempt in 1..=3 {
            let p = plan(Judged::Log(Class::InvocationError), Some(1), attempt);
            assert_eq!(p.decision, Decision::Gated);
            assert!(p.refund_attempt && p.hold_invocation && !p.hold_gate && !p.failed_alert);
            assert_eq!((p.retry_at, p.breaker), (Some(NOW), Event::Neutral));
        }
    }

    #[test]
    fn every_class_has_a_decision_and_an_exit_status() {
        for (class, _, _) in crate::domain::verdict::CLASSES {
            let p = plan(Judged::Log(*class), Some(0), 1);
            let status = p.decision.exit_status();
            assert!([0, 20, 21, 22].contains(&status), "{class:?}");
            assert_eq!(status, class.kind().exit_status(), "{class:?}");
        }
        for d in DECISIONS {
            assert_eq!(Decision::from_name(d.as_str()), Some(d));
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_down_by_a_quarter_at_most() {
        let agent = Judged::Log(Class::AgentError);
        let at = |attempt, jitter| retry_delay_ms(agent, attempt, &RETRY, jitter);
        assert_eq!(
            (1..=8).map(|a| at(a, 0.0) / 1000).collect::<Vec<_>>(),
            [60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(at(1, 1.0), 45_000);
        assert_eq!(at(1, 0.5), 52_500);
        for jitter in [0.0, 0.1, 0.37, 0.99] {
            let d = at(3, jitter);
            assert!((180_000..=240_000).contains(&d), "{d}");
        }
        assert_eq!(at(i64::MAX, 0.0), 3_600_000);
        assert_eq!(at(0, 0.0), 60_000);
        assert_eq!(at(1, f64::NAN), 60_000);
        let zero = Retry {
            base_ms: 0,
            ..RETRY
        };
        assert_eq!(retry_delay_ms(agent, 5, &zero, 0.7), 0);
    }

    #[test]
    fn rate_limits_wait_at_least_their_floor() {
        let rl = Judged::Log(Class::RateLimit);
        assert_eq!(retry_delay_ms(rl, 1, &RETRY, 0.0), 900_000);
        assert_eq!(retry_delay_ms(rl, 1, &RETRY, 0.5), 945_000);
        // Past the floor the exponential wins.
        assert_eq!(retry_delay_ms(rl, 6, &RETRY, 0.0), 1_920_000);
        let p = plan(rl, Some(1), 1);
        assert_eq!(p.retry_at, Some(NOW + 900_000));
        let no_floor = Retry {
            rate_limit_min_ms: 0,
            base_ms: 0,
            ..RETRY
        };
        assert_eq!(retry_delay_ms(rl, 1, &no_floor, 0.9), 0);
    }
}
