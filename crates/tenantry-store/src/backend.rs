use crate::Result;
use crate::error::StoreError;
use crate::migrations;
use crate::scope::{Conn, OperatorTx, TenantTx};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tenantry_core::TenantId;

/// The role that migrations create for request transactions when the login
/// role would bypass row-level security.
pub const REQUEST_ROLE: &str = "tenantry_app";

#[derive(Debug, Clone)]
pub enum DatabaseOptions {
    /// An SQLite file, created with its migrations if missing. `timeout`:
    /// how long a statement waits for a lock another process holds.
    Sqlite {
        path: PathBuf,
        max_readers: u32,
        timeout: Duration,
    },
    /// A PostgreSQL URL (`postgres://…`). `timeout`: how long a transaction
    /// waits for a pool connection (and so for an unreachable server).
    Postgres {
        url: String,
        max_connections: u32,
        timeout: Duration,
    },
}

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Backend,
}

#[derive(Clone)]
pub(crate) enum Backend {
    /// SQLite allows one writer at a time: writes go through a one-connection
    /// pool, so transactions queue in Tenantry instead of failing with
    /// SQLITE_BUSY; reads use their own pool and run concurrently (WAL).
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
        /// The writer's busy timeout, restored after a readiness probe.
        busy_timeout: Duration,
    },
    Postgres {
        pool: PgPool,
        /// `Some(role)` when the login role bypasses RLS and every
        /// transaction switches to `role` with `SET LOCAL ROLE`.
        request_role: Option<String>,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend_name())
    }
}

