CREATE TABLE plans (
    id                    TEXT PRIMARY KEY,
    monthly_credit_micros BIGINT NOT NULL,
    byok_allowed          BOOLEAN NOT NULL,
    allowed_models        TEXT,
    byok_markup_bps       BIGINT NOT NULL
);

CREATE TABLE orgs (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    plan_id               TEXT NOT NULL REFERENCES plans(id),
    parent_org_id         TEXT REFERENCES orgs(id),
    wallet_micros         BIGINT NOT NULL DEFAULT 0,
    credits_used_micros   BIGINT NOT NULL DEFAULT 0,
    credits_period        TEXT NOT NULL DEFAULT '',
    use_own_keys          BOOLEAN NOT NULL DEFAULT FALSE,
    wallet_deduction      BOOLEAN NOT NULL DEFAULT FALSE,
    negative_limit_micros BIGINT NOT NULL DEFAULT 0,
    created_at_ms         BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    prefix     TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE credentials (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    provider   TEXT NOT NULL,
    name       TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    last4      TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
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
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE wallet_tx (
    id            BIGSERIAL PRIMARY KEY,
    org_id        TEXT NOT NULL,
    amount_micros BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    ref           TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

ALTER TABLE usage_records ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
ALTER TABLE usage_records ADD COLUMN list_micros BIGINT NOT NULL DEFAULT 0;
