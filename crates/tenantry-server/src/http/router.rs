use super::extract::RequiredScope;
use super::problem::ApiError;
use super::request_path::{RandomRequestId, RequestPathLayer};
use crate::api::{
    audit, credentials, domains, events, health, identity, keyring, keys, operator_keys, resolve,
    tenants, tokens,
};
use crate::app::AppState;
use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::handler::Handler;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tenantry_core::keys::Scope;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Every route of the server, with the middleware every request passes
/// through (outermost first): request id, panic guard, logging, request
/// timeout, body limit and body timeout.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route(
            "/v1/tenants/{id}",
            get(tenants::get).patch(tenants::update).delete(tenants::delete),
        )
        .route("/v1/tenants/{id}/suspend", post(tenants::suspend))
        .route("/v1/tenants/{id}/reactivate", post(tenants::reactivate))
        .route("/v1/tenants/{id}/events", get(events::list))
        .route("/v1/tenants/{id}/domains", post(domains::add.layer(scope(Scope::TenantAdmin))).get(domains::list))
        .route("/v1/tenants/{id}/domains/{domain}", axum::routing::delete(domains::remove))
        .route("/v1/tenants/{id}/domains/{domain}/verify", post(domains::verify.layer(scope(Scope::TenantAdmin))))
        .route("/v1/tenants/{id}/api-keys", post(keys::create.layer(scope(Scope::KeysWrite))).get(keys::list))
        .route("/v1/tenants/{id}/api-keys/{key_id}", get(keys::get).patch(keys::update.layer(scope(Scope::KeysWrite))))
        .route("/v1/tenants/{id}/api-keys/{key_id}/revoke", post(keys::revoke))
        .route("/v1/tenants/{id}/api-keys/{key_id}/rotate", post(keys::rotate.layer(scope(Scope::KeysWrite))))
        .route("/v1/keys/verify", post(keys::verify))
        .route("/v1/operator-keys", post(operator_keys::create).get(operator_keys::list))
        .route("/v1/operator-keys/{key_id}/revoke", post(operator_keys::revoke))
        .route("/v1/tenants/{id}/credentials", post(credentials::create.layer(scope(Scope::CredentialsWrite))).get(credentials::list))
        .route(
            "/v1/tenants/{id}/credentials/{cred_id}",
            get(credentials::get).patch(credentials::update.layer(scope(Scope::CredentialsWrite))).delete(credentials::delete),
        )
        .route("/v1/tenants/{id}/credentials/{cred_id}/reveal", post(credentials::reveal))
        .route("/v1/tenants/{id}/credentials/{cred_id}/access-log", get(credentials::access_log))
        .route(
            "/v1/tenants/{id}/settings/{category}",
            axum::routing::put(crate::api::settings::put_settings.layer(scope(Scope::CredentialsWrite))).get(crate::api::settings::get_settings),
        )
        .route("/v1/tenants/{id}/settings/{category}/reveal", post(crate::api::settings::reveal_settings))
        .route("/v1/operator/keyring", get(keyring::status))
        .route("/v1/operator/keyring/rotate", post(keyring::rotate))
        .route("/v1/operator/tenants/{id}/data-key/rotate", post(keyring::rotate_tenant))
        .route("/v1/plans", get(crate::api::plans::list_plans))
        .route("/v1/plans/{name}", axum::routing::put(crate::api::plans::put_plan))
        .route("/v1/meters", get(crate::api::meters::list_meters).post(crate::api::meters::create_meter))
        .route("/v1/tenants/{id}/config", get(crate::api::config::get_config).patch(crate::api::config::patch_config.layer(scope(Scope::TenantAdmin))))
        .route("/v1/tenants/{id}/config/versions", get(crate::api::config::config_versions))
        .route("/v1/usage/events", post(crate::api::usage::ingest))
        .route("/v1/tenants/{id}/usage", get(crate::api::usage::usage_series))
        .route("/v1/tenants/{id}/stats", get(crate::api::usage::stats))
        .route("/v1/quotas/check", post(crate::api::quotas::check_quota))
        .route("/v1/ratelimit", post(crate::api::ratelimit::ratelimit))
        .route("/metrics", get(health::metrics))
        .route("/v1/resolve", post(resolve::resolve_post).get(resolve::resolve_get))
        .route("/v1/changes", get(crate::api::changes::stream))
        .route("/v1/tokens", post(tokens::create))
        .route("/v1/operator/signing-keys/rotate", post(tokens::rotate))
        .route("/.well-known/jwks.json", get(tokens::jwks))
        .route("/v1/tenants/{id}/audit", get(audit::list.layer(scope(Scope::AuditRead))))
        .route("/v1/tenants/{id}/audit/checkpoints", get(audit::checkpoints.layer(scope(Scope::AuditRead))))
        .route("/v1/tenants/{id}/audit/verify", get(audit::verify.layer(scope(Scope::AuditRead))))
        .route("/v1/tenants/{id}/audit/export", get(audit::export.layer(scope(Scope::AuditRead))))
        .route("/v1/operator/audit", get(audit::operator_list))
        .route("/v1/operator/audit/checkpoints", get(audit::operator_checkpoints))
        .route("/v1/operator/audit/verify", get(audit::operator_verify))
        .route("/v1/operator/audit/export", get(audit::operator_export))
        .route("/v1/operator/audit/signing-keys/rotate", post(audit::rotate_key))
        .route("/v1/audit/keys", get(audit::keys))
        // Identity providers and members (issue 13).
        .route("/v1/identity-providers", post(identity::create_provider).get(identity::list_providers))
        .route(
            "/v1/identity-providers/{provider_id}",
            get(identity::get_provider).put(identity::put_provider).delete(identity::delete_provider),
        )
        .route("/v1/tenants/{id}/members", get(identity::list_members.layer(scope(Scope::TenantRead))))
        .route(
            "/v1/tenants/{id}/members/{subject}",
            get(identity::get_member.layer(scope(Scope::TenantRead)))
                .put(identity::put_member.layer(scope(Scope::TenantAdmin)))
                .delete(identity::delete_member.layer(scope(Scope::TenantAdmin))),
        )
        .route("/v1/members/{subject}/tenants", get(identity::member_tenants))
        .route("/v1/provisioning", post(crate::api::provisioning::create).get(crate::api::provisioning::list))
        .route("/v1/provisioning/{id}", get(crate::api::provisioning::get))
        .route("/v1/provisioning/{id}/retry", post(crate::api::provisioning::retry))
        .route("/v1/provisioning/{id}/cancel", post(crate::api::provisioning::cancel))
        // Outbound webhooks (issue 10).
        .route("/v1/event-types", get(crate::api::webhooks::event_types))
        .route("/v1/webhook-endpoints", post(crate::api::webhooks::operator_create).get(crate::api::webhooks::operator_list))
        .route("/v1/webhook-endpoints/{eid}", get(crate::api::webhooks::operator_get).patch(crate::api::webhooks::operator_update).delete(crate::api::webhooks::operator_delete))
        .route("/v1/webhook-endpoints/{eid}/secret/rotate", post(crate::api::webhooks::operator_rotate))
        .route("/v1/webhook-endpoints/{eid}/jwks.json", get(crate::api::webhooks::operator_jwks))
        .route("/v1/webhook-endpoints/{eid}/messages", get(crate::api::webhooks::operator_messages))
        .route("/v1/webhook-endpoints/{eid}/messages/{mid}", get(crate::api::webhooks::operator_message))
        .route("/v1/webhook-endpoints/{eid}/messages/{mid}/replay", post(crate::api::webhooks::operator_replay))
        .route("/v1/webhook-endpoints/{eid}/replay", post(crate::api::webhooks::operator_replay_range))
        .route("/v1/tenants/{id}/webhook-endpoints", post(crate::api::webhooks::tenant_create).get(crate::api::webhooks::tenant_list))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}", get(crate::api::webhooks::tenant_get).patch(crate::api::webhooks::tenant_update).delete(crate::api::webhooks::tenant_delete))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/secret/rotate", post(crate::api::webhooks::tenant_rotate))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/jwks.json", get(crate::api::webhooks::tenant_jwks))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/messages", get(crate::api::webhooks::tenant_messages))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/messages/{mid}", get(crate::api::webhooks::tenant_message))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/messages/{mid}/replay", post(crate::api::webhooks::tenant_replay))
        .route("/v1/tenants/{id}/webhook-endpoints/{eid}/replay", post(crate::api::webhooks::tenant_replay_range))
        // Inbound webhooks and what they stored (issue 11).
        .route("/v1/webhooks/whatsapp", post(crate::api::inbound::whatsapp_receive_any))
        .route("/v1/webhooks/whatsapp/{tenant}", get(crate::api::inbound::whatsapp_handshake).post(crate::api::inbound::whatsapp_receive))
        .route("/v1/tenants/{id}/conversations", get(crate::api::inbound::conversations))
        // Provider status callbacks (issue 11).
        .route("/v1/tenants/{id}/messages", post(crate::api::callbacks::register.layer(scope(Scope::UsageWrite))))
        .route("/v1/webhooks/twilio", post(crate::api::callbacks::twilio))
        .route("/v1/webhooks/sendgrid", post(crate::api::callbacks::sendgrid))
        .route("/v1/webhooks/generic", post(crate::api::callbacks::generic))
        .route("/v1/tenants/{id}/conversations/{cid}/messages", get(crate::api::inbound::conversation_messages))
        .route("/v1/tenants/{id}/widgets", post(crate::api::widgets::create.layer(scope(Scope::TenantAdmin))).get(crate::api::widgets::list))
        .route("/v1/tenants/{id}/widgets/{wid}", axum::routing::patch(crate::api::widgets::update.layer(scope(Scope::TenantAdmin))))
        .route("/v1/tenants/{id}/widgets/{wid}/tokens", post(crate::api::widgets::issue.layer(scope(Scope::WidgetsIssue))))
        .route("/v1/widgets/verify", post(crate::api::widgets::verify).options(crate::api::widgets::preflight))
        .route("/v1/tenants/{id}/move", post(crate::api::regions::start).get(crate::api::regions::status))
        .route("/v1/tenants/{id}/move/complete", post(crate::api::regions::complete))
        .route("/v1/tenants/{id}/move/abort", post(crate::api::regions::abort))
        // Idempotency-Key on the routes listed in http::idempotency::ROUTES.
        .route_layer(super::idempotency::IdempotencyLayer::new(state.clone()))
        // Tenants of other regions (421) and tenants being moved (503), first.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::tenancy::regions::gate))
        .nest("/console", crate::console::router(&state))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // One `Router::layer` for the whole stack (each call wraps every
        // route once more), outermost first.
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
                    tracing::error!("request handler panicked");
                    ApiError::Internal.into_response()
                }))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let request_id = req
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            // The path only: query strings are not logged.
                            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
                        })
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Micros)),
                )
                .layer(RequestPathLayer::new(state.clone()))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

async fn openapi_json() -> Response {
    let mut response = crate::openapi::json().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Declares the scope a tenant key needs for a handler that reads a body,
/// so the extractor refuses a key without it (403) before validating the
/// body (422); the handler checks it again itself.
fn scope(scope: Scope) -> Extension<RequiredScope> {
    Extension(RequiredScope(scope))
}
