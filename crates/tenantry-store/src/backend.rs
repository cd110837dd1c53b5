use crate::Result;
use crate::error::StoreError;
use crate::migrations;
use crate::scope::{Conn, OperatorTx, TenantTx};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::TenantId;

/// What PostgreSQL transactions switch to, decided once at start-up.
pub(crate) struct PgRoles {
    request: String,
    operator: String,
    seal: Arc<crate::notify::NotifySeal>,
}

/// The role tenant-scoped transactions run as (created by the migrations).
pub const REQUEST_ROLE: &str = "tenantry_app";

/// The role operator transactions run as: the only one the cross-tenant
/// read policies apply to (created by the migrations).
pub const OPERATOR_ROLE: &str = "tenantry_operator";

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

/// One connection pool's use, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
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
        /// Set by [`Store::migrate`] / [`Store::prepare`]: the roles every
        /// transaction switches to (`set_config('role', …, true)`), and the
        /// key that authenticates its invalidations.
        roles: Option<Arc<PgRoles>>,
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
                if let Some(parent) = path.parent()
                    && !parent.as_os_str().is_empty()
                {
                    crate::files::private_dir(parent).map_err(|e| {
                        StoreError::Setup(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                crate::files::private_database(path).map_err(|e| {
                    StoreError::Setup(format!("cannot create {}: {e}", path.display()))
                })?;
                let connect = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // Deleted content is overwritten with zeros, so a purged
                    // tenant's wrapped data key (and a replaced plaintext
                    // signing seed) cannot be recovered from free pages.
                    .pragma("secure_delete", "ON")
                    // A lock held by another process (a CLI command, a
                    // backup) makes writes wait this long, then fail as
                    // unavailable (503) rather than hang the request.
                    .busy_timeout(*timeout)
                    .log_statements(tracing::log::LevelFilter::Trace)
                    // sqlx warns of any statement over a second; on a busy
                    // disk that includes the connection's own PRAGMAs, which
                    // is load, not a fault: said at INFO.
                    .log_slow_statements(
                        tracing::log::LevelFilter::Info,
                        std::time::Duration::from_secs(1),
                    );
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            if !conn.is_in_transaction() {
                                return Ok(true);
                            }
                            // A dropped transaction's ROLLBACK is queued:
                            // a ping lets it run. Still "in a transaction"
                            // after it means the ROLLBACK failed because
                            // SQLite had rolled back by itself (after
                            // SQLITE_FULL or SQLITE_IOERR), and sqlx would
                            // refuse every later BEGIN on this connection:
                            // close it, the pool opens a fresh one.
                            conn.ping().await?;
                            Ok(!conn.is_in_transaction())
                        })
                    })
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
                    .log_statements(tracing::log::LevelFilter::Trace)
                    // sqlx warns of any statement over a second; on a busy
                    // disk that includes the connection's own PRAGMAs, which
                    // is load, not a fault: said at INFO.
                    .log_slow_statements(
                        tracing::log::LevelFilter::Info,
                        std::time::Duration::from_secs(1),
                    );
                let pool = PgPoolOptions::new()
                    .max_connections((*max_connections).max(2))
                    // During an outage requests fail fast (503) instead of
                    // queueing on the pool.
                    .acquire_timeout(*timeout)
                    .connect_with(connect)
                    .await?;
                Ok(Store {
                    backend: Backend::Postgres { pool, roles: None },
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
            Backend::Postgres { pool, roles } => {
                migrations::postgres().await?.run(&*pool).await?;
                *roles = Some(Arc::new(choose_roles(pool).await?));
            }
        }
        Ok(())
    }

    /// Like [`Store::migrate`] without applying anything: for commands that
    /// inspect an already migrated database.
    pub async fn prepare(&mut self) -> Result<()> {
        if let Backend::Postgres { pool, roles } = &mut self.backend {
            *roles = Some(Arc::new(choose_roles(pool).await?));
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    /// The PostgreSQL role tenant-scoped transactions switch to.
    pub fn request_role(&self) -> Option<&str> {
        self.pg_roles().map(|r| r.request.as_str())
    }

    /// The PostgreSQL role operator transactions switch to.
    pub fn operator_role(&self) -> Option<&str> {
        self.pg_roles().map(|r| r.operator.as_str())
    }

    fn pg_roles(&self) -> Option<&PgRoles> {
        match &self.backend {
            Backend::Postgres { roles, .. } => roles.as_deref(),
            Backend::Sqlite { .. } => None,
        }
    }

    fn seal(&self) -> Option<Arc<crate::notify::NotifySeal>> {
        self.pg_roles().map(|r| Arc::clone(&r.seal))
    }

    /// Checks a message received on the invalidation channel: it must carry
    /// a valid MAC under this database's secret and a fresh timestamp.
    /// Receivers also drop an id they have already seen (a replay).
    pub fn verify_invalidation<'a>(
        &self,
        message: &'a str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> std::result::Result<crate::VerifiedNotice<'a>, crate::NoticeRejected> {
        match self.pg_roles() {
            Some(roles) => roles.seal.open(message, now.timestamp()),
            None => Err(crate::NoticeRejected::Malformed),
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

    /// The session-level value of setting `name` on each connection of the
    /// pool (PostgreSQL; SQLite has no settings: empty). Request context is
    /// transaction-local, so after any number of requests every value is
    /// empty: a check for the isolation tests.
    pub async fn session_settings(&self, name: &str) -> Result<Vec<String>> {
        let Backend::Postgres { pool, .. } = &self.backend else {
            return Ok(Vec::new());
        };
        // Hold every connection the pool has, so each one is asked.
        let mut held = Vec::new();
        for _ in 0..pool.size().max(1) {
            held.push(pool.acquire().await?);
        }
        let mut values = Vec::new();
        for conn in &mut held {
            let (value,): (Option<String>,) = sqlx::query_as("SELECT current_setting($1, true)")
                .bind(name)
                .fetch_one(&mut **conn)
                .await?;
            values.push(value.unwrap_or_default());
        }
        Ok(values)
    }

    /// Each connection pool as `/metrics` shows it: name, open
    /// connections, idle ones, and the most it may open.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                name,
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.backend {
            Backend::Sqlite { writer, reader, .. } => {
                vec![of("sqlite_writer", writer), of("sqlite_reader", reader)]
            }
            Backend::Postgres { pool, .. } => vec![of("postgres", pool)],
        }
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

    /// Copies the SQLite write-ahead log into the database and truncates it,
    /// so what a committed delete erased (secure_delete zeroes it in the
    /// new page images) is no longer in the older frames of the WAL either.
    /// A no-op on PostgreSQL. Each attempt waits for readers still on the
    /// log (up to the busy timeout); after three, it gives up and returns
    /// false (the next checkpoint empties it).
    pub async fn shred_checkpoint(&self) -> Result<bool> {
        let Backend::Sqlite { writer, .. } = &self.backend else {
            return Ok(true);
        };
        for attempt in 0..3u64 {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(writer)
                .await?;
            if busy == 0 {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(10 * (attempt + 1))).await;
        }
        Ok(false)
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
            Backend::Postgres { pool, .. } if write => Conn::Postgres(pool.begin().await?),
            // A read transaction cannot write, on either backend (SQLite's
            // reader pool is read-only): nothing opened to read can be used
            // to change something outside the change path.
            Backend::Postgres { pool, .. } => {
                Conn::Postgres(pool.begin_with("BEGIN READ ONLY").await?)
            }
        })
    }

    async fn begin_scoped(&self, write: bool) -> Result<Conn> {
        if matches!(self.backend, Backend::Postgres { roles: None, .. }) {
            // Without its roles a transaction would run as the login role,
            // which may bypass row-level security.
            return Err(StoreError::Setup(
                "the PostgreSQL store was not prepared (migrate or prepare it first)".into(),
            ));
        }
        self.begin(write).await
    }

    /// A transaction bound to `tenant` that may write.
    pub async fn tenant_write(&self, tenant: &TenantId) -> Result<TenantTx> {
        let conn = self.begin_scoped(true).await?;
        TenantTx::enter(
            conn,
            self.request_role(),
            self.operator_role(),
            tenant.clone(),
            self.seal(),
        )
        .await
    }

    /// A read-only transaction bound to `tenant`.
    pub async fn tenant_read(&self, tenant: &TenantId) -> Result<TenantTx> {
        let conn = self.begin_scoped(false).await?;
        TenantTx::enter(
            conn,
            self.request_role(),
            self.operator_role(),
            tenant.clone(),
            self.seal(),
        )
        .await
    }

    /// The operator path, able to write the tenant registry.
    pub async fn operator_write(&self) -> Result<OperatorTx> {
        let conn = self.begin_scoped(true).await?;
        OperatorTx::enter(conn, self.operator_role(), self.request_role(), self.seal()).await
    }

    /// The operator path, read-only.
    pub async fn operator_read(&self) -> Result<OperatorTx> {
        let conn = self.begin_scoped(false).await?;
        OperatorTx::enter(conn, self.operator_role(), self.request_role(), self.seal()).await
    }
}

/// Every PostgreSQL transaction switches role: tenant-scoped ones to
/// `tenantry_app`, operator ones to `tenantry_operator`, so that neither runs
/// as a login role that may bypass row-level security (superuser,
/// BYPASSRLS) and a tenant transaction cannot use the operator's policies.
/// Both roles must exist, be ordinary, and be granted to the login role
/// (the migrations do all this when they can); otherwise the server must not
/// start. Also reads the invalidation secret, which only the owner can.
async fn choose_roles(pool: &PgPool) -> Result<PgRoles> {
    let (user, bypasses): (String, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    let mut problems = Vec::new();
    for role in [REQUEST_ROLE, OPERATOR_ROLE] {
        let usable: Option<(bool, bool)> = sqlx::query_as(
            "SELECT rolsuper OR rolbypassrls, pg_has_role(current_user, oid, 'MEMBER')
               FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_optional(pool)
        .await?;
        match usable {
            Some((false, true)) => {}
            Some((true, _)) => problems.push(format!("'{role}' bypasses row-level security")),
            Some((false, false)) => problems.push(format!("'{role}' is not granted to '{user}'")),
            None => problems.push(format!("'{role}' does not exist")),
        }
    }
    if !problems.is_empty() {
        let why = if bypasses {
            format!(
                "database role '{user}' is a superuser or has BYPASSRLS, so PostgreSQL row-level \
                 security would not apply to it, and "
            )
        } else {
            String::new()
        };
        return Err(StoreError::Setup(format!(
            "refusing to start: {why}transactions must run as the roles '{REQUEST_ROLE}' (tenant \
             requests) and '{OPERATOR_ROLE}' (the operator path), but {}. The migrations create \
             and grant them when they run as a superuser or with CREATEROLE; otherwise, as a \
             superuser: CREATE ROLE {REQUEST_ROLE} NOLOGIN NOINHERIT; CREATE ROLE {OPERATOR_ROLE} \
             NOLOGIN NOINHERIT; GRANT {REQUEST_ROLE}, {OPERATOR_ROLE} TO \"{user}\";",
            problems.join(", ")
        )));
    }
    // Membership is not always enough to switch (PostgreSQL 16's SET
    // option): try both, in a transaction that changes nothing.
    let mut tx = pool.begin().await?;
    for role in [REQUEST_ROLE, OPERATOR_ROLE] {
        if let Err(err) = sqlx::query("SELECT set_config('role', $1, true)")
            .bind(role)
            .execute(&mut *tx)
            .await
        {
            return Err(StoreError::Setup(format!(
                "refusing to start: database role '{user}' cannot switch to '{role}': {err}"
            )));
        }
    }
    tx.rollback().await?;
    let secret: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT value FROM tenantry_secrets WHERE name = 'invalidation_hmac'")
            .fetch_optional(pool)
            .await?;
    let seal = secret
        .and_then(|(secret,)| crate::notify::NotifySeal::new(&secret))
        .ok_or_else(|| {
            StoreError::Setup("the invalidation secret is missing from tenantry_secrets".into())
        })?;
    if bypasses {
        tracing::info!(
            login_role = %user,
            request_role = REQUEST_ROLE,
            operator_role = OPERATOR_ROLE,
            "login role bypasses row-level security; request transactions switch to the request role"
        );
    }
    Ok(PgRoles {
        request: REQUEST_ROLE.to_owned(),
        operator: OPERATOR_ROLE.to_owned(),
        seal: Arc::new(seal),
    })
}
