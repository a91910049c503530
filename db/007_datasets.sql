-- Every version of every dataset declaration (ingestro.dataset_registry). The latest version is the
-- one new uploads are checked against; older ones stay, since stored rows and events refer to them.
CREATE TABLE datasets (
    name        text NOT NULL,
    version     integer NOT NULL,
    declaration jsonb NOT NULL,
    declared_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Natural-key datasets: rows that replaced the stored content of their key.
ALTER TABLE jobs ADD COLUMN rows_updated bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN dataset_version integer;
ALTER TABLE applied_batches ADD COLUMN updated integer NOT NULL DEFAULT 0;
