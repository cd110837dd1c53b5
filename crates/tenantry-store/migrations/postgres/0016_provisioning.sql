-- Provisioning workflows (issue 12): a tenant may now be `provisioning`
-- (being set up, not resolvable) or `provisioning_failed`.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('active', 'suspended', 'deleted', 'provisioning', 'provisioning_failed'));

-- One row per workflow: its request (secrets sealed, `secrets`), its steps
-- (JSON), the keys it generated until they are shown once (`issued_keys`,
-- sealed), and the lease of the node running it. No foreign key to
-- tenants: the row is written before its tenant exists and outlives a
-- tenant its compensation deleted. Times are Unix milliseconds.
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
    next_run_ms      BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms BIGINT NOT NULL DEFAULT 0,
    created_ms       BIGINT NOT NULL,
    updated_ms       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX provisioning_workflows_id_key ON provisioning_workflows (id);
CREATE INDEX provisioning_workflows_due_idx ON provisioning_workflows (next_run_ms)
    WHERE status IN ('pending', 'running', 'compensating');
CREATE INDEX provisioning_workflows_status_idx ON provisioning_workflows (status, id);
-- At most one workflow that is not finished per tenant id.
CREATE UNIQUE INDEX provisioning_workflows_live_key ON provisioning_workflows (tenant_id)
    WHERE status IN ('pending', 'running', 'failed', 'compensating');
SELECT tenantry_isolate('provisioning_workflows');
-- The operator path creates workflows (before their tenant exists) and
-- leases them to a worker.
CREATE POLICY operator_write ON provisioning_workflows TO tenantry_operator
    USING (current_setting('app.operator', true) = 'on')
    WITH CHECK (current_setting('app.operator', true) = 'on');
