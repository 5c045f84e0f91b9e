//! A task's pull request: its title and body, and delivering the outbox message that opens (or
//! adopts) it and brings its body up to date.
//!
//! The body is the line that links the task's issue (`pr_issue_ref`, `Closes #N`), then a table
//! of the task's finalized runs — stage, attempt, verdict, cost, tokens, turns, commit — with a
//! total, between two hidden markers. orch edits the pull request's body as stages finish rather
//! than adding a comment per stage: the reviewer sees one table, always current, and usage
//! comments (`usage_comments`) say the rest. On a pull request orch adopted, only the part
//! between the markers is orch's: what a person wrote around it stays.
//!
//! One pull request per task, ever: a task with a recorded pull request only looks at it (and
//! edits it while it is open); before opening one, orch looks for an open pull request from the
//! task's branch and adopts it, and a create the forge refuses because one exists (a race, a
//! crash between creating and recording) adopts the one that does.

use serde_json::Value;

use super::comment::{cell, code, thousands};
use super::Outcome;
use crate::config::{Config, Project};
use crate::domain::states::PrState;
use crate::forge::{self, Forge, NewPull};
use crate::http::Http;
use crate::store::{NewPullRequest, PullRequestFacts, PullRequestSettled, Store, Task};

/// Where orch's part of a body starts and ends.
const START: &str = "<!-- orch:stages -->";
const END: &str = "<!-- /orch:stages -->";
/// Longest title sent (forges cap theirs near 256).
const TITLE_MAX_CHARS: usize = 200;

/// The pull request's title: `pr_title` with `{task}`, `{title}`, `{project}` and `{issue}`.
pub fn title(project: &Project, task: &Task) -> String {
    let issue = task.issue.map(|n| n.to_string()).unwrap_or_default();
    let vars = [
        ("task", task.key.as_str()),
        ("title", task.title.as_str()),
        ("project", project.name.as_str()),
        ("issue", issue.as_str()),
    ];
    let filled = crate::domain::prompt::substitute(&project.pr_title, &vars);
    let one_line = filled.split_whitespace().collect::<Vec<_>>().join(" ");
    let title = crate::output::clip(one_line.trim_end_matches(": ").trim(), TITLE_MAX_CHARS);
    if title.is_empty() {
        task.key.clone()
    } else {
        title
    }
}

/// orch's part of the body: the issue line, then the table of runs, between the markers.
pub fn body(project: &Project, facts: &PullRequestFacts) -> String {
    let task = &facts.task;
    let mut out = String::new();
    if let Some(issue) = task
        .issue
        .filter(|_| !project.pr_issue_ref.trim().is_empty())
    {
        let line = crate::domain::prompt::substitute(
            &project.pr_issue_ref,
            &[("issue", issue.to_string().as_str())],
        );
        out.push_str(line.trim());
        out.push_str("\n\n");
    }
    out.push_str(START);
    out.push('\n');
    out.push_str(&format!(
        "**orch**: task {} on branch {}\n\n",
        code(&task.key),
        code(task.branch.as_deref().unwrap_or_default())
    ));
    out.push_str(
        "| Stage | Attempt | Verdict | Cost | Tokens in | Tokens out | Turns | Commit |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let (mut cost, mut tokens_in, mut tokens_out, mut turns) = (0.0, 0u64, 0u64, 0u64);
    let missing = || "—".to_string();
    for run in &facts.runs {
        let usage: Value = run
            .usage_json
            .as_deref()
            .and_then(|u| serde_json::from_str(u).ok())
            .unwrap_or(Value::Null);
        let run_cost = usage["cost_usd"]
            .as_f64()
            .filter(|usd| usd.is_finite() && (0.0..=100_000.0).contains(usd));
        let count = |key: &str| usage[key].as_u64();
        cost += run_cost.unwrap_or(0.0);
        tokens_in += count("input_tokens").unwrap_or(0);
        tokens_out += count("output_tokens").unwrap_or(0);
        turns += count("turns").unwrap_or(0);
        let number = |n: Option<u64>| n.map_or_else(missing, thousands);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&run.stage),
            run.attempt,
            cell(run.class.as_deref().unwrap_or("—")),
            run_cost.map_or_else(missing, |usd| format!("${usd:.4}")),
            number(count("input_tokens")),
            number(count("output_tokens")),
            number(count("turns")),
            run.commit_sha
                .as_deref()
                .map_or_else(missing, |sha| code(sha.get(..10).unwrap_or(sha))),
        ));
    }
    out.push_str(&format!(
        "| **total** | | | ${cost:.4} | {} | {} | {} | |\n",
        thousands(tokens_in),
        thousands(tokens_out),
        thousands(turns)
    ));
    out.push_str(END);
    out.push('\n');
    out
}

