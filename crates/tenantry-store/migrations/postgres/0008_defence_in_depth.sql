-- Defence in depth (issue 8):
-- 1. Operator transactions run as a role of their own, tenantry_operator, and
--    the cross-tenant read policies apply to that role only: a tenant-scoped
--    transaction (role tenantry_app) can no longer widen its view by setting
--    app.operator itself.
-- 2. The tenants table is under row-level security like every tenant table:
--    a tenant-scoped transaction sees (and changes) its own row only.
-- 3. A secret, readable only by the owning (login) role, authenticates cache
--    invalidations sent over NOTIFY, which any database user could forge.

-- Both roles must exist: the migrations create them when they can (superuser
-- or CREATEROLE); otherwise an administrator must, before this migration.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_operator') THEN
        BEGIN
            CREATE ROLE tenantry_operator NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app')
       OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_operator') THEN
        RAISE EXCEPTION 'the roles tenantry_app and tenantry_operator are missing and role % cannot create them', current_user
            USING HINT = format('as a superuser run: CREATE ROLE tenantry_app NOLOGIN NOINHERIT; '
                'CREATE ROLE tenantry_operator NOLOGIN NOINHERIT; GRANT tenantry_app, tenantry_operator TO %I;', current_user);
    END IF;
    -- Needed to switch to them; refused (and then checked at start-up) when
    -- this role may not grant them.
    BEGIN
        EXECUTE format('GRANT tenantry_app TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE format('GRANT tenantry_operator TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tenantry_app, tenantry_operator', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tenantry_app, tenantry_operator', current_schema());
END
$$;

-- Every existing table: both roles may use it (row-level security decides
-- which rows), and every operator_read policy becomes the operator role's.
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND c.relname <> '_sqlx_migrations'
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tenantry_app, tenantry_operator', t);
    END LOOP;
    FOR t IN
        SELECT p.polrelid::regclass FROM pg_policy p
          JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE p.polname = 'operator_read' AND n.nspname = current_schema()
    LOOP
        EXECUTE format('DROP POLICY operator_read ON %s', t);
        EXECUTE format(
            'CREATE POLICY operator_read ON %s FOR SELECT TO tenantry_operator
                 USING (current_setting(''app.operator'', true) = ''on'')', t);
    END LOOP;
END
$$;

-- Tables added by later migrations get the same.
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
    -- key resolution, background jobs): its own role, and its flag.
    EXECUTE format(
        'CREATE POLICY operator_read ON %s FOR SELECT TO tenantry_operator
             USING (current_setting(''app.operator'', true) = ''on'')', tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tenantry_app, tenantry_operator', tbl);
END
$$;

-- The tenant registry: a tenant-scoped transaction reads and updates its own
-- row (its status, its purge); the operator path manages them all.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants
    USING (id = current_setting('app.tenant_id', true))
    WITH CHECK (id = current_setting('app.tenant_id', true));
CREATE POLICY operator_all ON tenants TO tenantry_operator
    USING (current_setting('app.operator', true) = 'on')
    WITH CHECK (current_setting('app.operator', true) = 'on');

-- Secrets of the server itself, for the owning role only (the server reads
-- them at start-up before any role switch). gen_random_uuid() draws from
-- PostgreSQL's strong random source: two of them give 244 random bits.
CREATE TABLE tenantry_secrets (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL
);
REVOKE ALL ON tenantry_secrets FROM PUBLIC, tenantry_app, tenantry_operator;
INSERT INTO tenantry_secrets (name, value) VALUES (
    'invalidation_hmac',
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
);
