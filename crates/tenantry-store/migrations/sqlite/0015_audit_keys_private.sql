-- PostgreSQL only (table privileges): SQLite has no roles. Kept so both
-- backends share numbers.
SELECT 1;
