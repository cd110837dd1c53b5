-- A schema distributable by tenant_id (issue 17, docs/citus.md): on Citus a
-- unique index must contain the distribution column, so a globally unique
-- value that is looked up without its tenant moves to a narrow lookup table
-- distributed by that value, and the tenant table's index gains tenant_id.

-- Key verification finds a key by its hash alone. The lookup holds only the
-- SHA-256 hash and ids (no secret, no scope, no status); the primary key
-- keeps a hash unique across all tenants, as api_keys_hash_key did. It is
-- global, so it has no row-level security; instead tenant transactions
-- (tenantry_app) may insert and delete rows but read only the ids, never the
-- hashes: reading a row by hash is the operator path's (verification).
CREATE TABLE api_key_lookup (
    key_hash  BYTEA PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id    TEXT NOT NULL
);
-- Purge and tenant moves find a tenant's rows by tenant id.
CREATE INDEX api_key_lookup_tenant_idx ON api_key_lookup (tenant_id);
REVOKE ALL ON api_key_lookup FROM PUBLIC, tenantry_app, tenantry_operator;
GRANT INSERT, DELETE ON api_key_lookup TO tenantry_app;
GRANT SELECT (tenant_id, key_id) ON api_key_lookup TO tenantry_app;
GRANT SELECT, INSERT, DELETE ON api_key_lookup TO tenantry_operator;

-- The existing keys: api_keys forces row-level security even on its owner,
-- so the copy lifts the force for this transaction only.
ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY;
INSERT INTO api_key_lookup (key_hash, tenant_id, key_id)
    SELECT key_hash, tenant_id, id FROM api_keys;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;

DROP INDEX api_keys_hash_key;
CREATE UNIQUE INDEX api_keys_tenant_hash_key ON api_keys (tenant_id, key_hash);

-- Workflow ids are random: the id-only unique index guarded nothing the
-- primary key (tenant_id, id) does not; lookups by id keep an index.
DROP INDEX provisioning_workflows_id_key;
CREATE INDEX provisioning_workflows_id_idx ON provisioning_workflows (id);
