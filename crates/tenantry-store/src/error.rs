/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    TenantId,
    Subdomain,
    Domain,
    /// A WhatsApp Business Account or phone number id another tenant registered.
    WhatsappId,
}

/// How the database's storage refuses a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLITE_FULL, PostgreSQL 53100).
    Full,
    /// The database or its file system is read-only (SQLITE_READONLY,
    /// PostgreSQL 25006).
    ReadOnly,
    /// The file system failed a read or write (SQLITE_IOERR, PostgreSQL 58030).
    Io,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0:?} already taken")]
    Conflict(Conflict),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Setup(String),
}

impl StoreError {
    /// An outage reported by something other than the database driver
    /// (a shared transaction that failed for several requests at once).
    pub fn unavailable() -> StoreError {
        StoreError::Database(sqlx::Error::PoolTimedOut)
    }

    /// The database's storage refuses writes (disk full, read-only, I/O
    /// errors), as opposed to an outage or a refused query.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                let code = db.code()?;
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // Primary result codes (the low byte of extended ones):
                    // SQLITE_READONLY 8, SQLITE_IOERR 10, SQLITE_FULL 13.
                    return match code.parse::<i32>().ok()? & 0xff {
                        8 => Some(StorageFault::ReadOnly),
                        10 => Some(StorageFault::Io),
                        13 => Some(StorageFault::Full),
                        _ => None,
                    };
                }
                // SQLSTATE: disk_full, read_only_sql_transaction (a hot
                // standby or default_transaction_read_only), io_error.
                match code.as_ref() {
                    "53100" => Some(StorageFault::Full),
                    "25006" => Some(StorageFault::ReadOnly),
                    "58030" => Some(StorageFault::Io),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The database could not be reached or cannot serve right now (as
    /// opposed to refusing a query): the request may succeed if retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(err) => database_unavailable(err),
            _ => false,
        }
    }
}

fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), extended codes
                // included: another connection holds the lock.
                return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            // PostgreSQL SQLSTATE: 08 connection exception, 57 operator
            // intervention (admin or crash shutdown, cannot connect now),
            // 53 insufficient resources (too many connections, disk full),
            // 55000 (e.g. "database does not allow connections").
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || code == "55000"
        }
        _ => false,
    }
}

/// The constraint a unique violation names: the PostgreSQL constraint name or
/// SQLite's `table.column` list.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned()),
    )
}
