-- What it takes to parse a job's file again (`ingestro reparse`) once its FileReceived was
-- trimmed from the stream: where the file is stored, how it was to be read, and the
-- FileReceived's stream entry id (its position: the upload order). The `jobs` projection
-- records them from FileReceived, like the other columns.
ALTER TABLE jobs ADD COLUMN storage_key text;
ALTER TABLE jobs ADD COLUMN options jsonb;
ALTER TABLE jobs ADD COLUMN position text;

-- Uploaded files deleted by file retention or `ingestro files delete`: kept apart from
-- `jobs`, which only the `jobs` projection writes (and `ingestro replay jobs` rebuilds).
CREATE TABLE deleted_files (
    job_id      uuid PRIMARY KEY,
    storage_key text NOT NULL,
    deleted_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL
);
