-- Hawk nonces spent within the timestamp window (MetadataStore::spend_nonce),
-- kept here rather than in memory so that a captured request cannot be
-- replayed after a restart. key = SHA-256 of (client id, nonce, timestamp);
-- the sweep job deletes rows whose window has closed.
CREATE TABLE hawk_nonces (
    key        BLOB    PRIMARY KEY CHECK (length(key) = 32),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX hawk_nonces_expires ON hawk_nonces (expires_at);
