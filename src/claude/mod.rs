//! Everything orch knows about Claude Code: the agent's environment and home, its credentials
//! file, its `--version` answer, its command line and stage prompts, its stream-json output, and
//! what its logs mean.

pub mod argv;
pub mod credentials;
pub mod env;
pub mod prompt;
pub mod stream;
pub mod transcript;
pub mod verdict;
pub mod version;

pub use env::{AgentEnv, Located};
