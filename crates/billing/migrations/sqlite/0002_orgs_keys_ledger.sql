CREATE TABLE plans (
    id                    TEXT PRIMARY KEY,
    monthly_credit_micros INTEGER NOT NULL,
    byok_allowed          INTEGER NOT NULL,
    allowed_models        TEXT,
    byok_markup_bps       INTEGER NOT NULL
);

CREATE TABLE orgs (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    plan_id               TEXT NOT NULL REFERENCES plans(id),
    parent_org_id         TEXT REFERENCES orgs(id),
    wallet_micros         INTEGER NOT NULL DEFAULT 0,
    credits_used_micros   INTEGER NOT NULL DEFAULT 0,
    credits_period        TEXT NOT NULL DEFAULT '',
    use_own_keys          INTEGER NOT NULL DEFAULT 0,
    wallet_deduction      INTEGER NOT NULL DEFAULT 0,
    negative_limit_micros INTEGER NOT NULL DEFAULT 0,
    created_at_ms         INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    prefix     TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE credentials (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    last4      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    UNIQUE (org_id, provider, name)
);

CREATE TABLE slots (
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    service       TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    PRIMARY KEY (org_id, service)
);

CREATE TABLE agents (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    spec_json  TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE wallet_tx (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    ref           TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

ALTER TABLE usage_records ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN list_micros INTEGER NOT NULL DEFAULT 0;
