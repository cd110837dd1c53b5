-- no-transaction
-- Provisioning workflows (issue 12): a tenant may now be `provisioning`
-- (being set up, not resolvable) or `provisioning_failed`.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt
-- the documented way (sqlite.org/lang_altertable.html, "other kinds of
-- table schema changes"), with foreign keys off so that dropping the old
-- table cascades nowhere, which needs this migration outside sqlx's own
-- transaction; it runs in one of its own. Every statement may run again
-- (a crash between the commit and sqlx's record of it).
PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE IF EXISTS tenants_0016;
CREATE TABLE tenants_0016 (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    subdomain   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN
        ('active', 'suspended', 'deleted', 'provisioning', 'provisioning_failed')),
    plan        TEXT NOT NULL,
    region      TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
) STRICT;
INSERT INTO tenants_0016 (id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at)
    SELECT id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at
    FROM tenants;
DROP TABLE tenants;
ALTER TABLE tenants_0016 RENAME TO tenants;
CREATE UNIQUE INDEX tenants_subdomain_key ON tenants (subdomain);
CREATE INDEX tenants_status_idx ON tenants (status, id);
CREATE INDEX tenants_purge_idx ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

-- One row per workflow (see the PostgreSQL migration).
CREATE TABLE IF NOT EXISTS provisioning_workflows (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
        ('pending', 'running', 'succeeded', 'failed', 'compensating', 'compensated', 'cancelled')),
    spec             TEXT NOT NULL,
    steps            TEXT NOT NULL,
    secrets          TEXT,
    issued_keys      TEXT,
    created_by       TEXT NOT NULL,
    next_run_ms      INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS provisioning_workflows_id_key ON provisioning_workflows (id);
CREATE INDEX IF NOT EXISTS provisioning_workflows_due_idx ON provisioning_workflows (next_run_ms)
    WHERE status IN ('pending', 'running', 'compensating');
CREATE INDEX IF NOT EXISTS provisioning_workflows_status_idx ON provisioning_workflows (status, id);
CREATE UNIQUE INDEX IF NOT EXISTS provisioning_workflows_live_key ON provisioning_workflows (tenant_id)
    WHERE status IN ('pending', 'running', 'failed', 'compensating');
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
