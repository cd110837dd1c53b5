-- API keys. Only the SHA-256 of a key is stored, under a unique index; the
-- `start` (first characters) is kept for display.

CREATE TABLE api_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    key_hash      BYTEA NOT NULL,
    start         TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        JSONB NOT NULL,
    environment   TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    metadata      JSONB NOT NULL DEFAULT '{}',
    last_used_at  TIMESTAMPTZ,
    rotated_from  TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);
SELECT tenantry_isolate('api_keys');

-- Operator keys act on every tenant: not tenant-scoped.
CREATE TABLE operator_keys (
    id            TEXT PRIMARY KEY,
    key_hash      BYTEA NOT NULL,
    start         TEXT NOT NULL,
    name          TEXT NOT NULL,
    environment   TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX operator_keys_hash_key ON operator_keys (key_hash);

-- Ed25519 keys that sign access tokens. The private half is stored as the
-- 32-byte seed; the previous key keeps verifying until its tokens expire.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    seed          BYTEA NOT NULL,
    public_key    BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    retired_at    TIMESTAMPTZ
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON operator_keys, signing_keys TO tenantry_app;
    END IF;
END
$$;
