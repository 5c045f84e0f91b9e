//! Shell completion of the names the configuration defines: `--project`, `--stage`, `--agent`.
//! The shell asks `orch` itself (`COMPLETE=bash orch -- …`, see `orch completions`), so the names
//! are the ones configured now. A configuration that cannot be read completes nothing.

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::config::{Config, Overrides};

fn configured(names: impl FnOnce(&Config) -> Vec<String>) -> Vec<CompletionCandidate> {
    match Config::load(&Overrides::default()) {
        Ok(config) => names(&config)
            .into_iter()
            .map(CompletionCandidate::new)
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub fn projects() -> ArgValueCandidates {
    ArgValueCandidates::new(|| configured(|c| c.projects.keys().cloned().collect()))
}

pub fn stages() -> ArgValueCandidates {
    ArgValueCandidates::new(|| configured(|c| c.stages.clone()))
}

pub fn agents() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        configured(|c| c.agent_names().into_iter().map(str::to_string).collect())
    })
}

pub fn states() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        crate::domain::states::JobState::LISTED
            .iter()
            .map(|s| CompletionCandidate::new(s.as_str()))
            .collect()
    })
}
