-- What a job's callback carries ('predictions', v0's body, or 'summary'); NULL (jobs stored
-- before) means 'predictions'. And how far its running worker is ('downloading', 'measuring'),
-- which the job summary reports as its progress.
ALTER TABLE jobs ADD COLUMN callback_body TEXT;
ALTER TABLE jobs ADD COLUMN stage TEXT;
