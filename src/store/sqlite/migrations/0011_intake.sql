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

-- The outbox gains a kind of message, `issue_label`. SQLite cannot change a CHECK constraint in
-- place, so the table is made anew with every row, index and trigger it had.
CREATE TABLE outbox_v11 (
    id                INTEGER PRIMARY KEY,
    kind              TEXT    NOT NULL
                      CHECK (kind IN ('alert', 'comment', 'pull_request', 'issue_label')),
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
-- The failing checks a job re-running its stage for red CI shows its agent (`{ci_failures}`).
ALTER TABLE jobs ADD COLUMN ci_failures TEXT;
