-- Quota leases (issue 16): blocks of a tenant's monthly quota handed to one
-- server process, which consumes them in memory. The block was added to the
-- month's usage counter when granted, so the counter is an upper bound of
-- what was admitted. One row per holder (a process incarnation) and period:
-- `granted` grows with each block, `returned` with the unused units given
-- back, `consumed` with what the holder reported consumed. A holder that
-- crashed leaves granted - returned - consumed as the most it may have lost.
CREATE TABLE quota_leases (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    period_start  TIMESTAMPTZ NOT NULL,
    holder        TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    granted       BIGINT NOT NULL CHECK (granted >= 0),
    consumed      BIGINT NOT NULL CHECK (consumed >= 0),
    returned      BIGINT NOT NULL CHECK (returned >= 0),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, meter, period_start, holder)
);
SELECT tenantry_isolate('quota_leases');
