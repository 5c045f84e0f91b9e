//! The preflight cache and the auth gate, keyed by (host, agent).

use std::path::PathBuf;

use crate::store::sql::{params, Db, OptionalExtension, Row};
use anyhow::Result;

use crate::store::{
    AuthGate, CachedVerdict, CredsFingerprint, GateHold, InvocationHold, InvocationHoldRequest,
    PreflightRow, PreflightState, Reset, UsageHold, UsageHoldRequest,
};

/// The fingerprint stored in the columns `{prefix}creds_path`, `…_size`, `…_mtime_ns`.
fn fingerprint(row: &Row, prefix: &str) -> crate::store::sql::Result<Option<CredsFingerprint>> {
    let path: Option<String> = row.get(format!("{prefix}creds_path").as_str())?;
    let size: Option<i64> = row.get(format!("{prefix}creds_size").as_str())?;
    let mtime_ns: Option<i64> = row.get(format!("{prefix}creds_mtime_ns").as_str())?;
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

/// The agent's cached verdict and auth gate on `host`, with one statement: the whole warm-cache
/// read.
pub(super) fn state(conn: &Db, host: &str, agent: &str) -> Result<PreflightState> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.created_at AS c_created_at, c.ok AS c_ok, c.exit_code AS c_exit_code,
                c.checks_json AS c_checks_json, c.agent_version AS c_agent_version,
                c.inputs AS c_inputs, c.creds_path AS c_creds_path, c.creds_size AS c_creds_size,
                c.creds_mtime_ns AS c_creds_mtime_ns, c.expires_at AS c_expires_at,
                g.created_at AS g_created_at, g.run_id AS g_run_id, g.reason AS g_reason,
                g.creds_path AS g_creds_path, g.creds_size AS g_creds_size,
                g.creds_mtime_ns AS g_creds_mtime_ns,
                u.until AS u_until, u.run_id AS u_run_id, u.reason AS u_reason,
                u.created_at AS u_created_at,
                i.created_at AS i_created_at, i.run_id AS i_run_id, i.reason AS i_reason,
                i.fix AS i_fix, i.inputs AS i_inputs
         FROM (SELECT ?1 AS host, ?2 AS agent) AS a
         LEFT JOIN preflight_cache AS c ON c.host = a.host AND c.agent = a.agent
         LEFT JOIN auth_gate AS g ON g.host = a.host AND g.agent = a.agent
         LEFT JOIN usage_holds AS u ON u.host = a.host AND u.agent = a.agent
         LEFT JOIN invocation_holds AS i ON i.host = a.host AND i.agent = a.agent",
    )?;
    let state = stmt.query_row(params![host, agent], |row| {
        let cached = match row.get::<_, Option<i64>>("c_created_at")? {
            None => None,
            Some(created_at) => Some(CachedVerdict {
                created_at,
                ok: row.get("c_ok")?,
                exit_code: row.get("c_exit_code")?,
                checks_json: row.get("c_checks_json")?,
                agent_version: row.get("c_agent_version")?,
                inputs: row.get("c_inputs")?,
                creds: fingerprint(row, "c_")?,
                expires_at: row.get("c_expires_at")?,
            }),
        };
        let gate = match row.get::<_, Option<i64>>("g_created_at")? {
            None => None,
            Some(created_at) => Some(AuthGate {
                created_at,
                run_id: row.get("g_run_id")?,
                reason: row.get("g_reason")?,
                creds: fingerprint(row, "g_")?,
            }),
        };
        let usage = match row.get::<_, Option<i64>>("u_until")? {
            None => None,
            Some(until) => Some(UsageHold {
                until,
                run_id: row.get("u_run_id")?,
                reason: row.get("u_reason")?,
                created_at: row.get("u_created_at")?,
            }),
        };
        let invocation = match row.get::<_, Option<i64>>("i_created_at")? {
            None => None,
            Some(created_at) => Some(InvocationHold {
                created_at,
                run_id: row.get("i_run_id")?,
                reason: row.get("i_reason")?,
                fix: row.get("i_fix")?,
                inputs: row.get("i_inputs")?,
            }),
        };
        Ok(PreflightState {
            cached,
            gate,
            usage,
            invocation,
        })
    })?;
    Ok(state)
}

