//! Idempotency keys: a tenant caller's in the tenant-scoped table
//! `idempotency_keys` (methods of [`TenantTx`]), an operator's in
//! `operator_idempotency_keys` (methods of [`OperatorTx`]). The same SQL
//! serves both; the tenant variant binds the transaction's tenant id.
//!
//! A row is first a `pending` reservation held by a random `token`, then
//! `done` with the response (its body sealed by the caller). Every change
//! names the token it expects, so a request whose reservation was taken over
//! can no longer complete or release it.

use crate::Result;
use crate::scope::{Conn, OperatorTx, TenantTx, on_conn};

/// A stored idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotencyRow {
    /// SHA-256 over what identifies the request (method, route, path,
    /// caller, body).
    pub fingerprint: Vec<u8>,
    /// Who holds (or held) the reservation.
    pub token: String,
    pub reserved_ms: i64,
    pub expires_ms: i64,
    /// `None` while the request that reserved it is running.
    pub response: Option<StoredResponse>,
}

/// The response a request gave, as stored. The body is sealed by the caller
/// (an envelope, opaque here), with the data key it used wrapped by a KEK.
#[derive(Clone)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub kek_id: String,
    pub wrapped_key: Vec<u8>,
    pub body: String,
}

impl std::fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A new reservation (or the takeover of an expired or abandoned one).
#[derive(Debug, Clone, Copy)]
pub struct Reservation<'a> {
    pub key_hash: &'a [u8],
    pub fingerprint: &'a [u8],
    pub token: &'a str,
    pub now_ms: i64,
    pub expires_ms: i64,
}

type Row = (
    Vec<u8>,
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    i64,
    i64,
);

fn from_row(row: Row) -> IdempotencyRow {
    let (
        fingerprint,
        token,
        state,
        status,
        content_type,
        location,
        kek_id,
        wrapped_key,
        body,
        reserved_ms,
        expires_ms,
    ) = row;
    let response = match (state.as_str(), status, kek_id, wrapped_key, body) {
        ("done", Some(status), Some(kek_id), Some(wrapped_key), Some(body)) => {
            Some(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                content_type,
                location,
                kek_id,
                wrapped_key,
                body,
            })
        }
        _ => None,
    };
    IdempotencyRow {
        fingerprint,
        token,
        reserved_ms,
        expires_ms,
        response,
    }
}

/// Where a key lives: the tenant table with this tenant, or the operator
/// table. Builds the statements for either.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Tenant(&'a str),
    Operator,
}

impl Scope<'_> {
    fn table(&self) -> &'static str {
        match self {
            Scope::Tenant(_) => "idempotency_keys",
            Scope::Operator => "operator_idempotency_keys",
        }
    }

    /// `AND tenant_id = $n` for the tenant table, nothing for the operator's.
    fn filter(&self, n: usize) -> String {
        match self {
            Scope::Tenant(_) => format!(" AND tenant_id = ${n}"),
            Scope::Operator => String::new(),
        }
    }

    fn tenant(&self) -> Option<&str> {
        match self {
            Scope::Tenant(t) => Some(t),
            Scope::Operator => None,
        }
    }
}

/// Binds the tenant id last, when the scope has one.
macro_rules! bind_scope {
    ($query:expr, $scope:expr) => {{
        let q = $query;
        match $scope.tenant() {
            Some(t) => q.bind(t.to_owned()),
            None => q,
        }
    }};
}

async fn reserve(conn: &mut Conn, scope: Scope<'_>, r: &Reservation<'_>) -> Result<bool> {
    let sql = match scope {
        Scope::Tenant(_) => format!(
            "INSERT INTO {} (key_hash, fingerprint, token, state, reserved_ms, expires_ms, tenant_id) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6) ON CONFLICT DO NOTHING",
            scope.table()
        ),
        Scope::Operator => format!(
            "INSERT INTO {} (key_hash, fingerprint, token, state, reserved_ms, expires_ms) \
             VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT DO NOTHING",
            scope.table()
        ),
    };
    let n = on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str())
            .bind(r.key_hash)
            .bind(r.fingerprint)
            .bind(r.token)
            .bind(r.now_ms)
            .bind(r.expires_ms),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected());
    Ok(n == 1)
}

async fn get(conn: &mut Conn, scope: Scope<'_>, key_hash: &[u8]) -> Result<Option<IdempotencyRow>> {
    let sql = format!(
        "SELECT fingerprint, token, state, status, content_type, location, kek_id, wrapped_key, \
                body, reserved_ms, expires_ms FROM {} WHERE key_hash = $1{}",
        scope.table(),
        scope.filter(2)
    );
    let row: Option<Row> = on_conn!(conn, |c| bind_scope!(
        sqlx::query_as(sql.as_str()).bind(key_hash),
        scope
    )
    .fetch_optional(&mut **c)
    .await?);
    Ok(row.map(from_row))
}

async fn take_over(
    conn: &mut Conn,
    scope: Scope<'_>,
    previous_token: &str,
    r: &Reservation<'_>,
) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET fingerprint = $1, token = $2, state = 'pending', status = NULL, \
                content_type = NULL, location = NULL, kek_id = NULL, wrapped_key = NULL, \
                body = NULL, reserved_ms = $3, expires_ms = $4 \
          WHERE key_hash = $5 AND token = $6{}",
        scope.table(),
        scope.filter(7)
    );
    let n = on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str())
            .bind(r.fingerprint)
            .bind(r.token)
            .bind(r.now_ms)
            .bind(r.expires_ms)
            .bind(r.key_hash)
            .bind(previous_token),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected());
    Ok(n == 1)
}

