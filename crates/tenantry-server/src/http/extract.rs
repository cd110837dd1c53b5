//! Request extractors whose every rejection is a problem+json answer naming
//! the offending field, never axum's plain-text defaults.

use super::auth::Caller;
use super::problem::ApiError;
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenantry_core::{TenantId, ValidationError};

/// On a tenant path (`/v1/tenants/{id}/…`, `/v1/operator/tenants/{id}/…`),
/// answers `404 tenant_not_found` before anything about the request's query
/// or body is looked at, so a foreign tenant id never reveals how its input
/// would be validated: authentication (401) → tenant access (404) →
/// validation (400/422). A tenant key reaches only its own tenant; an
/// operator, only tenants that exist.
async fn check_tenant_path(parts: &mut Parts, state: &AppState) -> Result<(), ApiError> {
    let Some(raw) = tenant_path_id(parts, state).await? else {
        return Ok(());
    };
    let id = TenantId::parse(&raw).map_err(|_| ApiError::tenant_not_found())?;
    let caller = Caller::from_request_parts(parts, state).await?;
    match &caller {
        Caller::Tenant { tenant, .. } if tenant.id != id => Err(ApiError::tenant_not_found()),
        Caller::Tenant { scopes, .. } => match parts.extensions.get::<RequiredScope>() {
            Some(RequiredScope(scope)) if !scopes.grants(*scope) => {
                Err(super::auth::insufficient_scope(*scope))
            }
            _ => Ok(()),
        },
        Caller::Operator { .. } => {
            if crate::resolution::keys::load_tenant(state, &id)
                .await?
                .is_some()
            {
                return Ok(());
            }
            // A cached "no such tenant" may predate its creation on another
            // process by the moment its invalidation takes: ask the database.
            let mut op = crate::grant::OperatorGrant::from_caller(&caller)
                .read(state)
                .await?;
            let found = op.get_tenant(&id).await?;
            op.commit().await?;
            match found {
                Some(_) => Ok(()),
                None => Err(ApiError::tenant_not_found()),
            }
        }
    }
}

/// The tenant access check of [`ApiJson`] for handlers that read their body
/// themselves: put it before the body among the handler's arguments.
pub struct TenantPathChecked;

impl FromRequestParts<AppState> for TenantPathChecked {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        check_tenant_path(parts, state).await?;
        Ok(TenantPathChecked)
    }
}

/// The scope a route's handler requires of a tenant key (set by the
/// router), checked with the tenant access, before any validation.
#[derive(Debug, Clone, Copy)]
pub struct RequiredScope(pub tenantry_core::keys::Scope);

/// The raw `{id}` of a tenant path (`/v1/tenants/{id}/…`,
/// `/v1/operator/tenants/{id}/…`), if the request is on one.
pub async fn tenant_path_id(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    let on_tenant_path = parts.extensions.get::<MatchedPath>().is_some_and(|p| {
        let p = p.as_str();
        p.starts_with("/v1/tenants/{id}") || p.starts_with("/v1/operator/tenants/{id}")
    });
    if !on_tenant_path {
        return Ok(None);
    }
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::RouteNotFound)?;
    Ok(params
        .iter()
        .find(|(name, _)| *name == "id")
        .map(|(_, v)| v.to_owned()))
}

/// A JSON body. Malformed JSON is `400 malformed_json`; a value of the wrong
/// type, a missing or unknown field, or a string holding a NUL character is
/// `422 validation_failed` with its path. On a tenant path the tenant access
/// check comes first (see [`check_tenant_path`]).
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        check_tenant_path(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The request body, byte for byte (a webhook's signature covers these
/// bytes), within the body limit and the body deadline.
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        let deadline = req.extensions().get::<super::body::BodyDeadline>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if super::body::timed_out(deadline.as_ref()) {
                ApiError::RequestBodyTimeout
            } else if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::MalformedJson("the body could not be read".into())
            }
        })?;
        Ok(RawBody(bytes))
    }
}

