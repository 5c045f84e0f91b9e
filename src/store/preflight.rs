//! The preflight cache and the auth gate, per host and agent.
//!
//! Both describe one machine: its agent binary and its credentials file. So they are keyed by
//! (host, agent), and when several hosts share one queue each keeps its own verdict and its own
//! gate. The cache holds one verdict per host and agent, shared by every process of that host.
//! The gate is held when a run shows the agent is not authenticated on the run's host; preflight
//! there fails while it is held and the credentials file is unchanged since, and
//! `orch reset-cache` releases it.

pub use crate::agent::CredsFingerprint;
use crate::store::NewAlert;

/// A verdict as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedVerdict {
    pub ok: bool,
    pub exit_code: u8,
    pub checks_json: String,
    pub agent_version: Option<String>,
    /// What the verdict was made from; one made under other settings is not served.
    pub inputs: String,
    pub creds: Option<CredsFingerprint>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A held auth gate.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthGate {
    pub run_id: Option<i64>,
    pub reason: String,
    pub creds: Option<CredsFingerprint>,
    pub created_at: i64,
}

/// An agent held on a host because its account is over a usage limit: claims there wait until
/// `until` (when the agent said the limit resets); then the hold lifts by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageHold {
    pub until: i64,
    pub run_id: Option<i64>,
    pub reason: String,
    pub created_at: i64,
}

impl UsageHold {
    /// Whether the hold still stands at `now`.
    pub fn holds(&self, now: i64) -> bool {
        now < self.until
    }
}

/// A usage hold to take (or extend) on a host for an agent, because run `run_id` was stopped by
/// the account's usage limit.
#[derive(Debug, Clone)]
pub struct UsageHoldRequest {
    pub host: String,
    pub agent: String,
    pub until: i64,
    pub run_id: i64,
    pub reason: String,
    /// Raised (through `alerts_to`) when the agent was not held already: one alert per hold.
    pub alert: NewAlert,
}

/// An agent profile held on a host because the agent refused how orch called it
/// (`invocation_error`): claims for it there wait until its settings change (its `inputs` no
/// longer match) or an operator runs `orch reset-cache`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationHold {
    pub run_id: Option<i64>,
    pub reason: String,
    /// The setting to change, in words.
    pub fix: String,
    /// The fingerprint of the settings the refused run was started with.
    pub inputs: String,
    pub created_at: i64,
}

/// An invocation hold to take on a host for an agent, because run `run_id` was refused.
#[derive(Debug, Clone)]
pub struct InvocationHoldRequest {
    pub host: String,
    pub agent: String,
    pub run_id: i64,
    pub reason: String,
    pub fix: String,
    pub inputs: String,
    /// Raised (through `alerts_to`) when the agent was not held already under the same settings.
    pub alert: NewAlert,
}

/// Everything preflight needs to know about one agent on one host, read at once.
#[derive(Debug, Default)]
pub struct PreflightState {
    pub cached: Option<CachedVerdict>,
    pub gate: Option<AuthGate>,
    /// The agent's usage hold, whether or not it still stands.
    pub usage: Option<UsageHold>,
    pub invocation: Option<InvocationHold>,
}

/// What `reset_preflight` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reset {
    pub verdicts: usize,
    pub gates: usize,
    pub usage_holds: usize,
    pub invocation_holds: usize,
}
