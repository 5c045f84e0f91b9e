-- SQLite's 0012_intake, for PostgreSQL (which changes a CHECK constraint in place).

CREATE TABLE intake_issues (
    project   TEXT COLLATE "C" NOT NULL,
    issue     BIGINT  NOT NULL,
    task      TEXT COLLATE "C" NOT NULL,
    taken_at  BIGINT  NOT NULL,
    PRIMARY KEY (project, issue)
);
CREATE INDEX intake_issues_task ON intake_issues (project, task);
CREATE INDEX tasks_issue ON tasks (project, issue) WHERE issue IS NOT NULL;

ALTER TABLE tasks ADD COLUMN issue_label TEXT COLLATE "C";
CREATE INDEX tasks_labelled ON tasks (project, state, updated_at) WHERE issue IS NOT NULL;

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('alert', 'comment', 'pull_request', 'issue_label', 'merge'));
CREATE INDEX outbox_issue_label ON outbox (project, task, state) WHERE kind = 'issue_label';

ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'over_budget',
                     'awaiting_approval'));
ALTER TABLE jobs ADD COLUMN ci_failures TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN review_note TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN approval_alerted_at BIGINT;
CREATE INDEX jobs_awaiting_approval ON jobs (project, updated_at, id) WHERE state = 'awaiting_approval';

CREATE TABLE ci_gates (
    job_id       BIGINT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    task_id      BIGINT  NOT NULL,
    gated_stage  TEXT COLLATE "C" NOT NULL,
    sha          TEXT COLLATE "C" NOT NULL,
    since        BIGINT  NOT NULL,
    checked_at   BIGINT
);
ALTER TABLE tasks ADD COLUMN ci_fixes BIGINT NOT NULL DEFAULT 0;

CREATE TABLE approval_comments (
    project     TEXT COLLATE "C" NOT NULL,
    comment_id  BIGINT  NOT NULL,
    taken_at    BIGINT  NOT NULL,
    PRIMARY KEY (project, comment_id)
);
