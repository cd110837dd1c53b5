//! Request extractors whose every rejection is a problem+json answer naming
//! the offending field, never axum's plain-text defaults.

use super::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tenantry_core::ValidationError;

/// A JSON body. Malformed JSON is `400 malformed_json`; a value of the wrong
/// type, a missing or unknown field is `422 validation_failed` with its path.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
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
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON into `T`, telling syntax errors (400) from shape errors (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        shape_error(&path, &inner)
    })
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

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
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
