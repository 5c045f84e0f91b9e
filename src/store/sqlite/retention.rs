//! Pruning finished tasks in batches, the trash of files they leave, the fleet's housekeeping
//! turns, and the database file's free pages.

use crate::store::sql::{params, Db, OptionalExtension};
use anyhow::Result;

use crate::domain::states::{JobState, OutboxState};
use crate::store::{
    OutboxSweep, PruneBatch, PrunedBatch, Storage, Swept, TaskCursor, TrashItem, TrashKind, Turn,
};

/// `'a', 'b', …`: a list of names written into a statement, so that the planner can match a
/// partial index whose condition lists the same names (tasks_finished, jobs_over_budget…).
fn names<S: std::fmt::Display>(states: &[S]) -> String {
    states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The batch's tasks: finished before the cutoff, after the cursor, oldest first, none with a
/// live job, a run that may still be writing its log, a pull-request or label message still to
/// deliver or a push still due (their delivery reads the task; a merge message's task is not
/// finished until it is settled). A pending comment does not hold its task:
/// it stays, and goes to the issue. Their ids as a JSON array, and the cursor of the last.
fn select_tasks(conn: &Db, batch: &PruneBatch) -> Result<(String, Vec<TaskCursor>)> {
    let after = batch.after.unwrap_or(TaskCursor {
        updated_at: i64::MIN,
        task_id: i64::MIN,
    });
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT t.id AS id, t.updated_at AS updated_at FROM tasks t
         WHERE t.state IN ({finished}) AND t.updated_at < ?1
           AND (t.updated_at, t.id) > (?2, ?3)
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.task_id = t.id AND j.state IN ({live}))
           AND NOT EXISTS (SELECT 1 FROM jobs j JOIN agent_runs r ON r.job_id = j.id
                           WHERE j.task_id = t.id AND r.ended_at IS NULL AND r.started_at >= ?5)
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'pull_request'
                           AND o.project = t.project AND o.task = t.key AND o.state IN (?6, ?7))
           AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'issue_label'
                           AND o.project = t.project AND o.task = t.key AND o.state IN (?6, ?7))
           AND t.head_sha IS t.pushed_sha
         ORDER BY t.updated_at, t.id LIMIT ?4",
        finished = names(batch.finished),
        live = names(JobState::LIVE)
    ))?;
    let tasks: Vec<TaskCursor> = stmt
        .query_map(
            params![
                batch.cutoffs.finished_before,
                after.updated_at,
                after.task_id,
                batch.limit,
                batch.cutoffs.open_runs_since,
                OutboxState::Pending,
                OutboxState::Sending
            ],
            |row| {
                Ok(TaskCursor {
                    updated_at: row.get("updated_at")?,
                    task_id: row.get("id")?,
                })
            },
        )?
        .collect::<crate::store::sql::Result<_>>()?;
    let ids: Vec<i64> = tasks.iter().map(|t| t.task_id).collect();
    Ok((serde_json::to_string(&ids)?, tasks))
}

/// Where the walk goes on after `tasks`: None when the batch was not full (nothing is left).
fn next(tasks: &[TaskCursor], limit: i64) -> Option<TaskCursor> {
    (tasks.len() as i64 >= limit).then(|| *tasks.last().expect("a full batch"))
}

/// The files the batch's rows name: each run's log (runs recorded without a host are this
/// host's), and the task's worktree where one is still recorded (a task's last stage removes
/// it; a crash may leave it), as `PROJECT/DIR` under the worktree directory of its host: the
/// recorded path's last component (`rtrim` of the path by its own characters other than `/`
/// leaves the parent, `replace` takes it off).
const FILES: &str = "
    SELECT coalesce(r.host, ?2) AS host, 'log' AS kind, r.log_path AS path
    FROM jobs j JOIN agent_runs r ON r.job_id = j.id
    WHERE j.task_id IN (SELECT value FROM json_each(?1)) AND r.log_path IS NOT NULL
    UNION
    SELECT coalesce(t.worktree_host, ?2) AS host, 'worktree' AS kind,
           t.project || '/' || replace(t.worktree, rtrim(t.worktree, replace(t.worktree, '/', '')), '') AS path
    FROM tasks t
    WHERE t.id IN (SELECT value FROM json_each(?1)) AND t.worktree IS NOT NULL";

/// The batch's jobs (`?1` holds the task ids).
const JOBS: &str = "SELECT id FROM jobs WHERE task_id IN (SELECT value FROM json_each(?1))";

