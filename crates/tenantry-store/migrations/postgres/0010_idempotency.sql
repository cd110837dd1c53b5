-- Idempotency keys (Idempotency-Key on POSTs that create something): a
-- reservation made before the request runs, then the response it gave,
-- sealed. Times are Unix milliseconds (compared as numbers on both backends).

-- A tenant caller's keys: tenant-scoped, under forced row-level security.
CREATE TABLE idempotency_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash      BYTEA NOT NULL,
    fingerprint   BYTEA NOT NULL,
    token         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status        INTEGER,
    content_type  TEXT,
    location      TEXT,
    kek_id        TEXT,
    wrapped_key   BYTEA,
    body          TEXT,
    reserved_ms   BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_ms);
SELECT tenantry_isolate('idempotency_keys');

-- Operators' keys (root key and operator keys): not tenant-scoped, and for
-- the operator path alone. Unlike the other operator tables, a tenant
-- transaction (role tenantry_app) may not read it at all: it holds the
-- responses operators were given (sealed, but still not a tenant's to see).
CREATE TABLE operator_idempotency_keys (
    key_hash      BYTEA PRIMARY KEY,
    fingerprint   BYTEA NOT NULL,
    token         TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    status        INTEGER,
    content_type  TEXT,
    location      TEXT,
    kek_id        TEXT,
    wrapped_key   BYTEA,
    body          TEXT,
    reserved_ms   BIGINT NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX operator_idempotency_keys_expiry_idx ON operator_idempotency_keys (expires_ms);
REVOKE ALL ON operator_idempotency_keys FROM PUBLIC, tenantry_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON operator_idempotency_keys TO tenantry_operator;
ALTER TABLE operator_idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE operator_idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY operator_only ON operator_idempotency_keys TO tenantry_operator
    USING (current_setting('app.operator', true) = 'on')
    WITH CHECK (current_setting('app.operator', true) = 'on');
