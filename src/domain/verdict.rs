//! The neutral vocabulary of a run's verdict, whatever agent wrote the log: the classes, what
//! each means for the job (its kind), what the run used, and the verdict itself. Each agent's
//! judge (`agent::<kind>`) maps its own log onto these words; `decide` and the store read only
//! them. Pure: no I/O, nothing about any agent's output format.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::exit;

/// What a class means for the job: done, retry later, fail for good, stop until re-login, or
/// wait, without counting the attempt, until the agent's account may work again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Transient,
    Permanent,
    Gate,
    Hold,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Transient => "transient",
            Kind::Permanent => "permanent",
            Kind::Gate => "gate",
            Kind::Hold => "hold",
        }
    }

    /// The exit status `orch validate-log` (and a run) ends with for this kind.
    pub fn exit_status(self) -> u8 {
        match self {
            Kind::Ok => exit::OK,
            Kind::Transient | Kind::Hold => exit::RUN_RETRY,
            Kind::Permanent => exit::RUN_FAILED,
            Kind::Gate => exit::RUN_AUTH,
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A verdict's class. Names are part of the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Ok,
    Empty,
    NoResult,
    Auth,
    RateLimit,
    MaxTurns,
    MaxBudget,
    AgentError,
    Timeout,
    ExitMismatch,
    PermissionDenied,
    UsageLimit,
    Stalled,
    InvocationError,
}

/// The one table: every class, its name, and its kind. The README's table follows it.
pub const CLASSES: &[(Class, &str, Kind)] = &[
    (Class::Ok, "ok", Kind::Ok),
    (Class::Empty, "empty", Kind::Transient),
    (Class::NoResult, "no_result", Kind::Transient),
    (Class::Auth, "auth", Kind::Gate),
    (Class::RateLimit, "rate_limit", Kind::Transient),
    (Class::MaxTurns, "max_turns", Kind::Permanent),
    (Class::MaxBudget, "max_budget", Kind::Permanent),
    (Class::AgentError, "agent_error", Kind::Transient),
    (Class::Timeout, "timeout", Kind::Transient),
    (Class::ExitMismatch, "exit_mismatch", Kind::Transient),
    (
        Class::PermissionDenied,
        "permission_denied",
        Kind::Permanent,
    ),
    (Class::UsageLimit, "usage_limit", Kind::Hold),
    (Class::Stalled, "stalled", Kind::Transient),
    // The agent refused how orch called it (an option it does not know, a folder it does not
    // trust): every run would be refused the same way until a setting changes, so the profile
    // is held like a failed login, without spending attempts.
    (Class::InvocationError, "invocation_error", Kind::Gate),
];

/// How orch cut a run short, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The run outlived its `timeout_seconds`.
    Timeout,
    /// Its log stopped growing for `idle_timeout_seconds`.
    Stall,
}

/// How a run ended, as far as judging its log goes: the agent's exit status when known, whether
/// orch cut it short, and when it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ending {
    pub exit_code: Option<i32>,
    pub cut: Option<Cut>,
    /// When the run ended (epoch ms), for an agent that reports a time of day without a date
    /// (Codex's "try again at 9:12 AM"): None when not known.
    pub at: Option<i64>,
}

impl Ending {
    pub fn new(exit_code: Option<i32>, timed_out: bool, stalled: bool) -> Ending {
        let cut = match (timed_out, stalled) {
            (true, _) => Some(Cut::Timeout),
            (false, true) => Some(Cut::Stall),
            (false, false) => None,
        };
        Ending {
            exit_code,
            cut,
            at: None,
        }
    }

    /// The same ending, at `at_ms` (epoch ms).
    pub fn at(self, at_ms: Option<i64>) -> Ending {
        Ending { at: at_ms, ..self }
    }

    pub fn timed_out(self) -> bool {
        self.cut == Some(Cut::Timeout)
    }

    pub fn stalled(self) -> bool {
        self.cut == Some(Cut::Stall)
    }
}

/// What an agent's account reported about its usage limit: rejected (a usage limit stopped the
/// run) or a warning that it is close. Times in epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RateLimit {
    /// "rejected", "allowed_warning", …, as the agent said it.
    pub status: String,
    /// When the limit resets, if the agent said.
    pub resets_at: Option<i64>,
    /// Which limit ("five_hour", "seven_day", …).
    pub limit_type: Option<String>,
    /// How much of it is used (0 to 1), when said.
    pub utilization: Option<f64>,
}

impl Class {
    fn row(self) -> &'static (Class, &'static str, Kind) {
        CLASSES
            .iter()
            .find(|row| row.0 == self)
            .expect("every class has a row in CLASSES")
    }

    pub fn name(self) -> &'static str {
        self.row().1
    }

    pub fn kind(self) -> Kind {
        self.row().2
    }

    pub fn from_name(name: &str) -> Option<Class> {
        CLASSES.iter().find(|row| row.1 == name).map(|row| row.0)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Class {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// What the run cost and did, from the result object (session id and model from the `init`
/// line when there is no result). `None` where the log does not say.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub cost_usd: Option<f64>,
    /// `cost_usd` is orch's estimate from the tokens and the profile's prices, not the agent's
    /// figure (Codex and Gemini report tokens, never a cost).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cost_estimated: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub duration_api_ms: Option<u64>,
    pub session_id: Option<String>,
    pub models: Vec<String>,
    /// The last usage-limit report of the run (a warning as much as a refusal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// The judgement on one run's log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub ok: bool,
    pub class: Class,
    pub kind: Kind,
    pub transient: bool,
    /// One line for a person; failure text in it is cut short and has tokens masked.
    pub reason: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Orch ended the run because its log stopped growing.
    pub stalled: bool,
    pub subtype: Option<String>,
    pub is_error: Option<bool>,
    pub result_excerpt: Option<String>,
    /// The result's `result` text, whole and as written: what the next stage is given. Not in
    /// the JSON (which has `result_excerpt`, cut and masked).
    #[serde(skip)]
    pub result_text: Option<String>,
    pub usage: Usage,
    /// The tools the agent was denied (`permission_denials`), as "Tool: input", cut short.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denials: Vec<String>,
    /// The agent could not resume the session it was asked to (it no longer has it): the run
    /// may start afresh.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resume_failed: bool,
    /// For an `invocation_error`: what to change, naming the setting (`{agent}`, `{stage}` and
    /// `{project}` stand for the run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// An `auth` verdict that may be the network's, not the login's: the agent checks its login
    /// online and fails the same way offline. Finalize holds the gate only when the offline
    /// credentials check agrees.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_unconfirmed: bool,
}

impl Verdict {
    /// The exit status orch ends with for this verdict (0, 20, 21 or 22); `exit_code` is the
    /// agent's.
    pub fn exit_status(&self) -> u8 {
        self.kind.exit_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_names_round_trip() {
        for (class, name, kind) in CLASSES {
            assert_eq!(class.name(), *name);
            assert_eq!(class.kind(), *kind);
            assert_eq!(Class::from_name(name), Some(*class));
        }
        assert_eq!(Class::MaxTurns.kind(), Kind::Permanent);
        assert_eq!(Class::Auth.kind().exit_status(), exit::RUN_AUTH);
        assert_eq!(Class::Timeout.kind().exit_status(), exit::RUN_RETRY);
        assert_eq!(Class::InvocationError.kind(), Kind::Gate);
    }
}
