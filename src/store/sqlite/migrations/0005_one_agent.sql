-- Where each run's processes live, so a rescue on the same host tells a live supervisor from a
-- stopped or dead one and ends the run's whole process group before the job runs again. Pids
-- come with their start times (clock ticks since boot, /proc/PID/stat field 22), so a reused pid
-- is never taken for the recorded process; the boot id and pid namespace say whether the pids
-- mean anything here. The agent leads its own group: `pid` is also the group's id.
ALTER TABLE agent_runs ADD COLUMN host TEXT;
ALTER TABLE agent_runs ADD COLUMN boot_id TEXT;
ALTER TABLE agent_runs ADD COLUMN pid_ns TEXT;
ALTER TABLE agent_runs ADD COLUMN supervisor_pid INTEGER;
ALTER TABLE agent_runs ADD COLUMN supervisor_start INTEGER;
ALTER TABLE agent_runs ADD COLUMN agent_start INTEGER;
-- Whose a launch failure is: 'agent' (binary missing or broken), 'task' (its prompt cannot be
-- passed) or 'project' (its workdir is missing). NULL when the agent started.
ALTER TABLE agent_runs ADD COLUMN launch_kind TEXT;

-- The runs still going on each host: a rescue looks up their supervisors.
CREATE INDEX agent_runs_open ON agent_runs (host) WHERE finalized_at IS NULL AND ended_at IS NULL;

-- When the lease was last granted (claim or heartbeat), by the granting process's clock: a lease
-- dated further ahead than its own length was written by a clock that ran ahead.
ALTER TABLE jobs ADD COLUMN lease_renewed_at INTEGER;
CREATE INDEX jobs_lease_renewed ON jobs (lease_renewed_at) WHERE state = 'running';

-- Projects whose workdir is missing on a host: claims there skip them until it is back. One row
-- per hold, so the operator hears of it once.
CREATE TABLE project_holds (
    project   TEXT    NOT NULL,
    host      TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    since     INTEGER NOT NULL,
    PRIMARY KEY (project, host)
);
