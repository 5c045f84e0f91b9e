-- Intake: the issues `orch sync` took in from each project's forge, one row per (project, issue),
-- naming the task that stands for it. The row outlives its task (a prune takes the task, not
-- this), so an issue still open and labelled is never taken in a second time.
CREATE TABLE intake_issues (
    project   TEXT    NOT NULL,
    issue     INTEGER NOT NULL,
    task      TEXT    NOT NULL,
    taken_at  INTEGER NOT NULL,
    PRIMARY KEY (project, issue)
);
-- Sync withdraws the queued jobs of tasks whose issue left the list: it finds a task's issue row
-- by the task's key.
CREATE INDEX intake_issues_task ON intake_issues (project, task);
-- A task enqueued by hand for an issue is that issue's task: sync finds it by number.
CREATE INDEX tasks_issue ON tasks (project, issue) WHERE issue IS NOT NULL;

-- State labels on issues, for people (`issue_labels = true`): the one `orch:*` label orch last
-- asked the task's issue to carry ('' for none, NULL before it ever asked). A sweep compares it
-- with the label the task's state calls for and queues an `issue_label` message when they differ;
-- the message's delivery gives the issue whatever this says when it is delivered.
ALTER TABLE tasks ADD COLUMN issue_label TEXT;
-- The sweep reads a project's live tasks with an issue, and those finished since its last look.
CREATE INDEX tasks_labelled ON tasks (project, state, updated_at) WHERE issue IS NOT NULL;

-- The outbox gains two kinds of message, `issue_label` and `merge` (merge the task's pull
-- request once its last stage succeeded and CI is green). SQLite cannot change a CHECK constraint in
-- place, so the table is made anew with every row, index and trigger it had.
CREATE TABLE outbox_v11 (
    id                INTEGER PRIMARY KEY,
    kind              TEXT    NOT NULL
                      CHECK (kind IN ('alert', 'comment', 'pull_request', 'issue_label', 'merge')),
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
    folded_into       INTEGER REFERENCES outbox_v11(id),
    CHECK (kind <> 'alert' OR (alert_kind IS NOT NULL AND dedup_key IS NOT NULL))
);
INSERT INTO outbox_v11 (id, kind, alert_kind, dedup_key, project, task, job_id, run_id, payload,
                        state, attempts, next_attempt_at, last_error, claimed_by,
                        claim_expires_at, created_at, sent_at, folded_into)
SELECT id, kind, alert_kind, dedup_key, project, task, job_id, run_id, payload, state, attempts,
       next_attempt_at, last_error, claimed_by, claim_expires_at, created_at, sent_at, folded_into
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v11 RENAME TO outbox;
CREATE INDEX outbox_state ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_dedup ON outbox (alert_kind, dedup_key, state) WHERE kind = 'alert';
CREATE INDEX outbox_folded ON outbox (folded_into) WHERE folded_into IS NOT NULL;
CREATE INDEX outbox_pull_request ON outbox (project, task, state) WHERE kind = 'pull_request';
CREATE INDEX outbox_job ON outbox (job_id) WHERE job_id IS NOT NULL;
-- A task has at most one label message waiting: its delivery sets the label as it is then.
CREATE INDEX outbox_issue_label ON outbox (project, task, state) WHERE kind = 'issue_label';

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

-- Gates between stages. A job may now wait in state `awaiting_approval` (`[stages.NAME]
-- approve`: a person says when it runs; `approval_alerted_at`: when the alert that it waits too
-- long went out, once), and carries what it was sent back with: the failing checks of red CI
-- (`ci_failures`) or a reviewer's note (`review_note`). SQLite cannot change a
-- CHECK constraint in place, so the jobs table is rebuilt as migration 0007 did, with its
-- indexes and the triggers migration 0009 put on it. The views of migration 0009 name `jobs`;
-- the rename runs in legacy mode, which leaves them as they are (they find the new table by
-- its name).
CREATE TABLE jobs_new (
    id                INTEGER PRIMARY KEY,
    task_id           INTEGER NOT NULL REFERENCES tasks(id),
    project           TEXT    NOT NULL,
    stage             TEXT    NOT NULL,
    state             TEXT    NOT NULL
                      CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled',
                                       'over_budget', 'awaiting_approval')),
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
    lease_renewed_at  INTEGER,
    ci_failures       TEXT,
    review_note       TEXT,
    approval_alerted_at INTEGER
);
INSERT INTO jobs_new (id, task_id, project, stage, state, priority, attempt, max_attempts,
                      run_after, lease_owner, lease_expires_at, last_class, last_reason,
                      created_at, updated_at, lease_renewed_at)
SELECT id, task_id, project, stage, state, priority, attempt, max_attempts, run_after,
       lease_owner, lease_expires_at, last_class, last_reason, created_at, updated_at,
       lease_renewed_at
FROM jobs;
PRAGMA legacy_alter_table = ON;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX jobs_queue ON jobs (project, priority DESC, run_after, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running ON jobs (project) WHERE state = 'running';
CREATE INDEX jobs_task ON jobs (task_id);
CREATE INDEX jobs_lease_renewed ON jobs (lease_renewed_at) WHERE state = 'running';
CREATE INDEX jobs_over_budget ON jobs (project) WHERE state = 'over_budget';
CREATE INDEX jobs_due ON jobs (run_after, id) WHERE state = 'queued';
-- Waiting approvals, oldest first: `orch status`, the approval alert and the comment sweep.
CREATE INDEX jobs_awaiting_approval ON jobs (project, updated_at, id) WHERE state = 'awaiting_approval';

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

-- The CI gate (`[stages.NAME] ci_gate`): the job queued for the stage after a gated one waits
-- here until the forge reports on the commit the gated stage left (`sha`); a claim passes over a
-- job that has a row. `checked_at`: when the tick last asked the forge.
CREATE TABLE ci_gates (
    job_id       INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    task_id      INTEGER NOT NULL,
    gated_stage  TEXT    NOT NULL,
    sha          TEXT    NOT NULL,
    since        INTEGER NOT NULL,
    checked_at   INTEGER
);
-- How many times red CI sent a task's gated stage back (`ci_max_fixes`).
ALTER TABLE tasks ADD COLUMN ci_fixes INTEGER NOT NULL DEFAULT 0;

-- Approvals by comment: each comment read as a command (`/orch approve`, `/orch reject …`) is
-- taken once, so a command is never carried out twice (a sync that dies after taking it and
-- before acting on it loses it; the approver comments again).
CREATE TABLE approval_comments (
    project     TEXT    NOT NULL,
    comment_id  INTEGER NOT NULL,
    taken_at    INTEGER NOT NULL,
    PRIMARY KEY (project, comment_id)
);
