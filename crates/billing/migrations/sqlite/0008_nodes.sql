-- Same schema as Postgres: a SQLite store serves one node, which still records itself, so the
-- session rows say which node ran them.
CREATE TABLE nodes (
    node_id        TEXT PRIMARY KEY,
    started_at_ms  INTEGER NOT NULL,
    lease_until_ms INTEGER NOT NULL
);
ALTER TABLE sessions ADD COLUMN node_id TEXT;
