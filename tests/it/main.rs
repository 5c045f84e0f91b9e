//! The integration tests: one binary (the way just and ripgrep build theirs), a module per area,
//! `support` holding the harness every module shares. Each test runs the real `orch` binary in a
//! temporary world of its own.

mod support;

mod agents;
mod bad_input;
mod bounded;
mod chaos;
mod claim;
mod color;
mod conformance;
mod docs;
mod docs_fresh;
mod enqueue;
mod faults;
mod finalize;
mod first_hour;
mod forge;
mod fuzz;
mod gates;
mod hosts;
mod intake;
mod limits;
mod logs;
mod metrics;
mod notify;
mod postgres;
mod preflight;
mod pull_requests;
mod retention;
mod run;
mod security;
mod store;
mod tick;
mod usage;
mod validate_log;
