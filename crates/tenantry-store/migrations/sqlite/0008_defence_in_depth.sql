-- PostgreSQL only (roles, row-level security, authenticated notifications):
-- SQLite has one process and no roles. Kept so both backends share numbers.
SELECT 1;
