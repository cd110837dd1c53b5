-- Trusted identity providers (operator-wide) and tenant memberships of
-- their users (tenant-scoped).

-- One row per trusted issuer; its settings (audiences, algorithms, claims,
-- role mapping, inline keys) as one JSON document.
CREATE TABLE identity_providers (
    id          TEXT PRIMARY KEY,
    issuer      TEXT NOT NULL UNIQUE,
    config      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- A user (an issuer's subject, namespaced by the provider) in a tenant.
CREATE TABLE tenant_members (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    provider_id  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    roles        TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider_id, subject)
) STRICT;
-- Resolution's lookup: which tenants is this user a member of.
CREATE INDEX tenant_members_subject_idx ON tenant_members (provider_id, subject);
