-- A running session holds the estimated cost of its next time slice, so concurrent sessions
-- cannot together spend more than the org has.
CREATE TABLE holds (
    session_id    TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX holds_org ON holds(org_id);
