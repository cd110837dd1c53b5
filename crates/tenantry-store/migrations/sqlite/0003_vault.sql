-- The credential vault: envelopes sealed with the tenant's data key, which is
-- stored only wrapped by a key-encryption key kept outside the database.

CREATE TABLE tenant_data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    kek_id      TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    active      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX tenant_data_keys_kek_idx ON tenant_data_keys (tenant_id, kek_id);

CREATE TABLE credentials (
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    fields            TEXT NOT NULL,
    sealed            TEXT NOT NULL,
    is_active         INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_revealed_at  TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE TABLE secret_access_log (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    target      TEXT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    source_ip   TEXT,
    request_id  TEXT,
    user_agent  TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX secret_access_log_target_idx ON secret_access_log (tenant_id, target, id);

CREATE TABLE tenant_settings (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    data        TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, category)
) STRICT;
