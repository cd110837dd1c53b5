-- The checkpoint signing keys are the operator's: a tenant-scoped
-- transaction (role tenantry_app) could otherwise add a verifier key, so
-- that forged checkpoints verified, or delete a retired one, so that old
-- checkpoints failed. Only the operator path reads and writes them.
REVOKE ALL ON audit_signing_keys FROM tenantry_app;
