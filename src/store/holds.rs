//! Project holds: a project that cannot run on a host (its workdir is missing there, or its main
//! clone has no commit yet) is skipped by that host's claims until that is fixed. Taking a hold
//! queues one alert; releasing it is silent.

use serde::Serialize;

use super::{AlertKind, NewAlert};

#[derive(Debug, Clone, Serialize)]
pub struct ProjectHold {
    pub project: String,
    pub host: String,
    pub reason: String,
    pub since: i64,
}

/// The alert a new hold of `project` on `host` raises (every backend queues this one).
pub fn held_alert(project: &str, host: &str, reason: &str) -> NewAlert {
    NewAlert {
        project: Some(project.to_string()),
        ..NewAlert::new(
            AlertKind::ProjectHeld,
            &format!("{project}@{host}"),
            &format!("claims on {host} skip project {project} until it is fixed: {reason}"),
        )
    }
}
