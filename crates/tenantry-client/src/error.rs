//! What a call can fail with. An answer from the server that is not a
//! success is [`Error::Api`], carrying the problem document's stable `code`.

use std::time::Duration;
pub use tenantry_api::FieldError;

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status (after any retries).
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer: connection refused or reset, timeout, TLS. The URL is left
    /// out of the message (a query may carry a token).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success status whose body is not the documented type.
    #[error("unexpected response body (status {status}): {source}")]
    Decode {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// A request body that could not be encoded.
    #[error("could not encode the request body: {0}")]
    Encode(#[source] serde_json::Error),
    /// The base URL given to the builder is not an absolute http(s) URL.
    #[error("invalid base URL: {0}")]
    BaseUrl(String),
    /// The API key (or an idempotency key) is not a valid header value.
    #[error("invalid {0}: it must be visible ASCII")]
    InvalidHeader(&'static str),
}

impl Error {
    /// The problem's `code` (`tenant_not_found`, `validation_failed`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// The API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }
}

/// An RFC 9457 problem answer, as the server sent it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    /// The stable machine code (see the server's catalogue, `http/codes.rs`).
    /// `unexpected_response` when the body was not a problem document (a
    /// proxy's error page, say).
    pub code: String,
    pub title: String,
    pub detail: String,
    /// The offending input field, when there is one.
    pub field: Option<String>,
    /// Every invalid field, for `validation_failed`.
    pub errors: Vec<FieldError>,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// The `X-Request-Id` of the answer, to find it in the server's logs.
    pub request_id: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        Ok(())
    }
}

impl ApiError {
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        request_id: Option<String>,
    ) -> ApiError {
        match serde_json::from_slice::<tenantry_api::Problem>(body) {
            Ok(p) => ApiError {
                status,
                code: p.code,
                title: p.title,
                detail: p.detail,
                field: p.field,
                errors: p.errors,
                retry_after,
                request_id,
            },
            Err(_) => ApiError {
                status,
                code: "unexpected_response".to_owned(),
                title: "Unexpected response".to_owned(),
                detail: String::from_utf8_lossy(body.get(..200).unwrap_or(body)).into_owned(),
                field: None,
                errors: Vec::new(),
                retry_after,
                request_id,
            },
        }
    }
}
