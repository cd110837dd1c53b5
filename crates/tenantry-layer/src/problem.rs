//! The layer's refusals, as `application/problem+json` answers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Why a request was not let through: `401`, `403`, `404`, or `503` when
/// Tenantry could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    /// Tenantry's stable code (`invalid_credentials`, `tenant_suspended`,
    /// `tenant_not_found`, …) or the layer's own (`unauthorized`,
    /// `tenantry_unavailable`).
    pub code: String,
}

impl Refusal {
    pub fn new(status: StatusCode, code: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code: code.into(),
        }
    }

    pub(crate) fn unauthorized() -> Refusal {
        Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized")
    }

    pub(crate) fn unavailable() -> Refusal {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "tenantry_unavailable")
    }

    /// Whether this refusal may be cached (not an outage).
    pub(crate) fn cacheable(&self) -> bool {
        self.status != StatusCode::SERVICE_UNAVAILABLE
    }

    pub fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let detail = match self.status {
            StatusCode::UNAUTHORIZED => "no valid tenant credential",
            StatusCode::FORBIDDEN => "the tenant may not use this service",
            StatusCode::NOT_FOUND => "no such tenant",
            _ => "tenant resolution is unavailable; retry later",
        };
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::json!({
            "type": format!("https://tenantry.dev/problems/{}", self.code.replace('_', "-")),
            "title": title,
            "status": self.status.as_u16(),
            "detail": detail,
            "code": self.code,
        });
        let mut response = Response::new(B::from(Bytes::from(body.to_string())));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
