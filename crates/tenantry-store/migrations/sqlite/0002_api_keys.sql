-- API keys. Only the SHA-256 of a key is stored, under a unique index.

CREATE TABLE api_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    key_hash      BLOB NOT NULL,
    start         TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    environment   TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    enabled       INTEGER NOT NULL DEFAULT 1,
    expires_at    TEXT,
    revoked_at    TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    last_used_at  TEXT,
    rotated_from  TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);

CREATE TABLE operator_keys (
    id            TEXT PRIMARY KEY,
    key_hash      BLOB NOT NULL,
    start         TEXT NOT NULL,
    name          TEXT NOT NULL,
    environment   TEXT NOT NULL CHECK (environment IN ('live', 'test')),
    revoked_at    TEXT,
    last_used_at  TEXT,
    created_at    TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX operator_keys_hash_key ON operator_keys (key_hash);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    seed          BLOB NOT NULL,
    public_key    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    retired_at    TEXT
) STRICT;
