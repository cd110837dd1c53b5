//! What a provider check answers when it fails, and how an HTTP exchange
//! with a provider is classified (shared by [`super::meta`] and
//! [`super::genesys`]).

use crate::outbound::OutboundError;
use serde_json::{Value, json};
use std::time::Duration;

/// A provider check that did not succeed, in the provider's own words.
#[derive(Debug, Clone)]
pub struct ProviderError {
    /// Stable: `meta_190`, `genesys_invalid_client`, `provider_timeout`, …
    pub code: String,
    /// The provider's own message (never a credential).
    pub message: String,
    /// Trying again with the same input cannot succeed.
    pub permanent: bool,
    /// The provider asked to wait this long (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// What else the provider said (status, error code and subcode, trace id).
    pub details: Value,
}

impl ProviderError {
    pub fn transient(code: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            code: code.to_owned(),
            message: message.into(),
            permanent: false,
            retry_after: None,
            details: json!({}),
        }
    }

    pub fn permanent(code: &str, message: impl Into<String>) -> ProviderError {
        ProviderError {
            permanent: true,
            ..ProviderError::transient(code, message)
        }
    }
}

/// A request that got no answer: a timeout or a broken connection is worth
/// another try; a refused address is not.
pub fn transport(provider: &str, err: OutboundError) -> ProviderError {
    match err {
        OutboundError::Timeout => ProviderError::transient(
            "provider_timeout",
            format!("{provider} did not answer in time"),
        ),
        OutboundError::Connect(why) => ProviderError::transient(
            "provider_unreachable",
            format!("{provider} could not be reached: {why}"),
        ),
        OutboundError::Refused(why) => ProviderError::permanent(
            "provider_refused",
            format!("the request to {provider} was not made: {why}"),
        ),
    }
}

/// The `Retry-After` of a response, in seconds (the HTTP-date form is rare
/// for these APIs and ignored).
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

/// Longest response body read from a provider.
const MAX_BODY: usize = 256 * 1024;

/// The response body as JSON (`null` when it is not JSON or too long).
pub async fn json_body(response: reqwest::Response) -> Result<Value, OutboundError> {
    let mut response = response;
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Ok(Value::Null);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(OutboundError::Timeout),
            Err(e) => {
                tracing::debug!(error = %e.without_url(), "a provider's answer broke off");
                return Err(OutboundError::Connect("the answer broke off".to_owned()));
            }
        }
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A string field of a provider's answer, shortened to something sane.
pub fn text(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(|s| s.chars().take(1000).collect())
}
