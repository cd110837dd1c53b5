-- Plans, tenant configuration, usage metering and quotas.

-- The plan catalog (operator-wide, not tenant-scoped).
CREATE TABLE plans (
    name        TEXT PRIMARY KEY,
    definition  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
INSERT INTO plans (name, definition, updated_at) VALUES
 ('starter', '{"description": "For small teams", "quotas": {"messages_outbound": 1000}, "limits": {"agents": 5}, "rate_limits": {"messages_per_minute": 60, "api_calls_per_hour": 1000}, "features": {"template_messages": false, "media_messages": true, "analytics": false}}', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('professional', '{"description": "For growing teams", "quotas": {"messages_outbound": 10000}, "limits": {"agents": 25}, "rate_limits": {"messages_per_minute": 300, "api_calls_per_hour": 10000}, "features": {"template_messages": true, "media_messages": true, "analytics": true}}', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('enterprise', '{"description": "Unlimited", "quotas": {"messages_outbound": null}, "limits": {"agents": null}, "rate_limits": {"messages_per_minute": 1000, "api_calls_per_hour": 100000}, "features": {"template_messages": true, "media_messages": true, "analytics": true}}', strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));

-- Meters usage events are counted under (built-in and custom).
CREATE TABLE meters (
    name         TEXT PRIMARY KEY,
    aggregation  TEXT NOT NULL CHECK (aggregation IN ('sum', 'last', 'distinct')),
    description  TEXT NOT NULL DEFAULT '',
    builtin      INTEGER NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL
) STRICT;
INSERT INTO meters (name, aggregation, description, builtin, created_at) VALUES
 ('messages_inbound', 'sum', 'Messages received', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('messages_outbound', 'sum', 'Messages sent', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('api_calls', 'sum', 'API calls', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('template_messages', 'sum', 'Template messages sent', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('active_conversations', 'distinct', 'Distinct conversations (subjects) per period', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
 ('storage_bytes', 'last', 'Storage used (a gauge: the last value counts)', 1, strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'));

-- A tenant's configuration overrides, versioned; the latest is in force.
CREATE TABLE tenant_config_versions (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    overrides   TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
) STRICT;

-- Accepted usage events; the id is the caller's idempotency key.
CREATE TABLE usage_events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    meter        TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    occurred_at  TEXT NOT NULL,
    subject      TEXT,
    properties   TEXT NOT NULL DEFAULT '{}',
    received_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- Aggregates per meter and period (hour, day, month; UTC).
CREATE TABLE usage_counters (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    granularity   TEXT NOT NULL CHECK (granularity IN ('hour', 'day', 'month')),
    period_start  TEXT NOT NULL,
    value         INTEGER NOT NULL,
    last_at       TEXT,
    PRIMARY KEY (tenant_id, meter, granularity, period_start)
) STRICT;

-- Subjects already counted by a distinct meter in a period.
CREATE TABLE usage_subjects (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    granularity   TEXT NOT NULL,
    period_start  TEXT NOT NULL,
    subject       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, meter, granularity, period_start, subject)
) STRICT;

-- Quota thresholds already reported, once per meter, period and threshold.
CREATE TABLE quota_alerts (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    meter         TEXT NOT NULL,
    period_start  TEXT NOT NULL,
    threshold     INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, meter, period_start, threshold)
) STRICT;