async fn complete(
    conn: &mut Conn,
    scope: Scope<'_>,
    key_hash: &[u8],
    token: &str,
    response: &StoredResponse,
) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET state = 'done', status = $1, content_type = $2, location = $3, \
                kek_id = $4, wrapped_key = $5, body = $6 \
          WHERE key_hash = $7 AND token = $8 AND state = 'pending'{}",
        scope.table(),
        scope.filter(9)
    );
    let n = on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str())
            .bind(i32::from(response.status))
            .bind(response.content_type.as_deref())
            .bind(response.location.as_deref())
            .bind(&response.kek_id)
            .bind(&response.wrapped_key)
            .bind(&response.body)
            .bind(key_hash)
            .bind(token),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected());
    Ok(n == 1)
}

async fn touch(
    conn: &mut Conn,
    scope: Scope<'_>,
    key_hash: &[u8],
    token: &str,
    now_ms: i64,
) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET reserved_ms = $1 WHERE key_hash = $2 AND token = $3 AND state = 'pending'{}",
        scope.table(),
        scope.filter(4)
    );
    let n = on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str())
            .bind(now_ms)
            .bind(key_hash)
            .bind(token),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected());
    Ok(n == 1)
}

async fn release(conn: &mut Conn, scope: Scope<'_>, key_hash: &[u8], token: &str) -> Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE key_hash = $1 AND token = $2 AND state = 'pending'{}",
        scope.table(),
        scope.filter(3)
    );
    let n = on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str()).bind(key_hash).bind(token),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected());
    Ok(n == 1)
}

async fn prune(conn: &mut Conn, scope: Scope<'_>, now_ms: i64) -> Result<u64> {
    let sql = format!(
        "DELETE FROM {} WHERE expires_ms <= $1{}",
        scope.table(),
        scope.filter(2)
    );
    Ok(on_conn!(conn, |c| bind_scope!(
        sqlx::query(sql.as_str()).bind(now_ms),
        scope
    )
    .execute(&mut **c)
    .await?
    .rows_affected()))
}

/// The same operations on either table.
macro_rules! idempotency_methods {
    ($ty:ty) => {
        impl $ty {
            /// Reserves `key_hash` for this request: true if it was free and
            /// is now this request's (the unique key decides between racing
            /// requests).
            pub async fn idempotency_reserve(&mut self, r: &Reservation<'_>) -> Result<bool> {
                let (conn, scope) = self.idempotency_parts();
                reserve(conn, scope, r).await
            }

            pub async fn idempotency_get(
                &mut self,
                key_hash: &[u8],
            ) -> Result<Option<IdempotencyRow>> {
                let (conn, scope) = self.idempotency_parts();
                get(conn, scope, key_hash).await
            }

            /// Takes over a key whose reservation expired or was abandoned,
            /// if it is still the one held by `previous_token`.
            pub async fn idempotency_take_over(
                &mut self,
                previous_token: &str,
                r: &Reservation<'_>,
            ) -> Result<bool> {
                let (conn, scope) = self.idempotency_parts();
                take_over(conn, scope, previous_token, r).await
            }

            /// Stores the response of the request holding `token`.
            pub async fn idempotency_complete(
                &mut self,
                key_hash: &[u8],
                token: &str,
                response: &StoredResponse,
            ) -> Result<bool> {
                let (conn, scope) = self.idempotency_parts();
                complete(conn, scope, key_hash, token, response).await
            }

            /// Says the request holding `token` is still running (so its
            /// reservation is not taken for abandoned).
            pub async fn idempotency_touch(
                &mut self,
                key_hash: &[u8],
                token: &str,
                now_ms: i64,
            ) -> Result<bool> {
                let (conn, scope) = self.idempotency_parts();
                touch(conn, scope, key_hash, token, now_ms).await
            }

            /// Gives up the reservation held by `token` (the request failed).
            pub async fn idempotency_release(
                &mut self,
                key_hash: &[u8],
                token: &str,
            ) -> Result<bool> {
                let (conn, scope) = self.idempotency_parts();
                release(conn, scope, key_hash, token).await
            }

            /// Deletes keys that expired by `now_ms`.
            pub async fn idempotency_prune(&mut self, now_ms: i64) -> Result<u64> {
                let (conn, scope) = self.idempotency_parts();
                prune(conn, scope, now_ms).await
            }
        }
    };
}

impl TenantTx {
    fn idempotency_parts(&mut self) -> (&mut Conn, Scope<'_>) {
        (&mut self.conn, Scope::Tenant(self.tenant.as_str()))
    }
}

impl OperatorTx {
    fn idempotency_parts(&mut self) -> (&mut Conn, Scope<'static>) {
        (&mut self.conn, Scope::Operator)
    }
}

idempotency_methods!(TenantTx);
idempotency_methods!(OperatorTx);

impl OperatorTx {
    /// Tenants with expired idempotency keys, at most `limit` (read-only
    /// cross-tenant lookup for the pruning worker).
    pub async fn tenants_with_expired_idempotency_keys(
        &mut self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<tenantry_core::TenantId>> {
        let sql = "SELECT DISTINCT tenant_id FROM idempotency_keys WHERE expires_ms <= $1 \
                   ORDER BY tenant_id LIMIT $2";
        let rows: Vec<(String,)> = on_conn!(&mut self.conn, |c| sqlx::query_as(sql)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut **c)
            .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(t,)| tenantry_core::TenantId::parse(&t).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_body_nor_key() {
        let stored = StoredResponse {
            status: 201,
            content_type: Some("application/json".into()),
            location: None,
            kek_id: "kek_1".into(),
            wrapped_key: vec![7; 60],
            body: "tv1.idk_x.c2VjcmV0".into(),
        };
        let shown = format!("{stored:?}");
        assert!(shown.contains("201"), "{shown}");
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("7, 7"),
            "{shown}"
        );
    }
}
