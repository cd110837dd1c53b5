//! API keys (tenant-scoped `api_keys`), operator keys and token signing keys.

use crate::Result;
use crate::error::StoreError;
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tenantry_core::TenantId;
use tenantry_core::keys::{ApiKey, ApiKeyPatch, Environment, OperatorKey, Scopes};
use tenantry_core::values::Metadata;

pub(crate) const KEY_COLUMNS: &str = "tenant_id, id, key_hash, start, name, scopes, environment, enabled, expires_at, \
                           revoked_at, metadata, last_used_at, rotated_from, created_at, updated_at";

type KeyRow = (
    String,
    String,
    Vec<u8>,
    String,
    String,
    Json<Vec<String>>,
    String,
    bool,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Json<serde_json::Value>,
    Option<DateTime<Utc>>,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn hash32(id: &str, bytes: Vec<u8>) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("key {id} has a malformed hash")))
}

fn environment(id: &str, value: &str) -> Result<Environment> {
    Environment::parse("environment", value)
        .map_err(|_| StoreError::Corrupt(format!("key {id} environment {value:?}")))
}

fn key_from_row(row: KeyRow) -> Result<ApiKey> {
    let (
        tenant_id,
        id,
        hash,
        start,
        name,
        scopes,
        env,
        enabled,
        expires_at,
        revoked_at,
        metadata,
        last_used_at,
        rotated_from,
        created_at,
        updated_at,
    ) = row;
    let serde_json::Value::Object(metadata) = metadata.0 else {
        return Err(StoreError::Corrupt(format!(
            "key {id} metadata is not an object"
        )));
    };
    Ok(ApiKey {
        key_hash: hash32(&id, hash)?,
        environment: environment(&id, &env)?,
        tenant_id: TenantId::from_trusted(tenant_id),
        id,
        start,
        name,
        scopes: Scopes::from_trusted(scopes.0.iter().map(String::as_str)),
        enabled,
        expires_at,
        revoked_at,
        metadata: Metadata::from_trusted(metadata),
        last_used_at,
        rotated_from,
        created_at,
        updated_at,
    })
}

/// A page of keys, in id order.
#[derive(Debug)]
pub struct KeyPage {
    pub keys: Vec<ApiKey>,
    pub next_after: Option<String>,
}

