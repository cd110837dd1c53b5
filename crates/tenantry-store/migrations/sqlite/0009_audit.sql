-- The audit log: one append-only, hash-linked chain per tenant, and one for
-- the operator (tenant_id = ''). See the PostgreSQL migration.
CREATE TABLE audit_entries (
    tenant_id    TEXT NOT NULL,
    sequence     INTEGER NOT NULL,
    id           TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_name   TEXT,
    action       TEXT NOT NULL,
    targets      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    request      TEXT NOT NULL,
    changes      TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, sequence)
);
CREATE INDEX audit_entries_time_idx ON audit_entries (tenant_id, occurred_at);
CREATE INDEX audit_entries_action_idx ON audit_entries (tenant_id, action, sequence);

CREATE TABLE audit_heads (
    tenant_id       TEXT NOT NULL PRIMARY KEY,
    size            INTEGER NOT NULL,
    head_hash       TEXT NOT NULL,
    pruned_through  INTEGER NOT NULL DEFAULT 0,
    pruned_hash     TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
