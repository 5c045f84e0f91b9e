//! The states the store keeps, as types: a job's, a task's, an outbox message's, and the kinds of
//! outbox message. Each is one list of names: the enum, its `as_str`/`from_name`, its serde form
//! (the JSON names `--json` prints) and `NAMES` all come from it, and every backend's schema
//! checks its column against `NAMES` (the SQLite backend has a test that reads its CHECK
//! constraints back and compares), so code and database cannot drift apart.

/// One enum per list of state names: `as_str`, `from_name`, `ALL`, `NAMES`, `Display`,
/// `FromStr`, and serde as the same names.
macro_rules! states {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in the order of the schema's list.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];
            /// Every name, in the same order: what the schema's CHECK constraint admits.
            pub const NAMES: &'static [&'static str] = &[$($text,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(name: &str) -> Result<$name, String> {
                $name::from_name(name).ok_or_else(|| {
                    format!(
                        "not a {}: {name:?} (expected one of {})",
                        stringify!($name),
                        $name::NAMES.join(", ")
                    )
                })
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
pub(crate) use states;

states! {
    /// Where a job stands. `queued`, `running`, `over_budget` and `awaiting_approval` are live: a
    /// task has at most one live job.
    pub enum JobState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        Failed = "failed",
        Cancelled = "cancelled",
        /// Waiting because its task or its project is over the budget the configuration sets;
        /// queued again when that changes (or `orch retry JOB --raise-budget USD`).
        OverBudget = "over_budget",
        /// Waiting for a person (`[stages.NAME] approve`): `orch approve` makes it due, `orch
        /// reject` sends the previous stage back.
        AwaitingApproval = "awaiting_approval",
    }
}

impl JobState {
    /// The states listings show live jobs in, the running first.
    pub const LIVE: &'static [JobState] = &[
        JobState::Running,
        JobState::Queued,
        JobState::OverBudget,
        JobState::AwaitingApproval,
    ];
    /// Every state in the order listings show them: live first, then finished.
    pub const LISTED: &'static [JobState] = &[
        JobState::Running,
        JobState::Queued,
        JobState::OverBudget,
        JobState::AwaitingApproval,
        JobState::Done,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// Queued, running or over budget: the task's one job that is not finished.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            JobState::Queued
                | JobState::Running
                | JobState::OverBudget
                | JobState::AwaitingApproval
        )
    }
}

states! {
    /// Where a task stands: active while a job of it is live or may be queued, then as its last
    /// job ended.
    pub enum TaskState {
        Active = "active",
        Complete = "complete",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl TaskState {
    /// The states of a task none of whose jobs will run again: what retention may remove.
    pub const FINISHED: &'static [TaskState] =
        &[TaskState::Complete, TaskState::Failed, TaskState::Cancelled];
}

states! {
    /// Where an outbox message stands (see the store's outbox module).
    pub enum OutboxState {
        /// Waiting for its due time (or for its destination to be configured).
        Pending = "pending",
        /// Claimed by one notify process until its claim runs out.
        Sending = "sending",
        Sent = "sent",
        /// Gave up; `orch notify --retry-dead` revives it.
        Dead = "dead",
        /// An alert delivered as part of another ("… and N more").
        Folded = "folded",
    }
}

impl OutboxState {
    /// Waiting to be delivered: pending, or being sent right now.
    pub fn is_waiting(self) -> bool {
        matches!(self, OutboxState::Pending | OutboxState::Sending)
    }
}

states! {
    /// What an outbox message is, and so where it goes.
    pub enum MessageKind {
        /// For the operator (Telegram).
        Alert = "alert",
        /// A usage comment on the task's issue (the project's forge).
        Comment = "comment",
        /// Open (or adopt) the task's pull request and bring its body up to date (the
        /// project's forge).
        PullRequest = "pull_request",
        /// Give the task's issue the state label its task calls for (the project's forge).
        IssueLabel = "issue_label",
        /// Merge the task's pull request once CI is green (`merge = "after_last_stage"`).
        Merge = "merge",
    }
}

states! {
    /// A pull request's state on its forge, as orch last saw it.
    pub enum PrState {
        Open = "open",
        Closed = "closed",
        Merged = "merged",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for state in JobState::ALL {
            assert_eq!(JobState::from_name(state.as_str()), Some(*state));
            assert_eq!(
                serde_json::to_string(state).unwrap(),
                format!("\"{state}\"")
            );
            let back: JobState = serde_json::from_str(&format!("\"{state}\"")).unwrap();
            assert_eq!(back, *state);
        }
        for state in OutboxState::ALL {
            assert_eq!(state.as_str().parse::<OutboxState>(), Ok(*state));
        }
        assert_eq!(
            TaskState::NAMES,
            ["active", "complete", "failed", "cancelled"]
        );
        assert_eq!(
            MessageKind::NAMES,
            ["alert", "comment", "pull_request", "issue_label", "merge"]
        );
        assert!("queud".parse::<JobState>().unwrap_err().contains("queued"));
    }

    #[test]
    fn listings_name_every_state_once() {
        let mut listed: Vec<JobState> = JobState::LISTED.to_vec();
        listed.sort();
        let mut all = JobState::ALL.to_vec();
        all.sort();
        assert_eq!(listed, all);
        assert!(JobState::LIVE.iter().all(|s| s.is_live()));
        assert_eq!(JobState::ALL.iter().filter(|s| s.is_live()).count(), 4);
    }
}
