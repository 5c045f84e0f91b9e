//! `orch logs JOB [--run N] [--raw]`: a run's log for a person, read as a stream: what the agent
//! said, the tools it called and what they answered (cut to a line), then the verdict on the
//! whole log and what the run used. `--raw` prints the stored bytes; `--json` one JSON object
//! per event.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::agent::{self, Event};
use crate::cli::LogsArgs;
use crate::commands::validate_log;
use crate::domain::verdict::{Ending, Usage, Verdict};
use crate::exit;
use crate::output::{self, Paint};
use crate::store::{self, now_ms, Job, Run, Store, StoredLog};
use crate::Ctx;

/// Width of the label column ("result" and two spaces).
const LABEL: usize = 8;

pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<u8> {
    if args.raw && ctx.json() {
        return Err(exit::usage(
            "--raw prints the log as stored; leave out --json (or --raw)",
        ));
    }
    let store = ctx.store()?;
    let Some(job) = store.job(args.job)? else {
        return Err(store::no_job(args.job));
    };
    let mut runs = store.runs_for_job(job.job_id)?;
    let run = match args.run {
        Some(run_id) => match runs.iter().position(|r| r.run_id == run_id) {
            Some(at) => runs.swap_remove(at),
            None => return Err(exit::usage(not_its_run(run_id, &job, &runs))),
        },
        None => match runs.pop() {
            Some(run) => run,
            None => {
                crate::diag!("orch: job {} has no run yet", job.job_id);
                return Ok(exit::NOTHING_TO_DO);
            }
        },
    };
    let log = find_log(&*store, &run, &ctx.config.host())?;
    let stdout = BufWriter::new(std::io::stdout().lock());
    if args.raw {
        // As stored into a pipe or a file; made safe on a terminal, like every other output.
        let mut out: Box<dyn Write> = if std::io::stdout().is_terminal() {
            Box::new(output::TerminalWriter::new(stdout))
        } else {
            Box::new(stdout)
        };
        if let Some(log) = &log {
            std::io::copy(&mut log.open()?, &mut out)?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    let mut out = output::TerminalWriter::new(stdout);
    let paint = ctx.paint();
    if ctx.json() {
        run_line(&mut out, &job, &run, log.as_ref())?;
    } else {
        header(&mut out, &job, &run, log.as_ref(), paint)?;
    }
    let Some(log) = log else {
        out.flush()?;
        return Ok(exit::OK);
    };
    let reader = agent::of_run(&ctx.config, &run);
    let shown = log.shown();
    for event in reader.transcript(Box::new(BufReader::with_capacity(64 << 10, log.open()?))) {
        let event = event.with_context(|| format!("reading the log {shown}"))?;
        if ctx.json() {
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
        } else {
            render(&mut out, &event, paint)?;
        }
    }
    // A log is judged once the run is over, and only if the agent ran to write it.
    if run.ended_at.is_none() || run.launch_error.is_some() {
        if !ctx.json() && run.launch_error.is_none() {
            writeln!(out, "\nthe run has not ended: no verdict yet")?;
        }
        out.flush()?;
        return Ok(exit::OK);
    }
    let exit_code = run.exit_code.and_then(|c| i32::try_from(c).ok());
    let mut verdict = reader
        .judge(
            &mut log.open()?,
            Ending::new(exit_code, run.timed_out, run.stalled).at(run.ended_at),
        )
        .with_context(|| format!("judging the log {shown}"))?;
    ctx.config.price(&run.agent, &mut verdict.usage);
    if ctx.json() {
        serde_json::to_writer(&mut out, &json!({ "event": "verdict", "verdict": verdict }))?;
        out.write_all(b"\n")?;
    } else {
        footer(&mut out, &verdict, paint)?;
    }
    out.flush()?;
    Ok(exit::OK)
}

fn not_its_run(run_id: i64, job: &Job, runs: &[Run]) -> String {
    if runs.is_empty() {
        return format!(
            "run {run_id} is not a run of job {}: it has none yet",
            job.job_id
        );
    }
    let ids: Vec<String> = runs.iter().map(|r| r.run_id.to_string()).collect();
    format!(
        "run {run_id} is not a run of job {}: its runs are {}",
        job.job_id,
        ids.join(", ")
    )
}

/// Where a run's log is read from: its file, on the host that ran it, else the copy its finalize
/// kept in the database.
enum Log {
    File(PathBuf),
    Stored { log: StoredLog, path: String },
}

impl Log {
    /// The log from its start (of the part kept, for a copy).
    fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(match self {
            Log::File(path) => Box::new(
                File::open(path).with_context(|| format!("opening the log {}", path.display()))?,
            ),
            Log::Stored { log, .. } => Box::new(log.reader()),
        })
    }

    fn shown(&self) -> String {
        match self {
            Log::File(path) => path.display().to_string(),
            Log::Stored { path, .. } => format!("{path} (the copy in the database)"),
        }
    }
}

/// The run's log; None when the agent never started and so wrote none. The file is read on the
/// host that ran it while it is there; elsewhere, or once it is gone, the copy finalize kept.
fn find_log(store: &dyn Store, run: &Run, here: &str) -> Result<Option<Log>> {
    let Some(path) = run.log_path.as_deref() else {
        return match &run.launch_error {
            Some(_) => Ok(None),
            None => anyhow::bail!("run {} has no log recorded", run.run_id),
        };
    };
    let elsewhere = run.host.as_deref().filter(|host| *host != here);
    let missing = match elsewhere {
        Some(_) => None,
        None => match File::open(path) {
            Ok(_) => return Ok(Some(Log::File(PathBuf::from(path)))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some(err),
            Err(err) => {
                return Err(anyhow::Error::new(err)
                    .context(format!("opening the log of run {}: {path}", run.run_id)))
            }
        },
    };
    if let Some(log) = store.run_log(run.run_id)? {
        let path = path.to_string();
        return Ok(Some(Log::Stored { log, path }));
    }
    if run.launch_error.is_some() {
        return Ok(None);
    }
    match (elsewhere, missing) {
        (Some(host), _) => anyhow::bail!(
            "the log of run {} is on {} ({}), and the database keeps no copy of it (finalize \
             keeps one, log_store_max_bytes): read it there",
            run.run_id,
            output::printable(host),
            output::printable(path)
        ),
        (None, err) => Err(anyhow::Error::new(
            err.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        )
        .context(format!("opening the log of run {}: {path}", run.run_id))),
    }
}

/// The first JSON line: the run and its job.
fn run_line(out: &mut impl Write, job: &Job, run: &Run, log: Option<&Log>) -> Result<()> {
    let source = match log {
        None => serde_json::Value::Null,
        Some(Log::File(_)) => json!({ "from": "file" }),
        Some(Log::Stored { log, .. }) => json!({
            "from": "database", "bytes": log.bytes, "kept_from": log.kept_from,
        }),
    };
    let line = json!({
        "event": "run",
        "run": run,
        "job": {
            "job_id": job.job_id, "project": job.project, "task": job.task, "stage": job.stage,
            "state": job.state, "max_attempts": job.max_attempts,
        },
        "log": source,
    });
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// "run 7 of job 3: web ORCH-1, stage developer, attempt 1/3, worker w1" and when it ran.
fn header(
    out: &mut impl Write,
    job: &Job,
    run: &Run,
    log: Option<&Log>,
    paint: Paint,
) -> Result<()> {
    let now = now_ms();
    writeln!(
        out,
        "{} of job {}: {} {}, stage {}, attempt {}/{}, worker {}",
        paint.bold(&format!("run {}", run.run_id)),
        job.job_id,
        job.project,
        job.task,
        job.stage,
        run.attempt,
        job.max_attempts,
        output::printable(&run.worker)
    )?;
    let ended = match (&run.launch_error, run.ended_at, run.exit_code, run.signal) {
        (Some(error), _, _, _) => format!(
            "{}: {}",
            paint.fail("the agent never started"),
            output::printable(error)
        ),
        (None, None, _, _) => paint.warn("still running"),
        (None, Some(_), Some(0), _) => paint.pass("exit 0"),
        (None, Some(_), Some(code), _) => paint.warn(&format!("exit {code}")),
        (None, Some(_), None, Some(signal)) => paint.warn(&format!("signal {signal}")),
        (None, Some(_), None, None) => "ended".to_string(),
    };
    let mut notes = Vec::new();
    // A run that never started has no duration worth telling.
    if let Some(ms) = run.duration_ms.filter(|_| run.launch_error.is_none()) {
        notes.push(format!("after {}", output::duration_i(ms)));
    }
    if run.timed_out {
        notes.push(paint.warn("timed out"));
    }
    if run.interrupted {
        notes.push(paint.warn("interrupted"));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" {}", notes.join(", "))
    };
    writeln!(
        out,
        "started {}, {ended}{notes}",
        output::when(run.started_at, now)
    )?;
    if let Some(path) = &run.log_path {
        let mut cut = if run.log_truncated {
            format!(", {}", paint.warn("cut at log_max_bytes"))
        } else {
            String::new()
        };
        if let Some(Log::Stored { log, .. }) = log {
            cut.push_str(", the copy in the database");
            if log.cut() {
                let kept = u64::try_from(log.bytes - log.kept_from).unwrap_or(0);
                cut.push_str(&format!(
                    ": {}",
                    paint.warn(&format!(
                        "its last {} kept (log_store_max_bytes)",
                        output::bytes(kept)
                    ))
                ));
            }
        }
        writeln!(
            out,
            "log {} ({}{cut})",
            path,
            output::bytes(u64::try_from(run.log_bytes).unwrap_or(0))
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// One event as labelled, indented lines; text from the log is made printable.
fn render(out: &mut impl Write, event: &Event, paint: Paint) -> Result<()> {
    let (label, text) = match event {
        Event::Init {
            model,
            cwd,
            session_id,
        } => {
            let parts: Vec<String> = [
                model.clone(),
                session_id.as_ref().map(|s| format!("session {s}")),
                cwd.as_ref().map(|c| format!("in {c}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            (paint.dim(&pad("init")), paint.dim(&parts.join(", ")))
        }
        Event::Text { text } => (pad("text"), multiline(text)),
        Event::Thinking { text } => (
            paint.dim(&pad("think")),
            paint.dim(&output::printable(text)),
        ),
        Event::UserText { text } => (paint.dim(&pad("user")), paint.dim(&multiline(text))),
        Event::ToolUse { name, input } => (
            pad("tool"),
            format!(
                "{}  {}",
                paint.bold(&output::printable(name)),
                output::printable(input)
            ),
        ),
        Event::ToolResult {
            text,
            more_lines,
            is_error,
        } => {
            let label = if *is_error {
                paint.fail(&pad("error"))
            } else {
                paint.pass(&pad("ok"))
            };
            let more = match more_lines {
                0 => String::new(),
                1 => format!("  {}", paint.dim("(+1 line)")),
                n => format!("  {}", paint.dim(&format!("(+{n} lines)"))),
            };
            (label, format!("{}{more}", output::printable(text)))
        }
        Event::Result {
            subtype,
            is_error,
            text,
            ..
        } => {
            let subtype = subtype.as_deref().unwrap_or("?");
            let mark = if *is_error || subtype.starts_with("error") {
                paint.fail(subtype)
            } else {
                paint.pass(subtype)
            };
            let text = text.as_deref().map(multiline).unwrap_or_default();
            (pad("result"), format!("{mark}  {text}"))
        }
        Event::Notice { text } => (
            paint.warn(&pad("notice")),
            output::printable(text).into_owned(),
        ),
        Event::Other { kind } => (paint.dim(&pad("·")), paint.dim(&output::printable(kind))),
        Event::Raw { text } => (paint.dim(&pad("~")), paint.dim(&output::printable(text))),
        Event::Skipped { bytes, kind } => {
            let what = kind.as_deref().unwrap_or("a");
            let note = format!(
                "{what} line of {} not shown (orch logs --raw has it)",
                output::bytes(*bytes)
            );
            (paint.dim(&pad("~")), paint.dim(&note))
        }
    };
    writeln!(out, "  {label}{text}")?;
    Ok(())
}

fn pad(label: &str) -> String {
    format!("{label:<LABEL$}")
}

/// The footer's labels stand out to the left of the events' and line up with their text.
fn footer_label(label: &str) -> String {
    format!("{label:<width$}", width = LABEL + 2)
}

/// Text of several lines, each made printable, the later ones indented under the first.
fn multiline(text: &str) -> String {
    let indent = format!("\n  {}", " ".repeat(LABEL));
    text.trim_end()
        .lines()
        .map(|line| output::printable(line.trim_end()))
        .collect::<Vec<_>>()
        .join(&indent)
}

/// The verdict on the whole log and what the run used.
fn footer(out: &mut impl Write, verdict: &Verdict, paint: Paint) -> Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{}{}",
        paint.bold(&footer_label("verdict")),
        validate_log::human(verdict, paint)
    )?;
    let usage = usage_line(&verdict.usage);
    if !usage.is_empty() {
        writeln!(out, "{}{usage}", paint.bold(&footer_label("usage")))?;
    }
    Ok(())
}

/// "$0.0123 · 2 turns · tokens 120 in, 30 out, 2000 cache read, 500 cache write · 1.2 s (API
/// 1.0 s) · claude-sonnet-4-5", leaving out what the log does not say.
fn usage_line(usage: &Usage) -> String {
    let mut parts = Vec::new();
    match (usage.cost_usd, usage.cost_estimated) {
        (Some(cost), false) => parts.push(format!("${cost:.4}")),
        (Some(cost), true) => parts.push(format!("~${cost:.4} (estimated)")),
        (None, _) => {}
    }
    if let Some(turns) = usage.turns {
        parts.push(format!("{turns} turn{}", if turns == 1 { "" } else { "s" }));
    }
    let tokens: Vec<String> = [
        (usage.input_tokens, "in"),
        (usage.output_tokens, "out"),
        (usage.cache_read_tokens, "cache read"),
        (usage.cache_write_tokens, "cache write"),
    ]
    .iter()
    .filter_map(|(n, what)| n.map(|n| format!("{n} {what}")))
    .collect();
    if !tokens.is_empty() {
        parts.push(format!("tokens {}", tokens.join(", ")));
    }
    match (usage.duration_ms, usage.duration_api_ms) {
        (Some(total), Some(api)) => parts.push(format!(
            "{} (API {})",
            output::duration(total),
            output::duration(api)
        )),
        (Some(total), None) => parts.push(output::duration(total)),
        _ => {}
    }
    if !usage.models.is_empty() {
        parts.push(output::printable(&usage.models.join(", ")).into_owned());
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_line_leaves_out_what_is_unknown() {
        assert_eq!(usage_line(&Usage::default()), "");
        let usage = Usage {
            cost_usd: Some(0.0123),
            turns: Some(1),
            input_tokens: Some(120),
            output_tokens: Some(30),
            duration_ms: Some(1234),
            models: vec!["m".into()],
            ..Usage::default()
        };
        assert_eq!(
            usage_line(&usage),
            "$0.0123 · 1 turn · tokens 120 in, 30 out · 1.2 s · m"
        );
    }

    #[test]
    fn later_lines_are_indented_and_escapes_neutralised() {
        assert_eq!(
            multiline("one\ntwo \u{1b}[2J\n"),
            format!("one\n  {}two \u{fffd}[2J", " ".repeat(LABEL))
        );
    }
}
