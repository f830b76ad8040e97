-- Who is delivering a job's callback (a process's replica id) and until when (Unix ms): the
-- periodic sweep only takes a pending callback nobody holds, so a delivery under way is never
-- started twice. Cleared at start-up: the one server owning this file is the only deliverer.
ALTER TABLE jobs ADD COLUMN callback_owner TEXT;
ALTER TABLE jobs ADD COLUMN callback_until_ms INTEGER;
