//! The preflight cache and the auth gate.
//!
//! The cache holds one verdict per agent, shared by every process on the database. The gate is
//! held when a run shows the agent is not authenticated; preflight fails while it is held and the
//! credentials file is unchanged since, and `orch reset-cache` releases it.

use std::path::PathBuf;

use anyhow::Result;
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::Store;
use crate::agent::CredsFingerprint;

/// A verdict as stored.
#[derive(Debug, Clone)]
pub struct CachedVerdict {
    pub ok: bool,
    pub exit_code: u8,
    pub checks_json: String,
    pub agent_version: Option<String>,
    /// What the verdict was made from; one made under other settings is not served.
    pub inputs: String,
    pub creds: Option<CredsFingerprint>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A held auth gate.
#[derive(Debug, Clone)]
pub struct AuthGate {
    pub run_id: Option<i64>,
    pub reason: String,
    pub creds: Option<CredsFingerprint>,
    pub created_at: i64,
}

/// Everything preflight needs to know about one agent, read with one statement.
#[derive(Debug, Default)]
pub struct PreflightState {
    pub cached: Option<CachedVerdict>,
    pub gate: Option<AuthGate>,
}

/// What `reset_preflight` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reset {
    pub verdicts: usize,
    pub gates: usize,
}

fn fingerprint_at(row: &Row, at: usize) -> rusqlite::Result<Option<CredsFingerprint>> {
    let path: Option<String> = row.get(at)?;
    let size: Option<i64> = row.get(at + 1)?;
    let mtime_ns: Option<i64> = row.get(at + 2)?;
    Ok(match (path, size, mtime_ns) {
        (Some(path), Some(size), Some(mtime_ns)) => Some(CredsFingerprint {
            path: PathBuf::from(path),
            size,
            mtime_ns,
        }),
        _ => None,
    })
}

fn fingerprint_columns(
    creds: Option<&CredsFingerprint>,
) -> (Option<String>, Option<i64>, Option<i64>) {
    match creds {
        Some(f) => (
            Some(f.path.display().to_string()),
            Some(f.size),
            Some(f.mtime_ns),
        ),
        None => (None, None, None),
    }
}

