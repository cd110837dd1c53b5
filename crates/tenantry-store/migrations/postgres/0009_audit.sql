-- The audit log: one append-only, hash-linked chain per tenant, and one for
-- the operator (tenant_id = '', which no tenant id can be). Tenant-scoped
-- like every other table: a tenant transaction sees its own chain only; the
-- operator path (app.tenant_id = '') writes the operator chain and reads all.
CREATE TABLE audit_entries (
    tenant_id    TEXT NOT NULL,
    sequence     BIGINT NOT NULL,
    id           TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_name   TEXT,
    action       TEXT NOT NULL,
    -- JSON text exactly as hashed (canonical form), not jsonb: jsonb would
    -- reorder keys and renormalise numbers.
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
SELECT tenantry_isolate('audit_entries');

-- Each chain's head: its size and newest hash. Appending locks this one row,
-- so appends to one chain are serialised and appends to different chains
-- are not. `pruned_through`/`pruned_hash`: where the retained entries start
-- (retention removes a prefix; a signed checkpoint vouches for it).
CREATE TABLE audit_heads (
    tenant_id       TEXT NOT NULL PRIMARY KEY,
    size            BIGINT NOT NULL,
    head_hash       TEXT NOT NULL,
    pruned_through  BIGINT NOT NULL DEFAULT 0,
    pruned_hash     TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000'
);
SELECT tenantry_isolate('audit_heads');
