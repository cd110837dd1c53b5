-- Signed checkpoints of the audit chains, and the keys that sign them.
--
-- A checkpoint is a C2SP signed note over a tlog-checkpoint body (origin,
-- size, base64 head hash, time) that commits to a chain's first `size`
-- entries. One per chain per time slot (`slot` = the publication time
-- divided by the checkpoint interval): several server processes publishing
-- at once insert the same slot, and the primary key keeps the first. The
-- operator chain is tenant_id = '' as in audit_entries.
CREATE TABLE audit_checkpoints (
    tenant_id   TEXT NOT NULL,
    slot        BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    key_id      TEXT NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, slot)
);
CREATE INDEX audit_checkpoints_size_idx ON audit_checkpoints (tenant_id, size);
SELECT tenantry_isolate('audit_checkpoints');

-- Ed25519 keys that sign checkpoints (operator-level, like signing_keys).
-- The seed is stored only sealed by the vault's KEK, and only for the active
-- key: a retired key's seed is erased, its public key kept for ever so that
-- the checkpoints it signed stay verifiable.
CREATE TABLE audit_signing_keys (
    key_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    public_key    BYTEA NOT NULL,
    kek_id        TEXT,
    wrapped_seed  BYTEA,
    created_at    TIMESTAMPTZ NOT NULL,
    retired_at    TIMESTAMPTZ
);
GRANT SELECT, INSERT, UPDATE, DELETE ON audit_signing_keys TO tenantry_app, tenantry_operator;
