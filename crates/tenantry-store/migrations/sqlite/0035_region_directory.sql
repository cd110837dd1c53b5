-- Where each tenant lives, for deployments with several regions (see
-- docs/regions.md). A directory, not tenant data: no tenant_id column.
CREATE TABLE region_directory (
    tenant      TEXT PRIMARY KEY,
    region      TEXT NOT NULL,
    moving_to   TEXT,
    move_state  TEXT,
    move_report TEXT,
    updated_at  TEXT NOT NULL
) STRICT;
