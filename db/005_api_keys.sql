-- API keys: only the SHA-256 of each token is kept (ingestro/keys.py says why that suffices).
CREATE TABLE api_keys (
    key_id     text PRIMARY KEY,
    name       text NOT NULL,
    tenant     text NOT NULL,
    scope      text NOT NULL CHECK (scope IN ('upload', 'read', 'admin')),
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Every job belongs to the tenant of the key that uploaded it (`default` without keys),
-- and remembers that key, so that an `upload` key reads only its own jobs.
ALTER TABLE jobs ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN uploaded_by text;
CREATE INDEX jobs_tenant_newest_first ON jobs (tenant, received_at DESC NULLS LAST, job_id DESC);
-- "the same file was ingested before": jobs of a tenant by the file's SHA-256.
CREATE INDEX jobs_by_file ON jobs (tenant, sha256, received_at);
