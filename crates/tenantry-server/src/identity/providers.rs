//! Trusted identity providers: operator-level settings, changed on the
//! operator's change path (audited in the operator chain) and pushed to
//! every server process by invalidation.

use super::Provider;
use super::jwt::{Alg, Jwk};
use crate::api::Checks;
use crate::app::AppState;
use crate::grant::OperatorGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
pub use tenantry_api::identity::{ProviderConfig, ProviderIn, ProviderOut};
use tenantry_core::ValidationError;
use tenantry_core::audit::AuditTarget;
use tenantry_core::keys::Scopes;
use tenantry_store::ProviderRow;

fn text(field: &'static str, value: &str, max: usize) -> Result<String, ValidationError> {
    let value = value.trim();
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "invalid_value",
            format!("must be 1 to {max} printable characters"),
        ));
    }
    Ok(value.to_owned())
}

fn claim_path(field: &'static str, value: &str) -> Result<String, ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-:/".contains(&b))
        });
    if !ok {
        return Err(ValidationError::new(
            field,
            "invalid_claim",
            "must be a claim name or a dotted path of them (e.g. org.id)",
        ));
    }
    Ok(value.to_owned())
}

fn role_name(field: &'static str, value: &str) -> Result<(), ValidationError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "invalid_role",
            "a role is 1 to 64 of a-z, 0-9, '_', '-', ':'",
        ))
    }
}

