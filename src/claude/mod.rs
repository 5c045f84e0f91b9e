//! Everything about Claude Code: its credentials, version, argv, and what its logs mean.

pub mod verdict;
