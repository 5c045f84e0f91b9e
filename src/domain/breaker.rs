//! The circuit breaker, per agent: pure transitions. The store keeps one row per agent
//! (src/store/breaker.rs); `claim` asks `gate` and `finalize` applies `record`.
//!
//! - closed: claims pass; transient failures in a row are counted, and at `threshold` it opens.
//! - open: claims are refused (exit 12) until `opened_at + cooldown_ms`; then it is half-open by
//!   the clock alone, so it never stays open without an operator.
//! - half-open: exactly one claim goes through as the probe. The probe's success closes the
//!   breaker; its transient failure opens it again with the cooldown doubled (at most
//!   `max_cooldown_ms`). A probe whose verdict says nothing about the agent's health (auth,
//!   permanent, interrupted) frees the slot, as does a probe whose lease runs out (the store
//!   checks that the probe still holds its job's lease).
//!
//! Only transient failures count: auth is the preflight gate's business and a permanent failure
//! (max turns, max budget) is the task's, not the agent's. Any ok run closes the breaker: the
//! agent works.

use serde::Serialize;

use crate::domain::clock;
use crate::output;

/// Longest cooldown: doubling stops here.
pub const MAX_COOLDOWN_MS: i64 = 6 * 3_600_000;

crate::domain::states::states! {
    /// Where a breaker stands (see the module doc).
    pub enum State {
        Closed = "closed",
        Open = "open",
        HalfOpen = "half_open",
    }
}

/// The claim let through while half-open: the job and the lease it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub job_id: i64,
    pub worker: String,
    pub attempt: i64,
    pub started_at: i64,
}

/// One agent's breaker as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breaker {
    pub state: State,
    pub consecutive_failures: i64,
    pub opened_at: Option<i64>,
    pub cooldown_ms: i64,
    pub probe: Option<Probe>,
    /// The class of the last transient failure counted.
    pub last_class: Option<String>,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker {
            state: State::Closed,
            consecutive_failures: 0,
            opened_at: None,
            cooldown_ms: 0,
            probe: None,
            last_class: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Transient failures in a row that open the breaker; 0 turns the breaker off.
    pub threshold: i64,
    /// The first cooldown after opening.
    pub cooldown_ms: i64,
    pub max_cooldown_ms: i64,
}

/// What a claim may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Pass,
    /// Half-open: this claim is the probe.
    Probe,
    /// Open, or half-open with its probe out: the reason for the operator.
    Refuse(String),
}

/// How a finalized run bears on the agent's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Success,
    Failure,
    /// Says nothing about the agent's health (auth, permanent, interrupted).
    Neutral,
}

/// What `record` changed, for the alert and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    None,
    Opened,
    /// The probe failed: open again, cooldown doubled.
    Reopened,
    Closed,
}

impl Breaker {
    /// When an open breaker lets a probe through.
    pub fn half_open_at(&self) -> Option<i64> {
        self.opened_at.map(|at| at.saturating_add(self.cooldown_ms))
    }

    /// The state as claims see it at `now`: an open breaker past its cooldown is half-open, and
    /// so is one dated from the future (`dated_ahead`).
    pub fn effective(&self, now: i64) -> State {
        match self.state {
            State::Open
                if self.half_open_at().is_some_and(|at| now >= at)
                    || self.dated_ahead(now).is_some() =>
            {
                State::HalfOpen
            }
            state => state,
        }
    }

    /// An open breaker opened later than `now`, or whose cooldown ends later than the longest
    /// cooldown allows, was written by a clock that ran ahead: how far ahead its cooldown ends.
    pub fn dated_ahead(&self, now: i64) -> Option<i64> {
        if self.state != State::Open {
            return None;
        }
        let opened = self.opened_at?;
        let ends = self.half_open_at()?;
        let ahead = clock::ahead_beyond(opened, now, 0)
            .or_else(|| clock::ahead_beyond(ends, now, MAX_COOLDOWN_MS));
        ahead.map(|_| ends.saturating_sub(now))
    }

