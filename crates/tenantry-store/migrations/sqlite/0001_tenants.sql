-- Tenant registry and the first two tenant-scoped tables.
-- SQLite has no row-level security: isolation is enforced by the store, whose
-- tenant-scoped functions only exist on a TenantTx bound to one tenant id.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    subdomain   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    plan        TEXT NOT NULL,
    region      TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
) STRICT;
CREATE UNIQUE INDEX tenants_subdomain_key ON tenants (subdomain);
CREATE INDEX tenants_status_idx ON tenants (status, id);
CREATE INDEX tenants_purge_idx ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE tenant_domains (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, domain)
) STRICT;
CREATE UNIQUE INDEX tenant_domains_domain_key ON tenant_domains (domain);

CREATE TABLE tenant_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
