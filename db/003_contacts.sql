-- The typed table of the built-in `contacts` dataset (ingestro/datasets/contacts.json).
-- Identity is the content hash of the normalized row: exact duplicates collapse.
CREATE TABLE contacts (
    email        text NOT NULL,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    age          bigint,
    signup_date  date NOT NULL,
    metadata     jsonb,
    id           text,
    content_hash text PRIMARY KEY,
    first_job_id uuid NOT NULL,
    first_line   bigint NOT NULL,
    last_job_id  uuid NOT NULL,
    last_line    bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
