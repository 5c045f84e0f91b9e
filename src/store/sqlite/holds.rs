//! Project holds, per project and host.

use crate::store::sql::{params, Db};
use anyhow::Result;

use super::outbox;
use crate::store::{held_alert, Message, ProjectHold};

/// Hold `project` on `host`; the first hold queues its alert. Returns whether it was newly held.
pub(super) fn hold(tx: &Db, project: &str, host: &str, reason: &str, now: i64) -> Result<bool> {
    let taken = tx
        .prepare_cached(
            "INSERT INTO project_holds (project, host, reason, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, host) DO NOTHING",
        )?
        .execute(params![project, host, reason, now])?
        == 1;
    if taken {
        let alert = held_alert(project, host, reason);
        outbox::queue(tx, &Message::Alert(alert), now)?;
    }
    Ok(taken)
}

/// Release `project`'s hold on `host`, if it has one.
pub(super) fn release(tx: &Db, project: &str, host: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM project_holds WHERE project = ?1 AND host = ?2")?
        .execute(params![project, host])?;
    Ok(())
}

pub(super) fn all(conn: &Db) -> Result<Vec<ProjectHold>> {
    let mut stmt = conn.prepare_cached(
        "SELECT project, host, reason, since FROM project_holds ORDER BY project, host",
    )?;
    let rows = stmt.query_map((), |row| {
        Ok(ProjectHold {
            project: row.get("project")?,
            host: row.get("host")?,
            reason: row.get("reason")?,
            since: row.get("since")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}
