//! `orch prune [--older-than DURATION] [--dry-run]`: remove what finished tasks left behind.

use anyhow::Result;

use crate::app::prune::{self, Options, Report};
use crate::cli::PruneArgs;
use crate::domain::retention;
use crate::exit;
use crate::output;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &PruneArgs) -> Result<u8> {
    let older_than_ms = match &args.older_than {
        Some(text) => {
            retention::parse_age(text).map_err(|why| exit::usage(format!("--older-than: {why}")))?
        }
        None => prune::retention_ms(&ctx.config),
    };
    let mut store = ctx.store()?;
    let options = Options {
        older_than_ms,
        dry_run: args.dry_run,
        deadline: None,
    };
    let report = prune::prune(&ctx.config, &mut *store, &options)?;
    prune::record_done(&ctx.config, &mut *store, &report)?;
    if ctx.json() {
        output::json(&report)?;
    } else {
        output::line(describe(&report, store.now()?).join("\n"))?;
    }
    Ok(exit::OK)
}

/// The report for people: what went (or would go), the files, the database.
pub(crate) fn describe(report: &Report, now: i64) -> Vec<String> {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let since = output::when(report.finished_before, now);
    let mut lines = vec![if report.tasks == 0 && report.outbox == 0 {
        format!("nothing finished before {since} to remove")
    } else {
        format!(
            "{verb} {} task(s) finished before {since}: {} job(s), {} history entries, {} run(s) ({} with a log kept in the database), {} delivered message(s)",
            report.tasks, report.jobs, report.history, report.runs, report.logs, report.outbox
        )
    }];
    let files = &report.files;
    if files.log_files + files.worktrees + report.files_elsewhere > 0 {
        let mut line = format!(
            "{verb} {} log file(s) ({}) and {} worktree(s) here",
            files.log_files,
            output::bytes(files.log_bytes),
            files.worktrees
        );
        if report.files_elsewhere > 0 {
            line.push_str(&format!(
                "; {} file(s) on other hosts, removed by their next tick",
                report.files_elsewhere
            ));
        }
        lines.push(line);
    }
    if files.agent_files > 0 {
        lines.push(format!(
            "{verb} {} file(s) agents left in their temporary directories",
            files.agent_files
        ));
    }
    let db = &report.database;
    let size = |bytes: i64| output::bytes(bytes.max(0) as u64);
    lines.push(if report.dry_run {
        format!("database: {}", size(db.bytes_before))
    } else if db.incremental {
        format!(
            "database: {} → {}, in {} batch(es), the longest {:.0} ms; {} freed in all",
            size(db.bytes_before),
            size(db.bytes_after),
            report.batches,
            report.longest_batch_ms,
            output::bytes(report.bytes_freed)
        )
    } else {
        format!(
            "database: {}, of which {} free for new rows (made before orch handed pages back: \
             see the README's Retention section), in {} batch(es), the longest {:.0} ms",
            size(db.bytes_after),
            size(db.free_bytes),
            report.batches,
            report.longest_batch_ms
        )
    });
    if !report.complete {
        lines.push("stopped for time: the next prune goes on".to_string());
    }
    lines
}
