-- Jobs of the engine backends, shared by every replica, in Hume's v0 states.
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    owner             TEXT NOT NULL,       -- `sha256:<hex>` of the caller's API key, or `no-key`
    request           TEXT NOT NULL,       -- the v0 request echo as JSON text (its key order kept)
    status            TEXT NOT NULL CHECK (status IN ('QUEUED', 'IN_PROGRESS', 'COMPLETED', 'FAILED')),
    created_ms        BIGINT NOT NULL,
    started_ms        BIGINT,
    ended_ms          BIGINT,
    num_predictions   BIGINT,
    num_errors        BIGINT,
    message           TEXT,                -- the failure, or why the last run did not end the job
    runs              BIGINT NOT NULL DEFAULT 0,
    api_key_sealed    TEXT,                -- the caller's key, sealed, until the job ends
    -- The replica running the job and until when its lease holds (Unix ms, the database's clock).
    lease_owner       TEXT,
    lease_until_ms    BIGINT,
    callback_url      TEXT,
    callback_state    TEXT,                -- NULL (none), 'PENDING', 'DELIVERED', 'FAILED'
    -- The replica delivering the callback and until when its claim holds.
    callback_owner    TEXT,
    callback_until_ms BIGINT
);
-- What claim_next scans: queued jobs and running ones (whose lease may have expired), oldest first.
CREATE INDEX jobs_claimable ON jobs (created_ms, id) WHERE status IN ('QUEUED', 'IN_PROGRESS');
CREATE INDEX jobs_by_owner ON jobs (owner, created_ms);
CREATE INDEX jobs_by_status ON jobs (status);
CREATE INDEX jobs_pending_callbacks ON jobs (id) WHERE callback_state = 'PENDING';

-- Files uploaded with a multipart job, kept until the job has ended.
CREATE TABLE job_files (
    job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    filename     TEXT,
    content_type TEXT,
    md5sum       TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    PRIMARY KEY (job_id, position)
);

-- A job's predictions, one row per source (one v0 source result as JSON text).
CREATE TABLE job_results (
    job_id   TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);

-- Idempotency-Key records (24 h). The primary key is the claim: of two replicas inserting one
-- key, one wins. `job_id` is NULL while a claim's job is still being created upstream
-- (`hume-batch`).
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id       TEXT,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_ms);
