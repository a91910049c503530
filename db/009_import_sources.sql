-- Pull imports (`POST /imports`): where the job's file was pulled from, and the validators its server gave
-- it (ETag, Last-Modified), recorded from FileReceived (or, before the file arrived, from the request).
ALTER TABLE jobs ADD COLUMN source text;
ALTER TABLE jobs ADD COLUMN source_etag text;
ALTER TABLE jobs ADD COLUMN source_last_modified text;
