-- Agents: more than one kind, chosen per stage.
--
-- Self-contained: it touches no table another 0008 migration adds, so it can be renumbered.
--
-- The kind of agent a run ran (claude, codex, gemini): its log is read by that kind's rules
-- (`orch logs`, a previous stage's result) whatever the profile is called or becomes. NULL for
-- runs made before kinds existed: they were Claude Code's.
ALTER TABLE agent_runs ADD COLUMN agent_kind TEXT;

-- An agent profile held on a host because the agent refused how orch called it (an option it
-- does not take, a folder it does not trust): every run would be refused the same way, so claims
-- for it there wait until its settings change (`inputs`, a fingerprint of the profile and of
-- the stages that use it, differs) or an operator runs `orch reset-cache`. One alert per hold.
CREATE TABLE invocation_holds (
    host        TEXT    NOT NULL,
    agent       TEXT    NOT NULL,
    run_id      INTEGER,
    reason      TEXT    NOT NULL,
    -- The setting to change, in words.
    fix         TEXT    NOT NULL,
    inputs      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (host, agent)
);
