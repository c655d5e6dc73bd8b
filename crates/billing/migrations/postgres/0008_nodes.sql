-- Several nodes on one database: each node holds a lease it renews every few seconds; a
-- session records the node that runs it, so a surviving node can close the sessions of a node
-- whose lease ran out (killed, frozen, cut off) at their last checkpoint.
CREATE TABLE nodes (
    node_id        TEXT PRIMARY KEY,
    started_at_ms  BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL
);
ALTER TABLE sessions ADD COLUMN node_id TEXT;
CREATE INDEX sessions_open_node ON sessions(node_id) WHERE status = 'open';

-- Live session events too large for one NOTIFY payload (8000 bytes): the notification carries
-- the row's id instead. Rows are purged a minute later.
CREATE TABLE event_payloads (
    id            BIGSERIAL PRIMARY KEY,
    payload       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