/// The batch's runs (`?1` holds the task ids).
const RUNS: &str = "SELECT id FROM agent_runs WHERE job_id IN \
     (SELECT id FROM jobs WHERE task_id IN (SELECT value FROM json_each(?1)))";

/// The batch's delivered messages: sent, or folded into a message that was sent (`?2` sent,
/// `?3` folded). Each state test is written `+o.state` here and below, so that the planner walks
/// the batch's messages by job (outbox_job) and not every message ever sent by state.
fn delivered(conn: &Db, ids: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM outbox o WHERE o.job_id IN ({JOBS})
               AND (+o.state = ?2 OR (+o.state = ?3 AND EXISTS
                    (SELECT 1 FROM outbox p WHERE p.id = o.folded_into AND p.state = ?2)))"
        ))?
        .query_row(
            params![ids, OutboxState::Sent, OutboxState::Folded],
            |row| row.get(0),
        )?)
}

fn count(conn: &Db, sql: &str, ids: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([ids], |row| row.get(0))?)
}

fn trash_from_row(row: &crate::store::sql::Row) -> crate::store::sql::Result<TrashItem> {
    Ok(TrashItem {
        id: row.get("id")?,
        host: row.get("host")?,
        kind: row.get("kind")?,
        path: row.get("path")?,
    })
}

pub(super) fn preview(conn: &Db, batch: &PruneBatch) -> Result<PrunedBatch> {
    let (ids, tasks) = select_tasks(conn, batch)?;
    let files = conn
        .prepare_cached(&format!("SELECT 0 AS id, f.* FROM ({FILES}) AS f"))?
        .query_map(params![ids, batch.host], trash_from_row)?
        .collect::<crate::store::sql::Result<_>>()?;
    Ok(PrunedBatch {
        tasks: tasks.len() as i64,
        jobs: count(conn, &format!("SELECT count(*) FROM ({JOBS}) AS j"), &ids)?,
        history: count(
            conn,
            &format!("SELECT count(*) FROM job_history WHERE job_id IN ({JOBS})"),
            &ids,
        )?,
        runs: count(
            conn,
            &format!("SELECT count(*) FROM agent_runs WHERE job_id IN ({JOBS})"),
            &ids,
        )?,
        logs: count(
            conn,
            &format!("SELECT count(*) FROM run_logs WHERE run_id IN ({RUNS})"),
            &ids,
        )?,
        outbox: delivered(conn, &ids)?,
        files,
        next: next(&tasks, batch.limit),
    })
}

pub(super) fn prune(tx: &Db, batch: &PruneBatch) -> Result<PrunedBatch> {
    let (ids, tasks) = select_tasks(tx, batch)?;
    if tasks.is_empty() {
        return Ok(PrunedBatch::default());
    }
    let files = tx
        .prepare_cached(&format!(
            "INSERT INTO trash (host, kind, path, queued_at) SELECT host, kind, path, ?3 FROM ({FILES}) AS f
             RETURNING id, host, kind, path"
        ))?
        .query_map(params![ids, batch.host, batch.now], trash_from_row)?
        .collect::<crate::store::sql::Result<_>>()?;
    // One branch and one pull request per task, ever: the key stays taken.
    tx.prepare_cached(
        "INSERT INTO pruned_branches (project, key, branch, pr_number, pr_url, pruned_at)
         SELECT project, key, branch, pr_number, pr_url, ?2 FROM tasks
         WHERE id IN (SELECT value FROM json_each(?1)) AND branch IS NOT NULL
         ON CONFLICT (project, key) DO UPDATE SET branch = excluded.branch,
                pr_number = excluded.pr_number, pr_url = excluded.pr_url,
                pruned_at = excluded.pruned_at",
    )?
    .execute(params![ids, batch.now])?;
    let outbox = prune_delivered(tx, &ids)?;
    let delete = |sql: &str| -> Result<i64> { Ok(tx.prepare_cached(sql)?.execute([&ids])? as i64) };
    let history = delete(&format!("DELETE FROM job_history WHERE job_id IN ({JOBS})"))?;
    let logs = delete(&format!("DELETE FROM run_logs WHERE run_id IN ({RUNS})"))?;
    let runs = delete(&format!("DELETE FROM agent_runs WHERE job_id IN ({JOBS})"))?;
    let jobs = delete("DELETE FROM jobs WHERE task_id IN (SELECT value FROM json_each(?1))")?;
    let tasks_removed = delete("DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?1))")?;
    Ok(PrunedBatch {
        tasks: tasks_removed,
        jobs,
        history,
        runs,
        logs,
        outbox,
        files,
        next: next(&tasks, batch.limit),
    })
}

