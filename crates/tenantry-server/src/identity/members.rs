//! Memberships: which users (an issuer's subjects) belong to a tenant, with
//! which roles. Written on the tenant's change path (audited in its chain);
//! read by resolution through a cache that every change invalidates on
//! every server process.

use super::Membership;
use crate::app::AppState;
use crate::grant::{OperatorGrant, TenantGrant};
use crate::http::problem::ApiError;
use crate::resolution::cache::{Entry, Invalidation};
use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::ValidationError;
use tenantry_core::audit::AuditTarget;
use tenantry_store::MemberRow;

/// A member path's `{subject}`: `idp_…:subject`, split.
pub fn parse_subject(raw: &str) -> Result<(&str, &str), ApiError> {
    raw.split_once(':')
        .filter(|(provider, subject)| {
            provider.starts_with("idp_")
                && !subject.is_empty()
                && subject.len() <= 255
                && !subject.chars().any(char::is_control)
        })
        .ok_or_else(not_found)
}

pub fn not_found() -> ApiError {
    ApiError::NotFound {
        code: crate::http::codes::Code::MemberNotFound,
        detail: "no such member".into(),
    }
}

/// Roles of a membership: 1 to 20 of `admin`, `member` or custom names.
pub fn parse_roles(roles: &[String]) -> Result<Vec<String>, ValidationError> {
    let valid = |r: &String| {
        !r.is_empty()
            && r.len() <= 64
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-:".contains(&b))
    };
    if roles.is_empty() || roles.len() > 20 || !roles.iter().all(valid) {
        return Err(ValidationError::new(
            "roles",
            "invalid_roles",
            "1 to 20 roles: admin, member or a custom role (a-z, 0-9, '_', '-', ':')",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        if !out.contains(role) {
            out.push(role.clone());
        }
    }
    Ok(out)
}

/// A user's memberships, cached (invalidated by every change to them).
pub async fn memberships_of(
    state: &AppState,
    provider_id: &str,
    subject: &str,
) -> Result<Arc<Vec<Membership>>, ApiError> {
    let key = super::member_key(provider_id, subject);
    if let Some(Entry::Found(found)) = state.caches.memberships.get(&key) {
        return Ok(found);
    }
    let generation = state.caches.generation();
    let mut op = crate::resolution::resolver().read(state).await?;
    let rows = op.memberships_of(provider_id, subject).await?;
    op.commit().await?;
    let found = Arc::new(
        rows.iter()
            .map(|row| Membership {
                tenant: row.tenant_id.clone(),
                roles: roles_of(row),
            })
            .collect::<Vec<_>>(),
    );
    state.caches.store(
        &state.caches.memberships,
        generation,
        key,
        Entry::Found(found.clone()),
    );
    Ok(found)
}

pub fn roles_of(row: &MemberRow) -> Vec<String> {
    serde_json::from_str(&row.roles).unwrap_or_default()
}

pub fn metadata_of(row: &MemberRow) -> Value {
    serde_json::from_str(&row.metadata).unwrap_or_else(|_| json!({}))
}

fn target(key: &str) -> AuditTarget {
    AuditTarget::new("member", key)
}

/// Adds or replaces a membership; `true` when it is new.
pub async fn put(
    state: &AppState,
    grant: &TenantGrant,
    provider_id: &str,
    subject: &str,
    roles: Vec<String>,
    metadata: Value,
) -> Result<(MemberRow, bool), ApiError> {
    let now = state.clock.now();
    let key = super::member_key(provider_id, subject);
    let mut change = grant.change(state).await?;
    let before = change.tx().member(provider_id, subject).await?;
    let row = MemberRow {
        tenant_id: grant.tenant().clone(),
        provider_id: provider_id.to_owned(),
        subject: subject.to_owned(),
        roles: serde_json::to_string(&roles).map_err(|_| ApiError::Internal)?,
        metadata: metadata.to_string(),
        created_at: before.as_ref().map_or(now, |b| b.created_at),
        updated_at: now,
    };
    let created = change.tx().put_member(&row).await?;
    change.audit(
        if created {
            "member.added"
        } else {
            "member.updated"
        },
        vec![target(&key)],
        json!({
            "before": before.as_ref().map(|b| json!({ "roles": roles_of(b) })),
            "after": { "roles": roles },
        }),
    );
    change.invalidate(Invalidation::Member(key));
    change.commit().await?;
    Ok((row, created))
}

pub async fn get(
    state: &AppState,
    grant: &TenantGrant,
    provider_id: &str,
    subject: &str,
) -> Result<MemberRow, ApiError> {
    let mut tx = grant.read(state).await?;
    let row = tx.member(provider_id, subject).await?;
    tx.commit().await?;
    row.ok_or_else(not_found)
}

pub async fn list(
    state: &AppState,
    grant: &TenantGrant,
    after: Option<(&str, &str)>,
    limit: u32,
) -> Result<Vec<MemberRow>, ApiError> {
    let mut tx = grant.read(state).await?;
    let rows = tx.list_members(after, limit).await?;
    tx.commit().await?;
    Ok(rows)
}

pub async fn remove(
    state: &AppState,
    grant: &TenantGrant,
    provider_id: &str,
    subject: &str,
) -> Result<(), ApiError> {
    let key = super::member_key(provider_id, subject);
    let mut change = grant.change(state).await?;
    let before = change
        .tx()
        .member(provider_id, subject)
        .await?
        .ok_or_else(not_found)?;
    change.tx().delete_member(provider_id, subject).await?;
    change.audit(
        "member.removed",
        vec![target(&key)],
        json!({ "before": { "roles": roles_of(&before) } }),
    );
    change.invalidate(Invalidation::Member(key));
    change.commit().await?;
    Ok(())
}

/// Every tenant a user belongs to (operators only).
pub async fn tenants_of(
    state: &AppState,
    grant: &OperatorGrant,
    provider_id: &str,
    subject: &str,
) -> Result<Vec<MemberRow>, ApiError> {
    let mut op = grant.read(state).await?;
    let rows = op.memberships_of(provider_id, subject).await?;
    op.commit().await?;
    Ok(rows)
}
