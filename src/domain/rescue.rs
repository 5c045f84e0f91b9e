//! Which running jobs to take back from their worker: pure, from data. The store reads the
//! candidates (expired or future-dated leases, and the open runs of this host), the caller says
//! how the recorded supervisors are doing (`procfs::liveness`), `decide` rules, and the caller
//! ends the process groups the verdicts name before the store requeues or fails the jobs, all in
//! the claim's transaction.
//!
//! On the host that runs a job, liveness beats clocks: the supervising orch's pid and start time
//! are on the run, so a live, running supervisor keeps its job whatever the lease's clock says
//! (it renews the lease and enforces the run's timeout itself), and one that is gone or stopped
//! loses it, its agent's whole process group ended first, so two agents never share a checkout.
//! Another host's processes cannot be seen: there only the lease counts, and a worker frozen past
//! its lease may overlap with the one that rescues its job.

use crate::domain::clock;
use crate::domain::decide::Decision;
use crate::domain::states::JobState;
use crate::output;
use crate::procfs::{Liveness, Place, Proc};

/// Where a recorded run is, seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whereabouts {
    /// This host, this boot, this pid namespace: its processes can be looked up.
    Here,
    /// This host, an earlier boot: none of its processes exists any more.
    EarlierBoot,
    /// Another host (or another pid namespace on this one): only the lease tells.
    Elsewhere,
}

impl Place {
    pub fn whereabouts(&self, here: &Place) -> Whereabouts {
        if self.host != here.host {
            return Whereabouts::Elsewhere;
        }
        match (&self.boot_id, &here.boot_id) {
            (Some(then), Some(now)) if then != now => return Whereabouts::EarlierBoot,
            (Some(_), Some(_)) => {}
            _ => return Whereabouts::Elsewhere,
        }
        if self.pid_ns.is_none() || self.pid_ns != here.pid_ns {
            return Whereabouts::Elsewhere;
        }
        Whereabouts::Here
    }
}

/// The current attempt's run, still going as far as the database knows (not ended, not
/// finalized), with the processes it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRun {
    pub run_id: i64,
    /// None for a run recorded before orch kept it.
    pub place: Option<Place>,
    /// The orch process watching the agent.
    pub supervisor: Option<Proc>,
    /// The agent, leader of its own process group; None until it was started and recorded.
    pub agent: Option<Proc>,
}

/// A running job a rescue looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub job_id: i64,
    pub task_id: i64,
    pub worker: Option<String>,
    pub attempt: i64,
    pub max_attempts: i64,
    pub lease_expires_at: Option<i64>,
    /// When the lease was last granted or renewed, by the granting process's clock.
    pub lease_renewed_at: Option<i64>,
    pub run: Option<OpenRun>,
}

/// Why a job is taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    LeaseExpired,
    /// The lease runs out further ahead than its own length allows: written by a clock that ran
    /// ahead.
    LeaseAhead {
        ahead_ms: i64,
        length_ms: i64,
    },
    /// The supervising orch exited (or its pid names another process now).
    SupervisorGone {
        pid: i32,
        host: String,
    },
    /// The supervising orch is stopped (SIGSTOP, Ctrl-Z, a debugger) and its lease ran out.
    SupervisorStopped {
        pid: i32,
        host: String,
    },
    /// The run's host restarted since it began.
    Rebooted {
        host: String,
        run_id: i64,
    },
}

/// A process group to end before the job may run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The group the recorded agent led.
    Group(Proc),
    /// The groups led by this stopped supervisor's children: its agent, not recorded yet.
    ChildGroups(Proc),
}

/// A job to take back, and what to end first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescue {
    pub job_id: i64,
    pub task_id: i64,
    pub worker: Option<String>,
    pub attempt: i64,
    pub max_attempts: i64,
    pub why: Why,
    pub end: Option<End>,
}

impl Rescue {
    /// queued for another attempt, or failed when the attempts are spent (this one counts).
    pub fn to_state(&self) -> JobState {
        if self.attempt >= self.max_attempts {
            JobState::Failed
        } else {
            JobState::Queued
        }
    }

    /// The decision stored on the job's open run: requeued or failed, as the job goes.
    pub fn decision(&self) -> Decision {
        match self.to_state() {
            JobState::Failed => Decision::Failed,
            _ => Decision::Requeued,
        }
    }

