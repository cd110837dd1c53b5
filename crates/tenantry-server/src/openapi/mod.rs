//! The OpenAPI 3.1 document, generated from the handlers' annotations. A copy
//! is committed as `openapi.json` at the repository root; a test fails when it
//! drifts (regenerate with `cargo run -- openapi > openapi.json`).

use crate::api::{
    self, audit, credentials, domains, events, health, keyring, keys, operator_keys, resolve,
    tenants, tokens,
};
use crate::http::problem::{FieldError, Problem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tenantry",
        description = "The multi-tenant control plane: tenants, isolation, keys, credentials, limits and audit.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz, health::readyz,
        tenants::create, tenants::list, tenants::get, tenants::update, tenants::delete,
        tenants::suspend, tenants::reactivate, events::list,
        api::regions::start, api::regions::status, api::regions::complete, api::regions::abort,
        domains::add, domains::list, domains::remove, domains::verify,
        keys::create, keys::list, keys::get, keys::update, keys::revoke, keys::rotate, keys::verify,
        operator_keys::create, operator_keys::list, operator_keys::revoke,
        resolve::resolve_post, resolve::resolve_get, crate::api::changes::stream,
        tokens::create, tokens::jwks, tokens::rotate,
        credentials::create, credentials::list, credentials::get, credentials::update, credentials::delete,
        credentials::reveal, credentials::access_log, api::settings::put_settings, api::settings::get_settings,
        api::settings::reveal_settings, keyring::status, keyring::rotate, keyring::rotate_tenant,
        api::plans::list_plans, api::plans::put_plan, api::meters::list_meters, api::meters::create_meter, api::config::get_config,
        api::config::patch_config, api::config::config_versions, api::usage::ingest, api::usage::usage_series, api::usage::stats,
        api::quotas::check_quota, api::ratelimit::ratelimit, health::metrics,
        audit::list, audit::operator_list, audit::checkpoints, audit::operator_checkpoints,
        audit::verify, audit::operator_verify, audit::export, audit::operator_export,
        audit::keys, audit::rotate_key,
        api::identity::create_provider, api::identity::list_providers, api::identity::get_provider,
        api::identity::put_provider, api::identity::delete_provider, api::identity::put_member,
        api::identity::list_members, api::identity::get_member, api::identity::delete_member,
        api::identity::member_tenants,
        api::provisioning::create, api::provisioning::get, api::provisioning::list,
        api::provisioning::retry, api::provisioning::cancel,
        api::webhooks::event_types, api::webhooks::operator_create, api::webhooks::operator_list, api::webhooks::operator_get,
        api::webhooks::operator_update, api::webhooks::operator_delete, api::webhooks::operator_rotate, api::webhooks::operator_jwks,
        api::webhooks::operator_messages, api::webhooks::operator_message, api::webhooks::operator_replay, api::webhooks::operator_replay_range,
        api::webhooks::tenant_create, api::webhooks::tenant_list, api::webhooks::tenant_get,
        api::webhooks::tenant_update, api::webhooks::tenant_delete, api::webhooks::tenant_rotate, api::webhooks::tenant_jwks,
        api::webhooks::tenant_messages, api::webhooks::tenant_message, api::webhooks::tenant_replay, api::webhooks::tenant_replay_range,
        api::inbound::whatsapp_handshake, api::inbound::whatsapp_receive, api::inbound::whatsapp_receive_any,
        api::inbound::conversations, api::inbound::conversation_messages,
        api::callbacks::register, api::callbacks::twilio, api::callbacks::sendgrid, api::callbacks::generic,
        api::widgets::create, api::widgets::list, api::widgets::update, api::widgets::issue,
        api::widgets::verify,
    ),
    components(schemas(Problem, FieldError, tenantry_api::AuditOutcomeName, tenantry_api::ExportFormat, tenantry_api::Granularity, api::Page<tenants::TenantOut>, api::Page<events::EventOut>, api::Page<keys::KeyOut>, api::Page<audit::AuditEntryOut>, api::Page<audit::CheckpointOut>, api::Page<crate::webhooks::endpoints::EndpointView>, api::Page<api::webhooks::MessageOut>, api::Page<api::inbound::ConversationOut>, api::Page<api::inbound::MessageOut>)),
    modifiers(&BearerAuth, &IdempotencyKeys, &ProblemResponses),
    security(("bearer" = [])),
    tags(
        (name = "tenants", description = "The tenant registry and lifecycle"),
        (name = "domains", description = "Custom domains of a tenant"),
        (name = "keys", description = "API keys of tenants and operators"),
        (name = "tokens", description = "Short-lived access tokens (EdDSA JWTs)"),
        (name = "resolution", description = "Which tenant a request belongs to"),
        (name = "credentials", description = "Sealed third-party credentials and settings, and the keys that seal them"),
        (name = "plans", description = "Plans and tenant configuration"),
        (name = "usage", description = "Usage metering, quotas and rate limits"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "webhooks", description = "The event catalogue and outbound webhooks: endpoints, signed deliveries, the delivery log and replays"),
        (name = "audit", description = "The tamper-evident audit log: entries, signed checkpoints, verification and export"),
        (name = "identity", description = "Trusted identity providers, and the members of tenants who log in through them"),
        (name = "provisioning", description = "Onboarding a tenant in one call: durable workflows checked against Meta and Genesys Cloud"),
        (name = "widgets", description = "Public chat widgets: allowed origins, short-lived tokens, verification"),
        (name = "inbound", description = "Inbound webhooks (WhatsApp, provider callbacks) and the conversations and messages they stored"),
    )
)]
pub struct ApiDoc;

