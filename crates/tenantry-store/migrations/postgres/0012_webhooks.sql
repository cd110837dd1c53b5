-- The event catalogue's names (`GET /v1/event-types`) for the kinds the
-- history has always recorded; outbound webhooks carry the same names.
UPDATE tenant_events SET kind = CASE kind
    WHEN 'created' THEN 'tenant.created'
    WHEN 'updated' THEN 'tenant.updated'
    WHEN 'suspended' THEN 'tenant.suspended'
    WHEN 'reactivated' THEN 'tenant.reactivated'
    WHEN 'deleted' THEN 'tenant.deleted'
    WHEN 'domain_added' THEN 'domain.added'
    WHEN 'domain_removed' THEN 'domain.removed'
    WHEN 'domain_verified' THEN 'domain.verified'
    WHEN 'key_created' THEN 'api_key.created'
    WHEN 'key_updated' THEN 'api_key.updated'
    WHEN 'key_revoked' THEN 'api_key.revoked'
    WHEN 'key_rotated' THEN 'api_key.rotated'
    WHEN 'credential_created' THEN 'credential.created'
    WHEN 'credential_updated' THEN 'credential.updated'
    WHEN 'credential_deleted' THEN 'credential.deleted'
    WHEN 'settings_updated' THEN 'settings.updated'
    WHEN 'data_key_rotated' THEN 'keyring.rotated'
    WHEN 'config_updated' THEN 'config.updated'
    ELSE kind END;

-- Events with no tenant (plan.updated, tenant.purged, an operator
-- endpoint's webhook_endpoint.disabled): the operator's event stream.
CREATE TABLE operator_events (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    data        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Outbound webhooks. The tables below hold both tenants' rows and the
-- operator's: an operator row has tenant_id '' (no tenant has that id, and
-- it is the tenant in context on the operator path). A tenant transaction
-- sees only its own tenant's rows; the operator path (workers, operator
-- endpoints) sees and changes them all.

-- Endpoints. Secrets are sealed under the keyring (`secret`, and the one it
-- replaced while the rotation overlap lasts); `signing_seed` is the sealed
-- Ed25519 seed of `v1a` signatures.
CREATE TABLE webhook_endpoints (
    tenant_id              TEXT NOT NULL,
    id                     TEXT NOT NULL,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    event_types            JSONB NOT NULL,
    enabled                BOOLEAN NOT NULL,
    rate_limit_per_second  BIGINT,
    ordering               TEXT NOT NULL CHECK (ordering IN ('none', 'fifo')),
    metadata               JSONB NOT NULL,
    secret                 JSONB NOT NULL,
    previous_secret        JSONB,
    previous_until_ms      BIGINT,
    signing_seed           JSONB,
    signing_public_key     TEXT,
    disabled_reason        TEXT,
    failing_since_ms       BIGINT,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- The outbox: one row per event, written in the change's transaction, until
-- a worker has fanned it out to the matching endpoints' messages.
CREATE TABLE webhook_outbox (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX webhook_outbox_order_idx ON webhook_outbox (created_ms, event_id);

-- One message per (event, endpoint), owned by the endpoint's owner.
-- `body` is the exact bytes signed and sent on every attempt; times are Unix
-- milliseconds (compared as numbers on both backends).
CREATE TABLE webhook_messages (
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_tenant_id  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    lease_until_ms   BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    created_ms       BIGINT NOT NULL,
    delivered_ms     BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX webhook_messages_event_idx ON webhook_messages (tenant_id, endpoint_id, event_id);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (next_attempt_ms) WHERE status = 'pending';

-- Every attempt of a message: the receiver's status, latency, answer
-- (truncated to 4 KiB) or the error.
CREATE TABLE webhook_attempts (
    tenant_id      TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    attempt        BIGINT NOT NULL,
    started_ms     BIGINT NOT NULL,
    status_code    BIGINT,
    latency_ms     BIGINT NOT NULL,
    response_body  TEXT NOT NULL DEFAULT '',
    error          TEXT,
    PRIMARY KEY (tenant_id, message_id, attempt)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON operator_events TO tenantry_operator;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_outbox', 'webhook_messages', 'webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I
                 USING (tenant_id = current_setting(''app.tenant_id'', true))
                 WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
        -- Unlike tenantry_isolate's read-only operator policy: the delivery
        -- workers claim and update every owner's rows on the operator path.
        EXECUTE format(
            'CREATE POLICY operator_all ON %I TO tenantry_operator
                 USING (current_setting(''app.operator'', true) = ''on'')
                 WITH CHECK (current_setting(''app.operator'', true) = ''on'')', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO tenantry_app, tenantry_operator', t);
    END LOOP;
END
$$;
