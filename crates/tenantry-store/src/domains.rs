//! A tenant's custom domains (tenant-scoped table `tenant_domains`).

use crate::Result;
use crate::error::{Conflict, StoreError, unique_violation};
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;
use tenantry_core::tenant::CustomDomain;
use tenantry_core::values::Hostname;

impl TenantTx {
    pub async fn add_domain(
        &mut self,
        domain: &Hostname,
        now: DateTime<Utc>,
    ) -> Result<CustomDomain> {
        let sql = "INSERT INTO tenant_domains (tenant_id, domain, created_at) VALUES ($1, $2, $3)";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .bind(now)
            .execute(&mut **c)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Conflict(Conflict::Domain),
                None => StoreError::Database(e),
            })?
            .rows_affected());
        Ok(CustomDomain {
            tenant_id: self.tenant.clone(),
            domain: domain.clone(),
            created_at: now,
        })
    }

    pub async fn list_domains(&mut self) -> Result<Vec<CustomDomain>> {
        let sql =
            "SELECT domain, created_at FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain";
        let rows: Vec<(String, DateTime<Utc>)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(domain, created_at)| CustomDomain {
                tenant_id: self.tenant.clone(),
                domain: Hostname::from_trusted(domain),
                created_at,
            })
            .collect())
    }

    /// Removes one of this tenant's domains; `NotFound` if it has no such domain
    /// (including when the domain belongs to another tenant).
    pub async fn remove_domain(&mut self, domain: &Hostname) -> Result<()> {
        let sql = "DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2";
        let affected = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .execute(&mut **c)
            .await?
            .rows_affected());
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

impl OperatorTx {
    /// Which tenant owns a custom domain: an explicit cross-tenant lookup,
    /// used by tenant resolution.
    pub async fn find_domain_owner(&mut self, domain: &Hostname) -> Result<Option<TenantId>> {
        let sql = "SELECT tenant_id FROM tenant_domains WHERE domain = $1";
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(domain.as_str())
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(|(id,)| TenantId::from_trusted(id)))
    }
}