impl TenantTx {
    pub async fn insert_key(&mut self, key: &ApiKey) -> Result<()> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        let scopes = Json(key.scopes.names());
        let metadata = Json(key.metadata.as_map());
        on_conn!(&mut self.conn, |c| sqlx::query(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(&key.id)
            .bind(&key.key_hash[..])
            .bind(&key.start)
            .bind(&key.name)
            .bind(&scopes)
            .bind(key.environment.as_str())
            .bind(key.enabled)
            .bind(key.expires_at)
            .bind(key.revoked_at)
            .bind(metadata)
            .bind(key.last_used_at)
            .bind(&key.rotated_from)
            .bind(key.created_at)
            .bind(key.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        self.insert_key_lookups(std::slice::from_ref(key)).await
    }

    /// The keys' rows in `api_key_lookup` (hash → tenant and key), which
    /// keeps a hash unique across tenants and lets verification find a key
    /// by its hash alone; written with the keys, in their transaction.
    async fn insert_key_lookups(&mut self, keys: &[ApiKey]) -> Result<()> {
        let mut sql =
            String::from("INSERT INTO api_key_lookup (key_hash, tenant_id, key_id) VALUES ");
        crate::values::push_value_rows(&mut sql, keys.len(), 3, "", 1);
        on_conn!(&mut self.conn, |c| {
            let mut query = sqlx::query(sql.as_str());
            for key in keys {
                query = query
                    .bind(&key.key_hash[..])
                    .bind(self.tenant.as_str())
                    .bind(&key.id);
            }
            query.execute(&mut **c).await?.rows_affected()
        });
        Ok(())
    }

    /// Inserts many keys of this tenant in one statement (seeding, imports).
    pub async fn insert_keys(&mut self, keys: &[ApiKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut sql = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ");
        crate::values::push_value_rows(&mut sql, keys.len(), 15, "", 1);
        on_conn!(&mut self.conn, |c| {
            let mut query = sqlx::query(sql.as_str());
            for key in keys {
                query = query
                    .bind(self.tenant.as_str())
                    .bind(&key.id)
                    .bind(&key.key_hash[..])
                    .bind(&key.start)
                    .bind(&key.name)
                    .bind(Json(key.scopes.names()))
                    .bind(key.environment.as_str())
                    .bind(key.enabled)
                    .bind(key.expires_at)
                    .bind(key.revoked_at)
                    .bind(Json(key.metadata.as_map()))
                    .bind(key.last_used_at)
                    .bind(&key.rotated_from)
                    .bind(key.created_at)
                    .bind(key.updated_at);
            }
            query.execute(&mut **c).await?.rows_affected()
        });
        self.insert_key_lookups(keys).await
    }

    pub async fn get_key(&mut self, id: &str) -> Result<ApiKey> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
        let row: Option<KeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        row.map(key_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Whether a key was made by rotating key `id`.
    pub async fn key_has_successor(&mut self, id: &str) -> Result<bool> {
        let sql = "SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND rotated_from = $2";
        let (n,): (i64,) = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_one(&mut **c)
            .await?);
        Ok(n > 0)
    }

    pub async fn list_keys(&mut self, after: Option<&str>, limit: u32) -> Result<KeyPage> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<KeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut **c)
            .await?);
        let mut keys = rows
            .into_iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_after = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().map(|k| k.id.clone())
        } else {
            None
        };
        Ok(KeyPage { keys, next_after })
    }

    pub async fn update_key(
        &mut self,
        id: &str,
        patch: &ApiKeyPatch,
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let sql = format!(
            "UPDATE api_keys SET name = COALESCE($3, name), scopes = COALESCE($4, scopes), \
               enabled = COALESCE($5, enabled), \
               expires_at = CASE WHEN $6 THEN $7 ELSE expires_at END, \
               metadata = COALESCE($8, metadata), updated_at = $9 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}"
        );
        let scopes = patch.scopes.as_ref().map(|s| Json(s.names()));
        let metadata = patch.metadata.as_ref().map(|m| Json(m.as_map()));
        let row: Option<KeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(patch.name.as_deref())
            .bind(&scopes)
            .bind(patch.enabled)
            .bind(patch.expires_at.is_some())
            .bind(patch.expires_at.flatten())
            .bind(metadata)
            .bind(now)
            .fetch_optional(&mut **c)
            .await?);
        row.map(key_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    pub async fn revoke_key(&mut self, id: &str, now: DateTime<Utc>) -> Result<ApiKey> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3), updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {KEY_COLUMNS}"
        );
        let row: Option<KeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(id)
            .bind(now)
            .fetch_optional(&mut **c)
            .await?);
        row.map(key_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Records when keys were last used (coalesced by the caller).
    pub async fn touch_keys(&mut self, used: &[(String, DateTime<Utc>)]) -> Result<()> {
        let sql = "UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2 \
                   AND (last_used_at IS NULL OR last_used_at < $3)";
        for (id, at) in used {
            on_conn!(&mut self.conn, |c| sqlx::query(sql)
                .bind(self.tenant.as_str())
                .bind(id)
                .bind(*at)
                .execute(&mut **c)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    /// Every key hash of this tenant (to drop them from caches on purge).
    pub async fn key_hashes(&mut self) -> Result<Vec<[u8; 32]>> {
        let rows: Vec<(String, Vec<u8>)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT id, key_hash FROM api_keys WHERE tenant_id = $1"
        )
        .bind(self.tenant.as_str())
        .fetch_all(&mut **c)
        .await?);
        rows.into_iter().map(|(id, h)| hash32(&id, h)).collect()
    }
}

type OperatorKeyRow = (
    String,
    Vec<u8>,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
);
const OPERATOR_COLUMNS: &str =
    "id, key_hash, start, name, environment, revoked_at, last_used_at, created_at";

fn operator_key_from_row(row: OperatorKeyRow) -> Result<OperatorKey> {
    let (id, hash, start, name, env, revoked_at, last_used_at, created_at) = row;
    Ok(OperatorKey {
        key_hash: hash32(&id, hash)?,
        environment: environment(&id, &env)?,
        id,
        start,
        name,
        revoked_at,
        last_used_at,
        created_at,
    })
}

impl OperatorTx {
    /// The tenant key with this hash, whichever tenant it belongs to: the
    /// explicit cross-tenant lookup behind key verification.
    pub async fn find_key_by_hash(&mut self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        // One statement: the global lookup names the tenant and key, the
        // tenant's row follows by its primary key (docs/citus.md).
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let columns: Vec<String> = KEY_COLUMNS
                .split(", ")
                .map(|c| format!("k.{}", c.trim()))
                .collect();
            format!(
                "SELECT {} FROM api_key_lookup l \
                   JOIN api_keys k ON k.tenant_id = l.tenant_id AND k.id = l.key_id \
                  WHERE l.key_hash = $1",
                columns.join(", ")
            )
        });
        let row: Option<KeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(SQL.as_str())
            .bind(&hash[..])
            .fetch_optional(&mut **c)
            .await?);
        row.map(key_from_row).transpose()
    }

    pub async fn insert_operator_key(&mut self, key: &OperatorKey) -> Result<()> {
        let sql = format!(
            "INSERT INTO operator_keys ({OPERATOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        on_conn!(&mut self.conn, |c| sqlx::query(sql.as_str())
            .bind(&key.id)
            .bind(&key.key_hash[..])
            .bind(&key.start)
            .bind(&key.name)
            .bind(key.environment.as_str())
            .bind(key.revoked_at)
            .bind(key.last_used_at)
            .bind(key.created_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub async fn find_operator_key_by_hash(
        &mut self,
        hash: &[u8; 32],
    ) -> Result<Option<OperatorKey>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operator_keys WHERE key_hash = $1");
        let row: Option<OperatorKeyRow> =
            on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
                .bind(&hash[..])
                .fetch_optional(&mut **c)
                .await?);
        row.map(operator_key_from_row).transpose()
    }

    pub async fn list_operator_keys(&mut self) -> Result<Vec<OperatorKey>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operator_keys ORDER BY id");
        let rows: Vec<OperatorKeyRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .fetch_all(&mut **c)
            .await?);
        rows.into_iter().map(operator_key_from_row).collect()
    }

    pub async fn revoke_operator_key(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<OperatorKey> {
        let sql = format!(
            "UPDATE operator_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING {OPERATOR_COLUMNS}"
        );
        let row: Option<OperatorKeyRow> =
            on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
                .bind(id)
                .bind(now)
                .fetch_optional(&mut **c)
                .await?);
        row.map(operator_key_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Revokes an operator key that is not revoked yet: `None` when it is
    /// unknown or was revoked already (a concurrent revocation that
    /// committed first included: PostgreSQL re-checks the condition after
    /// waiting for its row lock).
    pub async fn revoke_live_operator_key(
        &mut self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OperatorKey>> {
        let sql = format!(
            "UPDATE operator_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING {OPERATOR_COLUMNS}"
        );
        let row: Option<OperatorKeyRow> =
            on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
                .bind(id)
                .bind(now)
                .fetch_optional(&mut **c)
                .await?);
        row.map(operator_key_from_row).transpose()
    }

    pub async fn touch_operator_keys(&mut self, used: &[(String, DateTime<Utc>)]) -> Result<()> {
        for (id, at) in used {
            on_conn!(&mut self.conn, |c| {
                sqlx::query(
                "UPDATE operator_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"
            )
            .bind(id)
            .bind(*at)
            .execute(&mut **c)
            .await?
            .rows_affected()
            });
        }
        Ok(())
    }

    /// Serializes the creation of signing keys across server processes
    /// (PostgreSQL: a transaction-level advisory lock; SQLite: the write
    /// lock, taken by a statement that writes nothing). Call it first.
    pub async fn lock_signing_keys(&mut self) -> Result<()> {
        match &mut self.conn {
            crate::scope::Conn::Postgres(c) => {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenantry:signing_keys'))")
                    .execute(&mut **c)
                    .await?;
            }
            crate::scope::Conn::Sqlite(c) => {
                sqlx::query("UPDATE signing_keys SET kid = kid WHERE 0")
                    .execute(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    /// Token signing keys, newest first.
    pub async fn signing_keys(&mut self) -> Result<Vec<StoredSigningKey>> {
        let rows: Vec<SigningKeyRow> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT kid, seed, kek_id, wrapped_seed, public_key, created_at, retired_at FROM signing_keys \
             ORDER BY created_at DESC, kid DESC"
        )
        .fetch_all(&mut **c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(kid, seed, kek_id, wrapped_seed, public_key, created_at, retired_at)| {
                    StoredSigningKey {
                        kid,
                        plaintext_seed: seed,
                        sealed_seed: kek_id.zip(wrapped_seed),
                        public_key,
                        created_at,
                        retired_at,
                    }
                },
            )
            .collect())
    }

    /// Adds a signing key, its seed sealed by the KEK `kek_id`, and retires
    /// the current one (it keeps verifying).
    pub async fn add_signing_key(
        &mut self,
        kid: &str,
        kek_id: &str,
        wrapped_seed: &[u8],
        public_key: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL"
        )
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected());
        on_conn!(&mut self.conn, |c| sqlx::query(
            "INSERT INTO signing_keys (kid, seed, kek_id, wrapped_seed, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(kid)
        .bind(Vec::<u8>::new())
        .bind(kek_id)
        .bind(wrapped_seed)
        .bind(public_key)
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Replaces a plaintext seed (stored before seeds were sealed) by its
    /// sealed form. Returns whether it changed.
    pub async fn seal_signing_key(
        &mut self,
        kid: &str,
        kek_id: &str,
        wrapped_seed: &[u8],
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| sqlx::query(
            "UPDATE signing_keys SET seed = $4, kek_id = $2, wrapped_seed = $3 \
             WHERE kid = $1 AND kek_id IS NULL"
        )
        .bind(kid)
        .bind(kek_id)
        .bind(wrapped_seed)
        .bind(Vec::<u8>::new())
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// Replaces a sealed seed's wrapping if it is still wrapped by
    /// `from_kek`. Returns whether it changed.
    pub async fn rewrap_signing_key(
        &mut self,
        kid: &str,
        from_kek: &str,
        to_kek: &str,
        wrapped_seed: &[u8],
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "UPDATE signing_keys SET kek_id = $3, wrapped_seed = $4 WHERE kid = $1 AND kek_id = $2"
        )
        .bind(kid)
        .bind(from_kek)
        .bind(to_kek)
        .bind(wrapped_seed)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }

    /// Deletes signing keys retired before `before` (their tokens have expired).
    pub async fn prune_signing_keys(&mut self, before: DateTime<Utc>) -> Result<u64> {
        Ok(on_conn!(&mut self.conn, |c| sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1"
        )
        .bind(before)
        .execute(&mut **c)
        .await?
        .rows_affected()))
    }
}

type SigningKeyRow = (
    String,
    Vec<u8>,
    Option<String>,
    Option<Vec<u8>>,
    Vec<u8>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// A token signing key as stored. `Debug` never shows the seed.
#[derive(Clone)]
pub struct StoredSigningKey {
    pub kid: String,
    /// The seed of a key stored before seeds were sealed (empty once sealed).
    pub plaintext_seed: Vec<u8>,
    /// `(kek_id, wrapped seed)`.
    pub sealed_seed: Option<(String, Vec<u8>)>,
    pub public_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("kek_id", &self.sealed_seed.as_ref().map(|(k, _)| k))
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}
