-- The preflight verdict per agent, shared by every process on this database.
CREATE TABLE preflight_cache (
    agent            TEXT    PRIMARY KEY,
    ok               INTEGER NOT NULL,
    exit_code        INTEGER NOT NULL,
    checks_json      TEXT    NOT NULL,
    agent_version    TEXT,
    -- The credentials file as it was when the verdict was made: a change drops the verdict.
    creds_path       TEXT,
    creds_size       INTEGER,
    creds_mtime_ns   INTEGER,
    created_at       INTEGER NOT NULL,
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