    /// The class stored on the job and on its open run.
    pub fn class(&self) -> &'static str {
        match self.why {
            Why::LeaseExpired | Why::LeaseAhead { .. } => "lease_expired",
            Why::SupervisorGone { .. } | Why::Rebooted { .. } => "orch_gone",
            Why::SupervisorStopped { .. } => "orch_stopped",
        }
    }

    /// The history line: what happened and that the attempt counted.
    pub fn reason(&self) -> String {
        let worker = self.worker.as_deref().unwrap_or("?");
        let what = match &self.why {
            Why::LeaseExpired => format!("lease of {worker} expired"),
            Why::LeaseAhead {
                ahead_ms,
                length_ms,
            } => format!(
                "lease of {worker} runs out in {}, further ahead than its length ({}) allows \
                 (a clock ran ahead): treated as expired",
                output::span(*ahead_ms),
                output::span(*length_ms)
            ),
            Why::SupervisorGone { pid, host } => format!(
                "orch of {worker} (pid {pid} on {host}) is gone{}",
                self.ended()
            ),
            Why::SupervisorStopped { pid, host } => format!(
                "orch of {worker} (pid {pid} on {host}) is stopped and its lease ran out{}",
                self.ended()
            ),
            Why::Rebooted { host, run_id } => {
                format!("{host} restarted since run {run_id} began: its processes are gone")
            }
        };
        format!(
            "{what} (attempt {}/{} counted)",
            self.attempt, self.max_attempts
        )
    }

    fn ended(&self) -> &'static str {
        match self.end {
            Some(_) => "; its agent's process group was ended",
            None => "",
        }
    }
}

/// Is the lease still good at `now`? A lease dated further ahead than its own length (from when
/// it was last renewed; else `lease_ms`) allows is not.
fn lease_verdict(candidate: &Candidate, now: i64, lease_ms: i64) -> Option<Why> {
    let Some(expires) = candidate.lease_expires_at else {
        return Some(Why::LeaseExpired);
    };
    if expires <= now {
        return Some(Why::LeaseExpired);
    }
    let length_ms = match candidate.lease_renewed_at {
        Some(renewed) => expires.saturating_sub(renewed),
        None => lease_ms,
    };
    clock::ahead_beyond(expires, now, length_ms).map(|ahead_ms| Why::LeaseAhead {
        ahead_ms,
        length_ms,
    })
}

