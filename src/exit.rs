//! The exit-code contract. These numbers are public API: scripts and cron chain on them, and the
//! README's table is checked against `TABLE` by a test. Never renumber; only add.

use std::fmt;

pub const OK: u8 = 0;
pub const UNEXPECTED: u8 = 1;
pub const USAGE: u8 = 2;
pub const NOTHING_TO_DO: u8 = 3;
pub const PREFLIGHT_AGENT: u8 = 10;
pub const PREFLIGHT_AUTH: u8 = 11;
pub const BREAKER_OPEN: u8 = 12;
pub const USAGE_LIMIT: u8 = 13;
pub const FORGE_FAILED: u8 = 14;
pub const RUN_RETRY: u8 = 20;
pub const RUN_FAILED: u8 = 21;
pub const RUN_AUTH: u8 = 22;
pub const CONFIG: u8 = 78;

/// Every exit status orch can return, with its meaning, in the order the README lists them.
pub const TABLE: &[(u8, &str)] = &[
    (OK, "ok"),
    (UNEXPECTED, "unexpected error"),
    (USAGE, "usage error (bad flags or arguments)"),
    (
        NOTHING_TO_DO,
        "nothing to do (no eligible job, or another tick holds the worker lock)",
    ),
    (
        PREFLIGHT_AGENT,
        "preflight failed: agent missing or broken, or held for a command line it refused",
    ),
    (PREFLIGHT_AUTH, "preflight failed: agent not authenticated"),
    (BREAKER_OPEN, "circuit breaker open"),
    (
        USAGE_LIMIT,
        "agent over its usage limit: claims wait until it resets",
    ),
    (
        FORGE_FAILED,
        "the forge failed, timed out or asked to wait; try again later",
    ),
    (RUN_RETRY, "run failed, will retry"),
    (RUN_FAILED, "run failed for good"),
    (
        RUN_AUTH,
        "run failed: agent not authenticated, or it refused its command line (held)",
    ),
    (CONFIG, "configuration error"),
];

/// What each exit status means for one subcommand, for its `--help` and manual page: the
/// statuses it can return, most specific first. Every subcommand can also end with 1 (unexpected
/// error), 2 (usage) and 78 (configuration), which `statuses` appends.
pub fn statuses(command: &str) -> Vec<(u8, &'static str)> {
    let mut own: Vec<(u8, &'static str)> = match command {
        "tick" => vec![
            (OK, "it did a job and the job advanced or completed"),
            (
                NOTHING_TO_DO,
                "no eligible job (and it did none), or another tick of this worker holds its lock",
            ),
            (
                PREFLIGHT_AGENT,
                "the agent is missing or broken, or held for a command line it refused (preflight)",
            ),
            (PREFLIGHT_AUTH, "the agent is not authenticated (preflight)"),
            (BREAKER_OPEN, "the agent's circuit breaker is open"),
            (
                USAGE_LIMIT,
                "the agent is over its usage limit until it resets (preflight)",
            ),
            (RUN_RETRY, "the last job failed and will be retried"),
            (RUN_FAILED, "the last job failed for good"),
            (
                RUN_AUTH,
                "the last job found the agent not authenticated, or refusing its command line \
                 (gated)",
            ),
        ],
        "claim" => vec![
            (OK, "a job was claimed; its id is on stdout"),
            (NOTHING_TO_DO, "no eligible job"),
            (
                PREFLIGHT_AGENT,
                "the agent is missing or broken, or held for a command line it refused; nothing \
                 was claimed",
            ),
            (
                PREFLIGHT_AUTH,
                "the agent is not authenticated; nothing was claimed",
            ),
            (
                BREAKER_OPEN,
                "the agent's circuit breaker is open; nothing was claimed",
            ),
            (
                USAGE_LIMIT,
                "the agent is over its usage limit until it resets; nothing was claimed",
            ),
        ],
        "preflight" => vec![
            (OK, "the agent can take a job"),
            (
                PREFLIGHT_AGENT,
                "the agent is missing or broken (it wins when both fail), or held for a command \
                 line it refused (`--explain` says which setting to change)",
            ),
            (PREFLIGHT_AUTH, "the agent is not authenticated"),
            (
                USAGE_LIMIT,
                "the agent is over its usage limit until it resets (`--explain` says when)",
            ),
        ],
        "run" => vec![(
            OK,
            "the run was recorded, whatever the agent did (finalize judges it); 1 when it could \
             not be (not the lease holder, lease expired, the attempt already ran)",
        )],
        "validate-log" => vec![
            (OK, "the log shows a real success"),
            (RUN_RETRY, "its class is transient: a job would be retried"),
            (
                RUN_FAILED,
                "its class is permanent: a job would fail for good",
            ),
            (
                RUN_AUTH,
                "the agent was not authenticated, or refused its command line: a job would be \
                 gated",
            ),
        ],
        "finalize" => vec![
            (OK, "ok: the job advanced or the task completed"),
            (RUN_RETRY, "a transient failure: requeued after a backoff"),
            (
                RUN_FAILED,
                "failed for good (a permanent class, or attempts spent)",
            ),
            (
                RUN_AUTH,
                "the agent is not authenticated, or refused its command line: gated, the \
                 attempt not counted",
            ),
        ],
        "db" => vec![(
            OK,
            "the queue was copied and every table's rows counted alike",
        )],
        "sync" => vec![
            (OK, "every intake project was synced"),
            (NOTHING_TO_DO, "no project takes in issues"),
            (
                FORGE_FAILED,
                "a forge failed, timed out or asked to wait: nothing was written for that \
                 project (the others were synced)",
            ),
        ],
        "logs" => vec![
            (OK, "the log was shown"),
            (NOTHING_TO_DO, "the job has no run yet"),
        ],
        _ => vec![(OK, "ok")],
    };
    own.extend([
        (UNEXPECTED, "unexpected error (the database failing, say)"),
        (
            USAGE,
            "usage error: a bad flag, or a name or id that names nothing",
        ),
        (CONFIG, "configuration error"),
    ]);
    own
}

/// `statuses` as the text `--help` ends with.
pub fn statuses_help(command: &str) -> String {
    let mut text = String::from("Exit status:\n");
    for (code, meaning) in statuses(command) {
        text.push_str(&format!("  {code:>2}  {meaning}\n"));
    }
    text.trim_end().to_string()
}

/// An error that knows the exit status it should end the process with. Leaf code uses anyhow with
/// context; where a failure has a documented status, it wraps one of these so the boundary in
/// `main` can find it anywhere in the cause chain.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

pub fn coded(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    coded(USAGE, message)
}

pub fn config(message: impl Into<String>) -> anyhow::Error {
    coded(CONFIG, message)
}

/// `err` explained by `message` on top of it, exiting with `code`.
pub fn with_code(err: anyhow::Error, code: u8, message: impl Into<String>) -> anyhow::Error {
    err.context(Coded {
        code,
        message: message.into(),
    })
}

/// The exit status for an error: the first `Coded` in its chain (a context's first), else 1.
pub fn code_of(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Coded>()
        .or_else(|| err.chain().find_map(|cause| cause.downcast_ref::<Coded>()))
        .map_or(UNEXPECTED, |coded| coded.code)
}

/// A closed stdout (`orch status | head -1`) ends the output early; it is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_is_found_under_context() {
        let err = Err::<(), _>(config("bad key"))
            .context("loading config")
            .unwrap_err();
        assert_eq!(code_of(&err), CONFIG);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), UNEXPECTED);
    }
}
