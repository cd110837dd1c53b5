//! What an audit entry adds to a change: `cargo bench -p tenantry-store
//! --bench audit_append` (SQLite in a temporary directory; also PostgreSQL
//! when `TEST_PG_URL` names a throw-away cluster's superuser, as
//! `scripts/test` sets it — see bench/RESULTS.md for how to run it there).
//!
//! (a) One mutating tenant transaction (a tenant event row) against the same
//!     transaction plus its audit append (head lock, entry hash, insert,
//!     head update). Rounds alternate between the two so machine noise hits
//!     both; the median of the rounds is reported, with the ratio.
//! (b) A hot tenant appending flat out from several tasks while a calm
//!     tenant appends one at a time: the calm tenant's per-append time beside
//!     the hot one, against its time alone (ratio). PostgreSQL locks one
//!     chain's head row per append, so other tenants need not queue; SQLite
//!     has one writer for the whole file, so there every write queues.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use std::time::{Duration, Instant};
use tenantry_core::TenantId;
use tenantry_core::audit::{ActorType, AuditActor, AuditDraft, AuditTarget, Outcome, RequestInfo};
use tenantry_core::tenant::{Actor, NewTenant, TenantEventKind};
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_store::{DatabaseOptions, Store};

const ROUNDS: usize = 7;
const PER_ROUND: usize = 200;

fn draft() -> AuditDraft {
    AuditDraft {
        actor: AuditActor::new(ActorType::ApiKey, "key_bench", Some("bench".into())),
        action: "tenant.updated".into(),
        targets: vec![AuditTarget::new("tenant", "bench")],
        outcome: Outcome::Success,
        request: RequestInfo {
            id: Some("0f6e8c1a-5b7d-4d2e-9a31-2c4b6d8e0f12".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("bench/1.0".into()),
        },
        changes: serde_json::json!({"before": {"name": "Old"}, "after": {"name": "New"}}),
        metadata: serde_json::json!({}),
    }
}

async fn one_change(store: &Store, tenant: &TenantId, n: usize, audited: bool) {
    let now = chrono::Utc::now();
    let mut tx = store.tenant_write(tenant).await.unwrap();
    tx.record_event(
        format!("evt_{:020}_{n}", now.timestamp_micros()),
        TenantEventKind::Updated,
        &Actor::system(),
        serde_json::json!({"changed": ["name"]}),
        now,
    )
    .await
    .unwrap();
    if audited {
        tx.append_audit(format!("aud_{}_{n}", now.timestamp_micros()), &draft(), now)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn append_only(store: &Store, tenant: &TenantId, n: usize) {
    let now = chrono::Utc::now();
    let mut tx = store.tenant_write(tenant).await.unwrap();
    tx.append_audit(
        format!("aud_{}_{n}", now.timestamp_nanos_opt().unwrap_or(0)),
        &draft(),
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn create_tenant(store: &Store, id: &str) -> TenantId {
    let tenant = TenantId::parse(id).unwrap();
    let mut op = store.operator_write().await.unwrap();
    op.insert_tenant(
        &NewTenant {
            id: tenant.clone(),
            name: TenantName::parse("name", id).unwrap(),
            subdomain: Subdomain::parse("subdomain", id).unwrap(),
            plan: PlanName::parse("plan", "starter").unwrap(),
            region: Region::parse("region", "local").unwrap(),
            metadata: Metadata::empty(),
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    op.commit().await.unwrap();
    tenant
}

async fn run(name: &str, store: Store) {
    let bench = create_tenant(&store, "bench").await;
    // Warm-up.
    for n in 0..50 {
        one_change(&store, &bench, n, true).await;
        one_change(&store, &bench, n, false).await;
    }
    let (mut plain, mut audited) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for with_audit in [false, true] {
            let start = Instant::now();
            for n in 0..PER_ROUND {
                one_change(&store, &bench, round * 10_000 + n + 1000, with_audit).await;
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64;
            if with_audit {
                audited.push(us)
            } else {
                plain.push(us)
            }
        }
    }
    let (p, a) = (median(plain), median(audited));
    println!(
        "{name}: (a) change alone {p:.0} µs, with its audit entry {a:.0} µs: ratio {:.2}×",
        a / p
    );

    let hot = create_tenant(&store, "hot").await;
    let calm = create_tenant(&store, "calm").await;
    let calm_alone = {
        let start = Instant::now();
        for n in 0..PER_ROUND {
            append_only(&store, &calm, n).await;
        }
        start.elapsed().as_secs_f64() * 1e6 / PER_ROUND as f64
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hot_count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hot_tasks = Vec::new();
    for _ in 0..4 {
        let (store, hot, stop, count) =
            (store.clone(), hot.clone(), stop.clone(), hot_count.clone());
        hot_tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                append_only(&store, &hot, n).await;
                n += 1;
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let hot_before = hot_count.load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    for n in 0..PER_ROUND {
        append_only(&store, &calm, n + 100_000).await;
    }
    let elapsed = start.elapsed();
    let hot_done = hot_count.load(std::sync::atomic::Ordering::Relaxed) - hot_before;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in hot_tasks {
        t.await.unwrap();
    }
    let calm_beside = elapsed.as_secs_f64() * 1e6 / PER_ROUND as f64;
    println!(
        "{name}: (b) calm tenant {calm_alone:.0} µs/append alone, {calm_beside:.0} µs beside a hot tenant \
         ({:.0} appends/s from 4 tasks meanwhile): ratio {:.2}×",
        hot_done as f64 / elapsed.as_secs_f64(),
        calm_beside / calm_alone
    );
    store.close().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::connect(&DatabaseOptions::Sqlite {
            path: dir.path().join("bench.db"),
            max_readers: 4,
            timeout: Duration::from_secs(30),
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        run("sqlite", store).await;

        if let Ok(admin) = std::env::var("TEST_PG_URL") {
            let db = format!("tenantry_bench_{}", std::process::id());
            let pool = sqlx::PgPool::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&pool)
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            let mut store = Store::connect(&DatabaseOptions::Postgres {
                url: format!("{base}/{db}"),
                max_connections: 8,
                timeout: Duration::from_secs(30),
            })
            .await
            .unwrap();
            store.migrate().await.unwrap();
            run("postgres", store).await;
            sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        } else {
            println!("postgres: skipped (TEST_PG_URL is not set)");
        }
    });
}
