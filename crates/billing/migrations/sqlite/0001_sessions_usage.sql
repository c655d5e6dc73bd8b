CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    call_sid      TEXT,
    org_id        TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    status        TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms   INTEGER,
    end_reason    TEXT,
    plan_json     TEXT NOT NULL
);
CREATE INDEX sessions_call_sid ON sessions(call_sid);

CREATE TABLE usage_records (
    session_id     TEXT NOT NULL,
    line           TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    service        TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    quantity       REAL NOT NULL,
    quantity_atoms INTEGER NOT NULL,
    unit           TEXT NOT NULL,
    billed_to      TEXT NOT NULL,
    amount_micros  INTEGER NOT NULL,
    estimated      INTEGER NOT NULL,
    credential_id  TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (session_id, line, seq)
);
