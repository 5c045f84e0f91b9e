//! Project holds: a project whose workdir is missing on a host is skipped by that host's claims
//! until the workdir is back. Taking a hold queues one alert; releasing it is silent.

use anyhow::Result;
use rusqlite::{params, Transaction};
use serde::Serialize;

use super::{queue_alert, AlertKind, NewAlert, Store};

#[derive(Debug, Clone, Serialize)]
pub struct ProjectHold {
    pub project: String,
    pub host: String,
    pub reason: String,
    pub since: i64,
}

/// Hold `project` on `host`, inside the caller's transaction; the first hold queues an alert.
/// Returns whether it was newly held.
pub fn hold_project(
    tx: &Transaction,
    project: &str,
    host: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let taken = tx
        .prepare_cached(
            "INSERT INTO project_holds (project, host, reason, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, host) DO NOTHING",
        )?
        .execute(params![project, host, reason, now])?
        == 1;
    if taken {
        let alert = NewAlert {
            project: Some(project.to_string()),
            ..NewAlert::new(
                AlertKind::ProjectHeld,
                &format!("{project}@{host}"),
                &format!("claims on {host} skip project {project} until it is fixed: {reason}"),
            )
        };
        queue_alert(tx, &alert, now)?;
    }
    Ok(taken)
}

/// Release `project`'s hold on `host`, if it has one.
pub fn release_project(tx: &Transaction, project: &str, host: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM project_holds WHERE project = ?1 AND host = ?2")?
        .execute(params![project, host])?;
    Ok(())
}

impl Store {
    /// Every hold, by project and host.
    pub fn project_holds(&self) -> Result<Vec<ProjectHold>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT project, host, reason, since FROM project_holds ORDER BY project, host",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(ProjectHold {
                project: row.get(0)?,
                host: row.get(1)?,
                reason: row.get(2)?,
                since: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
