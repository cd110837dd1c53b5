//! Bulk loading for `tenantry seed`: many new tenants and their keys in one
//! transaction, in as few statements as the backend allows. Records no
//! events and sends no invalidations: it is for filling a fresh (benchmark,
//! load-test) database, not a change path.
//!
//! PostgreSQL: `COPY` when the login role may bypass row-level security
//! (`COPY FROM` refuses tables under RLS otherwise). Otherwise, and on
//! SQLite, one scoped multi-row `INSERT` per tenant, as any tenant write.

#![allow(clippy::disallowed_methods)] // Seeding (`tenantry seed`) records nothing by design: a development tool, not a change path.
use crate::Result;
use crate::backend::Backend;
use crate::scope::Conn;
use crate::{Store, StoreError};
use chrono::{DateTime, SecondsFormat, Utc};
use tenantry_core::keys::ApiKey;
use tenantry_core::tenant::NewTenant;

/// How [`Store::bulk_load`] wrote the rows (the seed tool reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkPath {
    /// One multi-row `INSERT` per tenant, in that tenant's scope.
    Scoped,
    PostgresCopy,
}

impl Store {
    /// Inserts `tenants` (all active) and `keys` (of those tenants, grouped
    /// by tenant) in one transaction.
    pub async fn bulk_load(
        &self,
        tenants: &[NewTenant],
        keys: &[ApiKey],
        now: DateTime<Utc>,
    ) -> Result<BulkPath> {
        let copy = match &self.backend {
            Backend::Postgres { .. } => self.login_role_bypasses_rls().await?,
            Backend::Sqlite { .. } => false,
        };
        if !copy {
            return self.bulk_load_scoped(tenants, keys, now).await;
        }
        let mut op = self.operator_write().await?;
        op.insert_tenants_bulk(tenants, now).await?;
        let path = match &mut op.conn {
            Conn::Sqlite(_) => return Err(StoreError::Setup("SQLite loads scoped".into())),
            Conn::Postgres(tx) => {
                // Back to the login role (which bypasses RLS) for this
                // transaction only.
                sqlx::query("SET LOCAL ROLE NONE")
                    .execute(&mut **tx)
                    .await?;
                let mut copy = tx
                    .copy_in_raw(&format!(
                        "COPY api_keys ({}) FROM STDIN",
                        crate::keys::KEY_COLUMNS
                    ))
                    .await?;
                let mut buf = String::with_capacity(64 * 1024);
                for key in keys {
                    copy_key_line(&mut buf, key);
                    if buf.len() >= 60 * 1024 {
                        copy.send(buf.as_bytes()).await?;
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.as_bytes()).await?;
                }
                copy.finish().await?;
                // Each key's global lookup row (hash → tenant and key), as
                // `insert_keys` writes it: verification finds keys by it.
                let mut lookup = tx
                    .copy_in_raw("COPY api_key_lookup (key_hash, tenant_id, key_id) FROM STDIN")
                    .await?;
                buf.clear();
                for key in keys {
                    copy_escape(&mut buf, &format!("\\x{}", hex::encode(key.key_hash)));
                    buf.push('\t');
                    copy_escape(&mut buf, key.tenant_id.as_str());
                    buf.push('\t');
                    copy_escape(&mut buf, &key.id);
                    buf.push('\n');
                    if buf.len() >= 60 * 1024 {
                        lookup.send(buf.as_bytes()).await?;
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    lookup.send(buf.as_bytes()).await?;
                }
                lookup.finish().await?;
                BulkPath::PostgresCopy
            }
        };
        op.commit().await?;
        Ok(path)
    }

    async fn login_role_bypasses_rls(&self) -> Result<bool> {
        let Backend::Postgres { pool, .. } = &self.backend else {
            return Ok(true);
        };
        let (bypass,): (bool,) = sqlx::query_as(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(pool)
        .await?;
        Ok(bypass)
    }

    /// SQLite, and PostgreSQL under RLS: each tenant's keys are written in
    /// that tenant's scope (on SQLite a rescope costs nothing).
    async fn bulk_load_scoped(
        &self,
        tenants: &[NewTenant],
        keys: &[ApiKey],
        now: DateTime<Utc>,
    ) -> Result<BulkPath> {
        let Some(first) = tenants.first() else {
            return Ok(BulkPath::Scoped);
        };
        let mut op = self.operator_write().await?;
        op.insert_tenants_bulk(tenants, now).await?;
        let mut tx = op.scope_to(&first.id).await?;
        for group in keys.chunk_by(|a, b| a.tenant_id == b.tenant_id) {
            if tx.tenant_id() != &group[0].tenant_id {
                tx = tx.rescope(&group[0].tenant_id, self.request_role()).await?;
            }
            tx.insert_keys(group).await?;
        }
        tx.commit().await?;
        Ok(BulkPath::Scoped)
    }
}

/// One row of `COPY … FROM STDIN` (text format), in `KEY_COLUMNS` order.
fn copy_key_line(buf: &mut String, key: &ApiKey) {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
    let optional_time = |t: Option<DateTime<Utc>>| t.map(time);
    let scopes = serde_json::to_string(&key.scopes.names()).unwrap_or_default();
    let metadata = serde_json::to_string(key.metadata.as_map()).unwrap_or_default();
    let fields: [Option<String>; 15] = [
        Some(key.tenant_id.as_str().to_owned()),
        Some(key.id.clone()),
        Some(format!("\\x{}", hex::encode(key.key_hash))),
        Some(key.start.clone()),
        Some(key.name.clone()),
        Some(scopes),
        Some(key.environment.as_str().to_owned()),
        Some(if key.enabled { "t" } else { "f" }.to_owned()),
        optional_time(key.expires_at),
        optional_time(key.revoked_at),
        Some(metadata),
        optional_time(key.last_used_at),
        key.rotated_from.clone(),
        Some(time(key.created_at)),
        Some(time(key.updated_at)),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        match field {
            None => buf.push_str("\\N"),
            Some(text) => copy_escape(buf, text),
        }
    }
    buf.push('\n');
}

/// Escapes a value for COPY's text format.
fn copy_escape(buf: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_escape;

    #[test]
    fn copy_text_escapes_separators_and_backslashes() {
        let mut buf = String::new();
        copy_escape(&mut buf, "a\tb\nc\\d\re");
        assert_eq!(buf, "a\\tb\\nc\\\\d\\re");
    }
}
