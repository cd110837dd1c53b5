-- Public chat widgets (issue 11): each names the origins (exact
-- scheme://host[:port], or scheme://*.domain[:port] for subdomains) whose
-- pages may get its short-lived tokens. A disabled widget's tokens stop
-- verifying at once.
CREATE TABLE widgets (
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    allowed_origins  TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