/// `existing` with orch's part replaced by `ours` (or `ours` added after it, for a pull request
/// a person opened).
pub fn merge_body(existing: &str, ours: &str) -> String {
    let ours_block = ours.find(START).map_or(ours, |at| &ours[at..]);
    match (existing.find(START), existing.find(END)) {
        (Some(start), Some(end)) if end > start => {
            let tail = &existing[end + END.len()..];
            format!("{}{}{}", &existing[..start], ours_block.trim_end(), tail)
        }
        _ if existing.trim().is_empty() => ours.to_string(),
        _ => format!("{}\n\n{ours_block}", existing.trim_end()),
    }
}

/// Deliver a pull-request message: open or adopt the task's pull request, make its body current.
/// Delivered carries what to record on the task.
pub fn deliver(
    config: &Config,
    store: &dyn Store,
    http: &Http,
    token: &str,
    message: &NewPullRequest,
) -> (Outcome, Option<PullRequestSettled>) {
    match sync(config, store, http, token, message) {
        Ok(settled) => (Outcome::Delivered, settled),
        Err(outcome) => (outcome, None),
    }
}

fn sync(
    config: &Config,
    store: &dyn Store,
    http: &Http,
    token: &str,
    message: &NewPullRequest,
) -> Result<Option<PullRequestSettled>, Outcome> {
    let undeliverable = |why: String| Outcome::Undeliverable(why);
    let project = config.projects.get(&message.project).ok_or_else(|| {
        undeliverable(format!(
            "project {:?} is not in the configuration",
            message.project
        ))
    })?;
    let spec = project.forge.as_ref().ok_or_else(|| {
        undeliverable(format!(
            "project {} has no forge ([projects.{}.forge])",
            project.name, project.name
        ))
    })?;
    let facts = store
        .pull_request_facts(message.task_id)
        .map_err(|err| Outcome::Failed(format!("reading task {}: {err:#}", message.task)))?
        .ok_or_else(|| undeliverable(format!("task {} is gone", message.task)))?;
    let task = &facts.task;
    let (Some(branch), Some(base)) = (task.branch.as_deref(), task.base_branch.as_deref()) else {
        return Err(undeliverable(format!("task {} has no branch", task.key)));
    };
    if task.pushed_sha.is_none() {
        return Err(Outcome::Failed(format!(
            "the branch {branch} of task {} is not pushed yet",
            task.key
        )));
    }
    let forge = forge::connect(spec, http, token);
    let ours = body(project, &facts);
    let pull = match task.pr_number {
        Some(number) => {
            let current = forge.pull(number).map_err(failed)?;
            match current.state {
                PrState::Open => refresh(&*forge, current, &ours)?,
                // Merged or closed: recorded as it is; a task never gets a second one.
                _ => current,
            }
        }
        None => match forge.find_open_pull(branch).map_err(failed)? {
            Some(found) => refresh(&*forge, found, &ours)?,
            None => {
                let new = NewPull {
                    title: &title(project, task),
                    body: &ours,
                    head: branch,
                    base,
                    draft: project.pr_draft,
                };
                match forge.create_pull(&new) {
                    Ok(pull) => pull,
                    // The forge has one from this branch already: that one is the task's.
                    Err(err) => match forge.find_open_pull(branch).map_err(failed)? {
                        Some(found) => refresh(&*forge, found, &ours)?,
                        None => return Err(failed(err)),
                    },
                }
            }
        },
    };
    Ok(Some(PullRequestSettled {
        task_id: task.task_id,
        number: pull.number,
        url: pull.url,
        state: pull.state,
    }))
}

