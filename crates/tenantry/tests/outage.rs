//! A database outage answers 503 with Retry-After and a stable code, never
//! 500 or a hang, and the server recovers on its own afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{Backend, ROOT_KEY, Reply, TestDb, TestServer};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_backends!(database_outage_answers_503_and_recovers);

#[track_caller]
fn assert_unavailable(reply: &Reply) {
    reply.assert_retry_later("database_unavailable");
}

/// `/readyz` answers 503 within a (generous) bound: well under the pool's
/// and the lock's timeouts, which are set long here on purpose.
async fn assert_not_ready(server: &TestServer) {
    let started = Instant::now();
    let ready = server.call_as(None, Method::GET, "/readyz", None).await;
    let took = started.elapsed();
    assert_unavailable(&ready);
    assert!(took < Duration::from_secs(5), "/readyz took {took:?}");
}

async fn wait_ready(server: &TestServer) {
    for _ in 0..100 {
        let ready = server.call_as(None, Method::GET, "/readyz", None).await;
        if ready.status.as_u16() == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready again:\n{}", server.logs());
}

async fn database_outage_answers_503_and_recovers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = TestServer::start_with(
        &db,
        &[
            ("TENANTRY_ROOT_KEY", ROOT_KEY),
            ("TENANTRY_DATABASE_TIMEOUT", "1s"),
        ],
    )
    .await;
    for line in common::DATABASE_OUTAGE_WARNINGS {
        server.expect_warning(line);
    }
    server.create_tenant("acme").await;

    match backend {
        Backend::Postgres => {
            // No new connections to the database, and the server's current
            // ones cut: PostgreSQL is gone as far as the server can tell.
            let name = db.pg_database.clone().unwrap();
            let admin = common::pg_admin().await;
            sqlx::query(&format!(
                "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
            ))
            .execute(&admin)
            .await
            .unwrap();
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .execute(&admin)
            .await
            .unwrap();

            assert_unavailable(&server.get("/v1/tenants/acme").await);
            assert_unavailable(
                &server
                    .post("/v1/tenants", json!({"id": "during", "name": "During"}))
                    .await,
            );
            assert_not_ready(&server).await;

            sqlx::query(&format!(
                "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
            ))
            .execute(&admin)
            .await
            .unwrap();
            admin.close().await;
        }
        Backend::Sqlite => {
            // Another process holds SQLite's write lock: writes cannot
            // proceed (WAL readers still can, and do).
            let lock = common::DbLock::take(&db, "tenants").await;
            assert_unavailable(
                &server
                    .post("/v1/tenants", json!({"id": "during", "name": "During"}))
                    .await,
            );
            assert_unavailable(
                &server
                    .patch("/v1/tenants/acme", json!({"name": "Renamed"}))
                    .await,
            );
            assert_not_ready(&server).await;
            let read = server.get("/v1/tenants/acme").await;
            assert_eq!(read.status.as_u16(), 200, "WAL reads go on: {read:?}");
            lock.release().await;
        }
    }

    // Recovery, without a restart.
    wait_ready(&server).await;
    let read = server.get("/v1/tenants/acme").await;
    assert_eq!(read.status.as_u16(), 200, "{read:?}");
    server.create_tenant("after").await;
    assert!(
        !server.logs().contains("\"status\":500") && !server.logs().contains("status=500"),
        "no request answered 500:\n{}",
        server.logs()
    );
}
