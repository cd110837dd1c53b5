//! Tenants' settings, one JSON document per category, whose sensitive
//! values (by key name, at any depth) are sealed: replacing, reading and
//! revealing a category, and re-encrypting it under a new data key. Every
//! replacement and every reveal is one change (see [`crate::change`]).

use super::credentials::SEALED;
use super::seal::{
    MAX_SETTINGS_DEPTH, SEALED_MARK, deeper_than, open_settings, seal_settings, settings_envelopes,
    uses_markers,
};
use super::{DataKeys, VaultError};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tenantry_core::ValidationError;
use tenantry_core::audit::AuditTarget;
use tenantry_core::tenant::TenantEventKind;
use tenantry_crypto::{Binding, DataKey};
use tenantry_store::{StoreError, TenantTx};

/// At most this many bytes of JSON per category.
const MAX_SETTINGS_BYTES: usize = 64 * 1024;

fn settings_not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::SettingsNotFound,
        detail: "this tenant has no settings in this category".into(),
    }
}

fn or_settings_not_found(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => settings_not_found(),
        other => other.into(),
    }
}

/// A settings category from a path: 1 to 63 characters of a-z, 0-9, '-'
/// and '_'; any other cannot exist.
pub fn parse_category(category: &str) -> Result<String, ApiError> {
    let ok = !category.is_empty()
        && category.len() <= 63
        && category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(category.to_owned())
    } else {
        Err(ApiError::NotFound {
            code: crate::http::codes::Code::SettingsNotFound,
            detail: "categories are 1 to 63 characters of a-z, 0-9, '-' and '_'".into(),
        })
    }
}

pub fn target(category: &str) -> AuditTarget {
    AuditTarget::new("settings", category)
}

fn too_deep(path: String) -> ApiError {
    ValidationError::new(
        path,
        "too_deep",
        format!(
            "settings may nest at most {MAX_SETTINGS_DEPTH} levels deep (the top-level object is 1; a sealed value counts as one more level)"
        ),
    )
    .into()
}

/// The checks on a document as sent.
pub fn check(data: &Value) -> Result<(), ApiError> {
    if let Some(path) = uses_markers(data) {
        return Err(ValidationError::new(
            path,
            "reserved_name",
            "'$sealed' and '$mask' are reserved",
        )
        .into());
    }
    if serde_json::to_vec(data)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > MAX_SETTINGS_BYTES
    {
        return Err(
            ValidationError::new("body", "too_large", "settings may be at most 64 KiB").into(),
        );
    }
    if let Some(path) = deeper_than(data, MAX_SETTINGS_DEPTH) {
        return Err(too_deep(path));
    }
    Ok(())
}

/// The data keys that open every sealed value of stored settings.
pub async fn keys_for(
    state: &AppState,
    tx: &mut TenantTx,
    stored: &Value,
) -> Result<DataKeys, VaultError> {
    let mut envelopes = Vec::new();
    settings_envelopes(stored, "", &mut envelopes);
    let envelopes: Vec<&str> = envelopes.iter().map(|(_, e)| e.as_str()).collect();
    DataKeys::for_envelopes(&state.vault, tx, &envelopes).await
}

/// Stored settings with every sealed value opened.
pub fn open_with(
    keys: &DataKeys,
    tenant: &str,
    category: &str,
    stored: &Value,
) -> Result<Value, VaultError> {
    open_settings(stored, "", &mut |pointer, envelope| {
        let binding = Binding {
            tenant_id: tenant,
            record_id: category,
            kind: "settings",
            field: pointer,
        };
        keys.open(&binding, envelope)
    })
}

/// Stored settings sealed again with `dek` (a data key rotation); `None`
/// when they hold nothing sealed.
pub fn reseal(
    keys: &DataKeys,
    dek: &DataKey,
    tenant: &str,
    category: &str,
    stored: &Value,
) -> Result<Option<Value>, VaultError> {
    let mut envelopes = Vec::new();
    settings_envelopes(stored, "", &mut envelopes);
    if envelopes.is_empty() {
        return Ok(None);
    }
    let plain = open_with(keys, tenant, category, stored)?;
    seal_settings(dek, tenant, category, "", &plain).map(Some)
}

/// Stored settings as the audit log shows them: each sealed value as
/// `"[sealed]"`.
fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) if map.contains_key(SEALED_MARK) && map.len() == 2 => {
            Value::String(SEALED.into())
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redacted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

/// Replaces a category (`data` already passed [`check`]); returns it as
/// stored (sealed) and when.
pub async fn put(
    state: &AppState,
    grant: &TenantGrant,
    category: &str,
    data: &Value,
) -> Result<(Value, DateTime<Utc>), ApiError> {
    let now = state.clock.now();
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let dek = state.vault.active_dek(change.tx(), now).await?;
    let sealed = seal_settings(&dek, grant.tenant().as_str(), category, "", data)?;
    // Measured again as stored: sealing turns each sensitive value into an
    // object, one level deeper than the key it replaces.
    if let Some(path) = deeper_than(&sealed, MAX_SETTINGS_DEPTH) {
        return Err(too_deep(path));
    }
    let before = match change.tx().get_settings(category).await {
        Ok((stored, _)) => Some(redacted(&stored)),
        Err(StoreError::NotFound) => None,
        Err(other) => return Err(other.into()),
    };
    change.tx().put_settings(category, &sealed, now).await?;
    change.event(
        TenantEventKind::SettingsUpdated,
        json!({ "category": category }),
    );
    change.audit(
        "settings.updated",
        vec![target(category)],
        json!({ "data": { "from": before, "to": redacted(&sealed) } }),
    );
    change.commit().await?;
    Ok((sealed, now))
}

/// A category as stored (sealed values sealed; show them with
/// [`mask_settings`]).
pub async fn get(
    state: &AppState,
    grant: &TenantGrant,
    category: &str,
) -> Result<(Value, DateTime<Utc>), ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant()
        .await
        .map_err(crate::tenancy::or_tenant_not_found)?;
    let found = tx
        .get_settings(category)
        .await
        .map_err(or_settings_not_found)?;
    tx.commit().await?;
    Ok(found)
}

/// A category in plaintext, the reveal recorded in the same transaction
/// that reads it (no entry, no plaintext).
pub async fn reveal(
    state: &AppState,
    grant: &TenantGrant,
    category: &str,
) -> Result<(Value, DateTime<Utc>), ApiError> {
    let mut change = crate::tenancy::open_live(state, grant).await?;
    let (stored, updated_at) = change
        .tx()
        .get_settings(category)
        .await
        .map_err(or_settings_not_found)?;
    let keys = keys_for(state, change.tx(), &stored).await?;
    let plain = open_with(&keys, grant.tenant().as_str(), category, &stored)?;
    change.audit("settings.revealed", vec![target(category)], json!({}));
    change.commit().await?;
    Ok((plain, updated_at))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_every_sealed_value() {
        let stored = json!({"a": {"$sealed": "env", "$mask": "****cret"}, "b": [1, {"$sealed": "e", "$mask": "x"}], "c": "clear"});
        assert_eq!(
            redacted(&stored),
            json!({"a": "[sealed]", "b": [1, "[sealed]"], "c": "clear"})
        );
    }
}
