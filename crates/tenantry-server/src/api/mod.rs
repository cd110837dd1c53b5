//! The REST API under `/v1`, one module per resource. Handlers parse input
//! into domain types, call the store inside a tenant-bound or operator
//! transaction, and map results to DTOs (`…In` for requests, `…Out` for
//! responses), kept apart from storage rows.

pub mod audit;
pub mod callbacks;
pub mod changes;
pub mod config;
pub mod credentials;
pub mod domains;
pub mod events;
pub mod health;
pub mod identity;
pub mod inbound;
pub mod keyring;
pub mod keys;
pub mod meters;
pub mod operator_keys;
pub mod plans;
pub mod provisioning;
pub mod quotas;
pub mod ratelimit;
pub mod regions;
pub mod resolve;
pub mod settings;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod webhooks;
pub mod widgets;

use crate::http::problem::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use tenantry_core::ValidationError;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// `limit` and `cursor` of a list request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return, 1–200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => {
                Err(
                    ValidationError::new("limit", "out_of_range", "must be between 1 and 200")
                        .into(),
                )
            }
        }
    }

    /// The position the cursor encodes, for a list of `kind`.
    pub fn after(&self, kind: &str) -> Result<Option<String>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let invalid = invalid_cursor;
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (prefix, position) = text.split_once(':').ok_or_else(invalid)?;
        if prefix != kind || position.is_empty() {
            return Err(invalid());
        }
        Ok(Some(position.to_owned()))
    }
}

/// `422` for a `cursor` that no list of this kind gave out.
pub fn invalid_cursor() -> ApiError {
    ApiError::from(ValidationError::new(
        "cursor",
        "invalid_cursor",
        "is not a cursor from this list",
    ))
}

/// An opaque cursor for the position after `position` in a list of `kind`.
pub fn cursor(kind: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

pub use tenantry_api::Page;

/// Collects validation errors so one answer names every invalid field.
#[derive(Default)]
pub struct Checks(Vec<ValidationError>);

impl Checks {
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.push(err);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// A display name (of a key, credential, …): 1 to 200 printable characters, trimmed.
pub fn parse_name(name: &str) -> Result<String, ValidationError> {
    // Length and characters are checked before trimming, as the document's
    // `DisplayName` schema states them.
    let trimmed = name.trim();
    if trimmed.is_empty()
        || name.chars().count() > tenantry_core::values::NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(ValidationError::new(
            "name",
            "invalid_name",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(trimmed.to_owned())
}
