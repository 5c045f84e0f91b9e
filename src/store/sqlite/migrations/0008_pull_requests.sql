-- Pull requests: a task of a project whose workdir is a git repository works in a git worktree of
-- its own, on a branch of its own, pushed to the project's remote, with one pull request per
-- task, ever. What orch knows of each task's branch lives on the task.
--
-- branch         set once (never changed: a task never gets a second branch); unique per project
-- base_branch    the branch it started from, and its pull request's base
-- base_sha       the commit it started from: a branch still there has nothing to push
-- remote_url     where it is pushed, read from the main clone when the branch was made; NULL: the
--                main clone has no such remote, and the branch stays local
-- worktree       its worktree on worktree_host; NULL once removed (the task finished)
-- worktree_bytes the worktree's size as last measured (after each of its runs)
-- head_sha       the branch's last commit, as finalize left it after an ok stage
-- pushed_sha     the last commit pushed; a push is due while head_sha differs from it
-- pr_*           its pull request, once opened or adopted: number, URL, and state (open, closed,
--                merged) as last seen, when
ALTER TABLE tasks ADD COLUMN branch TEXT;
ALTER TABLE tasks ADD COLUMN base_branch TEXT;
ALTER TABLE tasks ADD COLUMN base_sha TEXT;
ALTER TABLE tasks ADD COLUMN remote_url TEXT;
ALTER TABLE tasks ADD COLUMN worktree TEXT;
ALTER TABLE tasks ADD COLUMN worktree_host TEXT;
ALTER TABLE tasks ADD COLUMN worktree_bytes INTEGER;
ALTER TABLE tasks ADD COLUMN head_sha TEXT;
ALTER TABLE tasks ADD COLUMN pushed_sha TEXT;
ALTER TABLE tasks ADD COLUMN pushed_at INTEGER;
ALTER TABLE tasks ADD COLUMN push_error TEXT;
ALTER TABLE tasks ADD COLUMN pr_number INTEGER;
ALTER TABLE tasks ADD COLUMN pr_url TEXT;
ALTER TABLE tasks ADD COLUMN pr_status TEXT CHECK (pr_status IN ('open', 'closed', 'merged'));
ALTER TABLE tasks ADD COLUMN pr_synced_at INTEGER;

CREATE UNIQUE INDEX tasks_branch ON tasks (project, branch) WHERE branch IS NOT NULL;
-- A new key spelled like an existing one (case, spaces around it) is the same task: enqueue
-- looks it up by this.
CREATE INDEX tasks_key_folded ON tasks (project, lower(trim(key)));
-- The pushes each host's tick retries, and the worktrees each host keeps.
CREATE INDEX tasks_unpushed ON tasks (worktree_host) WHERE head_sha IS NOT pushed_sha;
CREATE INDEX tasks_worktree ON tasks (worktree_host) WHERE worktree IS NOT NULL;

-- A push is recorded on the run whose commit it carried: the commit pushed, or why not.
ALTER TABLE agent_runs ADD COLUMN pushed_sha TEXT;
ALTER TABLE agent_runs ADD COLUMN push_error TEXT;

-- The outbox gains a kind of message, `pull_request`: open (or adopt) the task's pull request and
-- bring its body up to date. SQLite cannot change a CHECK constraint in place, so the table is
-- made anew with every row and index it had; nothing references it but itself.
CREATE TABLE outbox_v7 (
    id                INTEGER PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('alert', 'comment', 'pull_request')),
    alert_kind        TEXT,
    dedup_key         TEXT,
    project           TEXT,
    task              TEXT,
    job_id            INTEGER,
    run_id            INTEGER,
    payload           TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'folded')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    last_error        TEXT,
    claimed_by        TEXT,
    claim_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    sent_at           INTEGER,
    folded_into       INTEGER REFERENCES outbox_v7(id),
    CHECK (kind <> 'alert' OR (alert_kind IS NOT NULL AND dedup_key IS NOT NULL))
);
INSERT INTO outbox_v7 (id, kind, alert_kind, dedup_key, project, task, job_id, run_id, payload,
                       state, attempts, next_attempt_at, last_error, claimed_by,
                       claim_expires_at, created_at, sent_at, folded_into)
SELECT id, kind, alert_kind, dedup_key, project, task, job_id, run_id, payload, state, attempts,
       next_attempt_at, last_error, claimed_by, claim_expires_at, created_at, sent_at, folded_into
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v7 RENAME TO outbox;
CREATE INDEX outbox_state ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_dedup ON outbox (alert_kind, dedup_key, state) WHERE kind = 'alert';
CREATE INDEX outbox_folded ON outbox (folded_into) WHERE folded_into IS NOT NULL;
-- A task has at most one pull-request message waiting: a newer one would say the same.
CREATE INDEX outbox_pull_request ON outbox (project, task, state) WHERE kind = 'pull_request';
