-- Where each tenant lives, for deployments with several regions (see
-- docs/regions.md). Written into every region's database by tenant creation
-- and by the move workflow, so any node can point a caller to a tenant's home
-- region. A directory, not tenant data: no tenant_id column, no row-level
-- security, nothing but the tenant's id and regions.
CREATE TABLE region_directory (
    tenant      TEXT PRIMARY KEY,
    region      TEXT NOT NULL,
    -- Set while the tenant is being moved out of this region (frozen).
    moving_to   TEXT,
    -- The move's step (copying, copied, failed, done) and its report (JSON).
    move_state  TEXT,
    move_report TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON region_directory TO tenantry_operator;
