-- PostgreSQL only (SQLite has one writer): the plain claim, at once with other claims.
--
-- An ordinary claim runs under orch's write lock, one writer at a time. A plain one — no project
-- held on this host or with a budget, every breaker of its agents closed, no job over budget,
-- nothing for the rescue to look at (no run of this host's open, no lease run out) — takes that
-- lock shared instead: claims do not wait for one another, but every other writer (and the
-- ordinary claim) still waits for them. It takes the job the ordinary claim's statement takes
-- (store::sqlite::jobs::take_best) from the projects whose running jobs, as last committed, are
-- under their `max_running`, writes its history entry, and only then takes the project's own
-- lock and counts again with a snapshot taken after it (a VOLATILE function's statements each
-- take their own): of two claims that both saw room for one more, the second to count sees the
-- first, and fails with SQLSTATE OR001 — nothing written; the caller makes the ordinary claim.
-- The lock is held only from that count to the commit.
-- Returns the claimed job's row, or nothing: then the caller makes the ordinary claim, which
-- finds the job (or says why there is none) as before.

-- Whether a running job's lease ran out by p_now, or was renewed after p_ahead: each one step
-- down its index however many run, as the first lease in order. Sorting is off here, so that
-- the planner cannot walk every running job and sort them instead, which it would when its
-- statistics date from when few ran (a burst of claims changes too few rows for autovacuum to
-- analyze the table again).
CREATE FUNCTION orch_leases_to_look_at(p_now bigint, p_ahead bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET enable_sort = off AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM (SELECT lease_expires_at FROM jobs WHERE state = 'running'
                                  ORDER BY lease_expires_at LIMIT 1) AS l
                   WHERE l.lease_expires_at <= p_now)
        OR EXISTS (SELECT 1 FROM (SELECT lease_renewed_at FROM jobs
                                  WHERE state = 'running' AND lease_renewed_at IS NOT NULL
                                  ORDER BY lease_renewed_at DESC LIMIT 1) AS l
                   WHERE l.lease_renewed_at > p_ahead);
END
$$;

-- p_due: a queued job due after it was dated by a clock ahead, and is due; p_ahead: a lease
-- renewed after it was, and the rescue may take it back (domain::clock::SKEW_MS past p_now);
-- p_open: {"project": ["stage", ...]}; p_max_running: {"project": n}; p_agents: ["agent", ...].
CREATE FUNCTION orch_claim_at_once(p_worker text, p_host text, p_now bigint, p_lease bigint,
                                   p_due bigint, p_ahead bigint, p_open text, p_max_running text,
                                   p_agents text)
RETURNS SETOF jobs LANGUAGE plpgsql VOLATILE ROWS 1 AS $$
DECLARE
    v_schema integer := hashtext('orch ' || current_schema());
    v_open jsonb := p_open::jsonb;
    v_max jsonb := p_max_running::jsonb;
    v_projects text[] := ARRAY(SELECT jsonb_object_keys(v_open));
    v_agents text[] := ARRAY(SELECT jsonb_array_elements_text(p_agents::jsonb));
    v_job jobs%ROWTYPE;
BEGIN
    -- The write lock's keys: store::postgres's Lock::Write.
    PERFORM pg_advisory_xact_lock_shared(v_schema, 2);
    IF EXISTS (SELECT 1 FROM breakers WHERE agent = ANY (v_agents) AND state <> 'closed')
       OR EXISTS (SELECT 1 FROM project_holds WHERE host = p_host AND project = ANY (v_projects))
       OR EXISTS (SELECT 1 FROM jobs WHERE state = 'over_budget' AND project = ANY (v_projects))
       -- What the rescue would look at: a run of this host's open (its triage may end
       -- processes, so it looks only under the write lock), leases that ran out, or renewed
       -- after p_ahead (by a clock ahead).
       OR EXISTS (SELECT 1 FROM agent_runs
                  WHERE host = p_host AND finalized_at IS NULL AND ended_at IS NULL)
       OR orch_leases_to_look_at(p_now, p_ahead) THEN
        RETURN;
    END IF;
    WITH taken AS (
        UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = p_worker,
               lease_expires_at = p_now + p_lease, lease_renewed_at = p_now, updated_at = p_now
        WHERE id = (
            SELECT j.id FROM unnest(v_projects) AS p (project) CROSS JOIN LATERAL (
                SELECT q.id, q.priority, q.run_after FROM jobs AS q
                WHERE q.state = 'queued' AND q.project = p.project
                  AND (q.run_after <= p_now OR q.run_after > p_due)
                  AND q.stage = ANY (ARRAY(SELECT jsonb_array_elements_text(v_open -> p.project)))
                  AND NOT EXISTS (SELECT 1 FROM ci_gates AS g WHERE g.job_id = q.id)
                ORDER BY q.priority DESC, q.run_after, q.id LIMIT 1 FOR UPDATE SKIP LOCKED) AS j
            WHERE (SELECT coalesce(sum(c.jobs), 0) FROM job_counts AS c
                   WHERE c.project = p.project AND c.state = 'running') < (v_max ->> p.project)::bigint
            ORDER BY j.priority DESC, j.run_after, j.id LIMIT 1)
        RETURNING *),
    noted AS (
        INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
        SELECT id, p_now, 'queued', 'running', p_worker,
               'claimed, attempt ' || attempt || '/' || max_attempts
        FROM taken)
    SELECT * INTO v_job FROM taken;
    IF v_job.id IS NULL THEN
        RETURN;
    END IF;
    -- One bigint key, a space apart from the two-key locks.
    PERFORM pg_advisory_xact_lock((v_schema::bigint << 32) | (hashtext(v_job.project)::bigint & 4294967295));
    IF (SELECT sum(jobs) FROM job_counts WHERE project = v_job.project AND state = 'running')
       > (v_max ->> v_job.project)::bigint THEN
        RAISE EXCEPTION 'project % has no room left under max_running', v_job.project
            USING ERRCODE = 'OR001';
    END IF;
    RETURN NEXT v_job;
END
$$;
