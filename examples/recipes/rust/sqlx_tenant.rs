//! Rust (sqlx): a transaction scoped to one tenant. Every query of the
//! request runs in it; row-level security (`tenantry app-db isolate`) does
//! the filtering. The tenant comes from the `X-Tenant-Id` header the
//! gateway set. (crates/tenantry/tests/app_db.rs runs this file.)

use sqlx::{PgPool, Postgres, Transaction};

/// Begins a transaction in which the database sees only `tenant`'s rows.
/// The setting is transaction-local (`true`): it ends with the transaction,
/// so a pooled connection never carries a tenant into the next request.
pub async fn begin_for_tenant(
    pool: &PgPool,
    tenant: &str,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)") // the one line
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
