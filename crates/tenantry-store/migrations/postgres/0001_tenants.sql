-- Tenant registry and the first two tenant-scoped tables.
--
-- Isolation in PostgreSQL: every table with a tenant_id column gets row-level
-- security, enabled AND forced (so the table owner is subject to it too),
-- through tenantry_isolate(). A request transaction sets its tenant with
-- set_config('app.tenant_id', $1, true): with no tenant set, it sees nothing.

-- The role request transactions run as when the configured login role is a
-- superuser or has BYPASSRLS (those silently ignore RLS). Creating it needs
-- CREATEROLE; a login role without it must itself be an ordinary role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        BEGIN
            CREATE ROLE tenantry_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role tenantry_app; requests will run as %', current_user;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        BEGIN
            EXECUTE format('GRANT tenantry_app TO %I', current_user);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO tenantry_app', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tenantry_app', current_schema());
    END IF;
END
$$;

-- Puts a tenant-scoped table under row-level security. Every migration that
-- adds such a table calls it: `SELECT tenantry_isolate('my_table');`
CREATE OR REPLACE FUNCTION tenantry_isolate(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    -- Reads and writes of the tenant in context, and no other.
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s
             USING (tenant_id = current_setting(''app.tenant_id'', true))
             WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', tbl);
    -- The operator path's explicit, read-only cross-tenant lookups (host and
    -- key resolution, background jobs); never set by tenant requests.
    EXECUTE format(
        'CREATE POLICY operator_read ON %s FOR SELECT
             USING (current_setting(''app.operator'', true) = ''on'')', tbl);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tenantry_app', tbl);
    END IF;
END
$$;

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    subdomain   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    plan        TEXT NOT NULL,
    region      TEXT NOT NULL,
    metadata    JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX tenants_subdomain_key ON tenants (subdomain);
CREATE INDEX tenants_status_idx ON tenants (status, id);
CREATE INDEX tenants_purge_idx ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE tenant_domains (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
-- A domain belongs to at most one tenant: the unique index sees every row,
-- whatever the policies let a transaction read.
CREATE UNIQUE INDEX tenant_domains_domain_key ON tenant_domains (domain);
SELECT tenantry_isolate('tenant_domains');

CREATE TABLE tenant_events (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    data        JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT tenantry_isolate('tenant_events');

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO tenantry_app;
    END IF;
END
$$;
