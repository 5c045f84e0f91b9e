//! Everything orch knows about Claude Code: the agent's environment and home, its credentials
//! file, its `--version` answer, its argv and prompts, and what its logs mean.

pub mod credentials;
pub mod env;
pub mod verdict;
pub mod version;

pub use env::{AgentEnv, Located};
