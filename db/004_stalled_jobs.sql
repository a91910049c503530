-- `stalled`: an entry of the job went to the dead-letter stream. The job waits for
-- it to be redriven, then completes as usual. `error` says why it stalled, unless
-- it already holds why parsing failed; `stall_reason` tells the two apart, so that
-- the stall's reason is cleared when the job completes.
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('pending', 'processing', 'stalled', 'completed', 'failed'));
ALTER TABLE jobs ADD COLUMN stall_reason text;
