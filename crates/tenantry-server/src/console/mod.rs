//! The web console at `/console`: server-rendered HTML for operators and
//! tenant admins.
//!
//! Nothing here reads or writes the store itself. Every page and every form
//! is answered by the API's own handlers, called in process through the
//! API router ([`Ctx::api`]) with the session's caller already
//! authenticated: the same permission checks (a tenant admin's foreign
//! tenant is `404`), the same validation, the same unit of work
//! (`change.rs`: audit entry with the caller as actor, events, outbox,
//! invalidation). The console only adds what a browser needs: a session
//! cookie, CSRF tokens, HTML.

mod assets;
mod credential;
mod csrf;
mod key_edit;
mod members;
mod operator;
mod provisioning;
mod session;
mod settings;
mod tenant;
mod tenant_activity;
mod tenants;
mod views;
mod webhook_endpoint;
mod widgets;

use crate::app::AppState;
use crate::http::auth::Caller;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

pub use session::Sessions;

/// The console's Content-Security-Policy: only its own stylesheet; no
/// script, no inline style, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console keeps: its sessions, and the API router it calls.
pub struct Console {
    state: AppState,
    sessions: Sessions,
    api: OnceLock<Router>,
}

impl Console {
    /// The API router, built on first use (the console is part of it).
    fn api(&self) -> Router {
        self.api
            .get_or_init(|| crate::http::router::router(self.state.clone()))
            .clone()
    }
}

type Shared = Arc<Console>;

