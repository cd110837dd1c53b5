//! Gateway mode with real Caddy running the shipped deploy/caddy/Caddyfile
//! (forward_auth to GET /v1/resolve), in front of examples/gateway-python on
//! a table isolated by `tenantry app-db isolate`. Tenantry on both backends;
//! the app's table on PostgreSQL. Caddy is a requirement: `scripts/test`
//! installs it (Debian `caddy`), TEST_CADDY_BIN may point at one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/app_pg.rs"]
mod app_pg;
mod common;
#[path = "support/gateway_apps.rs"]
mod gateway_apps;
#[path = "support/process.rs"]
mod process;

use common::Backend;
use gateway_apps::Gateway;

on_both_backends!(caddy_forward_auth_resolves_and_isolates);

async fn caddy_forward_auth_resolves_and_isolates(backend: Backend) {
    gateway_apps::python_app_isolated_behind(Gateway::Caddy, backend).await;
}
