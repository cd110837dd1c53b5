//! A tenant's custom domains (tenant-scoped table `tenant_domains`): claims
//! that are `pending` until their ownership is proven, then `verified`.

use crate::Result;
use crate::error::{Conflict, StoreError, unique_violation};
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use tenantry_core::TenantId;
use tenantry_core::tenant::{CustomDomain, DomainStatus};
use tenantry_core::values::Hostname;

type DomainRow = (String, String, String, DateTime<Utc>, Option<DateTime<Utc>>);

const COLUMNS: &str = "domain, status, verification_token, created_at, verified_at";

fn from_row(tenant: &TenantId, row: DomainRow) -> CustomDomain {
    let (domain, status, verification_token, created_at, verified_at) = row;
    CustomDomain {
        tenant_id: tenant.clone(),
        domain: Hostname::from_trusted(domain),
        // The column's CHECK admits these two only.
        status: status.parse().unwrap_or(DomainStatus::Pending),
        verification_token,
        created_at,
        verified_at,
    }
}

fn domain_conflict(e: sqlx::Error) -> StoreError {
    match unique_violation(&e) {
        Some(_) => StoreError::Conflict(Conflict::Domain),
        None => StoreError::Database(e),
    }
}

impl TenantTx {
    /// Adds a `pending` claim on `domain` with its verification token.
    /// `Conflict::Domain` if this tenant already has it.
    pub async fn add_domain(
        &mut self,
        domain: &Hostname,
        verification_token: &str,
        now: DateTime<Utc>,
    ) -> Result<CustomDomain> {
        let sql = "INSERT INTO tenant_domains (tenant_id, domain, status, verification_token, created_at) \
                   VALUES ($1, $2, 'pending', $3, $4)";
        on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .bind(verification_token)
            .bind(now)
            .execute(&mut **c)
            .await
            .map_err(domain_conflict)?
            .rows_affected());
        Ok(CustomDomain {
            tenant_id: self.tenant.clone(),
            domain: domain.clone(),
            status: DomainStatus::Pending,
            verification_token: verification_token.to_owned(),
            created_at: now,
            verified_at: None,
        })
    }

    pub async fn list_domains(&mut self) -> Result<Vec<CustomDomain>> {
        let sql =
            format!("SELECT {COLUMNS} FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain");
        let rows: Vec<DomainRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .map(|row| from_row(&self.tenant, row))
            .collect())
    }

    /// One of this tenant's domains, `None` if it has no such claim.
    pub async fn domain(&mut self, domain: &Hostname) -> Result<Option<CustomDomain>> {
        let sql =
            format!("SELECT {COLUMNS} FROM tenant_domains WHERE tenant_id = $1 AND domain = $2");
        let row: Option<DomainRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(&sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(|row| from_row(&self.tenant, row)))
    }

    /// Marks this tenant's pending claim verified, if its token is still
    /// `verification_token` (a claim removed and made again since has a new
    /// one). `NotFound` if there is no such pending claim;
    /// `Conflict::Domain` if another tenant holds the domain verified.
    pub async fn verify_domain(
        &mut self,
        domain: &Hostname,
        verification_token: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "UPDATE tenant_domains SET status = 'verified', verified_at = $4 \
                   WHERE tenant_id = $1 AND domain = $2 AND verification_token = $3 AND status = 'pending'";
        let affected = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .bind(verification_token)
            .bind(now)
            .execute(&mut **c)
            .await
            .map_err(domain_conflict)?
            .rows_affected());
        if affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Drops this tenant's claim on `domain` if it is still pending (another
    /// tenant has just proven it owns the domain). Whether one was dropped.
    pub async fn drop_pending_domain(&mut self, domain: &Hostname) -> Result<bool> {
        let sql = "DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2 AND status = 'pending'";
        let affected = on_conn!(&mut self.conn, |c| sqlx::query(sql)
            .bind(self.tenant.as_str())
            .bind(domain.as_str())
            .execute(&mut **c)
            .await?
            .rows_affected());
        Ok(affected > 0)
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
    /// Which tenant owns a custom domain (verified claims only): an explicit
    /// cross-tenant lookup, used by tenant resolution and by claims.
    pub async fn find_domain_owner(&mut self, domain: &Hostname) -> Result<Option<TenantId>> {
        let sql = "SELECT tenant_id FROM tenant_domains WHERE domain = $1 AND status = 'verified'";
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(domain.as_str())
            .fetch_optional(&mut **c)
            .await?);
        Ok(row.map(|(id,)| TenantId::from_trusted(id)))
    }

    /// Every tenant with a pending claim on `domain`.
    pub async fn pending_domain_claimants(&mut self, domain: &Hostname) -> Result<Vec<TenantId>> {
        let sql = "SELECT tenant_id FROM tenant_domains WHERE domain = $1 AND status = 'pending' \
                   ORDER BY tenant_id";
        let rows: Vec<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(domain.as_str())
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(id,)| TenantId::from_trusted(id))
            .collect())
    }

    /// Serializes verifications of one domain until this transaction ends
    /// (PostgreSQL: a transaction-level advisory lock; SQLite has a single
    /// writer already), so two tenants verifying at once cannot deadlock on
    /// each other's rows: the second waits, then sees the first's result.
    pub async fn lock_domain(&mut self, domain: &Hostname) -> Result<()> {
        if let Conn::Postgres(tx) = &mut self.conn {
            // 7007: this lock's class, apart from other advisory locks.
            sqlx::query("SELECT pg_advisory_xact_lock(7007, hashtext($1))")
                .bind(domain.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
