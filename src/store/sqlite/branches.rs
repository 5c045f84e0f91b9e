//! A task's branch, worktree and pull request, kept on its row of `tasks` (migration 0008).

use crate::store::sql::{params, Db, OptionalExtension, Row};
use anyhow::{Context, Result};

use super::outbox;
use crate::domain::states::{MessageKind, OutboxState, PrState};
use crate::store::{
    BranchClaim, BranchClaimed, BranchRecorded, BranchUpdate, Message, PullRequestFacts,
    PullRequestSettled, PushOutcome, StageRun, Task, WorktreeChange, WorktreeRecord, WorktreeUsage,
};

/// Every column of a task, named as `Task` names it.
pub(super) const TASK_SELECT: &str = "SELECT id, project, key, title, issue, state, created_at, \
     updated_at, branch, base_branch, base_sha, remote_url, worktree, worktree_host, \
     worktree_bytes, head_sha, pushed_sha, pushed_at, push_error, pr_number, pr_url, pr_status, \
     pr_synced_at, issue_label FROM tasks";

pub(super) fn task_from_row(row: &Row) -> crate::store::sql::Result<Task> {
    Ok(Task {
        task_id: row.get("id")?,
        project: row.get("project")?,
        key: row.get("key")?,
        title: row.get("title")?,
        issue: row.get("issue")?,
        state: row.get("state")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        branch: row.get("branch")?,
        base_branch: row.get("base_branch")?,
        base_sha: row.get("base_sha")?,
        remote_url: row.get("remote_url")?,
        worktree: row.get("worktree")?,
        worktree_host: row.get("worktree_host")?,
        worktree_bytes: row.get("worktree_bytes")?,
        head_sha: row.get("head_sha")?,
        pushed_sha: row.get("pushed_sha")?,
        pushed_at: row.get("pushed_at")?,
        push_error: row.get("push_error")?,
        pr_number: row.get("pr_number")?,
        pr_url: row.get("pr_url")?,
        pr_state: row.get("pr_status")?,
        pr_synced_at: row.get("pr_synced_at")?,
        issue_label: row.get("issue_label")?,
    })
}

/// Tasks matching `filter` (SQL after `FROM tasks`) with `params`.
pub(super) fn tasks_where(
    conn: &Db,
    filter: &str,
    params: impl crate::store::sql::Params,
) -> Result<Vec<Task>> {
    let mut stmt = conn.prepare_cached(&format!("{TASK_SELECT} {filter}"))?;
    let rows = stmt.query_map(params, task_from_row)?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn task(conn: &Db, task_id: i64) -> Result<Option<Task>> {
    Ok(conn
        .prepare_cached(&format!("{TASK_SELECT} WHERE id = ?1"))?
        .query_row([task_id], task_from_row)
        .optional()?)
}

fn existing(conn: &Db, task_id: i64) -> Result<Task> {
    task(conn, task_id)?.with_context(|| format!("no task {task_id}"))
}

pub(super) fn claim_branch(tx: &Db, claim: &BranchClaim) -> Result<BranchClaimed> {
    let current = existing(tx, claim.task_id)?;
    if current.branch.is_some() {
        return Ok(BranchClaimed::Task(Box::new(current)));
    }
    let holder: Option<String> = tx
        .prepare_cached("SELECT key FROM tasks WHERE project = ?1 AND branch = ?2 AND id <> ?3")?
        .query_row(
            params![current.project, claim.branch, claim.task_id],
            |row| row.get("key"),
        )
        .optional()?;
    if let Some(by_task) = holder {
        return Ok(BranchClaimed::Taken { by_task });
    }
    tx.prepare_cached(
        "UPDATE tasks SET branch = ?2, base_branch = ?3, remote_url = ?4, updated_at = ?5
         WHERE id = ?1 AND branch IS NULL",
    )?
    .execute(params![
        claim.task_id,
        claim.branch,
        claim.base_branch,
        claim.remote_url,
        claim.now
    ])?;
    Ok(BranchClaimed::Task(Box::new(existing(tx, claim.task_id)?)))
}

pub(super) fn record_worktree(tx: &Db, record: &WorktreeRecord) -> Result<()> {
    tx.prepare_cached(
        "UPDATE tasks SET worktree = ?2, worktree_host = ?3, base_sha = coalesce(base_sha, ?4),
                worktree_bytes = NULL, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![
        record.task_id,
        record.path,
        record.host,
        record.base_sha,
        record.now
    ])?;
    Ok(())
}

pub(super) fn record_branch(tx: &Db, update: &BranchUpdate) -> Result<BranchRecorded> {
    let now = update.now;
    match &update.push {
        Some(PushOutcome::Pushed { sha }) => {
            tx.prepare_cached(
                "UPDATE tasks SET pushed_sha = ?2, pushed_at = ?3, push_error = NULL,
                        updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![update.task_id, sha, now])?;
            let run_id = pushed_run(tx, update)?;
            tx.prepare_cached(
                "UPDATE agent_runs SET pushed_sha = ?2, push_error = NULL WHERE id = ?1",
            )?
            .execute(params![run_id, sha])?;
        }
        Some(PushOutcome::Failed { error }) => {
            tx.prepare_cached("UPDATE tasks SET push_error = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![update.task_id, error, now])?;
            let run_id = pushed_run(tx, update)?;
            tx.prepare_cached("UPDATE agent_runs SET push_error = ?2 WHERE id = ?1")?
                .execute(params![run_id, error])?;
        }
        None => {}
    }
    match update.worktree {
        WorktreeChange::Unchanged => {}
        WorktreeChange::Measured(bytes) => {
            tx.prepare_cached("UPDATE tasks SET worktree_bytes = ?2 WHERE id = ?1")?
                .execute(params![update.task_id, bytes])?;
        }
        WorktreeChange::Removed => {
            tx.prepare_cached(
                "UPDATE tasks SET worktree = NULL, worktree_bytes = NULL, updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![update.task_id, now])?;
        }
    }
    let mut recorded = BranchRecorded::default();
    if let Some(pr) = &update.pull_request {
        let task = existing(tx, update.task_id)?;
        let waiting: bool = tx
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE kind = '{kind}' AND project = ?1
                                AND task = ?2 AND state = ?3)",
                kind = MessageKind::PullRequest
            ))?
            .query_row(
                params![task.project, task.key, OutboxState::Pending],
                |row| row.get(0),
            )?;
        if task.pushed_sha.is_some() && !waiting {
            recorded.pull_request_queued =
                Some(outbox::queue(tx, &Message::PullRequest(pr.clone()), now)?);
        }
    }
    if let Some(alert) = &update.alert {
        outbox::queue(tx, &Message::Alert(alert.clone()), now)?;
    }
    Ok(recorded)
}

