//! Storage of the credential vault: tenants' wrapped data keys, credentials
//! (public fields and sealed envelopes) and tenant settings (reveals are
//! recorded in the audit log). Encryption itself happens above, in the server's vault.

use crate::Result;
use crate::error::StoreError;
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tenantry_core::TenantId;

/// A tenant data key as stored: wrapped by the KEK `kek_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDataKey {
    pub id: String,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// A credential as stored: public fields in clear, sealed ones as envelopes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCredential {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Field name → envelope string.
    pub sealed: serde_json::Map<String, serde_json::Value>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_revealed_at: Option<DateTime<Utc>>,
}

type DataKeyRow = (String, String, Vec<u8>, bool, DateTime<Utc>);
type CredentialRow = (
    String,
    String,
    String,
    Json<serde_json::Value>,
    Json<serde_json::Value>,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);
const CREDENTIAL_COLUMNS: &str =
    "id, kind, name, fields, sealed, is_active, created_at, updated_at, last_revealed_at";

fn object(
    id: &str,
    value: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt(format!("{id}: expected a JSON object"))),
    }
}

fn credential_from_row(row: CredentialRow) -> Result<StoredCredential> {
    let (id, kind, name, fields, sealed, is_active, created_at, updated_at, last_revealed_at) = row;
    Ok(StoredCredential {
        fields: object(&id, fields.0)?,
        sealed: object(&id, sealed.0)?,
        id,
        kind,
        name,
        is_active,
        created_at,
        updated_at,
        last_revealed_at,
    })
}