mod constraints;
mod problems;

struct BearerAuth;

/// The problem answers of every operation (see [`problems`]); after
/// [`IdempotencyKeys`], whose header is one of the facts they follow from.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        problems::document(openapi);
    }
}

/// The `Idempotency-Key` header on the operations that honour it.
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        crate::http::idempotency::document(openapi);
    }
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A root key, operator key, tenant API key or access token, as `Authorization: Bearer <key>` (or `X-API-Key: <key>`)",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a trailing newline, as committed and
/// served, with the constraints every request is held to (see
/// [`constraints`]).
pub fn json() -> String {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    constraints::apply(&mut doc);
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

#[cfg(test)]
mod schema_names {
    //! utoipa keeps one schema per name and silently drops the other when two
    //! Rust types derive `ToSchema` under the same name (e.g. three `VerifyIn`
    //! made `/v1/keys/verify` show the widget body). This test reads every
    //! workspace crate's sources and fails if two `ToSchema` types end up with
    //! one schema name (after `#[schema(as = …)]`).
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_two_types_share_a_schema_name() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&crates).into_iter().flatten().flatten() {
            rust_files(&entry.path().join("src"), &mut files);
        }
        assert!(
            !files.is_empty(),
            "no sources found under {}",
            crates.display()
        );
        let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !(line.trim_start().starts_with("#[derive(") && line.contains("ToSchema")) {
                    continue;
                }
                let mut alias = None;
                for next in &lines[i + 1..] {
                    let t = next.trim_start();
                    if let Some(rest) = t.strip_prefix("#[schema(as = ") {
                        let name = rest.split(')').next().unwrap_or_default();
                        alias = name.rsplit("::").next().map(str::to_owned);
                        continue;
                    }
                    if t.starts_with("#[") || t.starts_with("///") || t.is_empty() {
                        continue;
                    }
                    let item = t
                        .split_whitespace()
                        .skip_while(|w| *w != "struct" && *w != "enum")
                        .nth(1)
                        .map(|w| w.split(['<', '{', '(', ';']).next().unwrap_or(w).to_owned());
                    if let Some(item) = item {
                        let name = alias.take().unwrap_or(item.clone());
                        names
                            .entry(name)
                            .or_default()
                            .push(format!("{}: {item}", file.display()));
                    }
                    break;
                }
            }
        }
        let dupes: Vec<_> = names.iter().filter(|(_, v)| v.len() > 1).collect();
        assert!(names.len() > 20, "found only {} schema types", names.len());
        assert!(
            dupes.is_empty(),
            "schema names shared by several types: {dupes:#?}"
        );
    }
}
