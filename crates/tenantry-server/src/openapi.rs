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
        domains::add, domains::list, domains::remove, domains::verify,
        keys::create, keys::list, keys::get, keys::update, keys::revoke, keys::rotate, keys::verify,
        operator_keys::create, operator_keys::list, operator_keys::revoke,
        resolve::resolve_post, resolve::resolve_get,
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
        api::inbound::whatsapp_handshake, api::inbound::whatsapp_receive, api::inbound::whatsapp_receive_any,
        api::inbound::conversations, api::inbound::conversation_messages,
        api::widgets::create, api::widgets::list, api::widgets::update, api::widgets::issue,
        api::widgets::verify,
    ),
    components(schemas(Problem, FieldError, api::Page<tenants::TenantOut>, api::Page<events::EventOut>, api::Page<keys::KeyOut>, api::Page<audit::AuditEntryOut>, api::Page<audit::CheckpointOut>, api::Page<api::inbound::ConversationOut>, api::Page<api::inbound::MessageOut>)),
    modifiers(&BearerAuth, &IdempotencyKeys),
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
        (name = "audit", description = "The tamper-evident audit log: entries, signed checkpoints, verification and export"),
        (name = "widgets", description = "Public chat widgets: allowed origins, short-lived tokens, verification"),
        (name = "inbound", description = "Inbound webhooks (WhatsApp, provider callbacks) and the conversations and messages they stored"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

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

/// The document as pretty JSON with a trailing newline, as committed.
pub fn json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