impl TenantTx {
    /// This tenant's data keys, active first.
    pub async fn data_keys(&mut self) -> Result<Vec<StoredDataKey>> {
        let rows: Vec<DataKeyRow> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT id, kek_id, wrapped, active, created_at FROM tenant_data_keys WHERE tenant_id = $1 \
             ORDER BY active DESC, created_at DESC, id"
        )
        .bind(self.tenant.as_str())
        .fetch_all(&mut **c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, kek_id, wrapped, active, created_at)| StoredDataKey {
                id,
                kek_id,
                wrapped,
                active,
                created_at,
            })
            .collect())
    }

    /// Adds a data key; when `active`, every other key of the tenant stops being active.
    pub async fn insert_data_key(&mut self, key: &StoredDataKey) -> Result<()> {
        if key.active {
            on_conn!(&mut self.conn, |c| sqlx::query(
                "UPDATE tenant_data_keys SET active = FALSE WHERE tenant_id = $1"
            )
            .bind(self.tenant.as_str())
            .execute(&mut **c)
            .await?
            .rows_affected());
        }
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO tenant_data_keys (tenant_id, id, kek_id, wrapped, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(self.tenant.as_str())
        .bind(&key.id)
        .bind(&key.kek_id)
        .bind(&key.wrapped)
        .bind(key.active)
        .bind(key.created_at)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Replaces a data key's wrapping if it is still wrapped by `from_kek`
    /// (so a concurrent rewrap is not undone). Returns whether it changed.
    pub async fn rewrap_data_key(
        &mut self,
        id: &str,
        from_kek: &str,
        to_kek: &str,
        wrapped: &[u8],
    ) -> Result<bool> {
        let n = on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "UPDATE tenant_data_keys SET kek_id = $4, wrapped = $5 WHERE tenant_id = $1 AND id = $2 AND kek_id = $3"
        )
        .bind(self.tenant.as_str())
        .bind(id)
        .bind(from_kek)
        .bind(to_kek)
        .bind(wrapped)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(n > 0)
    }

    pub async fn delete_data_key(&mut self, id: &str) -> Result<()> {
        on_conn!(&mut self.conn, |c| sqlx::query(
            "DELETE FROM tenant_data_keys WHERE tenant_id = $1 AND id = $2"
        )
        .bind(self.tenant.as_str())
        .bind(id)
        .execute(&mut **c)
        .await?
        .rows_affected());
        Ok(())
    }

    pub async fn insert_credential(&mut self, cred: &StoredCredential) -> Result<()> {
        let sql = format!(
            "INSERT INTO credentials (tenant_id, {CREDENTIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        on_conn!(&mut self.conn, |c| sqlx::query(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(&cred.id)
            .bind(&cred.kind)
            .bind(&cred.name)
            .bind(Json(&cred.fields))
            .bind(Json(&cred.sealed))
            .bind(cred.is_active)
            .bind(cred.created_at)
            .bind(cred.updated_at)
            .bind(cred.last_revealed_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Overwrites a credential's mutable parts.
    pub async fn update_credential(&mut self, cred: &StoredCredential) -> Result<()> {
        let n = on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "UPDATE credentials SET name = $3, fields = $4, sealed = $5, is_active = $6, updated_at = $7, \
             last_revealed_at = $8 WHERE tenant_id = $1 AND id = $2"
        )
        .bind(self.tenant.as_str())
        .bind(&cred.id)
        .bind(&cred.name)
        .bind(Json(&cred.fields))
        .bind(Json(&cred.sealed))
        .bind(cred.is_active)
        .bind(cred.updated_at)
        .bind(cred.last_revealed_at)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn get_credential(&mut self, id: &str) -> Result<StoredCredential> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<CredentialRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        row.map(credential_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    pub async fn list_credentials(&mut self) -> Result<Vec<StoredCredential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant_id = $1 ORDER BY id"
        );
        let rows: Vec<CredentialRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .fetch_all(&mut **c)
            .await?);
        rows.into_iter().map(credential_from_row).collect()
    }

    pub async fn delete_credential(&mut self, id: &str) -> Result<()> {
        let n = on_conn!(&mut self.conn, |c| sqlx::query(
            "DELETE FROM credentials WHERE tenant_id = $1 AND id = $2"
        )
        .bind(self.tenant.as_str())
        .bind(id)
        .execute(&mut **c)
        .await?
        .rows_affected());
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn put_settings(
        &mut self,
        category: &str,
        data: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_conn!(&mut self.conn, |c| {
            sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, category, data, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, category) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
        )
        .bind(self.tenant.as_str())
        .bind(category)
        .bind(Json(data))
        .bind(now)
        .execute(&mut **c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_settings(
        &mut self,
        category: &str,
    ) -> Result<(serde_json::Value, DateTime<Utc>)> {
        let row: Option<(Json<serde_json::Value>, DateTime<Utc>)> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT data, updated_at FROM tenant_settings WHERE tenant_id = $1 AND category = $2"
        )
        .bind(self.tenant.as_str())
        .bind(category)
        .fetch_optional(&mut **c)
        .await?
        });
        row.map(|(data, at)| (data.0, at))
            .ok_or(StoreError::NotFound)
    }

    /// Every settings category of this tenant (for re-encryption).
    pub async fn all_settings(&mut self) -> Result<Vec<(String, serde_json::Value)>> {
        let rows: Vec<(String, Json<serde_json::Value>)> =
            on_conn!(&mut self.conn, |c| sqlx::query_as(
                "SELECT category, data FROM tenant_settings WHERE tenant_id = $1 ORDER BY category"
            )
            .bind(self.tenant.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(|(c, d)| (c, d.0)).collect())
    }
}

impl OperatorTx {
    /// How many keys each KEK wraps: tenants' data keys, token-signing and
    /// audit checkpoint seeds, and webhook endpoints' secrets and seeds.
    pub async fn data_keys_per_kek(&mut self) -> Result<Vec<(String, i64)>> {
        Ok(on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT kek_id, count(*) FROM (SELECT kek_id FROM tenant_data_keys \
             UNION ALL SELECT kek_id FROM signing_keys WHERE kek_id IS NOT NULL \
             UNION ALL SELECT kek_id FROM audit_signing_keys WHERE kek_id IS NOT NULL \
             UNION ALL SELECT secret->>'kek' FROM webhook_endpoints \
             UNION ALL SELECT previous_secret->>'kek' FROM webhook_endpoints WHERE previous_secret IS NOT NULL \
             UNION ALL SELECT signing_seed->>'kek' FROM webhook_endpoints WHERE signing_seed IS NOT NULL) AS wrapped \
             GROUP BY kek_id ORDER BY kek_id"
        )
        .fetch_all(&mut **c)
        .await?
        }))
    }

    /// Data keys not wrapped by `kek_id`, at most `limit`: the rewrap backlog.
    pub async fn data_keys_not_wrapped_by(
        &mut self,
        kek_id: &str,
        limit: i64,
    ) -> Result<Vec<(TenantId, String, String)>> {
        let rows: Vec<(String, String, String)> = on_conn!(&mut self.conn, |c| {
            sqlx::query_as(
            "SELECT tenant_id, id, kek_id FROM tenant_data_keys WHERE kek_id <> $1 ORDER BY tenant_id, id LIMIT $2"
        )
        .bind(kek_id)
        .bind(limit)
        .fetch_all(&mut **c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(t, id, kek)| (TenantId::from_trusted(t), id, kek))
            .collect())
    }
}
