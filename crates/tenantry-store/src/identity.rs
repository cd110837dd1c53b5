//! Trusted identity providers (operator table `identity_providers`) and the
//! memberships of their users in tenants (tenant-scoped `tenant_members`).
//!
//! A provider's settings are one JSON document the server parses; the store
//! only keeps it. Memberships are read and written through [`TenantTx`];
//! the one cross-tenant query, "which tenants is this user a member of", is
//! on the operator path ([`OperatorTx::memberships_of`]), which in
//! PostgreSQL only the operator role's read-only policy allows.

use crate::Result;
use crate::error::unique_violation;
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;

/// A stored identity provider.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub id: String,
    pub issuer: String,
    pub config: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored membership: `roles` and `metadata` are JSON text.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub tenant_id: TenantId,
    pub provider_id: String,
    pub subject: String,
    pub roles: String,
    pub metadata: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type ProviderTuple = (String, String, String, DateTime<Utc>, DateTime<Utc>);
type MemberTuple = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

const PROVIDER_COLUMNS: &str = "id, issuer, config, created_at, updated_at";
const MEMBER_COLUMNS: &str =
    "tenant_id, provider_id, subject, roles, metadata, created_at, updated_at";

fn provider(row: ProviderTuple) -> ProviderRow {
    let (id, issuer, config, created_at, updated_at) = row;
    ProviderRow {
        id,
        issuer,
        config,
        created_at,
        updated_at,
    }
}

fn member(row: MemberTuple) -> MemberRow {
    let (tenant_id, provider_id, subject, roles, metadata, created_at, updated_at) = row;
    MemberRow {
        tenant_id: TenantId::from_trusted(tenant_id),
        provider_id,
        subject,
        roles,
        metadata,
        created_at,
        updated_at,
    }
}

impl OperatorTx {
    pub async fn identity_providers(&mut self) -> Result<Vec<ProviderRow>> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers ORDER BY id");
        let rows: Vec<ProviderTuple> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(provider).collect())
    }

    pub async fn identity_provider(&mut self, id: &str) -> Result<Option<ProviderRow>> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers WHERE id = $1");
        let row: Option<ProviderTuple> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(provider))
    }

    /// Adds or replaces a provider; `false` when another provider already
    /// has its issuer.
    pub async fn put_identity_provider(&mut self, row: &ProviderRow) -> Result<bool> {
        let sql = "INSERT INTO identity_providers (id, issuer, config, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (id) DO UPDATE SET issuer = excluded.issuer, \
                   config = excluded.config, updated_at = excluded.updated_at";
        let result = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.issuer)
            .bind(&row.config)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut **c)
            .await
            .map(|r| r.rows_affected()));
        match result {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e).is_some() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a provider; `false` if there was none.
    pub async fn delete_identity_provider(&mut self, id: &str) -> Result<bool> {
        let sql = "DELETE FROM identity_providers WHERE id = $1";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Every membership of one user, across tenants (resolution, and the
    /// operator's `GET /v1/members/{subject}/tenants`), by tenant id.
    pub async fn memberships_of(
        &mut self,
        provider_id: &str,
        subject: &str,
    ) -> Result<Vec<MemberRow>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM tenant_members \
             WHERE provider_id = $1 AND subject = $2 ORDER BY tenant_id LIMIT 1000"
        );
        let rows: Vec<MemberTuple> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(provider_id)
            .bind(subject)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(member).collect())
    }
}

impl TenantTx {
    /// Adds or replaces a membership; `true` when it is new.
    pub async fn put_member(&mut self, row: &MemberRow) -> Result<bool> {
        let existed = self.member(&row.provider_id, &row.subject).await?.is_some();
        let sql = "INSERT INTO tenant_members \
                   (tenant_id, provider_id, subject, roles, metadata, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) \
                   ON CONFLICT (tenant_id, provider_id, subject) DO UPDATE SET \
                   roles = excluded.roles, metadata = excluded.metadata, \
                   updated_at = excluded.updated_at";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(&row.provider_id)
            .bind(&row.subject)
            .bind(&row.roles)
            .bind(&row.metadata)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(!existed)
    }

    pub async fn member(&mut self, provider_id: &str, subject: &str) -> Result<Option<MemberRow>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM tenant_members \
             WHERE tenant_id = $1 AND provider_id = $2 AND subject = $3"
        );
        let row: Option<MemberTuple> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(provider_id)
            .bind(subject)
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(member))
    }

    /// A page of this tenant's members, ordered by provider then subject,
    /// after `(provider_id, subject)`.
    pub async fn list_members(
        &mut self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<MemberRow>> {
        let (p, s) = after.unwrap_or(("", ""));
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM tenant_members WHERE tenant_id = $1 \
             AND (provider_id > $2 OR (provider_id = $2 AND subject > $3)) \
             ORDER BY provider_id, subject LIMIT $4"
        );
        let rows: Vec<MemberTuple> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(p)
            .bind(s)
            .bind(i64::from(limit))
            .fetch_all(&mut **c)
            .await?);
        Ok(rows.into_iter().map(member).collect())
    }

    /// Removes a membership; `false` if there was none.
    pub async fn delete_member(&mut self, provider_id: &str, subject: &str) -> Result<bool> {
        let sql =
            "DELETE FROM tenant_members WHERE tenant_id = $1 AND provider_id = $2 AND subject = $3";
        let n = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(provider_id)
            .bind(subject)
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(n > 0)
    }
}