/// Edit the pull request's body to hold `ours` when it does not already.
fn refresh(
    forge: &dyn Forge,
    pull: forge::PullRequest,
    ours: &str,
) -> Result<forge::PullRequest, Outcome> {
    let wanted = merge_body(&pull.body, ours);
    if wanted == pull.body {
        return Ok(pull);
    }
    let updated = forge
        .update_pull_body(pull.number, &wanted)
        .map_err(failed)?;
    // Some forges answer an edit with less than the whole pull request.
    Ok(forge::PullRequest {
        url: if updated.url.is_empty() {
            pull.url
        } else {
            updated.url
        },
        ..updated
    })
}

pub(super) fn failed(err: forge::Error) -> Outcome {
    super::forge_failed(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StageRun;

    fn project() -> Project {
        let config = crate::config::load_for_test(
            "[projects.web]\nworkdir = \"/srv/web\"\npr_title = \"[{project}] {task}: {title}\"\n",
            &[],
        )
        .unwrap();
        config.projects["web"].clone()
    }

    fn facts(issue: Option<i64>) -> PullRequestFacts {
        let task = Task {
            task_id: 1,
            project: "web".into(),
            key: "T-1".into(),
            title: "Fix | the `login`\npage".into(),
            issue,
            state: crate::domain::states::TaskState::Active,
            created_at: 0,
            updated_at: 0,
            branch: Some("feature/T-1-fix".into()),
            base_branch: None,
            base_sha: None,
            remote_url: None,
            worktree: None,
            worktree_host: None,
            worktree_bytes: None,
            head_sha: None,
            pushed_sha: None,
            pushed_at: None,
            push_error: None,
            pr_number: None,
            pr_url: None,
            pr_state: None,
            pr_synced_at: None,
            issue_label: None,
        };
        let run = |run_id, stage: &str, class: &str, cost: f64| StageRun {
            run_id,
            stage: stage.into(),
            attempt: 1,
            class: Some(class.into()),
            decision: None,
            usage_json: Some(format!(
                r#"{{"cost_usd":{cost},"input_tokens":1200,"output_tokens":30,"turns":2}}"#
            )),
            commit_sha: (class == "ok").then(|| "0123456789abcdef".into()),
        };
        PullRequestFacts {
            task,
            runs: vec![
                run(1, "analyst", "ok", 0.5),
                run(2, "developer", "timeout", -3.0),
            ],
        }
    }

    #[test]
    fn the_body_links_the_issue_and_tables_every_run_with_a_total() {
        let body = body(&project(), &facts(Some(7)));
        assert!(
            body.starts_with("Closes #7\n\n<!-- orch:stages -->"),
            "{body}"
        );
        for row in [
            "| analyst | 1 | ok | $0.5000 | 1,200 | 30 | 2 | `0123456789` |",
            "| developer | 1 | timeout | — | 1,200 | 30 | 2 | — |",
            "| **total** | | | $0.5000 | 2,400 | 60 | 4 | |",
        ] {
            assert!(body.contains(row), "{row} missing from:\n{body}");
        }
        assert!(body.trim_end().ends_with(END));
        assert!(!super::body(&project(), &facts(None)).contains("Closes"));
    }

    #[test]
    fn the_title_is_the_template_on_one_line() {
        let facts = facts(None);
        assert_eq!(
            title(&project(), &facts.task),
            "[web] T-1: Fix | the `login` page"
        );
    }

    #[test]
    fn orchs_part_of_a_body_is_replaced_and_the_rest_kept() {
        let ours = format!("Closes #7\n\n{START}\nnew table\n{END}\n");
        assert_eq!(merge_body("", &ours), ours);
        let person = "Fixes the health check.\n\nPlease review.";
        let merged = merge_body(person, &ours);
        assert!(merged.starts_with(person), "{merged}");
        assert!(
            merged.contains("new table") && !merged.contains("Closes #7"),
            "{merged}"
        );
        let old = format!("intro\n{START}\nold table\n{END}\noutro");
        let merged = merge_body(&old, &ours);
        assert_eq!(merged, format!("intro\n{START}\nnew table\n{END}\noutro"));
        // Idempotent: the same table again changes nothing.
        assert_eq!(merge_body(&merged, &ours), merged);
    }
}
