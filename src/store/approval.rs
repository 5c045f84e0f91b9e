//! A person between stages: a job waiting in `awaiting_approval` is let go (`Store::approve`)
//! or sent back (`Store::reject`).

use serde::Serialize;

/// A job let go, or sent back.
#[derive(Debug, Clone, Serialize)]
pub struct Reviewed {
    pub job_id: i64,
    pub task: String,
    pub project: String,
    pub stage: String,
    /// On a rejection: the job queued for the previous stage, with the note for its prompt.
    pub sent_back: Option<i64>,
}

/// A rejection: the waiting job is cancelled and `stage` queued again with `note`.
#[derive(Debug, Clone, Copy)]
pub struct Rejection<'a> {
    pub job_id: i64,
    /// The stage to run again (the one before the waiting job's).
    pub stage: &'a str,
    pub note: &'a str,
    pub actor: &'a str,
    pub now: i64,
}

/// Jobs that have waited for approval since before `waiting_since` and were not alerted about
/// yet: each is alerted once (`alert` builds it; None: alerts are off, and a note goes in the
/// job's history instead).
pub struct ApprovalAlerts<'a> {
    pub waiting_since: i64,
    pub alert: &'a dyn Fn(&super::Job) -> Option<super::NewAlert>,
    pub now: i64,
}
