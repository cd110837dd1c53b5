-- The leads service's schema, run once by an administrator (a role that can
-- create tables); the service itself connects as {app_role}, an ordinary
-- login role (NOSUPERUSER, NOBYPASSRLS) that owns nothing.
--
-- Every table carries tenant_id (filled from the transaction's tenant by
-- default) and is under row-level security keyed on app.tenant_id, which the
-- service sets per transaction (tenantry_layer::db::begin_tenant_tx). The
-- RLS statements below are what `tenantry app-db isolate` installs; once that
-- command is available, run it instead of the "Isolation" section.
--
-- `CHECK (tenant_id <> '')`: on a pooled connection that served a tenant's
-- transaction before, current_setting('app.tenant_id', true) is '' (not NULL)
-- once that transaction is over, so without the check an insert with no
-- tenant would pass the policy as tenant ''.
--
-- Child rows reference their parent by (tenant_id, id): a foreign key check
-- bypasses row-level security, so a plain `lead_id` reference would let one
-- tenant attach rows to (and so probe for) another tenant's leads.

CREATE TABLE campaigns (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id', true)
        CHECK (tenant_id <> ''),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

CREATE TABLE leads (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id', true)
        CHECK (tenant_id <> ''),
    campaign_id bigint,
    name text NOT NULL,
    email text NOT NULL,
    status text NOT NULL DEFAULT 'new',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES campaigns (tenant_id, id)
);

CREATE TABLE calls (
    id bigserial PRIMARY KEY,
    tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id', true)
        CHECK (tenant_id <> ''),
    lead_id bigint NOT NULL,
    outcome text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES leads (tenant_id, id) ON DELETE CASCADE
);

-- Isolation is not written here: `leads::setup` runs `tenantry app-db
-- isolate` (the tenantry-appdb crate) on the three tables after this file.

-- The service's rights: rows only, no DDL.
GRANT SELECT, INSERT, UPDATE, DELETE ON campaigns, leads, calls TO {app_role};
GRANT USAGE ON SEQUENCE campaigns_id_seq, leads_id_seq, calls_id_seq TO {app_role};
