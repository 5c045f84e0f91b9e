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
