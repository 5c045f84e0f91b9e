//! The use cases the commands call, one file each: claim a job, run it, finalize its run,
//! preflight an agent, and the tick that chains them. Each decides with the pure code of
//! `domain` and acts through the seams (`store`, `claude`, `vcs`, `notify`).

pub mod branches;
pub mod ci;
pub mod claim;
pub mod copy;
pub mod finalize;
pub mod preflight;
pub mod prune;
pub mod run;
pub mod sync;
pub mod tick;