pub(super) fn save(tx: &Db, host: &str, agent: &str, verdict: &CachedVerdict) -> Result<()> {
    let (path, size, mtime_ns) = fingerprint_columns(verdict.creds.as_ref());
    tx.prepare_cached(
        "INSERT INTO preflight_cache (host, agent, ok, exit_code, checks_json, agent_version, inputs,
                creds_path, creds_size, creds_mtime_ns, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (host, agent) DO UPDATE SET ok = excluded.ok, exit_code = excluded.exit_code,
                checks_json = excluded.checks_json, agent_version = excluded.agent_version,
                inputs = excluded.inputs, creds_path = excluded.creds_path,
                creds_size = excluded.creds_size, creds_mtime_ns = excluded.creds_mtime_ns,
                created_at = excluded.created_at, expires_at = excluded.expires_at",
    )?
    .execute(params![
        host,
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
    ])?;
    Ok(())
}

/// Drop cached verdicts inside the caller's transaction: on `host` (every host when None), of
/// `agent` (every agent when None).
pub(super) fn drop_cache(tx: &Db, host: Option<&str>, agent: Option<&str>) -> Result<usize> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM preflight_cache WHERE (?1 IS NULL OR host = ?1) AND (?2 IS NULL OR agent = ?2)",
        )?
        .execute(params![host, agent])?)
}

/// Hold the gate (see `Store::hold_auth_gate`) inside the caller's transaction.
pub(super) fn hold_gate(tx: &Db, gate: &GateHold, now: i64) -> Result<bool> {
    let (path, size, mtime_ns) = fingerprint_columns(gate.creds.as_ref());
    let changed = tx
        .prepare_cached(
            "INSERT INTO auth_gate (host, agent, run_id, reason, creds_path, creds_size,
                                    creds_mtime_ns, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (host, agent) DO UPDATE SET run_id = excluded.run_id,
                    reason = excluded.reason, creds_path = excluded.creds_path,
                    creds_size = excluded.creds_size, creds_mtime_ns = excluded.creds_mtime_ns,
                    created_at = excluded.created_at
             WHERE auth_gate.creds_path IS NOT excluded.creds_path
                OR auth_gate.creds_size IS NOT excluded.creds_size
                OR auth_gate.creds_mtime_ns IS NOT excluded.creds_mtime_ns",
        )?
        .execute(params![
            gate.host,
            gate.agent,
            gate.run_id,
            gate.reason,
            path,
            size,
            mtime_ns,
            now
        ])?;
    drop_cache(tx, Some(&gate.host), Some(&gate.agent))?;
    Ok(changed > 0)
}

/// Hold the agent on the host until `hold.until` inside the caller's transaction: a hold that
/// still stands is extended to the later of the two times and keeps its start. Returns whether
/// the agent was not held already (its alert is then raised).
pub(super) fn hold_usage(tx: &Db, hold: &UsageHoldRequest, now: i64) -> Result<bool> {
    let standing: Option<i64> = tx
        .prepare_cached("SELECT until FROM usage_holds WHERE host = ?1 AND agent = ?2")?
        .query_row(params![hold.host, hold.agent], |row| row.get("until"))
        .optional()?
        .filter(|until| *until > now);
    tx.prepare_cached(
        "INSERT INTO usage_holds (host, agent, until, reason, run_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (host, agent) DO UPDATE SET until = excluded.until, reason = excluded.reason,
                run_id = excluded.run_id,
                created_at = CASE WHEN ?7 <> 0 THEN usage_holds.created_at ELSE excluded.created_at END",
    )?
    .execute(params![
        hold.host,
        hold.agent,
        standing.map_or(hold.until, |until| until.max(hold.until)),
        hold.reason,
        hold.run_id,
        now,
        standing.is_some()
    ])?;
    Ok(standing.is_none())
}

/// Hold the agent on the host because it refused how orch called it, inside the caller's
/// transaction, and drop its cached verdict there. A hold already taken under the same settings
/// is kept as it was. Returns whether the agent was not held already under them (its alert is
/// then raised).
pub(super) fn hold_invocation(tx: &Db, hold: &InvocationHoldRequest, now: i64) -> Result<bool> {
    let changed = tx
        .prepare_cached(
            "INSERT INTO invocation_holds (host, agent, run_id, reason, fix, inputs, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (host, agent) DO UPDATE SET run_id = excluded.run_id,
                    reason = excluded.reason, fix = excluded.fix, inputs = excluded.inputs,
                    created_at = excluded.created_at
             WHERE invocation_holds.inputs IS NOT excluded.inputs",
        )?
        .execute(params![
            hold.host,
            hold.agent,
            hold.run_id,
            hold.reason,
            hold.fix,
            hold.inputs,
            now
        ])?;
    drop_cache(tx, Some(&hold.host), Some(&hold.agent))?;
    Ok(changed > 0)
}

