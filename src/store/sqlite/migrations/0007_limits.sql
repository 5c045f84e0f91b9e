-- Limits: usage holds, budgets, stalls, resumed sessions.
--
-- A job may now wait in state `over_budget` (its task or its project is over the budget the
-- configuration sets). SQLite cannot change a CHECK constraint in place, so the jobs table is
-- rebuilt the documented way (the runner applies migrations with foreign keys off and checks
-- them after).
CREATE TABLE jobs_new (
    id                INTEGER PRIMARY KEY,
    task_id           INTEGER NOT NULL REFERENCES tasks(id),
    project           TEXT    NOT NULL,
    stage             TEXT    NOT NULL,
    state             TEXT    NOT NULL
                      CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'over_budget')),
    priority          INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    run_after         INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    last_class        TEXT,
    last_reason       TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    lease_renewed_at  INTEGER
);
INSERT INTO jobs_new (id, task_id, project, stage, state, priority, attempt, max_attempts,
                      run_after, lease_owner, lease_expires_at, last_class, last_reason,
                      created_at, updated_at, lease_renewed_at)
SELECT id, task_id, project, stage, state, priority, attempt, max_attempts, run_after,
       lease_owner, lease_expires_at, last_class, last_reason, created_at, updated_at,
       lease_renewed_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_queue ON jobs (project, priority DESC, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running ON jobs (project) WHERE state = 'running';
CREATE INDEX jobs_task ON jobs (task_id);
CREATE INDEX jobs_lease_renewed ON jobs (lease_renewed_at) WHERE state = 'running';
-- The claim looks at jobs waiting for budget before it claims.
CREATE INDEX jobs_over_budget ON jobs (project) WHERE state = 'over_budget';

-- How a run ended besides its exit: orch ended it because its log stopped growing; the session
-- it continued (`--resume`); what it cost as its log said (budgets add this up).
ALTER TABLE agent_runs ADD COLUMN stalled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_runs ADD COLUMN resumed_session TEXT;
ALTER TABLE agent_runs ADD COLUMN cost_usd REAL;

-- Runs finalized before orch kept their cost have it in their usage.
UPDATE agent_runs SET cost_usd = max(json_extract(usage_json, '$.cost_usd'), 0)
WHERE usage_json IS NOT NULL AND json_valid(usage_json)
  AND json_type(usage_json, '$.cost_usd') IN ('integer', 'real');

-- What a task's runs cost so far (kept by finalize, so a claim reads one row), and what an
-- operator added to its budget (`orch retry JOB --raise-budget USD`).
ALTER TABLE tasks ADD COLUMN spent_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN budget_extra_usd REAL NOT NULL DEFAULT 0;
UPDATE tasks SET spent_usd = (
    SELECT total(r.cost_usd) FROM agent_runs r JOIN jobs j ON j.id = r.job_id
    WHERE j.task_id = tasks.id
);

-- What each project's runs cost per day (UTC; `day` is its first millisecond), by the day they
-- were finalized, kept by finalize so a claim reads one row; and what an operator added to the
-- project's daily budget for that day.
CREATE TABLE project_days (
    project    TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    spent_usd  REAL    NOT NULL DEFAULT 0,
    extra_usd  REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (project, day)
);
INSERT INTO project_days (project, day, spent_usd)
SELECT j.project, r.finalized_at - (r.finalized_at % 86400000), total(r.cost_usd)
FROM agent_runs r JOIN jobs j ON j.id = r.job_id
WHERE r.finalized_at IS NOT NULL AND r.cost_usd IS NOT NULL
GROUP BY 1, 2;

-- An agent over its account's usage limit, per host: claims for it wait until `until` (the time
-- the agent said the limit resets), then the hold lifts by itself.
CREATE TABLE usage_holds (
    host        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    until       INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    run_id      INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (host, agent)
);
