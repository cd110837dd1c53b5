//! Who is calling. Handlers that need an operator take an [`Operator`]
//! argument: the extractor only yields one after the credential check, so an
//! unauthenticated path to such a handler cannot be written.

use super::problem::ApiError;
use crate::app::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tenantry_core::SecretString;
use tenantry_core::tenant::Actor;

/// The operator root key, kept only as its SHA-256.
pub struct RootKey {
    hash: [u8; 32],
}

impl RootKey {
    pub fn new(key: &SecretString) -> Self {
        Self {
            hash: Sha256::digest(key.expose().as_bytes()).into(),
        }
    }

    /// Constant-time comparison of hashes (both 32 bytes, so lengths match).
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.hash.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([REDACTED])")
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An authenticated operator: may act on every tenant.
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) if state.root_key.matches(token) => Ok(Operator {
                actor: Actor::root(),
            }),
            _ => Err(ApiError::Unauthorized),
        }
    }
}