/// The console's routes, mounted at `/console` by `http::router`.
pub fn router(state: &AppState) -> Router<AppState> {
    let console: Shared = Arc::new(Console {
        state: state.clone(),
        sessions: Sessions::new(
            state.config.console_session_idle,
            state.config.console_session_max,
        ),
        api: OnceLock::new(),
    });
    Router::new()
        .route("/", get(home))
        .route("/assets/console.css", get(assets::css))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/tenants", get(tenants::list).post(tenants::create))
        .route("/tenants/{id}", get(tenant::overview).post(tenant::update))
        .route("/tenants/{id}/status", post(tenant::status))
        .route("/tenants/{id}/domains", post(tenant::add_domain))
        .route("/tenants/{id}/domains/verify", post(tenant::verify_domain))
        .route("/tenants/{id}/domains/remove", post(tenant::remove_domain))
        .route(
            "/tenants/{id}/keys",
            get(tenant::keys).post(tenant::create_key),
        )
        .route(
            "/tenants/{id}/keys/{key_id}",
            get(key_edit::page).post(key_edit::save),
        )
        .route(
            "/tenants/{id}/keys/{key_id}/enabled",
            post(key_edit::set_enabled),
        )
        .route(
            "/tenants/{id}/keys/{key_id}/revoke",
            post(tenant::revoke_key),
        )
        .route(
            "/tenants/{id}/keys/{key_id}/rotate",
            post(tenant::rotate_key),
        )
        .route(
            "/tenants/{id}/config",
            get(tenant::config).post(tenant::patch_config),
        )
        .route(
            "/tenants/{id}/credentials",
            get(tenant::credentials).post(tenant::create_credential),
        )
        .route(
            "/tenants/{id}/credentials/{cred_id}/reveal",
            post(tenant::reveal_credential),
        )
        .route(
            "/tenants/{id}/credentials/{cred_id}",
            get(credential::page).post(credential::save),
        )
        .route(
            "/tenants/{id}/credentials/{cred_id}/delete",
            post(credential::delete),
        )
        .route(
            "/tenants/{id}/data-key/rotate",
            post(credential::rotate_data_key),
        )
        .route(
            "/tenants/{id}/settings",
            get(settings::page).post(settings::save),
        )
        .route(
            "/tenants/{id}/members",
            get(members::members).post(members::put_member),
        )
        .route("/tenants/{id}/members/remove", post(members::remove_member))
        .route(
            "/tenants/{id}/widgets",
            get(widgets::page).post(widgets::create),
        )
        .route(
            "/tenants/{id}/widgets/{wid}/enabled",
            post(widgets::set_enabled),
        )
        .route("/tenants/{id}/events", get(tenant_activity::events))
        .route("/tenants/{id}/audit", get(tenant_activity::audit))
        .route("/tenants/{id}/usage", get(tenant_activity::usage))
        .route("/tenants/{id}/quotas", get(tenant_activity::quotas))
        .route(
            "/tenants/{id}/webhooks",
            get(tenant_activity::webhooks).post(tenant_activity::create_webhook),
        )
        .route(
            "/tenants/{id}/webhooks/{eid}",
            get(webhook_endpoint::page).post(webhook_endpoint::save),
        )
        .route(
            "/tenants/{id}/webhooks/{eid}/rotate",
            post(webhook_endpoint::rotate),
        )
        .route(
            "/tenants/{id}/webhooks/{eid}/replay",
            post(webhook_endpoint::replay_range),
        )
        .route(
            "/tenants/{id}/webhooks/{eid}/delete",
            post(webhook_endpoint::delete),
        )
        .route(
            "/tenants/{id}/webhooks/{eid}/messages/{mid}/replay",
            post(webhook_endpoint::replay),
        )
        .route(
            "/tenants/{id}/provisioning",
            get(tenant_activity::provisioning),
        )
        .route(
            "/tenants/{id}/conversations",
            get(tenant_activity::conversations),
        )
        .route("/plans", get(operator::plans).post(operator::put_plan))
        .route(
            "/operator-keys",
            get(operator::operator_keys).post(operator::create_operator_key),
        )
        .route(
            "/operator-keys/{key_id}/revoke",
            post(operator::revoke_operator_key),
        )
        .route(
            "/keyring",
            get(operator::keyring).post(operator::rotate_keyring),
        )
        .route(
            "/signing-keys",
            get(operator::signing_keys).post(operator::rotate_signing_key),
        )
        .route(
            "/provisioning",
            get(provisioning::page).post(provisioning::start),
        )
        .route("/provisioning/{wid}", get(provisioning::workflow))
        .route("/provisioning/{wid}/retry", post(provisioning::retry))
        .route("/provisioning/{wid}/cancel", post(provisioning::cancel))
        .route(
            "/meters",
            get(operator::meters).post(operator::create_meter),
        )
        .route("/audit", get(operator::audit))
        .route(
            "/identity-providers",
            get(members::providers).post(members::put_provider),
        )
        .route("/identity-providers/remove", post(members::remove_provider))
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
        .layer(axum::Extension(console))
}

/// Every console response: the strict CSP, no framing, no sniffing, no
/// caching (pages show secrets once), no referrer to other sites (`no-referrer`
/// would make browsers send `Origin: null` on the console's own forms).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn home(ctx: Ctx) -> Response {
    match &ctx.caller {
        Caller::Tenant { tenant, .. } => {
            Redirect::to(&format!("/console/tenants/{}", tenant.id)).into_response()
        }
        Caller::Operator { .. } => Redirect::to("/console/tenants").into_response(),
    }
}

async fn not_found(uri: axum::http::Uri, ctx: Result<Ctx, Response>) -> Response {
    // `/console/` (with its slash; `/` within the nest) is the home page too.
    if matches!(uri.path(), "/" | "" | "/console/") {
        return match ctx {
            Ok(ctx) => home(ctx).await,
            Err(signed_out) => signed_out,
        };
    }
    views::error_page(
        ctx.as_ref().ok(),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}

/// A signed-in request: the session, and the caller it stands for,
/// re-checked against the key on every request (a revoked or disabled key,
/// or a suspended tenant, ends the session).
pub struct Ctx {
    console: Shared,
    pub caller: Caller,
    session: Arc<session::Session>,
    /// The request's own metadata, passed on to the API for the audit log.
    meta: RequestMeta,
}

#[derive(Clone, Default)]
struct RequestMeta {
    headers: HeaderMap,
    connect: Option<axum::extract::ConnectInfo<std::net::SocketAddr>>,
}

impl RequestMeta {
    fn of(parts: &Parts) -> RequestMeta {
        let mut headers = HeaderMap::new();
        for name in ["user-agent", "x-request-id", "x-real-ip"] {
            if let Some(v) = parts.headers.get(name) {
                headers.insert(name, v.clone());
            }
        }
        RequestMeta {
            headers,
            connect: parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .cloned(),
        }
    }
}

/// What an API call answered: its status and JSON body (`Null` if none).
#[derive(Debug)]
pub struct ApiReply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

impl ApiReply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The `data` array of a list answer.
    pub fn data(&self) -> Vec<Value> {
        self.body["data"].as_array().cloned().unwrap_or_default()
    }
}