/// The run a push is recorded on: the update's, else the task's last ok run (whose finalize
/// moved the branch).
fn pushed_run(tx: &Db, update: &BranchUpdate) -> Result<Option<i64>> {
    if update.run_id.is_some() {
        return Ok(update.run_id);
    }
    Ok(tx
        .prepare_cached(
            "SELECT r.id FROM agent_runs r JOIN jobs j ON j.id = r.job_id
             WHERE j.task_id = ?1 AND r.result_ok = 1 AND r.finalized_at IS NOT NULL
             ORDER BY r.id DESC LIMIT 1",
        )?
        .query_row([update.task_id], |row| row.get(0))
        .optional()?)
}

pub(super) fn unpushed(conn: &Db, host: &str, limit: i64) -> Result<Vec<Task>> {
    tasks_where(
        conn,
        "WHERE worktree_host = ?1 AND head_sha IS NOT pushed_sha AND head_sha IS NOT NULL
           AND remote_url IS NOT NULL AND branch IS NOT NULL
         ORDER BY updated_at, id LIMIT ?2",
        params![host, limit],
    )
}

pub(super) fn worktrees(conn: &Db, host: &str) -> Result<Vec<Task>> {
    tasks_where(
        conn,
        "WHERE worktree_host = ?1 AND worktree IS NOT NULL ORDER BY project, id",
        [host],
    )
}

pub(super) fn usage(conn: &Db, host: &str) -> Result<Vec<WorktreeUsage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT project, count(*) AS n, total(worktree_bytes) AS bytes FROM tasks
         WHERE worktree_host = ?1 AND worktree IS NOT NULL GROUP BY project ORDER BY project",
    )?;
    let rows = stmt.query_map([host], |row| {
        Ok(WorktreeUsage {
            project: row.get("project")?,
            worktrees: row.get("n")?,
            bytes: row.get::<_, f64>("bytes")? as i64,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn facts(conn: &Db, task_id: i64) -> Result<Option<PullRequestFacts>> {
    let Some(task) = task(conn, task_id)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT r.id AS run_id, j.stage AS stage, r.attempt AS attempt, r.class AS class,
                r.decision AS decision, r.usage_json AS usage_json, r.commit_sha AS commit_sha
         FROM agent_runs r JOIN jobs j ON j.id = r.job_id
         WHERE j.task_id = ?1 AND r.finalized_at IS NOT NULL ORDER BY r.id",
    )?;
    let runs = stmt
        .query_map([task_id], |row| {
            Ok(StageRun {
                run_id: row.get("run_id")?,
                stage: row.get("stage")?,
                attempt: row.get("attempt")?,
                class: row.get("class")?,
                decision: row.get("decision")?,
                usage_json: row.get("usage_json")?,
                commit_sha: row.get("commit_sha")?,
            })
        })?
        .collect::<crate::store::sql::Result<_>>()?;
    Ok(Some(PullRequestFacts { task, runs }))
}

pub(super) fn settle_pull_request(
    tx: &Db,
    message_id: i64,
    claimer: &str,
    settled: &PullRequestSettled,
    now: i64,
) -> Result<Option<OutboxState>> {
    let state = outbox::finish(tx, message_id, claimer, &crate::store::Finish::Sent, now)?;
    // The first number recorded stays: a task has one pull request, ever.
    tx.prepare_cached(
        "UPDATE tasks SET pr_number = coalesce(pr_number, ?2), pr_url = ?3, pr_status = ?4,
                pr_synced_at = ?5, updated_at = ?5
         WHERE id = ?1 AND (pr_number IS NULL OR pr_number = ?2)",
    )?
    .execute(params![
        settled.task_id,
        settled.number,
        settled.url,
        settled.state,
        now
    ])?;
    Ok(state)
}

/// Whether a task of `project` would be a second spelling of another's key, or a task that must
/// not be queued again: for `enqueue`.
pub(super) fn open_pull_request(task: &Task) -> Option<(i64, String)> {
    match (task.pr_state, task.pr_number) {
        (Some(PrState::Open), Some(number)) => {
            Some((number, task.pr_url.clone().unwrap_or_default()))
        }
        _ => None,
    }
}
