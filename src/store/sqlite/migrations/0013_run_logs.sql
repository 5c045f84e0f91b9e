-- Logs from anywhere: at finalize a run's log is stored here, gzip-compressed, so `orch logs` on
-- any host that shares the database shows it (the file stays on the host that ran it). Only the
-- log's tail is kept when it is longer than `log_store_max_bytes`: `bytes` is the whole log's
-- length, `kept_from` the offset in it where the stored part begins (0: all of it). A prune
-- removes the row with its run.
CREATE TABLE run_logs (
    run_id     INTEGER PRIMARY KEY REFERENCES agent_runs(id),
    bytes      INTEGER NOT NULL,
    kept_from  INTEGER NOT NULL,
    encoding   TEXT    NOT NULL CHECK (encoding IN ('gzip')),
    data       BLOB    NOT NULL,
    stored_at  INTEGER NOT NULL
);
