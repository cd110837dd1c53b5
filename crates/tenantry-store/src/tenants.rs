//! The tenant registry (`tenants` table). It is not tenant-scoped: the
//! operator path reads and writes any row; a [`TenantTx`] reaches only its own.

use crate::Result;
use crate::error::{Conflict, StoreError, unique_violation};
use crate::scope::{OperatorTx, TenantTx, on_conn};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use tenantry_core::TenantId;
use tenantry_core::tenant::{NewTenant, Tenant, TenantPatch, TenantStatus};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};

const COLUMNS: &str =
    "id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at";

type TenantRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Json<serde_json::Value>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn from_row(row: TenantRow) -> Result<Tenant> {
    let (id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at) =
        row;
    let status = status
        .parse::<TenantStatus>()
        .map_err(|()| StoreError::Corrupt(format!("tenant {id} has status {status:?}")))?;
    let serde_json::Value::Object(metadata) = metadata.0 else {
        return Err(StoreError::Corrupt(format!(
            "tenant {id} metadata is not an object"
        )));
    };
    Ok(Tenant {
        id: TenantId::from_trusted(id),
        name: TenantName::from_trusted(name),
        subdomain: Subdomain::from_trusted(subdomain),
        status,
        plan: PlanName::from_trusted(plan),
        region: Region::from_trusted(region),
        metadata: Metadata::from_trusted(metadata),
        created_at,
        updated_at,
        deleted_at,
    })
}

fn tenant_conflict(err: sqlx::Error) -> StoreError {
    match unique_violation(&err) {
        Some(target) if target.contains("subdomain") => StoreError::Conflict(Conflict::Subdomain),
        Some(_) => StoreError::Conflict(Conflict::TenantId),
        None => StoreError::Database(err),
    }
}

/// Filters for listing tenants.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub plan: Option<PlanName>,
}

#[derive(Debug)]
pub struct TenantPage {
    pub tenants: Vec<Tenant>,
    /// The id to continue after, when more tenants match.
    pub next_after: Option<TenantId>,
}

impl OperatorTx {
    pub async fn insert_tenant(&mut self, new: &NewTenant, now: DateTime<Utc>) -> Result<Tenant> {
        self.insert_tenant_as(new, TenantStatus::Active, now).await
    }

    /// [`Self::insert_tenant`] in a given status (`provisioning`).
    pub async fn insert_tenant_as(
        &mut self,
        new: &NewTenant,
        status: TenantStatus,
        now: DateTime<Utc>,
    ) -> Result<Tenant> {
        let sql = "INSERT INTO tenants (id, name, subdomain, status, plan, region, metadata, created_at, updated_at) \
                   VALUES ($1, $2, $3, $8, $4, $5, $6, $7, $7) \
                   RETURNING id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at";
        // Report a taken id before a taken subdomain, whatever order the
        // backend checks its unique indexes in.
        let exists: Option<(i32,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT 1 FROM tenants WHERE id = $1"
        )
        .bind(new.id.as_str())
        .fetch_optional(&mut **c)
        .await?);
        if exists.is_some() {
            return Err(StoreError::Conflict(Conflict::TenantId));
        }
        let metadata = Json(new.metadata.as_map());
        let row: TenantRow = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(new.id.as_str())
            .bind(new.name.as_str())
            .bind(new.subdomain.as_str())
            .bind(new.plan.as_str())
            .bind(new.region.as_str())
            .bind(metadata)
            .bind(now)
            .bind(status.as_str())
            .fetch_one(&mut **c)
            .await
            .map_err(tenant_conflict)?);
        from_row(row)
    }

    pub async fn get_tenant(&mut self, id: &TenantId) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<TenantRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **c)
            .await?);
        row.map(from_row).transpose()
    }

    /// Tenants in id order, after `after`, at most `limit`.
    pub async fn list_tenants(
        &mut self,
        filter: &TenantFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<TenantPage> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tenants \
             WHERE ($1 IS NULL OR id > $1) AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR plan = $3) \
             ORDER BY id LIMIT $4"
        );
        let fetch = i64::from(limit) + 1;
        let rows: Vec<TenantRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(after)
            .bind(filter.status.map(TenantStatus::as_str))
            .bind(filter.plan.as_ref().map(PlanName::as_str))
            .bind(fetch)
            .fetch_all(&mut **c)
            .await?);
        let mut tenants = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        let next_after = if tenants.len() > limit as usize {
            tenants.truncate(limit as usize);
            tenants.last().map(|t| t.id.clone())
        } else {
            None
        };
        Ok(TenantPage {
            tenants,
            next_after,
        })
    }

    /// Inserts many tenants in few statements (seeding, imports). Records
    /// no events.
    pub async fn insert_tenants_bulk(
        &mut self,
        tenants: &[NewTenant],
        now: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in tenants.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO tenants (id, name, subdomain, status, plan, region, metadata, created_at, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 7;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, 'active', ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 7
                ));
            }
            on_conn!(&mut self.conn, |c| {
                let mut query = sqlx::query(sql.as_str());
                for t in chunk {
                    query = query
                        .bind(t.id.as_str())
                        .bind(t.name.as_str())
                        .bind(t.subdomain.as_str())
                        .bind(t.plan.as_str())
                        .bind(t.region.as_str())
                        .bind(Json(t.metadata.as_map()))
                        .bind(now);
                }
                query
                    .execute(&mut **c)
                    .await
                    .map_err(tenant_conflict)?
                    .rows_affected()
            });
        }
        Ok(())
    }

    /// The tenant whose subdomain is `label`, if any.
    pub async fn find_tenant_by_subdomain(&mut self, label: &str) -> Result<Option<TenantId>> {
        let row: Option<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(
            "SELECT id FROM tenants WHERE subdomain = $1"
        )
        .bind(label)
        .fetch_optional(&mut **c)
        .await?);
        Ok(row.map(|(id,)| TenantId::from_trusted(id)))
    }

    /// Soft-deleted tenants whose grace period started before `deleted_before`.
    pub async fn tenants_due_for_purge(
        &mut self,
        deleted_before: DateTime<Utc>,
    ) -> Result<Vec<TenantId>> {
        let sql = "SELECT id FROM tenants WHERE status = 'deleted' AND deleted_at IS NOT NULL \
                   AND deleted_at <= $1 ORDER BY deleted_at LIMIT 100";
        let ids: Vec<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(deleted_before)
            .fetch_all(&mut **c)
            .await?);
        Ok(ids
            .into_iter()
            .map(|(id,)| TenantId::from_trusted(id))
            .collect())
    }
}

