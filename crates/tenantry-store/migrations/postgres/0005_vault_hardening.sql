-- Token-signing seeds sealed with the vault's key-encryption key, like
-- tenants' data keys: `wrapped_seed` under the KEK `kek_id`. A key stored
-- before this has kek_id NULL and its seed in `seed`; the server seals it
-- at start and leaves `seed` empty.
ALTER TABLE signing_keys ADD COLUMN kek_id TEXT;
ALTER TABLE signing_keys ADD COLUMN wrapped_seed BYTEA;
