//! The preflight cache and the auth gate.

use anyhow::Result;
use rusqlite::{params, OptionalExtension};

use super::Store;

impl Store {
    /// Drop cached preflight verdicts (one agent's, or all), so the next claim evaluates afresh.
    /// The auth gate is not touched: see `release_auth_gate`. Returns how many were dropped.
    pub fn reset_preflight(&mut self, agent: Option<&str>) -> Result<usize> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM preflight_cache WHERE ?1 IS NULL OR agent = ?1",
                params![agent],
            )?)
        })
    }

    /// The agent version the cached preflight verdict recorded, if there is one.
    pub fn cached_agent_version(&self, agent: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT agent_version FROM preflight_cache WHERE agent = ?1",
                [agent],
                |row| row.get(0),
            )
            .optional()?
            .flatten())
    }
}
