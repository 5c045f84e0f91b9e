-- SQLite's 0011_priced_runs, for PostgreSQL: the rollup counts the runs whose cost orch knows.
ALTER TABLE usage_rollup ADD COLUMN priced_runs BIGINT NOT NULL DEFAULT 0;
UPDATE usage_rollup SET priced_runs = runs WHERE cost_usd > 0;

DROP VIEW run_rollup;
DROP VIEW run_usage;

-- 1 when the run's usage JSON holds a cost that is a number and not negative (SQLite's
-- `json_type(…) IN ('integer', 'real') AND json_extract(…) >= 0`), else 0.
CREATE FUNCTION orch_usage_priced(usage TEXT) RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    value jsonb;
BEGIN
    BEGIN
        value := usage::jsonb -> 'cost_usd';
    EXCEPTION WHEN others THEN
        RETURN 0;
    END;
    IF value IS NOT NULL AND jsonb_typeof(value) = 'number' AND (value #>> '{}')::double precision >= 0 THEN
        RETURN 1;
    END IF;
    RETURN 0;
END $$;

CREATE VIEW run_usage AS
SELECT r.id AS run_id, r.finalized_at AS finalized_at, r.started_at / 86400000 AS day,
       j.project AS project, t.key AS task, j.stage AS stage, r.agent AS agent,
       r.worker AS worker, coalesce(r.class, 'unjudged') AS class, 1::bigint AS runs,
       orch_usage_priced(r.usage_json) AS priced_runs,
       greatest(orch_usage_number(r.usage_json, 'cost_usd'), 0) AS cost_usd,
       greatest(trunc(orch_usage_number(r.usage_json, 'input_tokens'))::bigint, 0) AS input_tokens,
       greatest(trunc(orch_usage_number(r.usage_json, 'output_tokens'))::bigint, 0) AS output_tokens,
       greatest(trunc(orch_usage_number(r.usage_json, 'cache_read_tokens'))::bigint, 0) AS cache_read_tokens,
       greatest(trunc(orch_usage_number(r.usage_json, 'cache_write_tokens'))::bigint, 0) AS cache_write_tokens,
       greatest(trunc(orch_usage_number(r.usage_json, 'turns'))::bigint, 0) AS turns,
       greatest(coalesce(r.duration_ms, 0), 0) AS wall_ms
FROM agent_runs r
JOIN jobs j ON j.id = r.job_id
JOIN tasks t ON t.id = j.task_id;

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

CREATE OR REPLACE FUNCTION orch_agent_runs_rolled_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_rollup AS u (task, day, project, stage, agent, worker, class, runs, cost_usd,
                                   input_tokens, output_tokens, cache_read_tokens,
                                   cache_write_tokens, turns, wall_ms, priced_runs)
    SELECT task, day, project, stage, agent, worker, class, runs, cost_usd, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, turns, wall_ms, priced_runs
    FROM run_rollup WHERE run_id = NEW.id
    ON CONFLICT (task, day, project, stage, agent, worker, class) DO UPDATE SET
        runs = u.runs + excluded.runs, cost_usd = u.cost_usd + excluded.cost_usd,
        input_tokens = u.input_tokens + excluded.input_tokens,
        output_tokens = u.output_tokens + excluded.output_tokens,
        cache_read_tokens = u.cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = u.cache_write_tokens + excluded.cache_write_tokens,
        turns = u.turns + excluded.turns, wall_ms = u.wall_ms + excluded.wall_ms,
        priced_runs = u.priced_runs + excluded.priced_runs;
    RETURN NULL;
END $$;
