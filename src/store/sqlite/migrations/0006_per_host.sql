-- Per-host facts keyed by host. The preflight cache and the auth gate describe one machine's
-- agent binary and credentials file, so when several hosts share one queue each keeps its own
-- verdict and its own gate: both are keyed by (host, agent). The rows already here were written
-- on the machine applying this migration (a SQLite database is local to its host), so they are
-- filed under its name (`temp.migration_context`, filled by the code that applies migrations).
CREATE TABLE preflight_cache_by_host (
    host             TEXT    NOT NULL,
    agent            TEXT    NOT NULL,
    ok               INTEGER NOT NULL,
    exit_code        INTEGER NOT NULL,
    -- Every check with its status, reason and evidence (never a token).
    checks_json      TEXT    NOT NULL,
    agent_version    TEXT,
    -- What the verdict was made from (binary, credentials path, auth settings): a verdict made
    -- under other settings is not served.
    inputs           TEXT    NOT NULL,
    -- The credentials file as it was when the verdict was made: a change drops the verdict.
    creds_path       TEXT,
    creds_size       INTEGER,
    creds_mtime_ns   INTEGER,
    created_at       INTEGER NOT NULL,
    -- created_at + the TTL, or earlier: a pass never outlives the access token it saw.
    expires_at       INTEGER NOT NULL,
    PRIMARY KEY (host, agent)
);
INSERT INTO preflight_cache_by_host
SELECT (SELECT host FROM temp.migration_context), agent, ok, exit_code, checks_json,
       agent_version, inputs, creds_path, creds_size, creds_mtime_ns, created_at, expires_at
FROM preflight_cache;
DROP TABLE preflight_cache;
ALTER TABLE preflight_cache_by_host RENAME TO preflight_cache;

-- An auth failure seen in a run on a host holds that host's gate shut until its credentials
-- file changes or an operator runs `orch reset-cache` there, whatever the cache says.
CREATE TABLE auth_gate_by_host (
    host             TEXT    NOT NULL,
    agent            TEXT    NOT NULL,
    run_id           INTEGER,
    reason           TEXT    NOT NULL,
    creds_path       TEXT,
    creds_size       INTEGER,
    creds_mtime_ns   INTEGER,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (host, agent)
);
INSERT INTO auth_gate_by_host
SELECT (SELECT host FROM temp.migration_context), agent, run_id, reason, creds_path, creds_size,
       creds_mtime_ns, created_at
FROM auth_gate;
DROP TABLE auth_gate;
ALTER TABLE auth_gate_by_host RENAME TO auth_gate;

-- The run's result text, stored at finalize (capped as a prompt takes it): the next stage's
-- `{previous_result}` comes from here, not from a log that may live on another host. NULL for a
-- run with no log to judge, and for runs finalized before this migration (their log is read).
ALTER TABLE agent_runs ADD COLUMN result_text TEXT;

-- The finalize lock, held by one finalizer of the run (its place, pid and start time) until
-- `finalizing_until`: judging the log and auto-committing happen before finalize's transaction,
-- and this keeps a second finalizer, on any host, from doing them again. Cleared when the run
-- is finalized or the finalizer lets go; a holder that died leaves it to run out.
ALTER TABLE agent_runs ADD COLUMN finalizing_by TEXT;
ALTER TABLE agent_runs ADD COLUMN finalizing_until INTEGER;
