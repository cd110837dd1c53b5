-- Trusted identity providers (operator-wide) and tenant memberships of
-- their users (tenant-scoped).

-- One row per trusted issuer; its settings (audiences, algorithms, claims,
-- role mapping, inline keys) as one JSON document. The operator's alone: a
-- tenant transaction that could add an issuer could mint its own operators.
CREATE TABLE identity_providers (
    id          TEXT PRIMARY KEY,
    issuer      TEXT NOT NULL UNIQUE,
    config      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
REVOKE ALL ON identity_providers FROM PUBLIC, tenantry_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON identity_providers TO tenantry_operator;
ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY operator_only ON identity_providers TO tenantry_operator
    USING (current_setting('app.operator', true) = 'on')
    WITH CHECK (current_setting('app.operator', true) = 'on');

-- A user (an issuer's subject, namespaced by the provider) in a tenant.
-- Isolated like every tenant table; resolution's subject → tenants lookup
-- is the operator path's read-only policy (operator_read), never a tenant
-- transaction.
CREATE TABLE tenant_members (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider_id  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    roles        TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, subject)
);
CREATE INDEX tenant_members_subject_idx ON tenant_members (provider_id, subject);
SELECT tenantry_isolate('tenant_members');
