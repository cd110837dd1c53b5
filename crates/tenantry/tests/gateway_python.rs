//! examples/gateway-python (Python, psycopg) behind real nginx running the
//! shipped deploy/nginx/tenantry-gateway.conf, on a table isolated by
//! `tenantry app-db isolate`: any language gets tenancy without tenant code.
//! Tenantry on both backends; the app's table on PostgreSQL (TEST_PG_URL).
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

on_both_backends!(python_app_is_isolated_behind_nginx);

async fn python_app_is_isolated_behind_nginx(backend: Backend) {
    gateway_apps::python_app_isolated_behind(Gateway::Nginx, backend).await;
}