/// The largest API answer the console reads.
const MAX_API_BODY: usize = 8 * 1024 * 1024;

impl Ctx {
    pub fn is_operator(&self) -> bool {
        self.caller.is_operator()
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    pub fn who(&self) -> &str {
        &self.session.label
    }

    /// Calls the API as this session's caller.
    pub async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> ApiReply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(headers) = req.headers_mut() {
            headers.extend(self.meta.headers.clone());
        }
        let body = match body {
            Some(value) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(value).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let Ok(mut req) = req.body(body) else {
            return ApiReply::unavailable();
        };
        req.extensions_mut().insert(self.caller.clone());
        if let Some(connect) = self.meta.connect {
            req.extensions_mut().insert(connect);
        }
        let Ok(response) = self.console.api().oneshot(req).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_API_BODY)
            .await
            .unwrap_or_default();
        ApiReply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> ApiReply {
        self.api(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> ApiReply {
        self.api(Method::POST, path, Some(body)).await
    }
}

impl ApiReply {
    fn unavailable() -> ApiReply {
        ApiReply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: Value::Null,
            headers: HeaderMap::new(),
        }
    }
}

/// Not signed in (or the session ended): to the sign-in page.
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let mut response = Redirect::to("/console/sign-in").into_response();
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(session::CLEAR_COOKIE),
        );
        response
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let signed_out = || SignInFirst.into_response();
        let console = parts
            .extensions
            .get::<Shared>()
            .cloned()
            .ok_or_else(signed_out)?;
        let id = session::cookie(&parts.headers, session::COOKIE).ok_or_else(signed_out)?;
        let session = console
            .sessions
            .touch(id, state.clock.now())
            .ok_or_else(signed_out)?;
        let caller = match session::caller_of(state, &session.identity).await {
            Ok(Some(caller)) => caller,
            Ok(None) => {
                console.sessions.remove(id);
                return Err(signed_out());
            }
            Err(_) => return Err(views::unavailable()),
        };
        Ok(Ctx {
            console,
            caller,
            session,
            meta: RequestMeta::of(parts),
        })
    }
}

/// A posted form: the session, the fields, and the CSRF check passed (the
/// token of the session in the `csrf` field, and an `Origin`, when sent,
/// of this console). Every console POST handler takes one, so none can
/// skip the check.
pub struct Posted {
    pub ctx: Ctx,
    pub form: Form,
}

/// A form's fields, in order (a field may repeat: checkboxes).
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The trimmed value of a field; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// The largest form the console accepts.
const MAX_FORM: usize = 256 * 1024;

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        if !csrf::same_origin(&parts.headers, state) {
            return Err(views::error_page(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent from this console (origin check failed).",
            ));
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
            views::error_page(
                Some(&ctx),
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "The form is too large.",
            )
        })?;
        let form = Form::parse(&bytes);
        if !csrf::token_matches(form.get("csrf"), ctx.csrf()) {
            return Err(views::error_page(
                Some(&ctx),
                StatusCode::FORBIDDEN,
                "Request refused",
                "The form's security token is missing or out of date. Reload the page and try again.",
            ));
        }
        Ok(Posted { ctx, form })
    }
}