/// Rescue `candidate` or leave it alone. `observe` says how a recorded process on this host is
/// doing (`procfs::liveness`); it is asked only about this host's supervisors.
pub fn decide(
    candidate: &Candidate,
    here: &Place,
    now: i64,
    lease_ms: i64,
    observe: &dyn Fn(Proc) -> Liveness,
) -> Option<Rescue> {
    let rescue = |why, end| Rescue {
        job_id: candidate.job_id,
        task_id: candidate.task_id,
        worker: candidate.worker.clone(),
        attempt: candidate.attempt,
        max_attempts: candidate.max_attempts,
        why,
        end,
    };
    let lease = lease_verdict(candidate, now, lease_ms);
    let run = candidate.run.as_ref();
    let place = run.and_then(|r| r.place.as_ref());
    match place.map(|p| p.whereabouts(here)) {
        Some(Whereabouts::EarlierBoot) => {
            let run = run.expect("a place comes with its run");
            return Some(rescue(
                Why::Rebooted {
                    host: here.host.clone(),
                    run_id: run.run_id,
                },
                None,
            ));
        }
        Some(Whereabouts::Here) => {
            let run = run.expect("a place comes with its run");
            if let Some(supervisor) = run.supervisor {
                let host = here.host.clone();
                let pid = supervisor.pid;
                return match observe(supervisor) {
                    Liveness::Running => None,
                    Liveness::Stopped => lease.map(|_| {
                        let end = run
                            .agent
                            .map(End::Group)
                            .unwrap_or(End::ChildGroups(supervisor));
                        rescue(Why::SupervisorStopped { pid, host }, Some(end))
                    }),
                    Liveness::Gone => Some(rescue(
                        Why::SupervisorGone { pid, host },
                        run.agent.map(End::Group),
                    )),
                };
            }
        }
        Some(Whereabouts::Elsewhere) | None => {}
    }
    lease.map(|why| rescue(why, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const LEASE: i64 = 900_000;

    fn here() -> Place {
        Place {
            host: "h1".into(),
            boot_id: Some("boot-a".into()),
            pid_ns: Some("pid:[1]".into()),
        }
    }

    const SUPERVISOR: Proc = Proc {
        pid: 100,
        start: 5000,
    };
    const AGENT: Proc = Proc {
        pid: 200,
        start: 5100,
    };

    fn candidate(lease_expires_at: i64, place: Option<Place>) -> Candidate {
        Candidate {
            job_id: 7,
            task_id: 3,
            worker: Some("w1".into()),
            attempt: 1,
            max_attempts: 3,
            lease_expires_at: Some(lease_expires_at),
            lease_renewed_at: Some(lease_expires_at - LEASE),
            run: place.map(|place| OpenRun {
                run_id: 11,
                place: Some(place),
                supervisor: Some(SUPERVISOR),
                agent: Some(AGENT),
            }),
        }
    }

    fn decide_with(c: &Candidate, liveness: Liveness) -> Option<Rescue> {
        decide(c, &here(), NOW, LEASE, &|p| {
            assert_eq!(p, SUPERVISOR, "only the supervisor is looked up");
            liveness
        })
    }

    fn never(_: Proc) -> Liveness {
        panic!("another host's processes are never looked up")
    }

    #[test]
    fn by_the_lease_alone_without_a_run_or_on_another_host() {
        let elsewhere = Place {
            host: "h2".into(),
            ..here()
        };
        for place in [None, Some(elsewhere)] {
            let live = candidate(NOW + 1, place.clone());
            assert_eq!(decide(&live, &here(), NOW, LEASE, &never), None);
            let expired = candidate(NOW, place);
            let r = decide(&expired, &here(), NOW, LEASE, &never).unwrap();
            assert_eq!((r.why.clone(), r.end), (Why::LeaseExpired, None));
            assert_eq!(
                (r.to_state(), r.class()),
                (JobState::Queued, "lease_expired")
            );
            assert_eq!(r.decision(), Decision::Requeued);
            assert_eq!(r.reason(), "lease of w1 expired (attempt 1/3 counted)");
        }
    }

    #[test]
    fn another_pid_namespace_or_an_unknown_boot_is_another_host() {
        for place in [
            Place {
                pid_ns: Some("pid:[2]".into()),
                ..here()
            },
            Place {
                boot_id: None,
                ..here()
            },
        ] {
            assert_eq!(
                place.whereabouts(&here()),
                Whereabouts::Elsewhere,
                "{place:?}"
            );
            assert_eq!(
                decide(
                    &candidate(NOW + 1, Some(place)),
                    &here(),
                    NOW,
                    LEASE,
                    &never
                ),
                None
            );
        }
    }

    #[test]
    fn a_live_supervisor_here_keeps_its_job_whatever_the_lease_says() {
        for expires in [NOW - 1, NOW + 1, NOW + 365 * 86_400_000] {
            let c = candidate(expires, Some(here()));
            assert_eq!(decide_with(&c, Liveness::Running), None, "{expires}");
        }
    }

    #[test]
    fn a_gone_supervisor_here_loses_its_job_at_once_and_its_group_is_ended() {
        let c = candidate(NOW + LEASE, Some(here()));
        let r = decide_with(&c, Liveness::Gone).unwrap();
        assert_eq!(r.end, Some(End::Group(AGENT)));
        assert_eq!(r.class(), "orch_gone");
        assert_eq!(
            r.reason(),
            "orch of w1 (pid 100 on h1) is gone; its agent's process group was ended (attempt 1/3 counted)"
        );
    }

    #[test]
    fn a_stopped_supervisor_keeps_its_job_until_its_lease_runs_out() {
        let c = candidate(NOW + 1, Some(here()));
        assert_eq!(decide_with(&c, Liveness::Stopped), None);
        let c = Candidate {
            attempt: 3,
            ..candidate(NOW - 1, Some(here()))
        };
        let r = decide_with(&c, Liveness::Stopped).unwrap();
        assert_eq!(r.end, Some(End::Group(AGENT)));
        assert_eq!(
            (r.to_state(), r.class()),
            (JobState::Failed, "orch_stopped")
        );
        assert_eq!(r.decision(), Decision::Failed);
        // Stopped before its agent was recorded: the groups its children lead are ended.
        let mut c = candidate(NOW - 1, Some(here()));
        c.run.as_mut().unwrap().agent = None;
        let r = decide_with(&c, Liveness::Stopped).unwrap();
        assert_eq!(r.end, Some(End::ChildGroups(SUPERVISOR)));
    }

    #[test]
    fn a_run_from_an_earlier_boot_has_no_process_left() {
        let then = Place {
            boot_id: Some("boot-0".into()),
            ..here()
        };
        let r = decide(
            &candidate(NOW + LEASE, Some(then)),
            &here(),
            NOW,
            LEASE,
            &never,
        )
        .unwrap();
        assert_eq!((r.end, r.class()), (None, "orch_gone"));
        assert!(r.reason().starts_with("h1 restarted since run 11 began"));
    }

    #[test]
    fn a_lease_dated_beyond_its_length_is_expired() {
        let year = 365 * 86_400_000;
        let c = candidate(NOW + year, None);
        let r = decide(&c, &here(), NOW, LEASE, &never).unwrap();
        assert_eq!(
            r.why,
            Why::LeaseAhead {
                ahead_ms: year,
                length_ms: LEASE
            }
        );
        assert!(r.reason().contains("runs out in 365 d"), "{}", r.reason());
        // Within its length and the skew: good. Without a renewal time the setting is the length.
        let skewed = candidate(NOW + LEASE + clock::SKEW_MS, None);
        assert_eq!(decide(&skewed, &here(), NOW, LEASE, &never), None);
        let old = Candidate {
            lease_renewed_at: None,
            ..candidate(NOW + 2 * LEASE + clock::SKEW_MS, None)
        };
        assert!(decide(&old, &here(), NOW, LEASE, &never).is_some());
        assert_eq!(decide(&old, &here(), NOW, 2 * LEASE, &never), None);
    }
}
