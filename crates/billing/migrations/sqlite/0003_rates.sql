-- The rate table is the source of truth once seeded; operators edit it (managed flips) and
-- every node reloads it at the next session when rates_version moves.
CREATE TABLE rates (
    service      TEXT NOT NULL,
    provider     TEXT NOT NULL,
    model        TEXT NOT NULL,
    unit         TEXT NOT NULL,
    price_micros INTEGER NOT NULL,
    managed      INTEGER NOT NULL,
    unverified   INTEGER NOT NULL,
    PRIMARY KEY (service, provider, model, unit)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO settings (key, value) VALUES ('rates_version', 0);