impl TenantTx {
    /// This transaction's tenant, or `NotFound`.
    pub async fn tenant(&mut self) -> Result<Tenant> {
        self.load_tenant(false).await
    }

    /// This transaction's tenant, locked against concurrent changes until
    /// the transaction ends (PostgreSQL; SQLite serializes writers anyway).
    pub async fn tenant_for_update(&mut self) -> Result<Tenant> {
        self.load_tenant(true).await
    }

    async fn load_tenant(&mut self, lock: bool) -> Result<Tenant> {
        let lock = match (&self.conn, lock) {
            (crate::scope::Conn::Postgres(_), true) => " FOR UPDATE",
            _ => "",
        };
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1{lock}");
        let row: Option<TenantRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql.as_str())
            .bind(self.tenant.as_str())
            .fetch_optional(&mut **c)
            .await?);
        row.map(from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Applies a patch to this transaction's tenant.
    pub async fn update_tenant(
        &mut self,
        patch: &TenantPatch,
        now: DateTime<Utc>,
    ) -> Result<Tenant> {
        let sql = "UPDATE tenants SET \
                     name = COALESCE($2, name), subdomain = COALESCE($3, subdomain), \
                     plan = COALESCE($4, plan), region = COALESCE($5, region), \
                     metadata = COALESCE($6, metadata), updated_at = $7 \
                   WHERE id = $1 \
                   RETURNING id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at";
        let metadata = patch.metadata.as_ref().map(|m| Json(m.as_map()));
        let row: Option<TenantRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(patch.name.as_ref().map(TenantName::as_str))
            .bind(patch.subdomain.as_ref().map(Subdomain::as_str))
            .bind(patch.plan.as_ref().map(PlanName::as_str))
            .bind(patch.region.as_ref().map(Region::as_str))
            .bind(metadata)
            .bind(now)
            .fetch_optional(&mut **c)
            .await
            .map_err(tenant_conflict)?);
        row.map(from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Moves this transaction's tenant to `status`; `deleted_at` starts (or,
    /// with `None`, clears) the purge grace period.
    pub async fn set_status(
        &mut self,
        status: TenantStatus,
        deleted_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Tenant> {
        let sql = "UPDATE tenants SET status = $2, deleted_at = $3, updated_at = $4 WHERE id = $1 \
                   RETURNING id, name, subdomain, status, plan, region, metadata, created_at, updated_at, deleted_at";
        let row: Option<TenantRow> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(self.tenant.as_str())
            .bind(status.as_str())
            .bind(deleted_at)
            .bind(now)
            .fetch_optional(&mut **c)
            .await?);
        row.map(from_row).transpose()?.ok_or(StoreError::NotFound)
    }

    /// Deletes every row of this tenant, in every tenant-scoped table (found
    /// in the schema, so a new table cannot be forgotten), then the tenant.
    /// Returns the transaction, uncommitted, on the operator path, so the
    /// purge is recorded (operator audit chain) before it commits.
    pub async fn purge(mut self) -> Result<crate::OperatorTx> {
        let mut tables = crate::doctor::tenant_tables(&mut self.conn).await?;
        // Crypto-shredding: the tenant's data keys go first, so nothing it
        // sealed can be read again, even from a backup of the other tables.
        tables.sort_by_key(|t| t != "tenant_data_keys");
        for table in tables {
            // Table names come from the database catalog, not from callers.
            let sql = format!(
                "DELETE FROM \"{}\" WHERE tenant_id = $1",
                table.replace('"', "")
            );
            on_conn!(&mut self.conn, |c| sqlx::query(sql.as_str())
                .bind(self.tenant.as_str())
                .execute(&mut **c)
                .await?
                .rows_affected());
        }
        on_conn!(&mut self.conn, |c| sqlx::query(
            "DELETE FROM tenants WHERE id = $1"
        )
        .bind(self.tenant.as_str())
        .execute(&mut **c)
        .await?
        .rows_affected());
        self.into_operator().await
    }
}
