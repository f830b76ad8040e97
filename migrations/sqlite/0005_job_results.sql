-- An ended job's predictions, one row per source, so they are written as each source finishes
-- and read back one source at a time (never as one value in memory).
CREATE TABLE job_results (
    job_id   TEXT    NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,            -- the source's place in the job's predictions array
    body     TEXT    NOT NULL,            -- one v0 source result, as JSON
    PRIMARY KEY (job_id, position)
);

-- Jobs that ended before this table existed keep their predictions.
INSERT INTO job_results (job_id, position, body)
    SELECT jobs.id, CAST(each.key AS INTEGER), each.value
    FROM jobs, json_each(jobs.predictions) AS each
    WHERE jobs.predictions IS NOT NULL AND json_valid(jobs.predictions);
UPDATE jobs SET predictions = NULL;
