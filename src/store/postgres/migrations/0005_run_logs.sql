-- SQLite's 0013_run_logs: the runs' logs, compressed, for `orch logs` on any host.
CREATE TABLE run_logs (
    run_id     BIGINT  PRIMARY KEY REFERENCES agent_runs(id),
    bytes      BIGINT  NOT NULL,
    kept_from  BIGINT  NOT NULL,
    encoding   TEXT COLLATE "C" NOT NULL CHECK (encoding IN ('gzip')),
    data       BYTEA   NOT NULL,
    stored_at  BIGINT  NOT NULL
);
-- The data is gzip already: TOAST stores it out of line without compressing it again.
ALTER TABLE run_logs ALTER COLUMN data SET STORAGE EXTERNAL;
