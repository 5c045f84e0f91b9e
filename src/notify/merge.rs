//! Delivering a merge message (`merge = "after_last_stage"`): once the task's pull request is
//! open, its branch pushed and CI green on its head (`domain::ci`, as the CI gate judges it,
//! without fixes), the pull request is merged the project's `merge_style` way and the task
//! completes; a conflict, a refusal, red CI or no verdict in time fails the task with an alert.
//! Until then the message waits, without counting attempts.

use super::Outcome;
use crate::config::Config;
use crate::domain::ci::{self, Step};
use crate::domain::states::TaskState;
use crate::forge::{self, Error};
use crate::http::Http;
use crate::store::{AlertKind, MergeSettled, NewAlert, NewMerge, Store};

/// How long a merge waits before it looks again (the pull request, the push, CI).
const LOOK_AGAIN_SECONDS: u64 = 30;

fn wait(why: &str) -> Outcome {
    Outcome::Wait {
        seconds: LOOK_AGAIN_SECONDS,
        why: why.to_string(),
    }
}

/// Try the merge; the settlement when the task's fate is decided.
pub fn deliver(
    config: &Config,
    store: &dyn Store,
    http: &Http,
    token: &str,
    merge: &NewMerge,
    queued_at: i64,
) -> (Outcome, Option<MergeSettled>) {
    let Some((project, spec)) = config
        .projects
        .get(&merge.project)
        .and_then(|p| p.forge.as_ref().map(|f| (p, f)))
    else {
        let why = format!(
            "project {:?} has no forge in the configuration",
            merge.project
        );
        return (Outcome::Undeliverable(why), None);
    };
    let task = match store.task(merge.task_id) {
        Ok(Some(task)) if task.state == TaskState::Active => task,
        // Pruned, cancelled or settled meanwhile: nothing to merge.
        Ok(_) => return (Outcome::Delivered, None),
        Err(err) => {
            return (
                Outcome::Failed(format!("reading task {}: {err:#}", merge.task)),
                None,
            )
        }
    };
    let Some(number) = task.pr_number else {
        return (wait("its pull request is not open yet"), None);
    };
    let Some(head) = task
        .head_sha
        .clone()
        .filter(|h| task.pushed_sha.as_ref() == Some(h))
    else {
        return (wait("its branch is not pushed yet"), None);
    };
    let forge = forge::connect(spec, http, token);
    let checks = match forge.commit_checks(&head) {
        Ok(checks) => checks,
        Err(err) => return (super::pull_request::failed(err), None),
    };
    let now = store.now().unwrap_or(queued_at);
    // The last stage's commit: red CI fails the task (no stage is left to fix it).
    let policy = ci::Policy {
        max_fixes: 0,
        ..config.ci_policy()
    };
    let fail = |reason: String| {
        let alert = crate::notify::alerts_switch(config).on.then(|| {
            Box::new(NewAlert {
                project: Some(merge.project.clone()),
                task: Some(merge.task.clone()),
                ..NewAlert::new(AlertKind::MergeFailed, &merge.project, &reason)
            })
        });
        MergeSettled {
            task_id: merge.task_id,
            merged: false,
            reason,
            alert,
        }
    };
    let short: String = head.chars().take(12).collect();
    match ci::step(
        &ci::verdict(&checks),
        now.saturating_sub(queued_at),
        0,
        &policy,
    ) {
        Step::Wait => (wait("CI has not finished on its head"), None),
        Step::Fix { failed, .. } => {
            let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
            let reason = format!(
                "pull request #{number} not merged: CI is red on {short} ({})",
                crate::output::clip(&names.join(", "), 200)
            );
            (Outcome::Delivered, Some(fail(reason)))
        }
        Step::Fail(why) => {
            let reason = format!("pull request #{number} not merged: {why}");
            (Outcome::Delivered, Some(fail(reason)))
        }
        Step::Pass(_) => match forge.merge_pull(number, project.merge_style) {
            Ok(()) => (
                Outcome::Delivered,
                Some(MergeSettled {
                    task_id: merge.task_id,
                    merged: true,
                    reason: format!(
                        "pull request #{number} merged ({})",
                        project.merge_style.as_str()
                    ),
                    alert: None,
                }),
            ),
            Err(Error::Refused(said)) => {
                let reason =
                    format!("pull request #{number} not merged: the forge refused: {said}");
                (Outcome::Delivered, Some(fail(reason)))
            }
            Err(err) => (super::pull_request::failed(err), None),
        },
    }
}
