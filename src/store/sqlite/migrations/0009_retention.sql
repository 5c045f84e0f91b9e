-- Years of history: what `orch status`, `orch metrics` and `orch tick` read stays the same size
-- however many jobs have finished, and `orch prune` can remove finished tasks without losing
-- their totals.
--
-- Counters and rollups are kept by triggers, so every move of a job, outbox message or run is
-- counted in the transaction that makes it, whichever code path makes it. Rows are never
-- deleted from them: `orch prune` deletes only finished jobs, delivered messages and finalized
-- runs, and what they counted stays counted (the totals of finished work are totals since the
-- database was made). A migration that rebuilds `jobs`, `outbox` or `agent_runs` drops the
-- triggers on it and must create them again.

-- Jobs by project, stage and state.
CREATE TABLE job_counts (
    project  TEXT    NOT NULL,
    stage    TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    jobs     INTEGER NOT NULL,
    PRIMARY KEY (project, stage, state)
) WITHOUT ROWID;
INSERT INTO job_counts (project, stage, state, jobs)
SELECT project, stage, state, count(*) FROM jobs GROUP BY project, stage, state;

-- Every change of a job's state, by the two states (a requeue is running → queued).
CREATE TABLE job_moves (
    from_state  TEXT    NOT NULL,
    to_state    TEXT    NOT NULL,
    moves       INTEGER NOT NULL,
    PRIMARY KEY (from_state, to_state)
) WITHOUT ROWID;
INSERT INTO job_moves (from_state, to_state, moves)
SELECT from_state, to_state, count(*) FROM job_history
WHERE from_state IS NOT NULL AND from_state <> to_state
GROUP BY from_state, to_state;

CREATE TRIGGER jobs_counted AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_counts (project, stage, state, jobs) VALUES (NEW.project, NEW.stage, NEW.state, 1)
    ON CONFLICT (project, stage, state) DO UPDATE SET jobs = jobs + 1;
END;

CREATE TRIGGER jobs_moved AFTER UPDATE OF state, stage ON jobs
WHEN OLD.state IS NOT NEW.state OR OLD.stage IS NOT NEW.stage
BEGIN
    UPDATE job_counts SET jobs = jobs - 1
    WHERE project = OLD.project AND stage = OLD.stage AND state = OLD.state;
    INSERT INTO job_counts (project, stage, state, jobs) VALUES (NEW.project, NEW.stage, NEW.state, 1)
    ON CONFLICT (project, stage, state) DO UPDATE SET jobs = jobs + 1;
    INSERT INTO job_moves (from_state, to_state, moves)
    SELECT OLD.state, NEW.state, 1 WHERE OLD.state IS NOT NEW.state
    ON CONFLICT (from_state, to_state) DO UPDATE SET moves = moves + 1;
END;

-- Outbox messages by kind and state.
CREATE TABLE outbox_counts (
    kind      TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    messages  INTEGER NOT NULL,
    PRIMARY KEY (kind, state)
) WITHOUT ROWID;
INSERT INTO outbox_counts (kind, state, messages)
SELECT kind, state, count(*) FROM outbox GROUP BY kind, state;

CREATE TRIGGER outbox_counted AFTER INSERT ON outbox
BEGIN
    INSERT INTO outbox_counts (kind, state, messages) VALUES (NEW.kind, NEW.state, 1)
    ON CONFLICT (kind, state) DO UPDATE SET messages = messages + 1;
END;

CREATE TRIGGER outbox_moved AFTER UPDATE OF state ON outbox
WHEN OLD.state IS NOT NEW.state
BEGIN
    UPDATE outbox_counts SET messages = messages - 1 WHERE kind = OLD.kind AND state = OLD.state;
    INSERT INTO outbox_counts (kind, state, messages) VALUES (NEW.kind, NEW.state, 1)
    ON CONFLICT (kind, state) DO UPDATE SET messages = messages + 1;
END;