/// Parses and checks a provider's settings: exactly one of `jwks_url`
/// (allowed by the outbound rules) and `jwks` (with a usable key), at
/// least one audience and algorithm, mappings onto known roles, custom
/// roles whose scopes a tenant key could hold.
pub fn parse(state: &AppState, input: ProviderIn) -> Result<ProviderConfig, ApiError> {
    let mut checks = Checks::default();
    let issuer = checks.check(text("issuer", &input.issuer, 512));
    if issuer.as_deref() == Some("tenantry") {
        checks.check::<()>(Err(ValidationError::new(
            "issuer",
            "reserved",
            "'tenantry' is the issuer of Tenantry's own tokens",
        )));
    }
    match (&input.jwks_url, &input.jwks) {
        (Some(url), None) => {
            if let Err(err) = state.outbound.check_url(url) {
                checks.check::<()>(Err(ValidationError::new(
                    "jwks_url",
                    "url_not_allowed",
                    err.to_string(),
                )));
            }
        }
        (None, Some(set)) => {
            if Jwk::parse_set(set).is_none_or(|keys| keys.is_empty()) {
                checks.check::<()>(Err(ValidationError::new(
                    "jwks",
                    "invalid_jwks",
                    "must be a JSON Web Key Set with at least one RSA, P-256 or Ed25519 signing key",
                )));
            }
        }
        _ => {
            checks.check::<()>(Err(ValidationError::new(
                "jwks_url",
                "required",
                "give exactly one of jwks_url and jwks",
            )));
        }
    }
    if input.audiences.is_empty() || input.audiences.len() > 20 {
        checks.check::<()>(Err(ValidationError::new(
            "audiences",
            "invalid_value",
            "must list 1 to 20 audiences",
        )));
    }
    let audiences: Vec<String> = input
        .audiences
        .iter()
        .filter_map(|a| checks.check(text("audiences", a, 512)))
        .collect();
    let mut algorithms = Vec::new();
    for alg in &input.algorithms {
        match Alg::parse(alg) {
            Some(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Some(_) => {}
            None => {
                checks.check::<()>(Err(ValidationError::new(
                    "algorithms",
                    "unsupported_algorithm",
                    format!(
                        "'{}' is not allowed: use RS256, ES256 or EdDSA",
                        alg.chars().take(20).collect::<String>()
                    ),
                )));
            }
        }
    }
    if input.algorithms.is_empty() {
        checks.check::<()>(Err(ValidationError::new(
            "algorithms",
            "required",
            "name at least one of RS256, ES256, EdDSA",
        )));
    }
    let subject_claim = checks.check(claim_path(
        "subject_claim",
        input.subject_claim.as_deref().unwrap_or("sub"),
    ));
    let tenant_claim = input
        .tenant_claim
        .as_deref()
        .and_then(|c| checks.check(claim_path("tenant_claim", c)));
    let roles_claim = input
        .roles_claim
        .as_deref()
        .and_then(|c| checks.check(claim_path("roles_claim", c)));
    if input.trust_tenant_claim && input.tenant_claim.is_none() {
        checks.check::<()>(Err(ValidationError::new(
            "trust_tenant_claim",
            "requires_tenant_claim",
            "trusting the tenant claim needs a tenant_claim",
        )));
    }
    for (role, scopes) in &input.custom_roles {
        checks.check(role_name("custom_roles", role));
        if super::BUILTIN_ROLES.contains(&role.as_str()) {
            checks.check::<()>(Err(ValidationError::new(
                "custom_roles",
                "reserved",
                "admin and member are built in",
            )));
        }
        if let Some(parsed) = checks.check(Scopes::parse("custom_roles", scopes))
            && let Some(scope) = parsed.operator_issued()
        {
            checks.check::<()>(Err(ValidationError::new(
                "custom_roles",
                "operator_scope",
                format!("'{scope}' is an operator's scope: no role may grant it"),
            )));
        }
    }
    for target in input.role_mapping.values() {
        if !super::BUILTIN_ROLES.contains(&target.as_str())
            && !input.custom_roles.contains_key(target)
        {
            checks.check::<()>(Err(ValidationError::new(
                "role_mapping",
                "unknown_role",
                "maps onto admin, member or one of custom_roles",
            )));
        }
    }
    if input.role_mapping.len() > 100 || input.operator_roles.len() > 100 {
        checks.check::<()>(Err(ValidationError::new(
            "role_mapping",
            "too_many",
            "at most 100 mapped and 100 operator roles",
        )));
    }
    checks.finish()?;
    Ok(ProviderConfig {
        issuer: issuer.unwrap_or_default(),
        jwks_url: input.jwks_url,
        jwks: input.jwks,
        audiences,
        algorithms,
        subject_claim: subject_claim.unwrap_or_else(|| "sub".into()),
        tenant_claim,
        roles_claim,
        role_mapping: input.role_mapping,
        operator_roles: input.operator_roles,
        trust_tenant_claim: input.trust_tenant_claim,
        custom_roles: input.custom_roles,
    })
}

/// A stored provider, ready to verify tokens.
pub fn from_row(row: &ProviderRow) -> Result<Provider, String> {
    let config: ProviderConfig =
        serde_json::from_str(&row.config).map_err(|e| format!("not valid settings: {e}"))?;
    let inline_keys = config
        .jwks
        .as_ref()
        .map(|set| {
            Jwk::parse_set(set)
                .map(Arc::new)
                .ok_or("invalid inline keys")
        })
        .transpose()?;
    let custom_scopes: HashMap<String, Scopes> = config
        .custom_roles
        .iter()
        .map(|(role, scopes)| {
            (
                role.clone(),
                Scopes::from_trusted(scopes.iter().map(String::as_str)),
            )
        })
        .collect();
    Ok(Provider {
        id: row.id.clone(),
        config,
        inline_keys,
        custom_scopes,
    })
}

pub fn out(row: &ProviderRow) -> Result<ProviderOut, ApiError> {
    let config: ProviderConfig = serde_json::from_str(&row.config).map_err(|e| {
        tracing::error!(provider = %row.id, error = %e, "stored identity provider is invalid");
        ApiError::Internal
    })?;
    Ok(ProviderOut {
        id: row.id.clone(),
        config,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub fn not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::IdentityProviderNotFound,
        detail: "no such identity provider".into(),
    }
}

fn issuer_taken() -> ApiError {
    ApiError::Conflict {
        code: crate::http::codes::Code::IssuerTaken,
        detail: "another identity provider already has this issuer".into(),
        field: Some("issuer"),
    }
}

fn target(id: &str) -> AuditTarget {
    AuditTarget::new("identity_provider", id)
}

/// What the audit log keeps of settings: everything but inline key material
/// (public, but bulky): its key ids.
fn audited(config: &ProviderConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    if let (Some(obj), Some(set)) = (value.as_object_mut(), &config.jwks) {
        let kids: Vec<Value> = set
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .map(|k| k.get("kid").cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default();
        obj.insert("jwks".into(), json!({ "kids": kids }));
    }
    value
}

/// Creates (`id: None`) or replaces a provider.
pub async fn put(
    state: &AppState,
    grant: &OperatorGrant,
    id: Option<&str>,
    config: ProviderConfig,
) -> Result<(ProviderRow, bool), ApiError> {
    let now = state.clock.now();
    let mut change = grant.change(state).await?;
    let before = match id {
        Some(id) => Some(
            change
                .tx()
                .identity_provider(id)
                .await?
                .ok_or_else(not_found)?,
        ),
        None => None,
    };
    let row = ProviderRow {
        id: before
            .as_ref()
            .map(|b| b.id.clone())
            .unwrap_or_else(|| state.ids.random("idp")),
        issuer: config.issuer.clone(),
        config: serde_json::to_string(&config).map_err(|_| ApiError::Internal)?,
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    if !change.tx().put_identity_provider(&row).await? {
        return Err(issuer_taken());
    }
    let created = before.is_none();
    let before_config = before
        .as_ref()
        .and_then(|b| serde_json::from_str::<ProviderConfig>(&b.config).ok());
    change.audit(
        if created {
            "identity_provider.created"
        } else {
            "identity_provider.updated"
        },
        vec![target(&row.id)],
        json!({
            "before": before_config.as_ref().map(audited),
            "after": audited(&config),
        }),
    );
    change.invalidate(Invalidation::IdentityProviders);
    change.commit().await?;
    Ok((row, created))
}

pub async fn delete(state: &AppState, grant: &OperatorGrant, id: &str) -> Result<(), ApiError> {
    let mut change = grant.change(state).await?;
    let before = change
        .tx()
        .identity_provider(id)
        .await?
        .ok_or_else(not_found)?;
    change.tx().delete_identity_provider(id).await?;
    let before_config = serde_json::from_str::<ProviderConfig>(&before.config).ok();
    change.audit(
        "identity_provider.deleted",
        vec![target(id)],
        json!({ "before": before_config.as_ref().map(audited) }),
    );
    change.invalidate(Invalidation::IdentityProviders);
    change.commit().await?;
    Ok(())
}

pub async fn get(
    state: &AppState,
    grant: &OperatorGrant,
    id: &str,
) -> Result<ProviderRow, ApiError> {
    let mut op = grant.read(state).await?;
    let row = op.identity_provider(id).await?;
    op.commit().await?;
    row.ok_or_else(not_found)
}

pub async fn list(state: &AppState, grant: &OperatorGrant) -> Result<Vec<ProviderRow>, ApiError> {
    let mut op = grant.read(state).await?;
    let rows = op.identity_providers().await?;
    op.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn audited_settings_keep_key_ids_only() {
        let config = ProviderConfig {
            issuer: "https://idp.example".into(),
            jwks_url: None,
            jwks: Some(
                json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k1"}]}),
            ),
            audiences: vec!["app".into()],
            algorithms: vec![Alg::EdDSA],
            subject_claim: "sub".into(),
            tenant_claim: None,
            roles_claim: None,
            role_mapping: BTreeMap::new(),
            operator_roles: Vec::new(),
            trust_tenant_claim: false,
            custom_roles: BTreeMap::new(),
        };
        assert_eq!(audited(&config)["jwks"], json!({"kids": ["k1"]}));
    }
}
