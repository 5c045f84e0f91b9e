//! Everything orch knows about Claude Code: the agent's environment and home, its credentials
//! file, its `--version` answer.

pub mod credentials;
pub mod env;
pub mod version;

pub use env::{AgentEnv, Located};
