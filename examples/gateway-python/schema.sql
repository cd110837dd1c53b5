-- The app's table. organization_id defaults to the tenant of the
-- transaction, so inserts need not name it; `tenantry app-db isolate
-- --table leads --column organization_id --role <app role>` then adds RLS,
-- the policy and the index.
CREATE TABLE leads (
    id bigserial PRIMARY KEY,
    organization_id text NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), ''),
    name text NOT NULL
);