    /// May a claim go through at `now`? `probe_live`: the probe taken earlier still holds its
    /// job's lease.
    pub fn gate(&self, agent: &str, now: i64, probe_live: bool) -> Gate {
        match self.effective(now) {
            State::Closed => Gate::Pass,
            State::Open => Gate::Refuse(format!(
                "circuit breaker for agent {agent} is open after {} transient failure{} in a row{}; \
                 a probe is let through {} (`orch reset-cache --breaker` closes it)",
                self.consecutive_failures,
                if self.consecutive_failures == 1 { "" } else { "s" },
                self.last_class
                    .as_deref()
                    .map_or(String::new(), |c| format!(" (last: {c})")),
                self.half_open_at()
                    .map_or("soon".to_string(), |at| output::relative(at, now)),
            )),
            State::HalfOpen => match &self.probe {
                Some(probe) if probe_live => Gate::Refuse(format!(
                    "circuit breaker for agent {agent} is half-open and its probe (job {}, worker {}) \
                     is still running (`orch reset-cache --breaker` closes it)",
                    probe.job_id, probe.worker
                )),
                _ => Gate::Probe,
            },
        }
    }

    /// The breaker once `probe` was claimed through it.
    pub fn with_probe(&self, probe: Probe) -> Breaker {
        Breaker {
            state: State::HalfOpen,
            probe: Some(probe),
            ..self.clone()
        }
    }

    /// The breaker after a finalized run of this agent. `is_probe`: the run is the probe's.
    pub fn record(
        &self,
        event: Event,
        class: &str,
        is_probe: bool,
        policy: &Policy,
        now: i64,
    ) -> (Breaker, Change) {
        match event {
            Event::Success => {
                let change = match self.state {
                    State::Closed => Change::None,
                    State::Open | State::HalfOpen => Change::Closed,
                };
                (Breaker::default(), change)
            }
            Event::Neutral => {
                let mut next = self.clone();
                if is_probe {
                    next.probe = None;
                }
                (next, Change::None)
            }
            Event::Failure => {
                let mut next = self.clone();
                next.consecutive_failures = self.consecutive_failures.saturating_add(1);
                next.last_class = Some(class.to_string());
                let change = match self.state {
                    State::Closed
                        if policy.threshold > 0
                            && next.consecutive_failures >= policy.threshold =>
                    {
                        next.state = State::Open;
                        next.opened_at = Some(now);
                        next.cooldown_ms = policy.cooldown_ms.min(policy.max_cooldown_ms);
                        Change::Opened
                    }
                    State::HalfOpen if is_probe => {
                        next.state = State::Open;
                        next.opened_at = Some(now);
                        next.cooldown_ms = self
                            .cooldown_ms
                            .max(policy.cooldown_ms)
                            .max(1)
                            .saturating_mul(2)
                            .min(policy.max_cooldown_ms);
                        next.probe = None;
                        Change::Reopened
                    }
                    _ => Change::None,
                };
                (next, change)
            }
        }
    }
}

