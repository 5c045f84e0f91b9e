//! Pure code, no I/O: the verdict's vocabulary (`verdict`), what a run's outcome means for its job
//! (`decide`), a task's branch name (`branch`), the circuit breaker's state machine, budgets, the
//! rescue policy, the rule for times from the
//! future, backoff, the kinds of agent, the stage prompts, and the typed states the store keeps
//! (`states`). Everything here is a function of its inputs, unit-tested beside it, so every store
//! backend, every agent and every command decides the same way.

pub mod agent;
pub mod approval;
pub mod backoff;
pub mod branch;
pub mod breaker;
pub mod budget;
pub mod ci;
pub mod clock;
pub mod decide;
pub mod intake;
pub mod price;
pub mod prompt;
pub mod rescue;
pub mod retention;
pub mod states;
pub mod usage;
pub mod verdict;
