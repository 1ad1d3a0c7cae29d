-- The production metadata store. Constraints make bad states impossible
-- rather than relying on the application alone.

-- Trigram indexes back substring search (GET /file?q=, GET /upload?q=).
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

CREATE TABLE files (
    id                bigserial PRIMARY KEY,
    digest            text        NOT NULL UNIQUE CHECK (digest ~ '^[0-9a-f]{128}$'),
    size              bigint      NOT NULL CHECK (size >= 0),
    visibility        text        NOT NULL CHECK (visibility IN ('public', 'internal')),
    -- why the last verification of this digest failed; cleared by a new slot or a verified copy
    rejection         text,
    -- replication work lease (see MetadataStore::claim_replication)
    replication_lease timestamptz
);
-- Digest-prefix search: LIKE 'abc%' on a text_pattern_ops btree.
CREATE INDEX files_digest_prefix ON files (digest text_pattern_ops);

CREATE TABLE file_instances (
    file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    region  text   NOT NULL CHECK (region ~ '^[a-z0-9_-]{1,63}$'),
    PRIMARY KEY (file_id, region)
);

CREATE TABLE batches (
    id       bigserial   PRIMARY KEY,
    uploaded timestamptz NOT NULL,
    author   text        NOT NULL,
    message  text        NOT NULL CHECK (message <> '')
);
CREATE INDEX batches_author_trgm ON batches USING gin (author public.gin_trgm_ops);
CREATE INDEX batches_message_trgm ON batches USING gin (message public.gin_trgm_ops);

CREATE TABLE batch_files (
    batch_id bigint NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    file_id  bigint NOT NULL REFERENCES files (id),
    filename text   NOT NULL CHECK (filename <> '' AND filename !~ '[/\\]'),
    PRIMARY KEY (batch_id, filename)
);
CREATE INDEX batch_files_file_id ON batch_files (file_id);
CREATE INDEX batch_files_filename_trgm ON batch_files USING gin (filename public.gin_trgm_ops);

-- A pending upload cannot outlive its file (ON DELETE CASCADE).
CREATE TABLE pending_uploads (
    staging_key text        PRIMARY KEY,
    file_id     bigint      NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    size        bigint      NOT NULL CHECK (size >= 0),
    region      text        NOT NULL CHECK (region ~ '^[a-z0-9_-]{1,63}$'),
    expires     timestamptz NOT NULL,
    lease_until timestamptz
);
CREATE INDEX pending_uploads_file_id ON pending_uploads (file_id);
CREATE INDEX pending_uploads_expires ON pending_uploads (expires);
