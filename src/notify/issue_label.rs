//! State labels on issues (`issue_labels = true`): the sweep that notices a task's label should
//! change and queues a message, and the delivery that gives the issue the label its task has
//! *then* (`Task::issue_label`), so a message retried late never puts back an older label.
//!
//! An issue carries at most one of orch's state labels (`domain::intake::STATE_LABELS`); the
//! others it carries, people's, are left alone. The repository's missing state labels are made
//! once, by the first delivery that finds them missing.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Outcome;
use crate::config::{Config, Project};
use crate::domain::intake::{self, STATE_LABELS};
use crate::forge::{self, Forge, Label};
use crate::http::Http;
use crate::store::{LabelChange, LabelSweep, NewIssueLabel, Store};

/// The name of a project's label sweep in the store's turns: when it last looked.
fn turn_name(project: &str) -> String {
    format!("labels:{project}")
}

/// How far before its last look a sweep looks again at finished tasks: a task finished by a
/// transaction that committed just after the last look, with a time read just before it.
const SWEEP_OVERLAP_MS: i64 = 60_000;

/// Queue the label changes of every project that keeps state labels: its live tasks with an
/// issue, and those finished since its last sweep (none before the first: switching the labels
/// on relabels no old issue).
pub fn sweep(config: &Config, store: &mut dyn Store) -> Result<Vec<LabelChange>> {
    let mut changes = Vec::new();
    for project in config.projects.values().filter(|p| p.keeps_issue_labels()) {
        let name = turn_name(&project.name);
        let since = store
            .turn_done_at(&name)?
            .map(|at| at.saturating_sub(SWEEP_OVERLAP_MS));
        let now = store.now()?;
        changes.extend(store.sweep_issue_labels(&LabelSweep {
            project: &project.name,
            since,
            rule: intake::state_label,
            now,
        })?);
        store.end_turn(&name, "", true, now)?;
    }
    Ok(changes)
}

/// The repository labels of each project, as the deliveries of one `notify` run found or made
/// them.
#[derive(Default)]
pub struct Known(BTreeMap<String, Vec<Label>>);

/// Give the issue the state label its task has now.
pub fn deliver(
    config: &Config,
    store: &dyn Store,
    http: &Http,
    token: &str,
    known: &mut Known,
    message: &NewIssueLabel,
) -> Outcome {
    let Some((project, spec)) = config
        .projects
        .get(&message.project)
        .and_then(|p| p.forge.as_ref().map(|f| (p, f)))
    else {
        return Outcome::Undeliverable(format!(
            "project {:?} has no forge in the configuration",
            message.project
        ));
    };
    let wanted = match store.task(message.task_id) {
        Ok(Some(task)) => task.issue_label.unwrap_or_default(),
        // The task was pruned: nothing left to show.
        Ok(None) => return Outcome::Delivered,
        Err(err) => return Outcome::Failed(format!("reading task {}: {err:#}", message.task)),
    };
    let forge = forge::connect(spec, http, token);
    match set_label(&*forge, project, known, message.issue, &wanted) {
        Ok(()) => Outcome::Delivered,
        Err(err) => super::pull_request::failed(err),
    }
}

fn set_label(
    forge: &dyn Forge,
    project: &Project,
    known: &mut Known,
    issue: i64,
    wanted: &str,
) -> Result<(), forge::Error> {
    let carried = forge.issue_labels(issue)?;
    for stale in carried
        .iter()
        .filter(|l| STATE_LABELS.contains(&l.name.as_str()) && l.name != wanted)
    {
        forge.remove_issue_label(issue, stale)?;
    }
    if wanted.is_empty() || carried.iter().any(|l| l.name == wanted) {
        return Ok(());
    }
    let labels = repository_labels(forge, project, known)?;
    let label = labels
        .iter()
        .find(|l| l.name == wanted)
        .cloned()
        .ok_or_else(|| forge::Error::Failed(format!("no label {wanted:?} after making it")))?;
    forge.add_issue_label(issue, &label)
}

/// The repository's labels, its missing state labels made first (once per `notify` run and
/// repository: the next run finds them).
fn repository_labels<'k>(
    forge: &dyn Forge,
    project: &Project,
    known: &'k mut Known,
) -> Result<&'k Vec<Label>, forge::Error> {
    if !known.0.contains_key(&project.name) {
        let mut labels = forge.labels()?;
        for name in STATE_LABELS {
            if !labels.iter().any(|l| l.name == *name) {
                labels.push(forge.create_label(name, intake::label_color(name))?);
            }
        }
        known.0.insert(project.name.clone(), labels);
    }
    Ok(&known.0[&project.name])
}
