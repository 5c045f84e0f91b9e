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
    (PREFLIGHT_AGENT, "preflight failed: agent missing or broken"),
    (PREFLIGHT_AUTH, "preflight failed: agent not authenticated"),
    (BREAKER_OPEN, "circuit breaker open"),
    (RUN_RETRY, "run failed, will retry"),
    (RUN_FAILED, "run failed for good"),
    (RUN_AUTH, "run failed: agent not authenticated"),
    (CONFIG, "configuration error"),
];

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

/// The exit status for an error: the first `Coded` in its chain, else 1.
pub fn code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Coded>())
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
