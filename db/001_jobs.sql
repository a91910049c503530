-- Job status: the read model the `jobs` projection maintains from job events.
-- Metadata columns are nullable because a job's events may be applied before
-- its FileReceived (they come from different streams).
CREATE TABLE jobs (
    job_id                uuid PRIMARY KEY,
    dataset               text,
    filename              text,
    format                text,
    bytes                 bigint,
    sha256                text,
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    parsed                boolean NOT NULL DEFAULT false,
    rows_total            bigint,
    rows_accepted         bigint NOT NULL DEFAULT 0,
    rows_rejected         bigint NOT NULL DEFAULT 0,
    rows_inserted         bigint NOT NULL DEFAULT 0,
    rows_duplicate        bigint NOT NULL DEFAULT 0,
    accepted_batches      integer,
    rejected_batches      integer,
    data_batches_applied  integer NOT NULL DEFAULT 0,
    error_batches_applied integer NOT NULL DEFAULT 0,
    unknown_columns       jsonb NOT NULL DEFAULT '[]',
    error                 text,
    error_line            bigint,
    received_at           timestamptz,
    started_at            timestamptz,
    parsed_at             timestamptz,
    finished_at           timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_newest_first ON jobs (received_at DESC NULLS LAST, job_id DESC);

-- Which projection batches the `jobs` projection has counted (exactly once).
CREATE TABLE job_batches (
    job_id     uuid NOT NULL,
    projection text NOT NULL,
    seq        integer NOT NULL,
    PRIMARY KEY (job_id, projection, seq)
);

-- Which batches the `data` and `errors` projections applied, written in the same
-- transaction as their rows, with the counts to announce again on redelivery.
CREATE TABLE applied_batches (
    projection text NOT NULL,
    job_id     uuid NOT NULL,
    seq        integer NOT NULL,
    rows       integer NOT NULL,
    inserted   integer NOT NULL DEFAULT 0,
    duplicate  integer NOT NULL DEFAULT 0,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, job_id, seq)
);