impl Store {
    /// Connects (creating an SQLite file if needed). Does not migrate.
    pub async fn connect(options: &DatabaseOptions) -> Result<Store> {
        match options {
            DatabaseOptions::Sqlite {
                path,
                max_readers,
                timeout,
            } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                let connect = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // A lock held by another process (a CLI command, a
                    // backup) makes writes wait this long, then fail as
                    // unavailable (503) rather than hang the request.
                    .busy_timeout(*timeout)
                    .log_statements(tracing::log::LevelFilter::Trace);
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(connect.clone())
                    .await?;
                let reader = SqlitePoolOptions::new()
                    .max_connections((*max_readers).max(1))
                    .connect_with(connect.read_only(true))
                    .await?;
                Ok(Store {
                    backend: Backend::Sqlite {
                        writer,
                        reader,
                        busy_timeout: *timeout,
                    },
                })
            }
            DatabaseOptions::Postgres {
                url,
                max_connections,
                timeout,
            } => {
                let connect = PgConnectOptions::from_str(url)
                    .map_err(|_| {
                        StoreError::Setup(
                            "TENANTRY_DATABASE_URL is not a valid postgres:// URL".into(),
                        )
                    })?
                    .log_statements(tracing::log::LevelFilter::Trace);
                let pool = PgPoolOptions::new()
                    .max_connections((*max_connections).max(2))
                    // During an outage requests fail fast (503) instead of
                    // queueing on the pool.
                    .acquire_timeout(*timeout)
                    .connect_with(connect)
                    .await?;
                Ok(Store {
                    backend: Backend::Postgres {
                        pool,
                        request_role: None,
                    },
                })
            }
        }
    }

    /// Applies pending migrations, then (PostgreSQL) decides which role
    /// request transactions run as, refusing a role that would bypass RLS.
    pub async fn migrate(&mut self) -> Result<()> {
        match &mut self.backend {
            Backend::Sqlite { writer, .. } => {
                migrations::sqlite().await?.run(&*writer).await?;
            }
            Backend::Postgres { pool, request_role } => {
                migrations::postgres().await?.run(&*pool).await?;
                *request_role = choose_request_role(pool).await?;
            }
        }
        Ok(())
    }

    /// Like [`Store::migrate`] without applying anything: for commands that
    /// inspect an already migrated database.
    pub async fn prepare(&mut self) -> Result<()> {
        if let Backend::Postgres { pool, request_role } = &mut self.backend {
            *request_role = choose_request_role(pool).await?;
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// The PostgreSQL role request transactions switch to, if any.
    pub fn request_role(&self) -> Option<&str> {
        match &self.backend {
            Backend::Postgres { request_role, .. } => request_role.as_deref(),
            Backend::Sqlite { .. } => None,
        }
    }

    /// A listener on the invalidation channel (PostgreSQL only).
    pub async fn invalidation_listener(&self) -> Result<Option<sqlx::postgres::PgListener>> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Postgres { pool, .. } => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(crate::scope::INVALIDATION_CHANNEL).await?;
                Ok(Some(listener))
            }
        }
    }

    /// A round trip to the database, for readiness checks. On SQLite it
    /// also checks, without waiting, that the write lock can be taken (a
    /// lock held by another process makes every write fail).
    pub async fn ping(&self) -> Result<()> {
        match &self.backend {
            Backend::Sqlite {
                reader,
                writer,
                busy_timeout,
            } => {
                sqlx::query("SELECT 1").execute(reader).await?;
                // In a task of its own, so that a caller giving up (a
                // timeout) cannot leave the writer mid-probe: inside a
                // transaction or with no busy timeout.
                let writer = writer.clone();
                let restore = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
                let probe = tokio::spawn(async move {
                    let mut conn = writer.acquire().await?;
                    sqlx::query("PRAGMA busy_timeout = 0")
                        .execute(&mut *conn)
                        .await?;
                    let locked = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await;
                    let rolled_back = match locked {
                        Ok(_) => sqlx::query("ROLLBACK")
                            .execute(&mut *conn)
                            .await
                            .map(|_| ()),
                        Err(_) => Ok(()),
                    };
                    let restored = sqlx::query(&restore).execute(&mut *conn).await;
                    if rolled_back.is_err() || restored.is_err() {
                        // Never hand back a connection in an unknown state.
                        conn.detach();
                    }
                    locked?;
                    rolled_back?;
                    restored?;
                    Ok::<(), sqlx::Error>(())
                });
                probe
                    .await
                    .map_err(|_| StoreError::Database(sqlx::Error::WorkerCrashed))??;
            }
            Backend::Postgres { pool, .. } => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { writer, reader, .. } => {
                writer.close().await;
                reader.close().await;
            }
            Backend::Postgres { pool, .. } => pool.close().await,
        }
    }

    async fn begin(&self, write: bool) -> Result<Conn> {
        Ok(match &self.backend {
            // Writes take SQLite's write lock up front (BEGIN IMMEDIATE): a
            // lock held by another process is then waited for (the busy
            // timeout) instead of failing at once when a read transaction
            // tries to upgrade. In this process writes are serialized by the
            // one-connection writer pool anyway.
            Backend::Sqlite { writer, .. } if write => {
                Conn::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            Backend::Sqlite { reader, .. } => Conn::Sqlite(reader.begin().await?),
            Backend::Postgres { pool, .. } => Conn::Postgres(pool.begin().await?),
        })
    }

    /// A transaction bound to `tenant` that may write.
    pub async fn tenant_write(&self, tenant: &TenantId) -> Result<TenantTx> {
        let conn = self.begin(true).await?;
        TenantTx::enter(conn, self.request_role(), tenant.clone()).await
    }

    /// A read-only transaction bound to `tenant`.
    pub async fn tenant_read(&self, tenant: &TenantId) -> Result<TenantTx> {
        let conn = self.begin(false).await?;
        TenantTx::enter(conn, self.request_role(), tenant.clone()).await
    }

    /// The operator path, able to write the tenant registry.
    pub async fn operator_write(&self) -> Result<OperatorTx> {
        let conn = self.begin(true).await?;
        OperatorTx::enter(conn, self.request_role()).await
    }

    /// The operator path, read-only.
    pub async fn operator_read(&self) -> Result<OperatorTx> {
        let conn = self.begin(false).await?;
        OperatorTx::enter(conn, self.request_role()).await
    }
}

/// A login role that is a superuser or has BYPASSRLS would silently ignore
/// row-level security. Such a role must switch to `tenantry_app` for every
/// transaction; if it cannot, the server must not start.
async fn choose_request_role(pool: &PgPool) -> Result<Option<String>> {
    let (user, bypasses): (String, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if !bypasses {
        return Ok(None);
    }
    let usable: Option<(bool, bool)> = sqlx::query_as(
        "SELECT rolsuper OR rolbypassrls, pg_has_role(current_user, oid, 'MEMBER')
           FROM pg_roles WHERE rolname = $1",
    )
    .bind(REQUEST_ROLE)
    .fetch_optional(pool)
    .await?;
    match usable {
        Some((false, true)) => {
            tracing::info!(
                login_role = %user,
                request_role = REQUEST_ROLE,
                "login role bypasses row-level security; request transactions switch to the request role"
            );
            Ok(Some(REQUEST_ROLE.to_owned()))
        }
        _ => Err(StoreError::Setup(format!(
            "refusing to start: database role '{user}' is a superuser or has BYPASSRLS, so PostgreSQL \
             row-level security would not apply to it, and the role '{REQUEST_ROLE}' (created by the \
             migrations when they run with CREATEROLE) is missing, privileged, or not granted to '{user}'. \
             Connect as an ordinary role that owns the schema, or let the migrations create '{REQUEST_ROLE}'."
        ))),
    }
}
