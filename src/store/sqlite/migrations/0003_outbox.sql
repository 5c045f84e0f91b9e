-- The outbox: alerts (Telegram) and usage comments (the forge), queued in the transaction of the
-- decision that caused them and delivered later by `orch notify`, at least once.
--
-- state: pending  waiting for `next_attempt_at` (or for its destination to be configured)
--        sending  claimed by one notify process until `claim_expires_at`; an expired claim is
--                 a crashed sender's, and the message is due again
--        sent     delivered at `sent_at`
--        dead     gave up after notify_max_attempts (or undeliverable); `orch notify --retry-dead`
--        folded   an alert delivered as part of the alert `folded_into` ("… and N more")
-- The payload holds what the text needs (stage, class, attempt, reason, usage); never a token.
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('alert', 'comment')),
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
    folded_into       INTEGER REFERENCES outbox(id),
    CHECK (kind = 'comment' OR (alert_kind IS NOT NULL AND dedup_key IS NOT NULL))
);

-- What notify claims next (pending by due time), and the dead list `orch status` shows.
CREATE INDEX outbox_state ON outbox (state, next_attempt_at, id);
-- Folding and the dedup window look alerts up by kind and key.
CREATE INDEX outbox_dedup ON outbox (alert_kind, dedup_key, state) WHERE kind = 'alert';
CREATE INDEX outbox_folded ON outbox (folded_into) WHERE folded_into IS NOT NULL;
