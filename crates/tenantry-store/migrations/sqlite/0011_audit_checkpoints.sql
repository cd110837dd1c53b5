-- Signed checkpoints of the audit chains, and the keys that sign them. See
-- the PostgreSQL migration.
CREATE TABLE audit_checkpoints (
    tenant_id   TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    head_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, slot)
) STRICT;
CREATE INDEX audit_checkpoints_size_idx ON audit_checkpoints (tenant_id, size);

CREATE TABLE audit_signing_keys (
    key_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    public_key    BLOB NOT NULL,
    kek_id        TEXT,
    wrapped_seed  BLOB,
    created_at    TEXT NOT NULL,
    retired_at    TEXT
) STRICT;
