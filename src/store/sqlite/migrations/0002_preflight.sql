-- The preflight verdict per agent, shared by every process on this database.
CREATE TABLE preflight_cache (
    agent            TEXT    PRIMARY KEY,
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
    expires_at       INTEGER NOT NULL
);

-- An auth failure seen in a run holds the gate shut until the credentials file changes or an
-- operator runs `orch reset-cache`, whatever the cache says.
CREATE TABLE auth_gate (
    agent            TEXT    PRIMARY KEY,
    run_id           INTEGER,
    reason           TEXT    NOT NULL,
    creds_path       TEXT,
    creds_size       INTEGER,
    creds_mtime_ns   INTEGER,
    created_at       INTEGER NOT NULL
);
