//! orch: run AI coding agents unattended on a shared SQLite queue of jobs.
//!
//! `main` parses the command line and calls `run`. Dependencies run one way: `commands` (one
//! file per subcommand) → `app` (the use cases) → `domain` (pure decisions) and the seams
//! (`store`, `agent`, `vcs`, `notify`) → the helpers (`process`, `redact`, `output`, `fsx`,
//! `procfs`, `secrets`). ARCHITECTURE.md draws the map.

pub mod agent;
pub mod app;
pub mod cli;
pub mod commands;
pub mod complete;
pub mod config;
pub mod domain;
pub mod exit;
pub mod forge;
pub mod fsx;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod process;
pub mod procfs;
pub mod redact;
pub mod runner;
pub mod secrets;
pub mod store;
pub mod suggest;
pub mod vcs;

use anyhow::Result;

use crate::cli::{Cli, GlobalArgs};
use crate::config::Config;
use crate::output::Paint;
use crate::store::Store;

/// What every command gets: the global flags and the effective configuration.
pub struct Ctx {
    pub global: GlobalArgs,
    pub config: Config,
}

impl Ctx {
    /// The store this configuration names, open and migrated.
    pub fn store(&self) -> Result<Box<dyn Store>> {
        store::open(&store::Options {
            location: &self.config.db(),
            busy_timeout_ms: self.config.count(config::BUSY_TIMEOUT_MS),
            host: &self.config.host(),
        })
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    pub fn paint(&self) -> Paint {
        let choice = self.config.text(config::COLOR).unwrap_or("auto");
        Paint {
            color: output::use_color(choice, self.global.json),
        }
    }

    /// Who an operator's command is recorded as in job history.
    pub fn operator(&self) -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .map_or_else(|| "operator".to_string(), |user| format!("operator:{user}"))
    }
}

/// Run one subcommand; Ok carries the exit status (0, or a documented non-error status like 3).
pub fn run(cli: Cli) -> Result<u8> {
    let config = Config::load(&cli.global.overrides())?;
    // Still one thread: the configuration's extra secret variables leave the environment now.
    secrets::scrub_names(&config.secret_env);
    store::set_clock_ahead(config.millis(config::CLOCK_AHEAD_SECONDS));
    if let Some(color) = config.get(config::COLOR) {
        if !output::is_color_choice(&color.value) {
            return Err(exit::config(format!(
                "color: expected auto, always or never, got {:?}",
                color.value
            )));
        }
    }
    if let Some(missing) = config.get(config::CI_MISSING) {
        if !matches!(missing.value.as_str(), "pass" | "fail") {
            return Err(exit::config(format!(
                "{}: expected pass or fail, got {:?}",
                config::CI_MISSING.origin(missing.source),
                missing.value
            )));
        }
    }
    let ctx = Ctx {
        global: cli.global,
        config,
    };
    commands::dispatch(&ctx, cli.command)
}
