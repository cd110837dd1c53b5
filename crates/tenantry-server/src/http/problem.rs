//! The one place where errors become HTTP responses: RFC 9457
//! `application/problem+json` bodies with a stable machine `code`. Internal
//! errors are logged here and never leak their text to the caller.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
pub use tenantry_api::problem::{FieldError, Problem};
use tenantry_core::ValidationError;
use tenantry_store::{Conflict, StorageFault, StoreError};

pub use super::codes::Code;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub enum ApiError {
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// Something that does not exist, or is not the caller's to see.
    NotFound {
        code: Code,
        detail: Cow<'static, str>,
    },
    Conflict {
        code: Code,
        detail: Cow<'static, str>,
        field: Option<&'static str>,
    },
    /// The caller is known but may not do this.
    Forbidden {
        code: Code,
        detail: Cow<'static, str>,
    },
    /// The tenant exists but is suspended.
    TenantSuspended,
    /// A presented key or token did not verify.
    InvalidCredentials(tenantry_core::keys::VerifyCode),
    /// One or more input fields break their rules.
    Validation(Vec<ValidationError>),
    /// The body is not JSON at all.
    MalformedJson(String),
    UnsupportedMediaType,
    PayloadTooLarge {
        limit: usize,
    },
    MethodNotAllowed,
    RouteNotFound,
    Unavailable(&'static str),
    /// The database cannot be reached or is locked (an outage): 503 with
    /// `Retry-After`, never 500.
    DatabaseUnavailable,
    /// The database's storage refuses writes (full, read-only, failing):
    /// 503 with `Retry-After`, since an operator's fix makes the same
    /// request succeed; reads go on.
    Storage(StorageFault),
    /// The client did not send its request body in time.
    RequestBodyTimeout,
    /// The request took longer than the configured request timeout.
    RequestTimeout,
    /// Over a rate limit.
    RateLimited(crate::limits::ratelimit::Decision),
    /// A quota of this period is used up; `retry_after` seconds until it resets.
    QuotaExceeded {
        meter: &'static str,
        retry_after: u64,
    },
    /// A stored secret could not be decrypted (tampered, moved, or its key gone).
    DecryptionFailed,
    /// The keyring file could not be changed (`keyring_write_failed`) or
    /// read (`keyring_unavailable`): a server-side storage problem, 503.
    Keyring {
        code: Code,
        detail: &'static str,
    },
    /// Well-formed input that cannot be acted on, with its own stable code
    /// (e.g. `domain_verification_failed`).
    Unprocessable {
        code: Code,
        detail: Cow<'static, str>,
        field: Option<&'static str>,
    },
    /// The DNS resolver could not answer (custom-domain verification).
    DnsUnavailable,
    /// Another request with the same `Idempotency-Key` is still running:
    /// `409 idempotency_key_in_progress` with `Retry-After`.
    IdempotencyKeyInProgress,
    /// The tenant lives in another region: `421 wrong_region`, with the
    /// region and its URL (body and headers). See docs/regions.md.
    WrongRegion {
        region: String,
        url: String,
    },
    /// The tenant is being moved to another region: `503 tenant_moving`
    /// with `Retry-After`.
    TenantMoving,
    Internal,
}

/// Seconds a client should wait before retrying after `tenant_moving`.
const MOVING_RETRY_AFTER_SECS: u64 = 5;

/// Seconds a client should wait before retrying after `dns_unavailable`.
const DNS_RETRY_AFTER_SECS: u64 = 5;

/// Seconds a client should wait before retrying after
/// `idempotency_key_in_progress`.
const IDEMPOTENCY_RETRY_AFTER_SECS: u64 = 1;
/// A full or read-only disk needs an operator: retry neither in a tight loop
/// nor so late that a fixed disk goes unused.
const STORAGE_RETRY_AFTER_SECS: u64 = 10;

/// The stable code of a problem response, left in the response's
/// extensions for `/metrics` (problems by code, database errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemCode(pub &'static str);

impl ApiError {
    pub fn invalid(err: ValidationError) -> Self {
        ApiError::Validation(vec![err])
    }

    /// `403 operator_required`: only an operator may do this.
    pub fn operator_required(detail: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Forbidden {
            code: Code::OperatorRequired,
            detail: detail.into(),
        }
    }

    /// `403 key_outlives_caller`: a key may not make a key (or change one's
    /// expiry) to outlive itself.
    pub fn key_outlives_caller() -> Self {
        ApiError::Forbidden {
            code: Code::KeyOutlivesCaller,
            detail: "a key with an expiry cannot make or change a key to expire later than itself, or never"
                .into(),
        }
    }

    /// `422 idempotency_key_reused`: the key was used for another request.
    pub fn idempotency_key_reused() -> Self {
        ApiError::Unprocessable {
            code: Code::IdempotencyKeyReused,
            detail: "this Idempotency-Key was used for a different request (method, path, caller or body); use a new key".into(),
            field: Some("Idempotency-Key"),
        }
    }

    /// `409 idempotency_key_unavailable`: the key was used, but the response
    /// it gave can no longer be opened (its key-encryption key was removed
    /// from the keyring).
    pub fn idempotency_response_unavailable() -> Self {
        ApiError::Conflict {
            code: Code::IdempotencyKeyUnavailable,
            detail: "this Idempotency-Key was already used, but its stored response can no longer be read; use a new key".into(),
            field: Some("Idempotency-Key"),
        }
    }

    pub fn tenant_not_found() -> Self {
        ApiError::NotFound {
            code: Code::TenantNotFound,
            detail: "no such tenant".into(),
        }
    }

    fn parts(&self) -> (StatusCode, Code, &'static str, String) {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Code::Unauthorized,
                "Unauthorized",
                "a valid key or token is required: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into(),
            ),
            ApiError::NotFound { code, detail } => {
                (StatusCode::NOT_FOUND, *code, "Not Found", detail.to_string())
            }
            ApiError::Forbidden { code, detail } => {
                (StatusCode::FORBIDDEN, *code, "Forbidden", detail.to_string())
            }
            ApiError::WrongRegion { region, .. } => (
                StatusCode::MISDIRECTED_REQUEST,
                Code::WrongRegion,
                "Misdirected Request",
                format!("the tenant lives in region '{region}'; send the request to that region's URL"),
            ),
            ApiError::TenantMoving => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::TenantMoving,
                "Tenant Moving",
                format!("the tenant is being moved to another region; retry in {MOVING_RETRY_AFTER_SECS} s"),
            ),
            ApiError::TenantSuspended => (
                StatusCode::FORBIDDEN,
                Code::TenantSuspended,
                "Tenant Suspended",
                "the tenant is suspended".into(),
            ),
            ApiError::InvalidCredentials(code) => (
                StatusCode::UNAUTHORIZED,
                Code::InvalidCredentials,
                "Unauthorized",
                format!(
                    "the key or token is not valid ({})",
                    serde_json::to_value(code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ),
            ApiError::Conflict { code, detail, .. } => {
                (StatusCode::CONFLICT, *code, "Conflict", detail.to_string())
            }
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::ValidationFailed,
                "Invalid input",
                errors
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "invalid input".into()),
            ),
            ApiError::MalformedJson(why) => (
                StatusCode::BAD_REQUEST,
                Code::MalformedJson,
                "Malformed JSON",
                format!("the request body is not valid JSON: {why}"),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "Unsupported Media Type",
                "send the body as JSON with 'Content-Type: application/json'".into(),
            ),
            ApiError::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::PayloadTooLarge,
                "Payload Too Large",
                format!("the request body is larger than {limit} bytes"),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                Code::MethodNotAllowed,
                "Method Not Allowed",
                "this method is not allowed on this path".into(),
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "Not Found",
                "no such route".into(),
            ),
            ApiError::Unavailable(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "Service Unavailable",
                format!("{what} is unavailable; retry later"),
            ),
            ApiError::DatabaseUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::DatabaseUnavailable,
                "Service Unavailable",
                "the database is unavailable; retry later".into(),
            ),
            ApiError::Storage(fault) => {
                let (code, detail) = match fault {
                    StorageFault::Full => (Code::StorageFull, "the database's storage is full"),
                    StorageFault::ReadOnly => {
                        (Code::StorageReadOnly, "the database's storage is read-only")
                    }
                    StorageFault::Io => (Code::StorageIoError, "the database's storage failed"),
                };
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    code,
                    "Service Unavailable",
                    format!("{detail}: writes are refused until an operator fixes it; reads go on; retry in {STORAGE_RETRY_AFTER_SECS} s"),
                )
            }
            ApiError::RequestBodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                Code::RequestBodyTimeout,
                "Request Timeout",
                "the request body was not received in time".into(),
            ),
            ApiError::RequestTimeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::RequestTimeout,
                "Service Unavailable",
                "the request took too long and was abandoned; retry later".into(),
            ),
            ApiError::RateLimited(d) => (
                StatusCode::TOO_MANY_REQUESTS,
                Code::RateLimited,
                "Too Many Requests",
                format!("over the rate limit of {} requests; retry after {} ms", d.limit, d.retry_after_ms),
            ),
            ApiError::QuotaExceeded { meter, retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                Code::QuotaExceeded,
                "Quota Exceeded",
                format!("the tenant's {meter} quota for this period is used up; it resets in {retry_after} s"),
            ),
            ApiError::DecryptionFailed => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::DecryptionFailed,
                "Decryption Failed",
                "the stored secret could not be decrypted: it was tampered with, moved from another tenant or record, or its key is gone".into(),
            ),
            ApiError::Keyring { code, detail } => (
                StatusCode::SERVICE_UNAVAILABLE,
                *code,
                "Service Unavailable",
                (*detail).into(),
            ),
            ApiError::Unprocessable { code, detail, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                *code,
                "Unprocessable",
                detail.to_string(),
            ),
            ApiError::DnsUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Code::DnsUnavailable,
                "Service Unavailable",
                format!("the DNS resolver did not answer; retry in {DNS_RETRY_AFTER_SECS} s"),
            ),
            ApiError::IdempotencyKeyInProgress => (
                StatusCode::CONFLICT,
                Code::IdempotencyKeyInProgress,
                "Conflict",
                format!("a request with this Idempotency-Key is still running; retry in {IDEMPOTENCY_RETRY_AFTER_SECS} s"),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Code::InternalError,
                "Internal Server Error",
                "an internal error occurred; the request id identifies it in the server's logs"
                    .into(),
            ),
        }
    }

    pub fn to_problem(&self) -> (StatusCode, Problem) {
        let (status, code, title, detail) = self.parts();
        let (field, errors) = match self {
            ApiError::Validation(errors) => (
                errors.first().map(|e| e.field.to_string()),
                errors
                    .iter()
                    .map(|e| FieldError {
                        field: e.field.to_string(),
                        code: e.code.to_owned(),
                        detail: e.message.to_string(),
                    })
                    .collect(),
            ),
            ApiError::IdempotencyKeyInProgress => (Some("Idempotency-Key".to_owned()), Vec::new()),
            ApiError::Conflict { field, .. } | ApiError::Unprocessable { field, .. } => {
                (field.map(str::to_owned), Vec::new())
            }
            _ => (None, Vec::new()),
        };
        (
            status,
            Problem {
                kind: format!(
                    "https://tenantry.dev/problems/{}",
                    code.as_str().replace('_', "-")
                ),
                title: title.to_owned(),
                status: status.as_u16(),
                detail,
                code: code.as_str().to_owned(),
                field,
                errors,
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, problem) = self.to_problem();
        let close = matches!(self, ApiError::RequestBodyTimeout);
        let body = match &self {
            ApiError::WrongRegion { region, url } => {
                let mut value = serde_json::to_value(&problem).unwrap_or_default();
                if let Some(fields) = value.as_object_mut() {
                    fields.insert("region".into(), region.as_str().into());
                    fields.insert("url".into(), url.as_str().into());
                }
                serde_json::to_vec(&value).unwrap_or_default()
            }
            _ => serde_json::to_vec(&problem).unwrap_or_default(),
        };
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        // For the metrics layer: which problem this response reports.
        response
            .extensions_mut()
            .insert(ProblemCode(self.parts().1.as_str()));
        if let ApiError::RateLimited(decision) = &self {
            add_rate_limit_headers(response.headers_mut(), decision);
        }
        if let ApiError::QuotaExceeded { retry_after, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let ApiError::Keyring { .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        if let ApiError::IdempotencyKeyInProgress = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(IDEMPOTENCY_RETRY_AFTER_SECS),
            );
        }
        if let ApiError::Storage(_) = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORAGE_RETRY_AFTER_SECS),
            );
        }
        if let ApiError::WrongRegion { region, url } = &self {
            for (name, value) in [("tenantry-region", region), ("tenantry-region-url", url)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    response
                        .headers_mut()
                        .insert(axum::http::HeaderName::from_static(name), value);
                }
            }
        }
        if let ApiError::TenantMoving = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(MOVING_RETRY_AFTER_SECS),
            );
        }
        if let ApiError::DnsUnavailable = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(DNS_RETRY_AFTER_SECS));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE
            && !response.headers().contains_key(header::RETRY_AFTER)
        {
            // Every 503 is temporary: say when to try again.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if close {
            // The rest of the body is still on the wire: do not wait for it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a challenge on every 401.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(err: crate::vault::VaultError) -> Self {
        use crate::vault::VaultError;
        match err {
            VaultError::Store(e) => e.into(),
            VaultError::ReadOnlyKeyring => ApiError::Conflict {
                code: Code::KeyringReadOnly,
                detail: "the keyring comes from TENANTRY_MASTER_KEY; rotate by restarting with a new key first (or use TENANTRY_MASTER_KEY_FILE)".into(),
                field: None,
            },
            VaultError::KeyringWrite(why) => {
                tracing::error!(error = %why, "cannot write the keyring");
                ApiError::Keyring {
                    code: Code::KeyringWriteFailed,
                    detail: "the keyring file could not be changed (see the server's logs); nothing was activated and every existing key still works",
                }
            }
            VaultError::KeyringRead(why) => {
                tracing::error!(error = %why, "cannot read the keyring");
                ApiError::Keyring {
                    code: Code::KeyringUnavailable,
                    detail: "the keyring file could not be read (see the server's logs)",
                }
            }
            other => {
                // Never garbage: a secret that does not decrypt is an explicit error.
                tracing::error!(error = %other, "a sealed secret could not be opened");
                ApiError::DecryptionFailed
            }
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::invalid(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound {
                code: Code::NotFound,
                detail: "no such resource".into(),
            },
            StoreError::Conflict(Conflict::TenantId) => ApiError::Conflict {
                code: Code::TenantExists,
                detail: "a tenant with this id already exists".into(),
                field: Some("id"),
            },
            StoreError::Conflict(Conflict::Subdomain) => ApiError::Conflict {
                code: Code::SubdomainTaken,
                detail: "another tenant already uses this subdomain".into(),
                field: Some("subdomain"),
            },
            StoreError::Conflict(Conflict::Domain) => ApiError::Conflict {
                code: Code::DomainTaken,
                detail: "this domain is already attached to a tenant".into(),
                field: Some("domain"),
            },
            other => match other.storage_fault() {
                Some(fault) => {
                    tracing::error!(error = %other, "database storage refuses writes");
                    ApiError::Storage(fault)
                }
                None if other.is_unavailable() => {
                    tracing::error!(error = %other, "database unavailable");
                    ApiError::DatabaseUnavailable
                }
                None => {
                    tracing::error!(error = %other, "storage error");
                    ApiError::Internal
                }
            },
        }
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds) and,
/// when denied, `Retry-After` (seconds, rounded up).
pub fn add_rate_limit_headers(
    headers: &mut axum::http::HeaderMap,
    d: &crate::limits::ratelimit::Decision,
) {
    let secs = |ms: u64| ms.div_ceil(1000);
    let mut set = |name: &'static str, value: u64| {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(axum::http::HeaderName::from_static(name), v);
        }
    };
    set("ratelimit-limit", d.limit);
    set("ratelimit-remaining", d.remaining);
    set("ratelimit-reset", secs(d.reset_after_ms));
    if !d.allowed {
        set("retry-after", secs(d.retry_after_ms).max(1));
    }
}
