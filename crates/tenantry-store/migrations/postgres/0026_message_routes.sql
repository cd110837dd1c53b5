-- Provider status callbacks (issue 11): which tenant registered an outbound
-- message's (provider, provider_message_id). The unique index sees every
-- tenant's rows (whatever the policies let a transaction read), so a
-- callback naming an id resolves to one tenant at most and a second tenant
-- cannot register an id another tenant has.
CREATE TABLE message_routes (
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    provider             TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    message_id           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider, provider_message_id)
);
CREATE UNIQUE INDEX message_routes_provider_key ON message_routes (provider, provider_message_id);
SELECT tenantry_isolate('message_routes');
