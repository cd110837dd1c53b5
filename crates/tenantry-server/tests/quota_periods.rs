//! Quota and usage periods roll over at calendar-month boundaries (UTC):
//! the quota service against a real database, with an injected clock
//! instead of sleeping. Runs on SQLite and, when `TEST_PG_URL` is set (as
//! `scripts/test` does), on PostgreSQL.
#![allow(clippy::disallowed_methods)] // Tests set up and inspect rows below the API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use serde_json::json;
use std::sync::Arc;
use tenantry_core::clock::ManualClock;
use tenantry_core::tenant::NewTenant;
use tenantry_core::values::{Metadata, PlanName, Region, Subdomain, TenantName};
use tenantry_core::{Clock, TenantId};
use tenantry_server::app::AppState;
use tenantry_server::config::Config;
use tenantry_server::limits::{quotas, service, usage};

async fn state(
    database_url: Option<String>,
    dir: &std::path::Path,
    clock: ManualClock,
) -> AppState {
    let mut env = vec![
        ("TENANTRY_DATA_DIR".to_owned(), dir.display().to_string()),
        (
            "TENANTRY_ROOT_KEY".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
    ];
    if let Some(url) = database_url {
        env.push(("TENANTRY_DATABASE_URL".to_owned(), url));
        env.push((
            "TENANTRY_MASTER_KEY".to_owned(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ));
    }
    let config = Config::from_sources(None, &env).unwrap();
    let store = tenantry_server::open_store(&config).await.unwrap();
    let vault = tenantry_server::vault::Vault::load(&config).unwrap();
    let root = tenantry_server::root_key::load_or_create(&config).unwrap();
    AppState::new(
        store,
        Arc::new(clock),
        config,
        root,
        vault,
        tenantry_server::limits::ratelimit::RateLimiter::in_memory(),
    )
    .unwrap()
}

async fn roll_over(state: AppState, clock: ManualClock) {
    let id = TenantId::parse("acme").unwrap();
    let mut op = state.store.operator_write().await.unwrap();
    op.insert_tenant(
        &NewTenant {
            id: id.clone(),
            name: TenantName::parse("name", "Acme").unwrap(),
            subdomain: Subdomain::parse("subdomain", "acme").unwrap(),
            plan: PlanName::parse("plan", "starter").unwrap(),
            region: Region::parse("region", "local").unwrap(),
            metadata: Metadata::empty(),
        },
        clock.now(),
    )
    .await
    .unwrap();
    let mut tx = op.scope_to(&id).await.unwrap();
    tx.insert_config_version(
        1,
        &json!({"quotas": {"messages_outbound": {"limit": 5}}}),
        "test",
        clock.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let consume = |n: i64| {
        let state = state.clone();
        let id = id.clone();
        async move {
            let mut tx = state.store.tenant_write(&id).await.unwrap();
            let config = service::effective_config(&state, &mut tx).await.unwrap();
            let d = quotas::check(
                &state,
                &mut tx,
                &config,
                "messages_outbound",
                n,
                true,
                state.clock.now(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            d
        }
    };
    // 23:59:59 on the last day of November: the month is nearly over.
    let d = consume(5).await;
    assert!(d.allowed);
    assert_eq!(
        d.resets_at,
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
    );
    assert!(!consume(1).await.allowed, "November's quota is used up");
    clock.advance(chrono::Duration::seconds(1));
    // 00:00:00 on the 1st of December: a new period, a fresh quota.
    let d = consume(1).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.used, 1);
    assert_eq!(
        d.resets_at,
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    );
    // Threshold alerts are per period: they fire again in December.
    consume(4).await;
    let mut tx = state.store.tenant_read(&id).await.unwrap();
    let events = tx.list_events(None, 100).await.unwrap().events;
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| e.kind == tenantry_core::tenant::TenantEventKind::QuotaThresholdReached)
        .collect();
    assert_eq!(
        alerts.len(),
        4,
        "80% and 100% in November, then again in December"
    );
    // December's series starts empty, November's is kept.
    let nov = tx
        .counter(
            "messages_outbound",
            "month",
            usage::period_start(
                "month",
                Utc.with_ymd_and_hms(2026, 11, 15, 0, 0, 0).unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(nov, 5);
    tx.commit().await.unwrap();
    // Year roll-over of the period maths.
    assert_eq!(
        usage::next_period(
            "month",
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
        ),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        usage::period_start(
            "hour",
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()
        ),
        Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap()
    );
}

fn november_end() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap())
}

#[tokio::test]
async fn sqlite_quota_period_rolls_over() {
    let dir = tempfile::tempdir().unwrap();
    let clock = november_end();
    let state = state(None, dir.path(), clock.clone()).await;
    roll_over(state, clock).await;
}

#[tokio::test]
async fn postgres_quota_period_rolls_over() {
    let admin_url = std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| panic!("TEST_PG_URL is not set: run ./scripts/test"));
    let name = format!(
        "periods_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clock = november_end();
    let state = state(Some(format!("{base}/{name}")), dir.path(), clock.clone()).await;
    roll_over(state, clock).await;
}
