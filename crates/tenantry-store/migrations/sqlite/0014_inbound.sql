-- Inbound traffic (issue 11): WhatsApp Cloud API webhooks and provider
-- status callbacks, stored under the tenant whose secret authenticated them.

-- Which tenant a WhatsApp Business Account (`waba`) or phone number id
-- (`phone`) belongs to: rebuilt from the tenant's WhatsApp credentials on
-- every credential change. The unique index spans tenants, so a second
-- tenant cannot claim an id another tenant registered.
CREATE TABLE whatsapp_routes (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    kind          TEXT NOT NULL CHECK (kind IN ('waba', 'phone')),
    external_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, external_id)
);
CREATE UNIQUE INDEX whatsapp_routes_external_key ON whatsapp_routes (kind, external_id);

-- Raw deliveries, exactly as received, stored before they are acknowledged.
-- A byte-identical redelivery has the same digest and is stored once.
CREATE TABLE inbound_payloads (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    source        TEXT NOT NULL,
    digest        TEXT NOT NULL,
    body          BLOB NOT NULL,
    received_at   TEXT NOT NULL,
    parse_error   TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX inbound_payloads_digest_key ON inbound_payloads (tenant_id, source, digest);

CREATE TABLE conversations (
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    id                TEXT NOT NULL,
    channel           TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    contact_key       TEXT NOT NULL,
    wa_id             TEXT,
    user_id           TEXT,
    profile_name      TEXT,
    created_at        TEXT NOT NULL,
    last_activity_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX conversations_contact_key ON conversations (tenant_id, channel, account_id, contact_key);

-- Messages in both directions. (channel, account_id, provider_message_id)
-- is the provider's identity of a message: Meta's message id under its
-- phone number id, or a provider's id; a redelivery finds the row.
CREATE TABLE messages (
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    id                   TEXT NOT NULL,
    conversation_id      TEXT,
    direction            TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    channel              TEXT NOT NULL,
    provider             TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    type                 TEXT NOT NULL,
    sender               TEXT,
    recipient            TEXT,
    campaign_id          TEXT,
    body                 TEXT NOT NULL,
    status               TEXT,
    sent_at              TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX messages_provider_key ON messages (tenant_id, channel, account_id, provider_message_id);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, id);
CREATE INDEX messages_provider_id_idx ON messages (provider, provider_message_id);

-- Every status a message reached, once each (`inferred`: `delivered` implied
-- by a `read` that came first or alone).
CREATE TABLE message_statuses (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    message_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    inferred     INTEGER NOT NULL,
    error        TEXT,
    detail       TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id, status)
);
