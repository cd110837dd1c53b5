-- The same schema as on PostgreSQL (see its migration and docs/citus.md):
-- a key's hash is unique across tenants through api_key_lookup, written in
-- the same transaction as the key.
CREATE TABLE api_key_lookup (
    key_hash  BLOB PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id    TEXT NOT NULL
) STRICT;
CREATE INDEX api_key_lookup_tenant_idx ON api_key_lookup (tenant_id);
INSERT INTO api_key_lookup (key_hash, tenant_id, key_id)
    SELECT key_hash, tenant_id, id FROM api_keys;

DROP INDEX api_keys_hash_key;
CREATE UNIQUE INDEX api_keys_tenant_hash_key ON api_keys (tenant_id, key_hash);

DROP INDEX provisioning_workflows_id_key;
CREATE INDEX provisioning_workflows_id_idx ON provisioning_workflows (id);
