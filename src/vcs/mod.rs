//! Version control: git through its CLI, each command an argv from `process::command`.

pub mod git;
