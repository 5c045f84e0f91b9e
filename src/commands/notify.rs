//! `orch notify`: deliver the outbox's due messages, then say what happened. Exit 0 whenever the
//! step ran, nothing due included: failed deliveries stay in the outbox and are retried, so
//! they are reported, not raised (`orch tick` runs this first and must go on).

use anyhow::Result;

use crate::cli::NotifyArgs;
use crate::exit;
use crate::notify::{self, Attempt, Delivery, Options, Report};
use crate::output::{self, Paint, Table};
use crate::store::now_ms;
use crate::Ctx;

pub fn run(ctx: &Ctx, args: &NotifyArgs) -> Result<u8> {
    let mut store = ctx.store()?;
    let options = Options {
        retry_dead: args.retry_dead,
    };
    let report = notify::deliver(&ctx.config, &mut *store, &options)?;
    if ctx.json() {
        output::json(&report)?;
    } else {
        output::line(human(&report, ctx.paint()))?;
    }
    Ok(exit::OK)
}

fn human(report: &Report, paint: Paint) -> String {
    let now = now_ms();
    let mut out = Vec::new();
    if report.revived > 0 {
        out.push(format!(
            "{} dead message(s) given another round",
            report.revived
        ));
    }
    if report.messages.is_empty() {
        out.push("nothing due".to_string());
    } else {
        out.push(format!(
            "sent {}, failed {}, deferred {}, dead {}, folded {}",
            report.sent, report.failed, report.deferred, report.dead, report.folded
        ));
        let mut table = Table::new(&["OUTCOME", "ID", "MESSAGE", "ATTEMPT", "NEXT", "ERROR"]);
        for attempt in &report.messages {
            table.row(vec![
                match attempt.outcome {
                    Delivery::Sent => paint.pass("sent"),
                    Delivery::Dead => paint.fail("dead"),
                    other => paint.warn(other.as_str()),
                },
                attempt.id.to_string(),
                describe(attempt),
                format!("{}/{}", attempt.attempts, attempt.max_attempts),
                attempt
                    .next_attempt_at
                    .map(|at| output::when(at, now))
                    .unwrap_or_default(),
                attempt.error.clone().unwrap_or_default(),
            ]);
        }
        out.push(table.render(paint));
    }
    for waiting in &report.waiting {
        out.push(format!(
            "{} {}(s) wait in the outbox ({})",
            waiting.count, waiting.kind, waiting.reason
        ));
    }
    let mut totals = format!(
        "outbox: {} pending, {} dead",
        report.pending, report.dead_total
    );
    if report.dead_total > 0 {
        totals.push_str(" (`orch notify --retry-dead` gives them another round)");
    }
    out.push(totals);
    out.join("\n")
}

fn describe(attempt: &Attempt) -> String {
    let mut text = notify::label(
        attempt.kind,
        attempt.alert_kind.as_deref(),
        attempt.project.as_deref(),
        attempt.task.as_deref(),
    );
    if attempt.folded > 0 {
        text.push_str(&format!(" (+{} folded)", attempt.folded));
    }
    text
}
