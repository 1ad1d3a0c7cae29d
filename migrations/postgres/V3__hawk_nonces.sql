-- Hawk nonces spent within the timestamp window (MetadataStore::spend_nonce),
-- kept in the database every process shares, so that a captured request can
-- be replayed neither after a restart nor against another process.
-- key = SHA-256 of (client id, nonce, timestamp); the sweep job deletes rows
-- whose window has closed.
CREATE TABLE hawk_nonces (
    key        bytea       PRIMARY KEY CHECK (length(key) = 32),
    expires_at timestamptz NOT NULL
);
CREATE INDEX hawk_nonces_expires ON hawk_nonces (expires_at);