/// The alert's reason when a run's verdict opened `agent`'s breaker (`change` Opened or
/// Reopened; None otherwise): `next` is the breaker after it, `class` the run's.
pub fn opened_reason(agent: &str, next: &Breaker, change: Change, class: &str) -> Option<String> {
    let again = match change {
        Change::Opened => "it opened",
        Change::Reopened => "its probe failed, so it opened again with the cooldown doubled",
        Change::None | Change::Closed => return None,
    };
    Some(format!(
        "circuit breaker for agent {agent}: {again} after {} transient failure{} in a row (last: {class}); \
         claims wait {} s for a probe",
        next.consecutive_failures,
        if next.consecutive_failures == 1 { "" } else { "s" },
        next.cooldown_ms / 1000
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        threshold: 3,
        cooldown_ms: 600_000,
        max_cooldown_ms: MAX_COOLDOWN_MS,
    };

    fn probe(job_id: i64) -> Probe {
        Probe {
            job_id,
            worker: "w1".into(),
            attempt: 1,
            started_at: 0,
        }
    }

    fn fail(b: &Breaker, is_probe: bool, now: i64) -> (Breaker, Change) {
        b.record(Event::Failure, "empty", is_probe, &POLICY, now)
    }

    #[test]
    fn an_open_breaker_from_the_future_is_half_open() {
        let now = 1_800_000_000_000;
        let open = |opened_at: i64, cooldown_ms: i64| Breaker {
            state: State::Open,
            consecutive_failures: 3,
            opened_at: Some(opened_at),
            cooldown_ms,
            ..Breaker::default()
        };
        let b = open(now - 1000, 600_000);
        assert_eq!((b.effective(now), b.dated_ahead(now)), (State::Open, None));
        // Opened within the clocks' skew: as it says.
        let b = open(now + crate::domain::clock::SKEW_MS, 600_000);
        assert_eq!(b.effective(now), State::Open);
        let year = 365 * 86_400_000;
        let b = open(now + year, 600_000);
        assert_eq!(b.effective(now), State::HalfOpen);
        assert_eq!(b.dated_ahead(now), Some(year + 600_000));
        assert_eq!(b.gate("claude", now, false), Gate::Probe);
        // A cooldown ending beyond the longest one allowed.
        let b = open(now, MAX_COOLDOWN_MS + 2 * crate::domain::clock::SKEW_MS);
        assert_eq!(b.effective(now), State::HalfOpen);
        let b = open(now, MAX_COOLDOWN_MS);
        assert_eq!(b.effective(now), State::Open);
    }

    #[test]
    fn opens_after_threshold_failures_in_a_row() {
        let b = Breaker::default();
        let (b, c) = fail(&b, false, 1);
        assert_eq!(
            (b.state, b.consecutive_failures, c),
            (State::Closed, 1, Change::None)
        );
        let (b, _) = fail(&b, false, 2);
        let (b, c) = fail(&b, false, 3);
        assert_eq!((b.state, c), (State::Open, Change::Opened));
        assert_eq!((b.opened_at, b.cooldown_ms), (Some(3), 600_000));
        assert_eq!(b.last_class.as_deref(), Some("empty"));
        // More failures of runs in flight do not reopen or extend it.
        let (b2, c) = fail(&b, false, 4);
        assert_eq!(
            (b2.state, b2.opened_at, c),
            (State::Open, Some(3), Change::None)
        );
    }

    #[test]
    fn a_success_resets_the_count_and_closes() {
        let (b, _) = fail(&Breaker::default(), false, 1);
        let (b, _) = fail(&b, false, 2);
        let (b, c) = b.record(Event::Success, "ok", false, &POLICY, 3);
        assert_eq!((b, c), (Breaker::default(), Change::None));
        let open = Breaker {
            state: State::Open,
            consecutive_failures: 3,
            opened_at: Some(0),
            cooldown_ms: 600_000,
            ..Breaker::default()
        };
        let (b, c) = open.record(Event::Success, "ok", false, &POLICY, 5);
        assert_eq!((b.state, c), (State::Closed, Change::Closed));
    }

    #[test]
    fn neutral_events_never_count() {
        let (b, _) = fail(&Breaker::default(), false, 1);
        let mut now = b.clone();
        for _ in 0..10 {
            now = now.record(Event::Neutral, "auth", false, &POLICY, 2).0;
        }
        assert_eq!(now, b);
    }

    #[test]
    fn threshold_zero_is_off() {
        let policy = Policy {
            threshold: 0,
            ..POLICY
        };
        let mut b = Breaker::default();
        for at in 0..20 {
            b = b.record(Event::Failure, "empty", false, &policy, at).0;
        }
        assert_eq!(b.state, State::Closed);
        assert_eq!(b.consecutive_failures, 20);
    }

    #[test]
    fn open_refuses_until_the_cooldown_then_one_probe() {
        let b = Breaker {
            state: State::Open,
            consecutive_failures: 3,
            opened_at: Some(1_000),
            cooldown_ms: 600_000,
            last_class: Some("rate_limit".into()),
            ..Breaker::default()
        };
        match b.gate("claude", 1_000, false) {
            Gate::Refuse(why) => {
                assert!(
                    why.contains("open after 3 transient failures in a row"),
                    "{why}"
                );
                assert!(why.contains("(last: rate_limit)"), "{why}");
                assert!(why.contains("in 10 min"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.effective(600_999), State::Open);
        assert_eq!(b.effective(601_000), State::HalfOpen);
        assert_eq!(b.gate("claude", 601_000, false), Gate::Probe);
        let half = b.with_probe(probe(7));
        assert!(
            matches!(half.gate("claude", 601_001, true), Gate::Refuse(why) if why.contains("probe (job 7"))
        );
        // The probe's lease ran out: the slot is free again.
        assert_eq!(half.gate("claude", 601_001, false), Gate::Probe);
    }

    #[test]
    fn the_probe_closes_or_reopens_with_the_cooldown_doubled() {
        let half = Breaker {
            state: State::HalfOpen,
            consecutive_failures: 3,
            opened_at: Some(0),
            cooldown_ms: 600_000,
            probe: Some(probe(7)),
            last_class: None,
        };
        let (b, c) = half.record(Event::Success, "ok", true, &POLICY, 10);
        assert_eq!((b.state, c), (State::Closed, Change::Closed));

        let (b, c) = fail(&half, true, 10);
        assert_eq!((b.state, c), (State::Open, Change::Reopened));
        assert_eq!(
            (b.opened_at, b.cooldown_ms, b.probe.clone()),
            (Some(10), 1_200_000, None)
        );
        // A failure that is not the probe's (a run from before) changes nothing.
        let (other, c) = fail(&half, false, 10);
        assert_eq!((other.state, c), (State::HalfOpen, Change::None));
        // A neutral probe frees the slot and leaves it half-open.
        let (freed, c) = half.record(Event::Neutral, "max_turns", true, &POLICY, 10);
        assert_eq!(
            (freed.state, freed.probe, c),
            (State::HalfOpen, None, Change::None)
        );
    }

    #[test]
    fn the_cooldown_doubles_up_to_six_hours() {
        let mut b = Breaker {
            state: State::HalfOpen,
            opened_at: Some(0),
            cooldown_ms: POLICY.cooldown_ms,
            ..Breaker::default()
        };
        let mut seen = Vec::new();
        for at in 0..8 {
            b = fail(&b.with_probe(probe(at)), true, at).0;
            seen.push(b.cooldown_ms / 60_000);
        }
        assert_eq!(seen, [20, 40, 80, 160, 320, 360, 360, 360]);
        // A zero cooldown still grows, so a failing probe is not retried in a tight loop.
        let zero = Policy {
            cooldown_ms: 0,
            ..POLICY
        };
        let b = Breaker {
            state: State::HalfOpen,
            probe: Some(probe(1)),
            ..Breaker::default()
        };
        assert_eq!(
            b.record(Event::Failure, "x", true, &zero, 0).0.cooldown_ms,
            2
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in [State::Closed, State::Open, State::HalfOpen] {
            assert_eq!(State::from_name(s.as_str()), Some(s));
        }
        assert_eq!(State::from_name("ajar"), None);
    }

    #[test]
    fn only_an_opening_has_an_alert_and_it_says_why() {
        let open = Breaker {
            state: State::Open,
            consecutive_failures: 1,
            cooldown_ms: 600_000,
            ..Breaker::default()
        };
        let why = opened_reason("claude", &open, Change::Opened, "timeout").unwrap();
        assert_eq!(
            why,
            "circuit breaker for agent claude: it opened after 1 transient failure in a row \
             (last: timeout); claims wait 600 s for a probe"
        );
        let again = opened_reason("claude", &open, Change::Reopened, "timeout").unwrap();
        assert!(again.contains("its probe failed, so it opened again with the cooldown doubled"));
        for quiet in [Change::None, Change::Closed] {
            assert_eq!(opened_reason("claude", &open, quiet, "timeout"), None);
        }
    }
}
