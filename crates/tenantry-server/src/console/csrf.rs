//! Cross-site request forgery: every console form carries its session's
//! token (checked in constant time), and a POST whose `Origin` (or, when
//! the browser sends it, `Sec-Fetch-Site`) is not this console is refused
//! before its body is read. The session cookie is `SameSite=Strict` too.

use crate::app::AppState;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// Whether the form's token is the expected one.
pub fn token_matches(presented: Option<&str>, expected: &str) -> bool {
    match presented {
        Some(presented) if !expected.is_empty() => {
            bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
        }
        _ => false,
    }
}

/// Whether the console is served over TLS: its public URL says so, or the
/// TLS terminator in front of it does (`X-Forwarded-Proto: https`).
pub fn is_tls(headers: &HeaderMap, state: &AppState) -> bool {
    state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Whether a POST comes from this console's own pages. A request with no
/// `Origin` (not a browser, or an old one) relies on the token alone.
pub fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if let Some(public) = state.config.public_url.as_deref()
        && origin_of(public).is_some_and(|p| p.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let scheme = if is_tls(headers, state) {
        "https"
    } else {
        "http"
    };
    origin.eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(Some("abc"), "abc"));
        assert!(!token_matches(Some("abd"), "abc"));
        assert!(!token_matches(Some("ab"), "abc"));
        assert!(!token_matches(None, "abc"));
        assert!(!token_matches(Some(""), ""));
    }
}
