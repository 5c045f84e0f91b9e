//! Pure code, no I/O: what a run's outcome means for its job (`decide`), the circuit breaker's
//! state machine, the rescue policy, the rule for times from the future, backoff, and the typed
//! states the store keeps (`states`). Everything here is a function of its inputs, unit-tested
//! beside it, so every store backend and every command decides the same way.

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod decide;
pub mod rescue;
pub mod states;
