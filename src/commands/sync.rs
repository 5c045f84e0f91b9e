use anyhow::Result;
use serde_json::json;

use crate::app::sync::{self, Failure, Report};
use crate::cli::SyncArgs;
use crate::exit;
use crate::output;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &SyncArgs) -> Result<u8> {
    if let Some(name) = &args.project {
        let project = crate::commands::project_arg(ctx, name)?;
        if !project.intake {
            return Err(exit::usage(format!(
                "--project {name}: the project does not take in issues (set intake = true in \
                 [projects.{name}], with its [projects.{name}.forge])"
            )));
        }
    }
    let projects = sync::intake_projects(&ctx.config, args.project.as_deref());
    if projects.is_empty() {
        crate::diag!(
            "orch: no project takes in issues (intake = true in [projects.NAME] of {})",
            ctx.config.describe_file()
        );
        return Ok(exit::NOTHING_TO_DO);
    }
    let token = sync::token(&ctx.config)?;
    let http = sync::client(&ctx.config, token);
    let mut store = ctx.store()?;
    let actor = ctx.operator();
    let mut reports = Vec::new();
    for project in projects {
        let report = sync::sync_project(&ctx.config, &mut *store, &http, token, project, &actor)?;
        if report.error.is_none() {
            // Done by hand counts as the fleet's: the next tick does not sync again at once.
            let now = store.now()?;
            store.end_turn(&sync::turn_name(&project.name), "", true, now)?;
        }
        reports.push(report);
    }
    if ctx.json() {
        output::json(&json!({ "projects": reports }))?;
    } else {
        for report in &reports {
            output::line(describe(report))?;
        }
    }
    let failures: Vec<&Failure> = reports.iter().filter_map(|r| r.error.as_ref()).collect();
    if let Some(refused) = failures
        .iter()
        .find(|f| matches!(f, Failure::Unauthorized { .. }))
    {
        return Err(exit::config(refused.message().to_string()));
    }
    for failure in &failures {
        crate::diag!("orch: sync: {}", failure.message());
    }
    Ok(match failures.is_empty() {
        true => exit::OK,
        false => exit::FORGE_FAILED,
    })
}

/// One project's sync for people: "web: 3 issues labelled; 2 new tasks (WEB-1, WEB-2), 1
/// known, 1 queued job cancelled (WEB-5)".
pub(crate) fn describe(report: &Report) -> String {
    if let Some(failure) = &report.error {
        return format!("{}: not synced: {}", report.project, failure.message());
    }
    let keys = |tasks: &[crate::store::IntakeTask]| {
        let mut keys: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).take(10).collect();
        if tasks.len() > keys.len() {
            keys.push("…");
        }
        keys.join(", ")
    };
    let synced = &report.synced;
    let mut text = format!(
        "{}: {} open issue(s) with the label; {} new task(s)",
        report.project,
        report.listed,
        synced.created.len()
    );
    if !synced.created.is_empty() {
        text.push_str(&format!(" ({})", keys(&synced.created)));
    }
    text.push_str(&format!(", {} known", synced.known));
    if !report.reviews.is_empty() {
        let reviewed: Vec<String> = report
            .reviews
            .iter()
            .map(|r| match r.sent_back {
                None => format!("{} approved", r.task),
                Some(_) => format!("{} rejected", r.task),
            })
            .collect();
        text.push_str(&format!(", by comment: {}", reviewed.join(", ")));
    }
    if !synced.cancelled.is_empty() {
        text.push_str(&format!(
            ", {} queued job(s) cancelled ({})",
            synced.cancelled.len(),
            keys(&synced.cancelled)
        ));
    }
    text
}