/// Parses JSON into `T`, telling syntax errors (400) from shape errors (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // No string of this API may hold a NUL: PostgreSQL's text and jsonb
    // refuse it, SQLite would truncate it in places. In JSON text a NUL can
    // only be written as the escape `\u0000`.
    if has_nul_escape(bytes) {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            ApiError::MalformedJson(format!("line {} column {}", e.line(), e.column()))
        })?;
        if let Some(field) = nul_field(&value, String::new()) {
            return Err(nul_error(field));
        }
    }
    // Fast path for the common case, a well-formed object: one pass. Only a
    // body that fails it is parsed again to say precisely what is wrong.
    let is_object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_object && let Ok(value) = serde_json::from_slice::<T>(bytes) {
        return Ok(value);
    }
    // Syntax first, so that "not JSON" and "JSON of the wrong shape" differ.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("line {} column {}", e.line(), e.column())))?;
    // Every request body of this API is an object (serde would otherwise
    // accept an array for a struct, field by position).
    if !value.is_object() {
        return Err(ApiError::invalid(ValidationError::new(
            "body",
            "invalid_type",
            "the body must be a JSON object",
        )));
    }
    let mut value = value;
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        shape_error(&path, &inner)
    })
}

/// Writes each number with no fractional part (`60.0`, `1e3`) as an
/// integer, so an integer field takes it: JSON Schema (and so the OpenAPI
/// document) calls `60.0` an integer, serde would refuse it for an `i64`.
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let Some(f) = n.as_f64() else { return };
            // Exactly representable integers only (|f| < 2^53).
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *value = Value::from(i);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Whether JSON text holds the escape `\u0000` (and not an escaped backslash
/// followed by the letters `u0000`).
fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|b| *b == b'\\') {
        let after = rest.get(at + 1..).unwrap_or_default();
        if after.starts_with(b"u0000") {
            return true;
        }
        // Skip the escaped character, whatever it is.
        rest = after.get(1..).unwrap_or_default();
    }
    false
}

/// The path (in serde_path_to_error's notation) of the first string or
/// object key that holds a NUL.
fn nul_field(value: &Value, path: String) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_field(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_field(item, join(key))
            }
        }),
        _ => None,
    }
}

/// `422` naming the first string or key of `value` that holds a NUL.
pub fn refuse_nul(value: &Value) -> Result<(), ApiError> {
    match nul_field(value, String::new()) {
        Some(field) => Err(nul_error(field)),
        None => Ok(()),
    }
}

fn nul_error(field: String) -> ApiError {
    ApiError::invalid(ValidationError::new(
        field,
        "invalid_character",
        "must not contain a NUL character (U+0000)",
    ))
}

fn shape_error(path: &str, message: &str) -> ApiError {
    // serde names the missing or unknown field in its message; point at it.
    let named = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let field = match (path, named) {
        // serde_path_to_error's path already ends with an unknown field.
        (p, Some(_)) if message.starts_with("unknown field") && p != "." => p.to_owned(),
        (".", Some(name)) => name.to_owned(),
        (p, Some(name)) => format!("{p}.{name}"),
        (".", None) => "body".to_owned(),
        (p, None) => p.to_owned(),
    };
    let code = if message.starts_with("missing field") {
        "required"
    } else if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid_type"
    };
    // Keep serde's explanation but cut the list of expected fields short.
    let detail = message
        .split(", expected one of")
        .next()
        .unwrap_or(message)
        .to_owned();
    ApiError::invalid(ValidationError::new(field, code, detail))
}

/// Query string parameters, with the same error rules as [`ApiJson`].
pub struct ApiQuery<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiQuery<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        check_tenant_path(parts, state).await?;
        let query = parts.uri.query().unwrap_or("");
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_error(name.replace('\0', "\\u0000")));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize::<_, T>(de)
            .map(ApiQuery)
            .map_err(|err| {
                let path = err.path().to_string();
                shape_error(&path, &err.into_inner().to_string())
            })
    }
}

/// The body limit in force, stored as a request extension so rejections can
/// say it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Path parameters. A path that cannot be parsed names nothing that exists:
/// `404 not_found`.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A NUL names nothing that exists (and must not reach a query).
        if parts.uri.path().contains("%00") || parts.uri.path().contains('\0') {
            return Err(ApiError::RouteNotFound);
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|_| ApiError::RouteNotFound)
    }
}

/// Who sent a request, for access logs: peer address, request id, user agent.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect::<String>())
        };
        let source_ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_string());
        Ok(RequestMeta {
            source_ip,
            request_id: header("x-request-id"),
            user_agent: header("user-agent"),
        })
    }
}
