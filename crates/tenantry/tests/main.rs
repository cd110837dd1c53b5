//! Tenantry's integration suite: every test file below is a module of this
//! one test binary, so the shared support (`common`, `support/`) and the
//! dependencies' generic code are compiled and linked once, not once per
//! file. Each module still starts real servers over HTTP; nextest runs every
//! test in its own process. Run one file's tests with
//! `cargo nextest run -p tenantry --test suite -E 'test(/^keys::/)'`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

#[path = "support/app_pg.rs"]
mod app_pg;
#[path = "support/client_kit.rs"]
mod client_kit;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/console_browser.rs"]
mod console_browser;
#[path = "support/gateway_apps.rs"]
mod gateway_apps;
#[path = "support/idp.rs"]
mod idp;
#[path = "support/process.rs"]
mod process;
#[path = "support/provider_doubles.rs"]
mod provider_doubles;
#[path = "support/provider_signing.rs"]
mod provider_signing;
#[path = "support/test_dns.rs"]
mod test_dns;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

mod app_db;
mod audit;
mod audit_change;
mod audit_keys;
mod audit_limits;
mod audit_vault;
mod audit_walk;
mod changes;
mod citus;
mod cli;
mod client;
mod client_operations;
mod client_platform;
mod client_retries;
mod client_webhooks;
mod connections;
mod console;
mod console_forms;
mod contract;
mod domains;
mod faults;
mod gateway;
mod gateway_caddy;
mod gateway_python;
mod idempotency;
mod identity;
mod inbound;
mod invalidation;
mod isolation;
mod keys;
mod limits;
mod multinode;
mod operations;
mod outage;
mod provider_callbacks;
mod provisioning;
mod quota_leases;
mod races;
mod redis_limits;
mod regions;
mod resolution;
mod resolve_hardening;
mod review_h8;
mod seed;
mod tenants;
mod vault;
mod webhooks;
mod widgets;