/// Delete the batch's delivered messages. A message others were folded into goes with the last
/// of them: the batch's folded messages first, then every sent message that nothing is folded
/// into any more and whose job is the batch's or gone (the ones the folded messages pointed to
/// included, whoever's they were).
fn prune_delivered(tx: &Db, ids: &str) -> Result<i64> {
    let parents: String = tx
        .prepare_cached(&format!(
            "SELECT json_group_array(DISTINCT folded_into) FROM outbox
             WHERE job_id IN ({JOBS}) AND +state = ?2 AND folded_into IS NOT NULL"
        ))?
        .query_row(params![ids, OutboxState::Folded], |row| row.get(0))?;
    let folded = tx
        .prepare_cached(&format!(
            "DELETE FROM outbox WHERE id IN (
                 SELECT o.id FROM outbox o WHERE o.job_id IN ({JOBS}) AND +o.state = ?3
                   AND EXISTS (SELECT 1 FROM outbox p WHERE p.id = o.folded_into AND p.state = ?2))"
        ))?
        .execute(params![ids, OutboxState::Sent, OutboxState::Folded])?;
    let sent = tx
        .prepare_cached(&format!(
            "DELETE FROM outbox WHERE id IN (
                 SELECT o.id FROM outbox o
                 WHERE o.id IN (SELECT id FROM outbox WHERE job_id IN ({JOBS})
                                UNION SELECT CAST(value AS INTEGER) FROM json_each(?3))
                   AND +o.state = ?2
                   AND (o.job_id IS NULL OR o.job_id IN ({JOBS})
                        OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = o.job_id))
                   AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.folded_into = o.id))"
        ))?
        .execute(params![ids, OutboxState::Sent, parents])?;
    Ok((folded + sent) as i64)
}

/// One step of the sweep over delivered messages older than `sweep.before` whose job is gone or
/// that have none (alerts about an agent or a project; a message delivered after its task was
/// pruned). Folded ones are swept before sent ones, which go once nothing is folded into them.
/// Walks outbox_state from the cursor.
pub(super) fn sweep_outbox(tx: &Db, sweep: &OutboxSweep) -> Result<Swept> {
    let (at, id) = sweep.after.unwrap_or((i64::MIN, i64::MIN));
    let found: Vec<(i64, i64)> = tx
        .prepare_cached(
            "SELECT o.id AS id, o.next_attempt_at AS at FROM outbox o
             WHERE o.state = ?1 AND o.next_attempt_at < ?2 AND (o.next_attempt_at, o.id) > (?3, ?4)
               AND coalesce(o.sent_at, 0) < ?2
               AND (o.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = o.job_id))
               AND (o.state = ?6 OR EXISTS
                    (SELECT 1 FROM outbox p WHERE p.id = o.folded_into AND p.state = ?6))
               AND NOT EXISTS (SELECT 1 FROM outbox f WHERE f.folded_into = o.id)
             ORDER BY o.next_attempt_at, o.id LIMIT ?5",
        )?
        .query_map(
            params![
                sweep.state,
                sweep.before,
                at,
                id,
                sweep.limit,
                OutboxState::Sent
            ],
            |row| Ok((row.get("at")?, row.get("id")?)),
        )?
        .collect::<crate::store::sql::Result<_>>()?;
    if !sweep.dry_run && !found.is_empty() {
        let ids: Vec<i64> = found.iter().map(|(_, id)| *id).collect();
        tx.prepare_cached("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))")?
            .execute([serde_json::to_string(&ids)?])?;
    }
    Ok(Swept {
        messages: found.len() as i64,
        next: (found.len() as i64 >= sweep.limit).then(|| *found.last().expect("a full step")),
    })
}

pub(super) fn trash_in_use(conn: &Db, item: &TrashItem) -> Result<bool> {
    let found = match item.kind {
        TrashKind::Log => {
            let name = std::path::Path::new(&item.path)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            let Some((job, run)) = crate::domain::retention::run_log_ids(name) else {
                return Ok(false);
            };
            conn.prepare_cached(
                "SELECT 1 FROM agent_runs WHERE id = ?1 AND job_id = ?2 AND log_path = ?3",
            )?
            .query_row(params![run, job, item.path], |_| Ok(()))
            .optional()?
        }
        TrashKind::Worktree => {
            let Some((project, dir)) = item.path.split_once('/') else {
                return Ok(false);
            };
            // The recorded path's last component, as FILES takes it.
            conn.prepare_cached(
                "SELECT 1 FROM tasks WHERE worktree_host = ?1 AND worktree IS NOT NULL
                   AND project = ?2
                   AND replace(worktree, rtrim(worktree, replace(worktree, '/', '')), '') = ?3",
            )?
            .query_row(params![item.host, project, dir], |_| Ok(()))
            .optional()?
        }
    };
    Ok(found.is_some())
}

