//! Version control: git through its CLI, each command an argv through `git::Git`. `worktree`
//! gives each task a worktree and a branch of its own; `push` sends a branch to its remote with
//! the forge token, which `askpass` hands to git.

pub mod askpass;
pub mod git;
pub mod push;
pub mod worktree;