/// The tables of what holds an agent on a host, each keyed by (host, agent).
const AUTH_GATE: &str = "auth_gate";
const USAGE_HOLDS: &str = "usage_holds";
const INVOCATION_HOLDS: &str = "invocation_holds";

/// Release `table`'s hold of the agent on `host`: only the one taken at `held_since`, not one
/// taken again since it was read.
fn release(tx: &Db, table: &str, host: &str, agent: &str, held_since: i64) -> Result<bool> {
    Ok(tx.execute(
        &format!("DELETE FROM {table} WHERE host = ?1 AND agent = ?2 AND created_at = ?3"),
        params![host, agent, held_since],
    )? > 0)
}

pub(super) fn release_invocation(
    tx: &Db,
    host: &str,
    agent: &str,
    held_since: i64,
) -> Result<bool> {
    release(tx, INVOCATION_HOLDS, host, agent, held_since)
}

pub(super) fn release_gate(tx: &Db, host: &str, agent: &str, held_since: i64) -> Result<bool> {
    release(tx, AUTH_GATE, host, agent, held_since)
}

pub(super) fn reset(tx: &Db, host: &str, agent: Option<&str>) -> Result<Reset> {
    let verdicts = drop_cache(tx, Some(host), agent)?;
    let lift = |table: &str| {
        tx.execute(
            &format!("DELETE FROM {table} WHERE host = ?1 AND (?2 IS NULL OR agent = ?2)"),
            params![host, agent],
        )
    };
    let gates = lift(AUTH_GATE)?;
    let usage_holds = lift(USAGE_HOLDS)?;
    let invocation_holds = lift(INVOCATION_HOLDS)?;
    Ok(Reset {
        verdicts,
        gates,
        usage_holds,
        invocation_holds,
    })
}

pub(super) fn cached_agent_version(conn: &Db, host: &str, agent: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT agent_version FROM preflight_cache WHERE host = ?1 AND agent = ?2")?
        .query_row(params![host, agent], |row| row.get("agent_version"))
        .optional()?
        .flatten())
}

/// Every agent with a cached verdict, a held auth gate, a standing usage hold or an invocation
/// hold on `host`.
pub(super) fn rows(conn: &Db, host: &str, now: i64) -> Result<Vec<PreflightRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.agent AS agent, c.ok AS ok, c.created_at AS created_at,
                c.expires_at AS expires_at, g.agent IS NOT NULL AS gate_held,
                u.until AS usage_until, i.reason AS invocation_reason
         FROM (SELECT agent FROM preflight_cache WHERE host = ?1
               UNION SELECT agent FROM auth_gate WHERE host = ?1
               UNION SELECT agent FROM usage_holds WHERE host = ?1 AND until > ?2
               UNION SELECT agent FROM invocation_holds WHERE host = ?1) AS a
         LEFT JOIN preflight_cache AS c ON c.host = ?1 AND c.agent = a.agent
         LEFT JOIN auth_gate AS g ON g.host = ?1 AND g.agent = a.agent
         LEFT JOIN usage_holds AS u ON u.host = ?1 AND u.agent = a.agent AND u.until > ?2
         LEFT JOIN invocation_holds AS i ON i.host = ?1 AND i.agent = a.agent
         ORDER BY a.agent",
    )?;
    let rows = stmt.query_map(params![host, now], |row| {
        Ok(PreflightRow {
            agent: row.get("agent")?,
            ok: row.get("ok")?,
            created_at: row.get("created_at")?,
            expires_at: row.get("expires_at")?,
            gate_held: row.get("gate_held")?,
            usage_until: row.get("usage_until")?,
            invocation_reason: row.get("invocation_reason")?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

pub(super) fn held_hosts(conn: &Db, now: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT host FROM auth_gate UNION SELECT host FROM usage_holds WHERE until > ?1 ORDER BY 1",
    )?;
    let hosts = stmt.query_map([now], |row| row.get(0))?;
    Ok(hosts.collect::<crate::store::sql::Result<_>>()?)
}
