//! The two kinds of transaction. Tenant-scoped queries are methods on
//! [`TenantTx`], which binds its own tenant id into every statement; there is
//! no other way to reach a tenant-scoped table.

use crate::Result;
use crate::notify::NotifySeal;
use sqlx::{Postgres, Sqlite, Transaction};
use std::sync::Arc;
use tenantry_core::TenantId;

/// An open transaction on the active backend.
pub(crate) enum Conn {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same expression against whichever backend the connection is on.
/// Inside, `$c` is the backend's connection (`&mut **c` is an executor). SQL
/// is written once, with `$1`-style parameters, which both backends accept.
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::scope::Conn::Sqlite($c) => $body,
            $crate::scope::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// The PostgreSQL channel on which cache invalidations travel between
/// server processes.
pub const INVALIDATION_CHANNEL: &str = "tenantry_invalidate";

impl Conn {
    /// Queues a notification that PostgreSQL delivers to every listening
    /// process when (and only if) this transaction commits, authenticated
    /// with `seal` (see [`crate::notify`]). SQLite has a single process:
    /// nothing to tell.
    async fn notify(&mut self, seal: Option<&NotifySeal>, payload: &str) -> Result<()> {
        if let Conn::Postgres(tx) = self {
            let Some(seal) = seal else {
                return Err(crate::StoreError::Setup(
                    "the store was not prepared: no key for invalidations".into(),
                ));
            };
            let message = seal.seal(payload, chrono::Utc::now().timestamp());
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(INVALIDATION_CHANNEL)
                .bind(message)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        match self {
            Conn::Sqlite(tx) => tx.commit().await?,
            Conn::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Sets the transaction-local PostgreSQL context: the role the
    /// transaction runs as (`tenantry_app` for a tenant, `tenantry_operator`
    /// for the operator path), the tenant in scope, and whether this is the
    /// operator path. Never a session-level `SET`: the context ends with the
    /// transaction.
    async fn set_context(
        &mut self,
        request_role: Option<&str>,
        tenant: Option<&TenantId>,
        operator: bool,
    ) -> Result<()> {
        let Conn::Postgres(tx) = self else {
            return Ok(());
        };
        let tenant = tenant.map(TenantId::as_str).unwrap_or("");
        let operator = if operator { "on" } else { "" };
        match request_role {
            Some(role) => {
                sqlx::query(
                    "SELECT set_config('role', $1, true), set_config('app.tenant_id', $2, true), \
                     set_config('app.operator', $3, true)",
                )
                .bind(role)
                .bind(tenant)
                .bind(operator)
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "SELECT set_config('app.tenant_id', $1, true), set_config('app.operator', $2, true)",
                )
                .bind(tenant)
                .bind(operator)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
}

/// A transaction bound to one tenant. Every tenant-scoped query is a method
/// of this type and binds [`TenantTx::tenant_id`] itself.
pub struct TenantTx {
    pub(crate) conn: Conn,
    pub(crate) tenant: TenantId,
    pub(crate) seal: Option<Arc<NotifySeal>>,
    /// The roles [`TenantTx::into_operator`] and [`TenantTx::rescope`]
    /// switch to.
    pub(crate) operator_role: Option<String>,
    pub(crate) request_role: Option<String>,
}

impl TenantTx {
    pub(crate) async fn enter(
        mut conn: Conn,
        request_role: Option<&str>,
        operator_role: Option<&str>,
        tenant: TenantId,
        seal: Option<Arc<NotifySeal>>,
    ) -> Result<TenantTx> {
        conn.set_context(request_role, Some(&tenant), false).await?;
        Ok(TenantTx {
            conn,
            tenant,
            seal,
            operator_role: operator_role.map(str::to_owned),
            request_role: request_role.map(str::to_owned),
        })
    }

    /// Continues this same transaction on the operator path (after a
    /// purge: the purge is recorded in the operator's audit chain, in the
    /// transaction that deleted the tenant).
    pub(crate) async fn into_operator(mut self) -> Result<OperatorTx> {
        self.conn
            .set_context(self.operator_role.as_deref(), None, true)
            .await?;
        Ok(OperatorTx {
            conn: self.conn,
            request_role: self.request_role,
            operator_role: self.operator_role,
            seal: self.seal,
        })
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    /// Continues this same transaction scoped to another tenant (for bulk
    /// work over many tenants in one transaction, such as seeding).
    pub async fn rescope(
        mut self,
        tenant: &TenantId,
        request_role: Option<&str>,
    ) -> Result<TenantTx> {
        self.conn
            .set_context(request_role, Some(tenant), false)
            .await?;
        Ok(TenantTx {
            conn: self.conn,
            tenant: tenant.clone(),
            seal: self.seal,
            operator_role: self.operator_role,
            request_role: self.request_role,
        })
    }

    /// Tells every server process, on commit, that something cached changed.
    pub async fn notify(&mut self, payload: &str) -> Result<()> {
        self.conn.notify(self.seal.as_deref(), payload).await
    }

    pub async fn commit(self) -> Result<()> {
        self.conn.commit().await
    }
}

/// The operator path: the tenant registry and explicit, read-only
/// cross-tenant lookups. Tenant-scoped writes need [`OperatorTx::scope_to`].
pub struct OperatorTx {
    pub(crate) conn: Conn,
    /// The role [`OperatorTx::scope_to`] switches to.
    pub(crate) request_role: Option<String>,
    pub(crate) operator_role: Option<String>,
    pub(crate) seal: Option<Arc<NotifySeal>>,
}

impl OperatorTx {
    pub(crate) async fn enter(
        mut conn: Conn,
        operator_role: Option<&str>,
        request_role: Option<&str>,
        seal: Option<Arc<NotifySeal>>,
    ) -> Result<OperatorTx> {
        conn.set_context(operator_role, None, true).await?;
        Ok(OperatorTx {
            conn,
            request_role: request_role.map(str::to_owned),
            operator_role: operator_role.map(str::to_owned),
            seal,
        })
    }

    /// Continues this same transaction scoped to one tenant (and no longer
    /// on the operator path), so a registry change and the tenant's own rows
    /// commit together.
    pub async fn scope_to(mut self, tenant: &TenantId) -> Result<TenantTx> {
        self.conn
            .set_context(self.request_role.as_deref(), Some(tenant), false)
            .await?;
        Ok(TenantTx {
            conn: self.conn,
            tenant: tenant.clone(),
            seal: self.seal,
            operator_role: self.operator_role,
            request_role: self.request_role,
        })
    }

    pub async fn commit(self) -> Result<()> {
        self.conn.commit().await
    }

    /// Tells every server process, on commit, that something cached changed.
    pub async fn notify(&mut self, payload: &str) -> Result<()> {
        self.conn.notify(self.seal.as_deref(), payload).await
    }
}
