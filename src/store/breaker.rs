//! The circuit breaker's rows, one per agent; the transitions are `crate::domain::breaker`'s. The
//! claim asks the gate and takes the probe inside its own transaction, finalize records a run's
//! effect inside its own, so two racing claimers get one probe and a decision never lands
//! without its breaker update.

use serde::Serialize;

use crate::domain::breaker::Breaker;

/// One agent's breaker, for `orch status`.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerRow {
    pub agent: String,
    #[serde(flatten)]
    pub breaker: Breaker,
    pub last_run_id: Option<i64>,
    pub updated_at: i64,
    /// The probe still holds its job's lease.
    pub probe_live: bool,
}
