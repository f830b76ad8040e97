-- Jobs of the local engine, in Hume's v0 states.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    request         TEXT NOT NULL,     -- the v0 request echo (defaults filled in, files listed)
    status          TEXT NOT NULL CHECK (status IN ('QUEUED', 'IN_PROGRESS', 'COMPLETED', 'FAILED')),
    created_ms      INTEGER NOT NULL,
    started_ms      INTEGER,
    ended_ms        INTEGER,
    num_predictions INTEGER,
    num_errors      INTEGER,
    message         TEXT,
    predictions     TEXT,              -- JSON array of source results once the job has ended
    runs            INTEGER NOT NULL DEFAULT 0,
    callback_url    TEXT,
    callback_state  TEXT               -- NULL (none), 'PENDING', 'DELIVERED', 'FAILED'
);
CREATE INDEX jobs_by_status ON jobs (status, created_ms);
CREATE INDEX jobs_by_created ON jobs (created_ms);

-- Files uploaded with a multipart job, kept until the job has run.
CREATE TABLE job_files (
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    filename     TEXT,
    content_type TEXT,
    md5sum       TEXT NOT NULL,
    bytes        BLOB NOT NULL,
    PRIMARY KEY (job_id, position)
);

-- Idempotency-Key records (24 h).
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
