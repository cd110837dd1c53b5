-- Custom domains prove their ownership before they resolve (issue 8): a
-- claim is `pending` with a per-claim token until a DNS TXT record at
-- _tenantry-challenge.<domain> carries that token (or an operator forces it).
--
-- Domains attached before this migration had no proof at all (any tenant
-- admin could attach another tenant's host), so they become `pending`, each
-- with a fresh token: verify them again, or force-verify them as operator.
ALTER TABLE tenant_domains
    ADD COLUMN status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verified'));
ALTER TABLE tenant_domains ADD COLUMN verification_token TEXT NOT NULL DEFAULT '';
ALTER TABLE tenant_domains ADD COLUMN verified_at TEXT;
UPDATE tenant_domains
    SET verification_token = 'tenantry-verification=' || lower(hex(randomblob(16)));

-- Several tenants may claim one domain while it is pending (each with its
-- own token); only one may hold it verified.
DROP INDEX tenant_domains_domain_key;
CREATE UNIQUE INDEX tenant_domains_verified_key ON tenant_domains (domain) WHERE status = 'verified';
CREATE INDEX tenant_domains_domain_idx ON tenant_domains (domain);