-- What finalized runs cost and did, per UTC day (of the run's start), project, task, stage,
-- agent, worker and verdict class: `orch usage` reads it with the runs not finalized yet, so its
-- answer is the same before and after a prune. Cost and token figures come from the run's
-- recorded usage; a missing, negative or non-numeric figure counts as 0. Each run is counted in
-- three rows: its task's (task = its key), its day's without the task (task ''), which a report
-- not by task reads, a few rows a day however many tasks there were; and its project's all-time
-- totals per class (task '', day -1, stage, agent and worker ''), which `orch metrics` exports.
CREATE TABLE usage_rollup (
    task                TEXT    NOT NULL,
    day                 INTEGER NOT NULL,
    project             TEXT    NOT NULL,
    stage               TEXT    NOT NULL,
    agent               TEXT    NOT NULL,
    worker              TEXT    NOT NULL,
    class               TEXT    NOT NULL,
    runs                INTEGER NOT NULL,
    cost_usd            REAL    NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cache_read_tokens   INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    turns               INTEGER NOT NULL,
    wall_ms             INTEGER NOT NULL,
    PRIMARY KEY (task, day, project, stage, agent, worker, class)
) WITHOUT ROWID;

-- One run's figures as the rollup counts them (its usage read only when it is valid JSON).
CREATE VIEW run_usage AS
SELECT r.id AS run_id, r.finalized_at AS finalized_at, r.started_at / 86400000 AS day,
       j.project AS project, t.key AS task, j.stage AS stage, r.agent AS agent,
       r.worker AS worker, coalesce(r.class, 'unjudged') AS class, 1 AS runs,
       max(coalesce(json_extract(r.usage, '$.cost_usd') + 0, 0), 0) AS cost_usd,
       max(CAST(coalesce(json_extract(r.usage, '$.input_tokens') + 0, 0) AS INTEGER), 0) AS input_tokens,
       max(CAST(coalesce(json_extract(r.usage, '$.output_tokens') + 0, 0) AS INTEGER), 0) AS output_tokens,
       max(CAST(coalesce(json_extract(r.usage, '$.cache_read_tokens') + 0, 0) AS INTEGER), 0) AS cache_read_tokens,
       max(CAST(coalesce(json_extract(r.usage, '$.cache_write_tokens') + 0, 0) AS INTEGER), 0) AS cache_write_tokens,
       max(CAST(coalesce(json_extract(r.usage, '$.turns') + 0, 0) AS INTEGER), 0) AS turns,
       max(coalesce(r.duration_ms, 0), 0) AS wall_ms
FROM (SELECT id, job_id, started_at, agent, worker, class, duration_ms, finalized_at,
             CASE WHEN json_valid(usage_json) THEN usage_json END AS usage
      FROM agent_runs) r
JOIN jobs j ON j.id = r.job_id
JOIN tasks t ON t.id = j.task_id;

-- The three rollup rows a run adds to: its task's, its day's, its project's all-time totals.
CREATE VIEW run_rollup AS
SELECT run_id, finalized_at, task, day, project, stage, agent, worker, class, runs, cost_usd,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms
FROM run_usage
UNION ALL
SELECT run_id, finalized_at, '', day, project, stage, agent, worker, class, runs, cost_usd,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms
FROM run_usage
UNION ALL
SELECT run_id, finalized_at, '', -1, project, '', '', '', class, runs, cost_usd,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms
FROM run_usage;

INSERT INTO usage_rollup
SELECT task, day, project, stage, agent, worker, class, count(*), total(cost_usd),
       sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),
       sum(turns), sum(wall_ms)
FROM run_rollup WHERE finalized_at IS NOT NULL
GROUP BY task, day, project, stage, agent, worker, class;

-- A run is counted once, as it is finalized (by finalize, or closed by a cancel or a rescue).
CREATE TRIGGER agent_runs_rolled_up AFTER UPDATE OF finalized_at ON agent_runs
WHEN OLD.finalized_at IS NULL AND NEW.finalized_at IS NOT NULL
BEGIN
    INSERT INTO usage_rollup
    SELECT task, day, project, stage, agent, worker, class, runs, cost_usd, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms
    FROM run_rollup WHERE run_id = NEW.id
    ON CONFLICT (task, day, project, stage, agent, worker, class) DO UPDATE SET
        runs = runs + excluded.runs, cost_usd = cost_usd + excluded.cost_usd,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        turns = turns + excluded.turns, wall_ms = wall_ms + excluded.wall_ms;
END;

-- Housekeeping one process of the fleet does at a time (`prune`): when it was last done, and
-- who holds it now, until when (a holder that died lets it go when that time passes).
CREATE TABLE maintenance (
    name          TEXT    PRIMARY KEY,
    last_done_at  INTEGER,
    holder        TEXT,
    held_until    INTEGER
);

-- Files of pruned runs and tasks, to be removed by the host they are on (a log or a worktree
-- lives on the machine that made it): queued in the transaction that deleted their rows, so a
-- crash between the commit and the unlink leaves them queued, not forgotten.
CREATE TABLE trash (
    id         INTEGER PRIMARY KEY,
    host       TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('log', 'worktree')),
    path       TEXT    NOT NULL,
    queued_at  INTEGER NOT NULL
);
CREATE INDEX trash_host ON trash (host, id);

-- Queued jobs by when they are due: the next retries, the oldest due job, `orch jobs`.
CREATE INDEX jobs_due ON jobs (run_after, id) WHERE state = 'queued';

-- Prune walks finished tasks oldest first, and deletes delivered messages by their job.
CREATE INDEX tasks_finished ON tasks (updated_at, id) WHERE state IN ('complete', 'failed', 'cancelled');
CREATE INDEX outbox_job ON outbox (job_id) WHERE job_id IS NOT NULL;

-- Runs that continued an agent session (`orch_resumed_runs_total`), counted as each is started,
-- and taken back when the session turned out to be gone (the run started afresh): a count that
-- outlives a prune and costs one row to read.
CREATE TABLE run_counts (
    name  TEXT    PRIMARY KEY,
    runs  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO run_counts
SELECT 'resumed', count(*) FROM agent_runs WHERE resumed_session IS NOT NULL;
CREATE TRIGGER agent_runs_resumed AFTER INSERT ON agent_runs
WHEN NEW.resumed_session IS NOT NULL
BEGIN
    UPDATE run_counts SET runs = runs + 1 WHERE name = 'resumed';
END;
CREATE TRIGGER agent_runs_resume_dropped AFTER UPDATE OF resumed_session ON agent_runs
WHEN OLD.resumed_session IS NOT NULL AND NEW.resumed_session IS NULL
BEGIN
    UPDATE run_counts SET runs = runs - 1 WHERE name = 'resumed';
END;

-- What a prune keeps of a task that had a branch: its key, branch and pull request, so that the
-- key is never queued again into a second branch or pull request (one per task, ever).
CREATE TABLE pruned_branches (
    project    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    branch     TEXT    NOT NULL,
    pr_number  INTEGER,
    pr_url     TEXT,
    pruned_at  INTEGER NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE INDEX pruned_branches_folded ON pruned_branches (project, lower(trim(key)));
