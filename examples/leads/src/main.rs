//! `leads`: serves the example on `LEADS_LISTEN` (default 127.0.0.1:3100).
//!
//! - `LEADS_DATABASE_URL`: PostgreSQL, as the service's ordinary role.
//! - `TENANTRY_URL`, `TENANTRY_SERVICE_KEY`: where Tenantry is, and the key
//!   the layer authenticates with (an operator key, or a tenant key with
//!   `resolve:trusted`).
//! - `LEADS_SETUP_ADMIN_URL` (optional): install the schema first, with this
//!   administrator connection, granting rows to `LEADS_APP_ROLE`.
//! - `LEADS_AUTH=trusted-header`: the benchmark baseline (no Tenantry; the
//!   tenant named by `X-Tenant-ID`). Never in production. With
//!   `LEADS_TRUSTED_CONTEXT` (a tenant context as JSON, e.g. the one Tenantry
//!   resolved for the benchmark's key), only that tenant, with that context.

use anyhow::Context;
use tenantry_layer::{LayerConfig, ServiceKey, TenantryLayer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let listen = std::env::var("LEADS_LISTEN").unwrap_or_else(|_| "127.0.0.1:3100".to_owned());
    if let Ok(admin_url) = std::env::var("LEADS_SETUP_ADMIN_URL") {
        leads::setup(&admin_url, &var("LEADS_APP_ROLE")?)
            .await
            .context("schema setup")?;
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&var("LEADS_DATABASE_URL")?)
        .await
        .context("LEADS_DATABASE_URL")?;
    let auth = if std::env::var("LEADS_AUTH").as_deref() == Ok("trusted-header") {
        match std::env::var("LEADS_TRUSTED_CONTEXT") {
            Ok(json) => leads::Auth::TrustedContext(tenantry_layer::TenantContext::new(
                serde_json::from_str(&json).context("LEADS_TRUSTED_CONTEXT")?,
            )),
            Err(_) => leads::Auth::TrustedHeader,
        }
    } else {
        let config = LayerConfig::new(
            var("TENANTRY_URL")?,
            ServiceKey::new(var("TENANTRY_SERVICE_KEY")?),
        );
        leads::Auth::Tenantry(TenantryLayer::new(config)?)
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("leads listening on http://{}", listener.local_addr()?);
    axum::serve(listener, leads::app(pool, auth))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
