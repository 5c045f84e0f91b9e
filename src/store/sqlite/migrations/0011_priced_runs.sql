-- Costs orch knows, and runs whose cost it does not: a run whose log gave no cost (a kind that
-- reports none and has no price table, a run with no result) adds nothing to `cost_usd` and is
-- not a priced run, so a report says its cost is unknown rather than presenting $0.
--
-- The rows already there count a run as priced when they hold a cost: before agents other than
-- Claude Code, a run without a cost was one without a result.
ALTER TABLE usage_rollup ADD COLUMN priced_runs INTEGER NOT NULL DEFAULT 0;
UPDATE usage_rollup SET priced_runs = runs WHERE cost_usd > 0;

DROP TRIGGER agent_runs_rolled_up;
DROP VIEW run_rollup;
DROP VIEW run_usage;

-- One run's figures as the rollup counts them (its usage read only when it is valid JSON).
CREATE VIEW run_usage AS
SELECT r.id AS run_id, r.finalized_at AS finalized_at, r.started_at / 86400000 AS day,
       j.project AS project, t.key AS task, j.stage AS stage, r.agent AS agent,
       r.worker AS worker, coalesce(r.class, 'unjudged') AS class, 1 AS runs,
       CASE WHEN json_type(r.usage, '$.cost_usd') IN ('integer', 'real')
                 AND json_extract(r.usage, '$.cost_usd') >= 0 THEN 1 ELSE 0 END AS priced_runs,
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
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms,
       priced_runs
FROM run_usage
UNION ALL
SELECT run_id, finalized_at, '', day, project, stage, agent, worker, class, runs, cost_usd,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms,
       priced_runs
FROM run_usage
UNION ALL
SELECT run_id, finalized_at, '', -1, project, '', '', '', class, runs, cost_usd,
       input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms,
       priced_runs
FROM run_usage;

-- A run is counted once, as it is finalized (by finalize, or closed by a cancel or a rescue).
CREATE TRIGGER agent_runs_rolled_up AFTER UPDATE OF finalized_at ON agent_runs
WHEN OLD.finalized_at IS NULL AND NEW.finalized_at IS NOT NULL
BEGIN
    INSERT INTO usage_rollup (task, day, project, stage, agent, worker, class, runs, cost_usd,
                              input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                              turns, wall_ms, priced_runs)
    SELECT task, day, project, stage, agent, worker, class, runs, cost_usd, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms, priced_runs
    FROM run_rollup WHERE run_id = NEW.id
    ON CONFLICT (task, day, project, stage, agent, worker, class) DO UPDATE SET
        runs = runs + excluded.runs, cost_usd = cost_usd + excluded.cost_usd,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
        turns = turns + excluded.turns, wall_ms = wall_ms + excluded.wall_ms,
        priced_runs = priced_runs + excluded.priced_runs;
END;
