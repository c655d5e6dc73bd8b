-- Who may open a session: carrier numbers routed to agents, and the single-use tokens minted
-- by answer webhooks, client-token requests and AudioSocket registrations.
CREATE TABLE numbers (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    number        TEXT NOT NULL UNIQUE,
    carrier       TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX numbers_org ON numbers(org_id);

CREATE TABLE stream_tokens (
    sid           TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    agent_id      TEXT NOT NULL,
    call_id       TEXT,
    number_id     TEXT,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms    BIGINT,
    created_at_ms BIGINT NOT NULL,
    UNIQUE (kind, call_id)
);
CREATE INDEX stream_tokens_expiry ON stream_tokens(expires_at_ms);

-- A plan may cap how many calls an org runs at once (0 = no cap).
ALTER TABLE plans ADD COLUMN max_concurrent_calls BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_org_status ON sessions(org_id, status);
