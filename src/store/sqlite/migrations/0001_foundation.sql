-- Tasks: one per (project, key); a task walks the pipeline one job per stage.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    project     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    title       TEXT    NOT NULL DEFAULT '',
    body        TEXT    NOT NULL DEFAULT '',
    issue       INTEGER,
    state       TEXT    NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'complete', 'failed', 'cancelled')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (project, key)
);

-- Jobs: one stage of one task. `attempt` counts the attempts started (claims), 1-based once claimed.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    task_id           INTEGER NOT NULL REFERENCES tasks(id),
    project           TEXT    NOT NULL,
    stage             TEXT    NOT NULL,
    state             TEXT    NOT NULL
                      CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    priority          INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    run_after         INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    last_class        TEXT,
    last_reason       TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- The claim walks this index per project, in claim order.
CREATE INDEX jobs_queue ON jobs (project, priority DESC, run_after, id) WHERE state = 'queued';
-- Lease rescue probes the expired end of this; per-project running counts read the other.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running ON jobs (project) WHERE state = 'running';
CREATE INDEX jobs_task ON jobs (task_id);

-- Every transition: who, when, why.
CREATE TABLE job_history (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs(id),
    at          INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX job_history_job ON job_history (job_id, id);

-- One row per launch of the agent. `exit_code` is exactly what the process returned (NULL when it
-- was ended by a signal or never started) and is never rewritten; the verdict lives beside it.
CREATE TABLE agent_runs (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES jobs(id),
    attempt         INTEGER NOT NULL,
    worker          TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    agent_version   TEXT,
    pid             INTEGER,
    started_at      INTEGER NOT NULL,
    ended_at        INTEGER,
    duration_ms     INTEGER,
    exit_code       INTEGER,
    signal          INTEGER,
    timed_out       INTEGER NOT NULL DEFAULT 0,
    interrupted     INTEGER NOT NULL DEFAULT 0,
    launch_error    TEXT,
    log_path        TEXT,
    log_bytes       INTEGER NOT NULL DEFAULT 0,
    log_truncated   INTEGER NOT NULL DEFAULT 0,
    result_ok       INTEGER,
    class           TEXT,
    reason          TEXT,
    usage_json      TEXT,
    decision        TEXT,
    finalized_at    INTEGER
);
CREATE INDEX agent_runs_job ON agent_runs (job_id, id);
