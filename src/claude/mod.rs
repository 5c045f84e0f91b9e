//! Everything about Claude Code: its command line, the stage prompts, its stream-json output and
//! the markers of its failures.

pub mod argv;
pub mod markers;
pub mod prompt;
pub mod stream;
