-- Saved column mappings (PUT /datasets/{name}/mappings): per tenant, dataset and header shape (the SHA-256 of
-- the header's columns as compared: ingestro.datasets.column_maps.header_shape), so that the next file of the
-- same shape maps itself. A job's own mapping is recorded with its upload options (jobs.options->'column_map').
CREATE TABLE column_mappings (
    tenant      text NOT NULL,
    dataset     text NOT NULL,
    shape       text NOT NULL,
    columns     jsonb NOT NULL,
    column_map  jsonb NOT NULL,
    saved_by    text,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, dataset, shape)
);
