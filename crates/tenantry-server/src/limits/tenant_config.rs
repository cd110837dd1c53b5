//! A tenant's configuration: its overrides of its plan, versioned; reading
//! what is in force, changing it with a merge patch, and its history.

use super::config::{EffectiveConfig, merge_patch, validate_overrides};
use super::service::{effective_config, effective_config_of};
use crate::app::AppState;
use crate::grant::TenantGrant;
use crate::http::problem::ApiError;
use crate::resolution::cache::Invalidation;
use crate::tenancy::{self, or_tenant_not_found};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tenantry_core::tenant::TenantEventKind;

/// Sections only an operator may change.
const OPERATOR_SECTIONS: [&str; 3] = ["rate_limits", "quotas", "features"];

/// What is in force for the grant's tenant.
pub async fn get(state: &AppState, grant: &TenantGrant) -> Result<Arc<EffectiveConfig>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let config = effective_config(state, &mut tx).await?;
    tx.commit().await?;
    Ok(config)
}

/// Applies a JSON merge patch to the tenant's overrides and stores the
/// result as a new version, in force at once everywhere. Without
/// `by_operator`, rate limits, quotas and features are refused (`403
/// operator_required`). One `config.updated` entry in the tenant's chain,
/// whose `changes` are the before/after of each field the patch touched.
pub async fn patch(
    state: &AppState,
    grant: &TenantGrant,
    patch: &Value,
    by_operator: bool,
) -> Result<Arc<EffectiveConfig>, ApiError> {
    if !by_operator
        && let Some(section) = OPERATOR_SECTIONS
            .into_iter()
            .find(|s| patch.get(*s).is_some())
    {
        return Err(ApiError::Forbidden {
            code: crate::http::codes::Code::OperatorRequired,
            detail: format!("changing {section} needs an operator key").into(),
        });
    }
    let mut change = tenancy::open_live(state, grant).await?;
    patch_on(state, &mut change, patch).await?;
    change.commit().await?;
    Ok(effective_config_of(state, grant.tenant()).await?)
}

/// Applies a merge patch to the tenant's overrides on an open change of
/// the tenant (recording it there, not committing); no section check.
pub async fn patch_on(
    state: &AppState,
    change: &mut crate::change::TenantChange,
    patch: &Value,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    let tenant = change.tx().tenant_id().clone();
    let (version, before) = match change.tx().latest_config().await? {
        Some((v, o, _, _)) => (v, o.0),
        None => (0, json!({})),
    };
    let mut overrides = before.clone();
    merge_patch(&mut overrides, patch);
    validate_overrides(&overrides).map_err(ApiError::Validation)?;
    let version = version + 1;
    let actor = change.actor().as_str().to_owned();
    change
        .tx()
        .insert_config_version(version, &overrides, &actor, now)
        .await?;
    let mut changes = Map::new();
    touched(&mut changes, "", patch, Some(&before), Some(&overrides));
    change.event(
        TenantEventKind::ConfigUpdated,
        json!({ "version": version, "patch": patch }),
    );
    change.audit_with(
        "config.updated",
        vec![tenancy::target(&tenant)],
        Value::Object(changes),
        json!({ "version": version }),
    );
    change.invalidate(Invalidation::Tenant(tenant));
    Ok(())
}

/// `{"section.field": {from, to}}` for each leaf the merge patch `patch`
/// touched whose value differs between `before` and `after`.
fn touched(
    out: &mut Map<String, Value>,
    path: &str,
    patch: &Value,
    before: Option<&Value>,
    after: Option<&Value>,
) {
    match patch {
        Value::Object(fields) if !fields.is_empty() => {
            for (k, v) in fields {
                let path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                touched(
                    out,
                    &path,
                    v,
                    before.and_then(|b| b.get(k)),
                    after.and_then(|a| a.get(k)),
                );
            }
        }
        _ => {
            if before != after {
                out.insert(
                    path.to_owned(),
                    json!({ "from": before.unwrap_or(&Value::Null), "to": after.unwrap_or(&Value::Null) }),
                );
            }
        }
    }
}

/// One stored version of a tenant's overrides.
pub struct ConfigVersion {
    pub version: i64,
    pub overrides: Value,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` versions older than `before`, newest first.
pub async fn versions(
    state: &AppState,
    grant: &TenantGrant,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<ConfigVersion>, ApiError> {
    let mut tx = grant.read(state).await?;
    tx.tenant().await.map_err(or_tenant_not_found)?;
    let rows = tx.config_versions(before, limit).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(version, o, actor, created_at)| ConfigVersion {
            version,
            overrides: o.0,
            actor,
            created_at,
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn touched_names_each_changed_leaf_of_the_patch() {
        let before = json!({"branding": {"company_name": "Old", "primary_color": "#000000"}});
        let patch = json!({"branding": {"company_name": "New", "primary_color": "#000000", "logo_url": null}, "retention_policy": {"message_retention_days": 30}});
        let mut after = before.clone();
        merge_patch(&mut after, &patch);
        let mut out = Map::new();
        touched(&mut out, "", &patch, Some(&before), Some(&after));
        assert_eq!(
            Value::Object(out),
            json!({
                "branding.company_name": {"from": "Old", "to": "New"},
                "retention_policy.message_retention_days": {"from": null, "to": 30},
            })
        );
    }
}
