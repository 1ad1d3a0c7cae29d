-- The embedded metadata store. Times are integer microseconds since the Unix
-- epoch (UTC); sizes are bytes. Constraints make bad states unrepresentable
-- rather than relying on the application alone.

CREATE TABLE files (
    id                INTEGER PRIMARY KEY,
    digest            TEXT    NOT NULL UNIQUE
                      CHECK (length(digest) = 128 AND digest NOT GLOB '*[^0-9a-f]*'),
    size              INTEGER NOT NULL CHECK (size >= 0),
    visibility        TEXT    NOT NULL CHECK (visibility IN ('public', 'internal')),
    -- why the last verification of this digest failed; cleared by a new slot or a verified copy
    rejection         TEXT,
    -- replication work lease (see MetadataStore::claim_replication)
    replication_lease INTEGER
);

CREATE TABLE file_instances (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    region  TEXT    NOT NULL CHECK (length(region) BETWEEN 1 AND 63),
    PRIMARY KEY (file_id, region)
);

CREATE TABLE batches (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    uploaded INTEGER NOT NULL,
    author   TEXT    NOT NULL,
    message  TEXT    NOT NULL CHECK (message <> '')
);

CREATE TABLE batch_files (
    batch_id INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    file_id  INTEGER NOT NULL REFERENCES files (id),
    filename TEXT    NOT NULL CHECK (filename <> ''),
    PRIMARY KEY (batch_id, filename)
);
CREATE INDEX batch_files_file_id ON batch_files (file_id);

CREATE TABLE pending_uploads (
    staging_key TEXT    PRIMARY KEY,
    file_id     INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    size        INTEGER NOT NULL CHECK (size >= 0),
    region      TEXT    NOT NULL CHECK (length(region) BETWEEN 1 AND 63),
    expires     INTEGER NOT NULL,
    lease_until INTEGER
);
CREATE INDEX pending_uploads_file_id ON pending_uploads (file_id);
CREATE INDEX pending_uploads_expires ON pending_uploads (expires);
