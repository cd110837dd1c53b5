//! `/v1/tenants/{id}/widgets` (widgets and their tokens) and the public
//! `/v1/widgets/verify` (the behaviour is in [`crate::widgets`]).

use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::problem::{ApiError, Problem};
use crate::widgets::{self, WidgetPatch};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use tenantry_api::widgets::{
    VerifyIn, WidgetContextOut, WidgetIn, WidgetList, WidgetOut, WidgetPatchIn, WidgetTokenIn,
    WidgetTokenOut,
};
use tenantry_core::keys::Scope;
use tenantry_store::StoredWidget;

pub fn widget_out(w: StoredWidget) -> WidgetOut {
    WidgetOut {
        id: w.id,
        name: w.name,
        allowed_origins: w.allowed_origins,
        enabled: w.enabled,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

/// Create a widget.
#[utoipa::path(post, path = "/v1/tenants/{id}/widgets", tag = "widgets", params(("id" = String, Path)), request_body = WidgetIn,
    responses((status = 201, body = WidgetOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<WidgetIn>,
) -> Result<(StatusCode, Json<WidgetOut>), ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let name = super::parse_name(&input.name)?;
    let origins = widgets::parse_origins(&input.allowed_origins)?;
    let widget = widgets::create(&state, &grant, name, origins).await?;
    Ok((StatusCode::CREATED, Json(widget_out(widget))))
}

/// List a tenant's widgets.
#[utoipa::path(get, path = "/v1/tenants/{id}/widgets", tag = "widgets", params(("id" = String, Path)),
    responses((status = 200, body = WidgetList), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WidgetList>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantRead)?;
    let rows = widgets::list(&state, &grant).await?;
    Ok(Json(WidgetList {
        data: rows.into_iter().map(widget_out).collect(),
    }))
}

/// Change a widget: disabling it revokes its tokens on every node.
#[utoipa::path(patch, path = "/v1/tenants/{id}/widgets/{wid}", tag = "widgets", params(("id" = String, Path), ("wid" = String, Path)),
    request_body = WidgetPatchIn,
    responses((status = 200, body = WidgetOut), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, wid)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<WidgetPatchIn>,
) -> Result<Json<WidgetOut>, ApiError> {
    let grant = caller.grant(&id, Scope::TenantAdmin)?;
    let patch = WidgetPatch {
        name: input.name.as_deref().map(super::parse_name).transpose()?,
        allowed_origins: input
            .allowed_origins
            .as_deref()
            .map(widgets::parse_origins)
            .transpose()?,
        enabled: input.enabled,
    };
    Ok(Json(widget_out(
        widgets::update(&state, &grant, &wid, patch).await?,
    )))
}

/// Issue a short-lived token for one of the widget's allowed origins
/// (scope `widgets:issue`).
#[utoipa::path(post, path = "/v1/tenants/{id}/widgets/{wid}/tokens", tag = "widgets", params(("id" = String, Path), ("wid" = String, Path)),
    request_body = WidgetTokenIn,
    responses((status = 201, body = WidgetTokenOut),
        (status = 403, description = "the origin is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "the widget is disabled", body = Problem, content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, wid)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<WidgetTokenIn>,
) -> Result<(StatusCode, Json<WidgetTokenOut>), ApiError> {
    let grant = caller.grant(&id, Scope::WidgetsIssue)?;
    let issued = widgets::issue(&state, &grant, &wid, &input.origin, input.ttl_seconds).await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetTokenOut {
            token: issued.token,
            expires_at: issued.expires_at,
        }),
    ))
}

fn origin_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

fn cors(response: &mut Response, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// Verify a widget token from a page: the tenant context, or `401` (not a
/// valid token, expired, widget disabled) / `403` (another origin, tenant
/// suspended). No API key: the token is the credential.
#[utoipa::path(post, path = "/v1/widgets/verify", tag = "widgets", request_body = VerifyIn, security(()),
    responses((status = 200, body = WidgetContextOut),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(input): ApiJson<VerifyIn>,
) -> Result<Response, ApiError> {
    let browser = origin_header(&headers);
    if browser.is_some_and(|o| o != input.origin) {
        return Err(ApiError::Forbidden {
            code: crate::http::codes::Code::OriginNotAllowed,
            detail: "the Origin header is not the origin named".into(),
        });
    }
    let context = widgets::verify(&state, &input.token, &input.origin).await?;
    let mut response = Json(WidgetContextOut {
        tenant_id: context.tenant_id.to_string(),
        widget_id: context.widget_id,
        origin: context.origin.clone(),
        expires_at: context.expires_at,
    })
    .into_response();
    if browser.is_some() {
        cors(&mut response, &context.origin);
    }
    Ok(response)
}

/// CORS preflight of the public widget routes: allowed for an origin some
/// enabled widget allows (`204` with the CORS headers), refused (`403`,
/// no CORS headers) for any other. (Not in the OpenAPI document, which
/// describes no preflights: see the README.)
pub async fn preflight(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let refused = || ApiError::Forbidden {
        code: crate::http::codes::Code::OriginNotAllowed,
        detail: "no widget allows this origin".into(),
    };
    let origin = origin_header(&headers).ok_or_else(refused)?;
    if !widgets::preflight_allowed(&state, origin).await? {
        return Err(refused());
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors(&mut response, origin);
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    Ok(response)
}
