-- One row per rejected row of a job: every field error, and the row as it was in the file.
CREATE TABLE validation_errors (
    job_id     uuid NOT NULL,
    line       bigint NOT NULL,
    errors     jsonb NOT NULL,
    raw        jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, line)
);
