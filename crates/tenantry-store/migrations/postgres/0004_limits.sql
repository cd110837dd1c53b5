-- Plans, tenant configuration, usage metering and quotas.

-- The plan catalog (operator-wide, not tenant-scoped).
CREATE TABLE plans (
    name        TEXT PRIMARY KEY,
    definition  JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
INSERT INTO plans (name, definition, updated_at) VALUES
 ('starter', '{"description": "For small teams", "quotas": {"messages_outbound": 1000}, "limits": {"agents": 5}, "rate_limits": {"messages_per_minute": 60, "api_calls_per_hour": 1000}, "features": {"template_messages": false, "media_messages": true, "analytics": false}}', now()),
 ('professional', '{"description": "For growing teams", "quotas": {"messages_outbound": 10000}, "limits": {"agents": 25}, "rate_limits": {"messages_per_minute": 300, "api_calls_per_hour": 10000}, "features": {"template_messages": true, "media_messages": true, "analytics": true}}', now()),
 ('enterprise', '{"description": "Unlimited", "quotas": {"messages_outbound": null}, "limits": {"agents": null}, "rate_limits": {"messages_per_minute": 1000, "api_calls_per_hour": 100000}, "features": {"template_messages": true, "media_messages": true, "analytics": true}}', now());

-- Meters usage events are counted under (built-in and custom).
CREATE TABLE meters (
    name         TEXT PRIMARY KEY,
    aggregation  TEXT NOT NULL CHECK (aggregation IN ('sum', 'last', 'distinct')),
    description  TEXT NOT NULL DEFAULT '',
    builtin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMPTZ NOT NULL
);
INSERT INTO meters (name, aggregation, description, builtin, created_at) VALUES
 ('messages_inbound', 'sum', 'Messages received', TRUE, now()),
 ('messages_outbound', 'sum', 'Messages sent', TRUE, now()),
 ('api_calls', 'sum', 'API calls', TRUE, now()),
 ('template_messages', 'sum', 'Template messages sent', TRUE, now()),
 ('active_conversations', 'distinct', 'Distinct conversations (subjects) per period', TRUE, now()),
 ('storage_bytes', 'last', 'Storage used (a gauge: the last value counts)', TRUE, now());

-- A tenant's configuration overrides, versioned; the latest is in force.
CREATE TABLE tenant_config_versions (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    overrides   JSONB NOT NULL,
    actor       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
SELECT tenantry_isolate('tenant_config_versions');

-- Accepted usage events; the id is the caller's idempotency key.
CREATE TABLE usage_events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    meter        TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    subject      TEXT,
    properties   JSONB NOT NULL DEFAULT '{}',
    received_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
SELECT tenantry_isolate('usage_events');

-- Aggregates per meter and period (hour, day, month; UTC).
CREATE TABLE usage_counters (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    granularity   TEXT NOT NULL CHECK (granularity IN ('hour', 'day', 'month')),
    period_start  TIMESTAMPTZ NOT NULL,
    value         BIGINT NOT NULL,
    last_at       TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, meter, granularity, period_start)
);
SELECT tenantry_isolate('usage_counters');

-- Subjects already counted by a distinct meter in a period.
CREATE TABLE usage_subjects (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    granularity   TEXT NOT NULL,
    period_start  TIMESTAMPTZ NOT NULL,
    subject       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, meter, granularity, period_start, subject)
);
SELECT tenantry_isolate('usage_subjects');

-- Quota thresholds already reported, once per meter, period and threshold.
CREATE TABLE quota_alerts (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    period_start  TIMESTAMPTZ NOT NULL,
    threshold     INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, meter, period_start, threshold)
);
SELECT tenantry_isolate('quota_alerts');

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantry_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON plans, meters TO tenantry_app;
    END IF;
END
$$;
