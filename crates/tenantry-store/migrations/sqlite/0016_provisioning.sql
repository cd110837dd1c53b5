-- Provisioning workflows (issue 12): a tenant may now be `provisioning`
-- (being set up, not resolvable) or `provisioning_failed`.
--
-- SQLite cannot alter a CHECK constraint, and rebuilding `tenants` would
-- need foreign keys off, which cannot be turned off inside the transaction
-- sqlx runs a migration in (dropping the old table would cascade to every
-- tenant-scoped table). The constraint is widened in the schema itself,
-- which sqlite.org/lang_altertable.html allows for changes that do not
-- alter the file format (a CHECK constraint is one); RESET reloads the
-- schema, and the CREATE TABLE below bumps the schema cookie so every other
-- connection reloads it too.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql,
    'CHECK (status IN (''active'', ''suspended'', ''deleted''))',
    'CHECK (status IN (''active'', ''suspended'', ''deleted'', ''provisioning'', ''provisioning_failed''))')
WHERE type = 'table' AND name = 'tenants';
PRAGMA writable_schema = RESET;

-- One row per workflow (see the PostgreSQL migration).
CREATE TABLE provisioning_workflows (
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
CREATE UNIQUE INDEX provisioning_workflows_id_key ON provisioning_workflows (id);
CREATE INDEX provisioning_workflows_due_idx ON provisioning_workflows (next_run_ms)
    WHERE status IN ('pending', 'running', 'compensating');
CREATE INDEX provisioning_workflows_status_idx ON provisioning_workflows (status, id);
CREATE UNIQUE INDEX provisioning_workflows_live_key ON provisioning_workflows (tenant_id)
    WHERE status IN ('pending', 'running', 'failed', 'compensating');
