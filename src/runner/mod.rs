//! Agent-neutral supervision of a running agent: its process (own group, output on one pipe),
//! the capped log it writes, the signals orch passes on, the live status line, and the loop that
//! watches it all. `app::run` drives these for one job.

pub(crate) mod log;
pub(crate) mod process;
pub(crate) mod signals;
pub(crate) mod status;
pub(crate) mod supervise;
