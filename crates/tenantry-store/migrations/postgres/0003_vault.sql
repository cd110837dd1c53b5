-- The credential vault. Secrets are stored only as envelopes sealed with the
-- tenant's data key (DEK), which is itself stored only wrapped by a
-- key-encryption key (KEK) that never reaches the database.

CREATE TABLE tenant_data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     BYTEA NOT NULL,
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tenant_data_keys_kek_idx ON tenant_data_keys (tenant_id, kek_id);
SELECT tenantry_isolate('tenant_data_keys');

CREATE TABLE credentials (
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    fields            JSONB NOT NULL,
    sealed            JSONB NOT NULL,
    is_active         BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    last_revealed_at  TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, id)
);
SELECT tenantry_isolate('credentials');

CREATE TABLE secret_access_log (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    target      TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    source_ip   TEXT,
    request_id  TEXT,
    user_agent  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX secret_access_log_target_idx ON secret_access_log (tenant_id, target, id);
SELECT tenantry_isolate('secret_access_log');

CREATE TABLE tenant_settings (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    data        JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, category)
);
SELECT tenantry_isolate('tenant_settings');