pub(super) fn trash(conn: &Db, host: &str, limit: i64) -> Result<Vec<TrashItem>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, host, kind, path FROM trash WHERE host = ?1 ORDER BY id LIMIT ?2",
        )?
        .query_map(params![host, limit], trash_from_row)?
        .collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn empty_trash(tx: &Db, ids: &[i64]) -> Result<()> {
    tx.prepare_cached("DELETE FROM trash WHERE id IN (SELECT value FROM json_each(?1))")?
        .execute([serde_json::to_string(ids)?])?;
    Ok(())
}

pub(super) fn storage(conn: &Db) -> Result<Storage> {
    if conn.is_postgres() {
        // The server keeps its own free space (autovacuum); the size is the database's.
        return Ok(conn.query_row(
            "SELECT current_setting('block_size')::bigint AS page_size,
                    pg_database_size(current_database()) / current_setting('block_size')::bigint AS pages",
            (),
            |row| {
                Ok(Storage {
                    page_size: row.get("page_size")?,
                    pages: row.get("pages")?,
                    free_pages: 0,
                    incremental: false,
                })
            },
        )?);
    }
    let pragma = |name: &str| -> Result<i64> {
        Ok(conn.query_row(&format!("PRAGMA {name}"), (), |row| row.get(0))?)
    };
    Ok(Storage {
        page_size: pragma("page_size")?,
        pages: pragma("page_count")?,
        free_pages: pragma("freelist_count")?,
        // 2: INCREMENTAL (0 none, 1 full, which frees pages at every commit by itself).
        incremental: pragma("auto_vacuum")? == 2,
    })
}

pub(super) fn release_pages(tx: &Db, pages: i64) -> Result<i64> {
    if tx.is_postgres() {
        // Autovacuum hands space back to the server's use; there are no free pages to give.
        return Ok(0);
    }
    // The pragma frees one page per step (each step answers with a row): step to the end.
    tx.prepare(&format!(
        "PRAGMA incremental_vacuum({})",
        pages.clamp(1, i64::from(i32::MAX))
    ))?
    .query_map((), |_| Ok(()))?
    .for_each(drop);
    Ok(tx.query_row("PRAGMA freelist_count", (), |row| row.get(0))?)
}

/// The turn's row: when it was last done, and until when it is held.
fn turn_row(conn: &Db, name: &str) -> Result<Option<(Option<i64>, Option<i64>)>> {
    Ok(conn
        .prepare_cached("SELECT last_done_at, held_until FROM maintenance WHERE name = ?1")?
        .query_row([name], |row| {
            Ok((row.get("last_done_at")?, row.get("held_until")?))
        })
        .optional()?)
}

pub(super) fn turn_is_due(conn: &Db, turn: &Turn) -> Result<bool> {
    let (done, held) = turn_row(conn, turn.name)?.unwrap_or((None, None));
    Ok(crate::domain::retention::turn_due(
        done,
        held,
        turn.every_ms,
        turn.now,
    ))
}

pub(super) fn take_turn(tx: &Db, turn: &Turn) -> Result<bool> {
    if !turn_is_due(tx, turn)? {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO maintenance (name, holder, held_until) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until",
    )?
    .execute(params![
        turn.name,
        turn.holder,
        turn.now.saturating_add(turn.hold_ms)
    ])?;
    Ok(true)
}

pub(super) fn end_turn(tx: &Db, name: &str, holder: &str, done: bool, now: i64) -> Result<()> {
    if done {
        tx.prepare_cached(
            "INSERT INTO maintenance (name, last_done_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET last_done_at = excluded.last_done_at",
        )?
        .execute(params![name, now])?;
    }
    tx.prepare_cached(
        "UPDATE maintenance SET holder = NULL, held_until = NULL WHERE name = ?1 AND holder = ?2",
    )?
    .execute(params![name, holder])?;
    Ok(())
}

pub(super) fn turn_done_at(conn: &Db, name: &str) -> Result<Option<i64>> {
    Ok(turn_row(conn, name)?.and_then(|(done, _)| done))
}
