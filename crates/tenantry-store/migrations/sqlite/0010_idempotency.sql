-- Idempotency keys (Idempotency-Key on POSTs that create something): a
-- reservation made before the request runs, then the response it gave,
-- sealed. Times are Unix milliseconds (compared as numbers on both backends).

-- A tenant caller's keys.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash      BLOB NOT NULL,
    fingerprint   BLOB NOT NULL,
    token         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status        INTEGER,
    content_type  TEXT,
    location      TEXT,
    kek_id        TEXT,
    wrapped_key   BLOB,
    body          TEXT,
    reserved_ms   INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
) STRICT;
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_ms);

-- Operators' keys (root key and operator keys): not tenant-scoped.
CREATE TABLE operator_idempotency_keys (
    key_hash      BLOB PRIMARY KEY,
    fingerprint   BLOB NOT NULL,
    token         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status        INTEGER,
    content_type  TEXT,
    location      TEXT,
    kek_id        TEXT,
    wrapped_key   BLOB,
    body          TEXT,
    reserved_ms   INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX operator_idempotency_keys_expiry_idx ON operator_idempotency_keys (expires_ms);
