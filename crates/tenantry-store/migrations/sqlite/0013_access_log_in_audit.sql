-- Reveals are recorded in the audit log (action credential.revealed /
-- settings.revealed, in the tenant's hash chain, written in the reveal's own
-- transaction); GET …/credentials/{id}/access-log reads them from there.
-- The old, unchained access log is no longer written or read. Its rows are
-- not carried into the chain (an entry's hash is computed by the server, not
-- in SQL): export them first if you need the history of earlier reveals.
DROP TABLE secret_access_log;
