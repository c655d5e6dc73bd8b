CREATE TABLE sessions (
    session_id    TEXT PRIMARY KEY,
    call_sid      TEXT,
    org_id        TEXT NOT NULL,
    gateway       TEXT NOT NULL,
    status        TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms   BIGINT,
    end_reason    TEXT,
    plan_json     TEXT NOT NULL
);
CREATE INDEX sessions_call_sid ON sessions(call_sid);

CREATE TABLE usage_records (
    session_id     TEXT NOT NULL,
    line           TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    service        TEXT NOT NULL,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    quantity       DOUBLE PRECISION NOT NULL,
    quantity_atoms BIGINT NOT NULL,
    unit           TEXT NOT NULL,
    billed_to      TEXT NOT NULL,
    amount_micros  BIGINT NOT NULL,
    estimated      BOOLEAN NOT NULL,
    credential_id  TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (session_id, line, seq)
);
