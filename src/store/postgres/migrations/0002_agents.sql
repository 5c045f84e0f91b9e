-- SQLite's 0009 (its later addition: pruned_branches) and 0010_agents, for PostgreSQL.

-- What a prune keeps of a task that had a branch: its key, branch and pull request, so that the
-- key is never queued again into a second branch or pull request (one per task, ever).
CREATE TABLE pruned_branches (
    project    TEXT COLLATE "C" NOT NULL,
    key        TEXT COLLATE "C" NOT NULL,
    branch     TEXT COLLATE "C" NOT NULL,
    pr_number  BIGINT,
    pr_url     TEXT COLLATE "C",
    pruned_at  BIGINT  NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE INDEX pruned_branches_folded ON pruned_branches (project, lower(trim(key)));

-- The kind of agent a run ran (claude, codex, gemini); NULL for runs made before kinds existed.
ALTER TABLE agent_runs ADD COLUMN agent_kind TEXT COLLATE "C";

-- An agent profile held on a host because the agent refused how orch called it.
CREATE TABLE invocation_holds (
    host        TEXT COLLATE "C" NOT NULL,
    agent       TEXT COLLATE "C" NOT NULL,
    run_id      BIGINT,
    reason      TEXT COLLATE "C" NOT NULL,
    fix         TEXT COLLATE "C" NOT NULL,
    inputs      TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (host, agent)
);
