-- The circuit breaker, one row per agent (written on its first counted run, claim probe or reset).
-- state: closed     claims pass; consecutive_failures counts transient failures in a row
--        open       claims exit 12 until opened_at + cooldown_ms, then it is half-open (by the
--                   clock alone: it never stays open without an operator)
--        half_open  a probe claim went through: probe_* name the job, worker and attempt holding
--                   the lease. The slot is taken while that lease lives; a probe whose lease ran
--                   out (or whose job was cancelled) frees it for the next claim.
CREATE TABLE breakers (
    agent                 TEXT    PRIMARY KEY,
    state                 TEXT    NOT NULL DEFAULT 'closed'
                          CHECK (state IN ('closed', 'open', 'half_open')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    opened_at             INTEGER,
    cooldown_ms           INTEGER NOT NULL DEFAULT 0,
    probe_job_id          INTEGER,
    probe_worker          TEXT,
    probe_attempt         INTEGER,
    probe_started_at      INTEGER,
    last_class            TEXT,
    last_run_id           INTEGER,
    updated_at            INTEGER NOT NULL
);

-- What finalize decided besides the decision itself, so finalizing again prints the same answer;
-- and the commit auto-commit made after an ok run.
ALTER TABLE agent_runs ADD COLUMN next_job_id INTEGER;
ALTER TABLE agent_runs ADD COLUMN retry_at INTEGER;
ALTER TABLE agent_runs ADD COLUMN commit_sha TEXT;

-- Runs awaiting finalize (tick's recovery pass after orch died between run and finalize).
CREATE INDEX agent_runs_unfinalized ON agent_runs (job_id) WHERE finalized_at IS NULL;
