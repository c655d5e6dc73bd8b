-- What was said on each call, line by line: the caller's final transcripts and the agent's
-- replies as played (cut where the caller barged in). (session_id, seq) makes a retried write
-- idempotent.
CREATE TABLE transcript_lines (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    speaker     TEXT NOT NULL,
    text        TEXT NOT NULL,
    interrupted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, seq)
);
