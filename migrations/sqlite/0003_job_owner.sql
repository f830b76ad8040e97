-- Who a job belongs to on the engine backends: `sha256:<hex>` of the API key it was submitted
-- with (`X-Hume-Api-Key`, else the server's HUME_API_KEY), or `no-key`. Only that caller lists,
-- reads or downloads it; another caller is answered 404. Jobs stored before this column existed
-- belong to no caller ('') and are no longer served.
ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_by_owner ON jobs (owner, created_ms);
