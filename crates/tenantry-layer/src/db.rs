//! sqlx PostgreSQL transactions scoped to a tenant: the tenant id is set with
//! `set_config('app.tenant_id', $1, true)` (transaction-local), which the
//! app's row-level security policies read. A query outside such a
//! transaction has no tenant and, under those policies, sees nothing.

use crate::context::TenantContext;
use sqlx::{PgPool, Postgres, Transaction};

/// Begins a transaction on `pool` bound to `tenant`.
pub async fn begin_tenant_tx(
    pool: &PgPool,
    tenant: &TenantContext,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Why [`begin_current_tx`] did not begin.
#[derive(Debug, thiserror::Error)]
pub enum TenantTxError {
    #[error("no tenant in this task")]
    NoTenant,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// [`begin_tenant_tx`] with the task's current tenant; an error when there
/// is none (rather than a transaction that would see nothing).
pub async fn begin_current_tx(
    pool: &PgPool,
) -> Result<Transaction<'static, Postgres>, TenantTxError> {
    let tenant = TenantContext::current().ok_or(TenantTxError::NoTenant)?;
    Ok(begin_tenant_tx(pool, &tenant).await?)
}