impl Store {
    /// The agent's cached verdict and auth gate, whichever exist: the whole warm-cache read.
    pub fn preflight_state(&self, agent: &str) -> Result<PreflightState> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.created_at, c.ok, c.exit_code, c.checks_json, c.agent_version, c.inputs,
                    c.creds_path, c.creds_size, c.creds_mtime_ns, c.expires_at,
                    g.created_at, g.run_id, g.reason, g.creds_path, g.creds_size, g.creds_mtime_ns
             FROM (SELECT ?1 AS agent) AS a
             LEFT JOIN preflight_cache AS c ON c.agent = a.agent
             LEFT JOIN auth_gate AS g ON g.agent = a.agent",
        )?;
        let state = stmt.query_row([agent], |row| {
            let cached = match row.get::<_, Option<i64>>(0)? {
                None => None,
                Some(created_at) => Some(CachedVerdict {
                    created_at,
                    ok: row.get(1)?,
                    exit_code: row.get(2)?,
                    checks_json: row.get(3)?,
                    agent_version: row.get(4)?,
                    inputs: row.get(5)?,
                    creds: fingerprint_at(row, 6)?,
                    expires_at: row.get(9)?,
                }),
            };
            let gate = match row.get::<_, Option<i64>>(10)? {
                None => None,
                Some(created_at) => Some(AuthGate {
                    created_at,
                    run_id: row.get(11)?,
                    reason: row.get(12)?,
                    creds: fingerprint_at(row, 13)?,
                }),
            };
            Ok(PreflightState { cached, gate })
        })?;
        Ok(state)
    }

    /// Store (or replace) the agent's verdict.
    pub fn save_preflight(&mut self, agent: &str, verdict: &CachedVerdict) -> Result<()> {
        let (path, size, mtime_ns) = fingerprint_columns(verdict.creds.as_ref());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO preflight_cache (agent, ok, exit_code, checks_json, agent_version, inputs,
                        creds_path, creds_size, creds_mtime_ns, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (agent) DO UPDATE SET ok = excluded.ok, exit_code = excluded.exit_code,
                        checks_json = excluded.checks_json, agent_version = excluded.agent_version,
                        inputs = excluded.inputs, creds_path = excluded.creds_path,
                        creds_size = excluded.creds_size, creds_mtime_ns = excluded.creds_mtime_ns,
                        created_at = excluded.created_at, expires_at = excluded.expires_at",
                params![
                    agent,
                    verdict.ok,
                    verdict.exit_code,
                    verdict.checks_json,
                    verdict.agent_version,
                    verdict.inputs,
                    path,
                    size,
                    mtime_ns,
                    verdict.created_at,
                    verdict.expires_at
                ],
            )?;
            Ok(())
        })
    }

    /// Release the agent's gate because its credentials file changed: only the gate that was
    /// read (`held_since`), not one a run has held again since. Returns whether it was released.
    pub fn release_auth_gate(&mut self, agent: &str, held_since: i64) -> Result<bool> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM auth_gate WHERE agent = ?1 AND created_at = ?2",
                params![agent, held_since],
            )? > 0)
        })
    }

    /// `orch reset-cache`: drop cached verdicts and release auth gates, one agent's or all, so
    /// the next claim evaluates afresh.
    pub fn reset_preflight(&mut self, agent: Option<&str>) -> Result<Reset> {
        self.write(|tx| {
            let verdicts = drop_preflight_cache(tx, agent)?;
            let gates = tx.execute(
                "DELETE FROM auth_gate WHERE ?1 IS NULL OR agent = ?1",
                params![agent],
            )?;
            Ok(Reset { verdicts, gates })
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

/// Drop cached verdicts (one agent's, or all) inside the caller's transaction.
pub fn drop_preflight_cache(tx: &Transaction, agent: Option<&str>) -> Result<usize> {
    Ok(tx.execute(
        "DELETE FROM preflight_cache WHERE ?1 IS NULL OR agent = ?1",
        params![agent],
    )?)
}

/// Hold the agent's auth gate because run `run_id` showed it is not authenticated, inside the
/// caller's transaction (finalize's), and drop its cached verdict. `creds` is the credentials
/// file's fingerprint now (None when it is missing): the gate opens when it changes. A gate
/// already held for the same file is kept as it was. Returns whether the gate was newly held.
pub fn hold_auth_gate(
    tx: &Transaction,
    agent: &str,
    run_id: i64,
    reason: &str,
    creds: Option<&CredsFingerprint>,
    now: i64,
) -> Result<bool> {
    let (path, size, mtime_ns) = fingerprint_columns(creds);
    let changed = tx.execute(
        "INSERT INTO auth_gate (agent, run_id, reason, creds_path, creds_size, creds_mtime_ns, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (agent) DO UPDATE SET run_id = excluded.run_id, reason = excluded.reason,
                creds_path = excluded.creds_path, creds_size = excluded.creds_size,
                creds_mtime_ns = excluded.creds_mtime_ns, created_at = excluded.created_at
         WHERE creds_path IS NOT excluded.creds_path OR creds_size IS NOT excluded.creds_size
            OR creds_mtime_ns IS NOT excluded.creds_mtime_ns",
        params![agent, run_id, reason, path, size, mtime_ns, now],
    )?;
    drop_preflight_cache(tx, Some(agent))?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;

    fn verdict(ok: bool, creds: Option<CredsFingerprint>) -> CachedVerdict {
        CachedVerdict {
            ok,
            exit_code: if ok { 0 } else { 11 },
            checks_json: "[]".to_string(),
            agent_version: Some("2.1.197".to_string()),
            inputs: "x".to_string(),
            creds,
            created_at: 1_000,
            expires_at: 301_000,
        }
    }

    fn creds(size: i64) -> CredsFingerprint {
        CredsFingerprint {
            path: PathBuf::from("/home/a/.claude/.credentials.json"),
            size,
            mtime_ns: 42,
        }
    }

    #[test]
    fn one_read_sees_cache_and_gate() {
        let (_dir, mut store) = store();
        let state = store.preflight_state("claude").unwrap();
        assert!(state.cached.is_none() && state.gate.is_none());
        store
            .save_preflight("claude", &verdict(true, Some(creds(10))))
            .unwrap();
        store
            .save_preflight("other", &verdict(false, None))
            .unwrap();
        let state = store.preflight_state("claude").unwrap();
        let cached = state.cached.unwrap();
        assert!(cached.ok);
        assert_eq!(cached.creds, Some(creds(10)));
        assert!(state.gate.is_none());
        assert_eq!(
            store
                .preflight_state("other")
                .unwrap()
                .cached
                .unwrap()
                .creds,
            None
        );
    }

    #[test]
    fn holding_the_gate_drops_the_cache_and_is_idempotent_per_file() {
        let (_dir, mut store) = store();
        store
            .save_preflight("claude", &verdict(true, Some(creds(10))))
            .unwrap();
        let first = store
            .write(|tx| hold_auth_gate(tx, "claude", 7, "Not logged in", Some(&creds(10)), 5_000))
            .unwrap();
        assert!(first);
        let state = store.preflight_state("claude").unwrap();
        assert!(state.cached.is_none());
        let gate = state.gate.unwrap();
        assert_eq!((gate.run_id, gate.created_at), (Some(7), 5_000));
        let again = store
            .write(|tx| hold_auth_gate(tx, "claude", 8, "Not logged in", Some(&creds(10)), 6_000))
            .unwrap();
        assert!(!again, "same file: the first gate stays");
        assert_eq!(
            store
                .preflight_state("claude")
                .unwrap()
                .gate
                .unwrap()
                .run_id,
            Some(7)
        );
        let changed = store
            .write(|tx| hold_auth_gate(tx, "claude", 9, "Not logged in", Some(&creds(11)), 7_000))
            .unwrap();
        assert!(changed, "a new file that fails again holds the gate anew");
        assert!(!store.release_auth_gate("claude", 5_000).unwrap());
        assert!(store.release_auth_gate("claude", 7_000).unwrap());
        assert!(store.preflight_state("claude").unwrap().gate.is_none());
    }

    #[test]
    fn reset_is_per_agent_or_all() {
        let (_dir, mut store) = store();
        for agent in ["a", "b"] {
            store.save_preflight(agent, &verdict(true, None)).unwrap();
            store
                .write(|tx| hold_auth_gate(tx, agent, 1, "x", None, 1))
                .unwrap();
            store.save_preflight(agent, &verdict(true, None)).unwrap();
        }
        assert_eq!(
            store.reset_preflight(Some("a")).unwrap(),
            Reset {
                verdicts: 1,
                gates: 1
            }
        );
        assert!(store.preflight_state("b").unwrap().cached.is_some());
        assert_eq!(
            store.reset_preflight(None).unwrap(),
            Reset {
                verdicts: 1,
                gates: 1
            }
        );
    }
}
